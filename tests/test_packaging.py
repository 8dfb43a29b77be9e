"""The packaged programs, end to end: scripts/build.sh builds both PyInstaller
executables and the Linux tarball (once per session, or reused when dist/
is newer than every source file); the tests run what a user unpacks.

Never skipped: a missing PyInstaller, Xvfb or xdotool is a failure
(scripts/test.sh installs them).
"""
from __future__ import annotations

import configparser
import os
import stat
import struct
import subprocess
import sys
import tarfile
import time
import tomllib

import pytest

from tests import packaging_support as ps
from tests.netclient import LineClient

pytestmark = [pytest.mark.packaging, pytest.mark.timeout(420)]

GRIN_YELLOW = (0xFC, 0xEA, 0x2B)        # the fill of OpenMoji's 1F600.svg


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory):
    """The Linux tarball, built if needed and unpacked: its top folder."""
    how = ps.ensure_built()
    print(f"packaged build: {how}")
    dest = tmp_path_factory.mktemp("unpacked")
    with tarfile.open(ps.tarball_path()) as tar:
        tops = {m.name.split("/", 1)[0] for m in tar.getmembers()}
        assert tops == {f"{ps.APP.name}-{ps.APP.version}-linux-{os.uname().machine}"}, tops
        # filter="tar": keep modes (executables), refuse paths leaving dest
        tar.extractall(dest, **({"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}))
    return dest / tops.pop()


@pytest.fixture(scope="module")
def display():
    with ps.xvfb() as d:
        yield d


# --- no build needed ------------------------------------------------------------

def _ico_entries(data: bytes) -> dict[int, bytes]:
    reserved, kind, count = struct.unpack_from("<HHH", data)
    assert (reserved, kind) == (0, 1)
    out = {}
    for i in range(count):
        w, h, _, _, planes, bpp, length, offset = struct.unpack_from("<BBBBHHII", data, 6 + 16 * i)
        assert w == h and bpp == 32 and offset + length <= len(data)
        out[w or 256] = data[offset:offset + length]
    return out


def _icns_entries(data: bytes) -> dict[str, bytes]:
    assert data[:4] == b"icns" and struct.unpack_from(">I", data, 4)[0] == len(data)
    pos, out = 8, {}
    while pos < len(data):
        length = struct.unpack_from(">I", data, pos + 4)[0]
        out[data[pos:pos + 4].decode()] = data[pos + 8:pos + length]
        pos += length
    assert pos == len(data)
    return out


def test_icon_files_are_generated_from_their_source_and_well_formed():
    """The committed icons are what packaging/make_icon.py draws. Only the
    sizes up to 128 are redrawn here (the whole set takes seconds of pure
    Python); any change to the drawing changes those too. The large sizes
    are checked for shape, and `make_icon.py --check` compares all."""
    import make_icon
    icons = os.path.join(ps.ROOT, "packaging", "icons")
    read = lambda name: open(os.path.join(icons, name), "rb").read()  # noqa: E731
    ico = _ico_entries(read("natter.ico"))
    icns = _icns_entries(read("natter.icns"))
    assert set(ico) == set(make_icon.ICO_SIZES) and set(icns) == {k for k, _ in make_icon.ICNS_TYPES}
    for size in (16, 32, 48, 64, 128):
        assert ico[size] == make_icon.png(size, make_icon.render(size)), \
            f"packaging/icons are stale at {size}px: run python packaging/make_icon.py"
    sizes = dict(make_icon.ICNS_TYPES)
    for kind, data in icns.items():
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", data[16:24]) == (sizes[kind], sizes[kind])
        if sizes[kind] in ico:
            assert data == ico[sizes[kind]], kind
    assert read("natter.png") == ico[256] == icns["ic08"]
    assert read("natter-48.png") == ico[48]


def test_specs_take_name_version_and_bundle_id_from_pyproject(tmp_path):
    with open(os.path.join(ps.ROOT, "pyproject.toml"), "rb") as f:
        meta = tomllib.load(f)
    app = ps.natter_specinfo.load()
    assert app.version == meta["project"]["version"]
    assert app.name == meta["tool"]["natter"]["app-name"]
    assert app.bundle_id == meta["tool"]["natter"]["bundle-id"]
    # The Windows version resource is written on every platform; check it is
    # well-formed Python with the numbers PyInstaller wants.
    path = ps.natter_specinfo.windows_version_file(app, app.client_name, "chat", str(tmp_path))
    text = open(path, encoding="utf-8").read()
    compile(text, path, "eval")
    assert f"filevers={app.version_tuple()}" in text and f"'{app.version}'" in text
    assert ps.natter_specinfo.icon_for_platform("win32").endswith(".ico")
    assert ps.natter_specinfo.icon_for_platform("darwin").endswith(".icns")
    # packaging/ must never become a package: it would shadow PyPI's
    # `packaging`, which PyInstaller and pip import.
    assert not os.path.exists(os.path.join(ps.ROOT, "packaging", "__init__.py"))


def test_the_macos_bundle_explains_why_it_reaches_the_local_network():
    """macOS 15+ asks before an app may use the local network, with the
    bundle's NSLocalNetworkUsageDescription (the build runs on a Mac only;
    here the spec's Info.plist is checked as Python)."""
    import ast
    tree = ast.parse(open(os.path.join(ps.ROOT, "packaging", "natter_client.spec"), encoding="utf-8").read())
    plists = [kw.value for node in ast.walk(tree) if isinstance(node, ast.Call)
              and getattr(node.func, "id", "") == "BUNDLE" for kw in node.keywords if kw.arg == "info_plist"]
    assert len(plists) == 1 and isinstance(plists[0], ast.Dict)
    entries = {ast.literal_eval(k): v for k, v in zip(plists[0].keys, plists[0].values)}
    text = ast.literal_eval(entries["NSLocalNetworkUsageDescription"])
    assert "local network" in text and text.endswith(".")


def test_pip_install_gives_chat_server_and_chatgui_commands(tmp_path):
    """What `pipx install .` does, offline: build the wheel, install it into a
    fresh venv, run the console command from outside the checkout."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        (src / name).write_bytes(open(os.path.join(ps.ROOT, name), "rb").read())
    repo_modules = set()
    for pkg in ("server", "chatgui"):
        for dirpath, dirnames, filenames in os.walk(os.path.join(ps.ROOT, pkg)):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            rel = os.path.relpath(dirpath, ps.ROOT)
            os.makedirs(src / rel, exist_ok=True)
            for n in filenames:
                if n.endswith(".py"):
                    repo_modules.add(os.path.join(rel, n))
                    (src / rel / n).write_bytes(open(os.path.join(dirpath, n), "rb").read())
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    run = dict(capture_output=True, text=True, timeout=120, cwd=tmp_path)
    out = subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", "wheel", "./src"],
                         **run)
    assert out.returncode == 0, out.stderr
    wheel = os.path.join(tmp_path, "wheel", os.listdir(tmp_path / "wheel")[0])
    out = subprocess.run([sys.executable, "-m", "venv", "--without-pip", "venv"], **run)
    assert out.returncode == 0, out.stderr
    venv_py = str(tmp_path / "venv" / "bin" / "python")
    out = subprocess.run([*pip, "--python", venv_py, "install", "--no-index", "--no-deps", wheel], **run)
    assert out.returncode == 0, out.stderr
    out = subprocess.run([str(tmp_path / "venv" / "bin" / "chat-server"), "--help"], **run)
    assert out.returncode == 0 and "usage:" in out.stdout, out.stdout + out.stderr
    gui = (tmp_path / "venv" / "bin" / "chatgui").read_text()
    assert "from chatgui.main import main" in gui
    out = subprocess.run([venv_py, "-c", "import chatgui.main, server.app; print(server.app.__file__)"], **run)
    assert out.returncode == 0 and str(tmp_path / "venv") in out.stdout, out.stdout + out.stderr
    site = subprocess.run([venv_py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          **run).stdout.strip()
    installed = {os.path.relpath(os.path.join(d, n), site)
                 for d, _, files in os.walk(site) for n in files
                 if n.endswith(".py") and os.path.relpath(d, site).split(os.sep)[0] in ("server", "chatgui")}
    assert repo_modules == installed


# --- the packaged programs ------------------------------------------------------------

def test_tarball_has_both_programs_desktop_entry_icon_and_installer(unpacked, tmp_path):
    client = unpacked / ps.APP.client_name / ps.APP.client_name
    server = unpacked / ps.APP.server_name / ps.APP.server_name
    for exe in (client, server, unpacked / "install.sh"):
        assert os.access(exe, os.X_OK), exe
    assert (unpacked / "natter.png").read_bytes() == open(os.path.join(ps.ROOT, "packaging", "icons",
                                                                        "natter.png"), "rb").read()
    assert "install.sh" in (unpacked / "README.txt").read_text()
    # The bundled client carries the server (hosting a room) and the icon.
    internal = unpacked / ps.APP.client_name / "_internal"
    assert (internal / "icons" / "natter.png").exists()
    # The emoji pictures: every one chatgui.app.emoji can name, and their licence.
    from chatgui.app import emoji
    pack = emoji._Pack(str(internal / emoji.BUNDLE_DIR / emoji.BUNDLE_PACK))
    assert set(pack.names()) == emoji.catalogue().stems
    assert pack.read("1F600") == emoji.catalogue().artwork.read("1F600")
    licence = (internal / emoji.BUNDLE_DIR / "LICENSE.txt").read_text(encoding="utf-8")
    assert "OpenMoji" in licence and "Attribution-ShareAlike 4.0 International" in licence
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(unpacked / "natter.desktop")
    d = entry["Desktop Entry"]
    assert d["Type"] == "Application" and d["Name"] == ps.APP.name and d["Terminal"] == "false"
    # Exec as a launcher parses it (string escapes, then shell-like quoting),
    # with %k = this file: it must name the unpacked client.
    argv = ps.desktop_exec_argv(d["Exec"], str(unpacked / "natter.desktop"))
    assert argv[:2] == ["sh", "-c"]
    probe = subprocess.run(["sh", "-c", argv[2].replace("exec ", "echo ", 1), *argv[3:]],
                           capture_output=True, text=True, timeout=10)
    assert os.path.realpath(probe.stdout.strip()) == os.path.realpath(client)
    # install.sh: a menu entry with absolute paths, for this user only.
    data = tmp_path / "xdg"
    env = dict(os.environ, HOME=str(tmp_path), XDG_DATA_HOME=str(data))
    out = subprocess.run([str(unpacked / "install.sh")], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    installed = configparser.ConfigParser(interpolation=None)
    installed.optionxform = str
    installed.read(data / "applications" / "natter.desktop")
    i = installed["Desktop Entry"]
    assert ps.desktop_exec_argv(i["Exec"], "") == [str(client)]
    assert os.path.exists(i["Icon"])
    out = subprocess.run([str(unpacked / "install.sh"), "--uninstall"], env=env, capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0 and not (data / "applications" / "natter.desktop").exists()


def test_packaged_server_relays_a_message_between_two_clients(unpacked, tmp_path):
    exe = str(unpacked / ps.APP.server_name / ps.APP.server_name)
    proc, port, _ = ps.start_packaged_server(str(tmp_path), "--rate-limit", "0", exe=exe)
    alice = bob = None
    try:
        alice = LineClient(port)
        alice.hello("alice")
        bob = LineClient(port)
        bob.hello("bob")
        assert alice.recv_type("joined")["nick"] == "bob"
        alice.send({"type": "say", "text": "hello from alice", "ref": "a1"})
        got = bob.recv_type("message")
        assert got["from"] == "alice" and got["text"] == "hello from alice"
        assert alice.recv_type("message")["ref"] == "a1"
    finally:
        for c in (alice, bob):
            if c:
                c.close()
        code = ps.stop(proc)
    log = (tmp_path / "server.log").read_text()
    assert code == 0, log                    # SIGTERM is a clean stop
    assert os.path.exists(tmp_path / "history.db")


def test_packaged_server_joins_a_redis_deployment(unpacked, tmp_path, make_node, redis_server):
    exe = str(unpacked / ps.APP.server_name / ps.APP.server_name)
    log = open(tmp_path / "node.log", "wb")
    proc = subprocess.Popen([exe, "--host", "127.0.0.1", "--port", "0", "--no-discovery", "--rate-limit", "0",
                             "--redis", redis_server.url], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=log, env=dict(os.environ, NATTER_HOME=str(tmp_path / "home")))
    log.close()
    alice = bob = None
    try:
        m = ps.LISTEN_RE.search(ps.read_line(proc.stdout, 30))
        assert m, (tmp_path / "node.log").read_text()
        other = make_node()                         # the source tree's server, on the same Redis
        alice = LineClient(int(m.group(2)))
        alice.hello("alice", v=2)
        bob = LineClient(other.port)
        bob.hello("bob", v=2)
        alice.send({"type": "say", "text": "from the packaged node", "ref": "p1"})
        assert alice.recv_type("message")["ref"] == "p1"
        got = bob.recv_type("message")
        assert (got["from"], got["text"]) == ("alice", "from the packaged node")
    finally:
        for c in (alice, bob):
            if c:
                c.close()
        code = ps.stop(proc)
    assert code == 0, (tmp_path / "node.log").read_text()


def _start_client(unpacked, display: str, tmp_path, *args: str) -> subprocess.Popen:
    """The packaged client on the test's display, its output in tmp_path/client.log."""
    exe = str(unpacked / ps.APP.client_name / ps.APP.client_name)
    with open(tmp_path / "client.log", "wb") as log:
        return subprocess.Popen([exe, *args], env=dict(os.environ, DISPLAY=display), stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT)


def test_packaged_client_joins_sends_and_exits_cleanly_when_closed(unpacked, display, server, connect, tmp_path):
    watcher = connect("watcher")
    proc = _start_client(unpacked, display, tmp_path,
                         "--host", "127.0.0.1", "--port", str(server.port), "--nick", "packed")
    try:
        try:
            assert watcher.recv_type("joined", timeout=30)["nick"] == "packed"
            # The title names the room once the conversation shows: typing
            # earlier (the window maps with the form while it connects) lost
            # the first keys on a loaded machine.
            window = ps.wait_for_window(display, "^packed @ ", timeout=20)
            ps.type_into(display, window, "typed into the packaged client")
            got = watcher.recv_type("message", timeout=15)
            assert got["from"] == "packed" and got["text"] == "typed into the packaged client"
            # Emoji show as pictures: OpenMoji's face yellow appears in the
            # window (the bundled artwork and rasteriser work; the names
            # that stood in for them have no yellow).
            assert ps.count_colour(display, window, GRIN_YELLOW) == 0
            watcher.send({"type": "say", "text": "smiles " + "\U0001F600" * 12})
            deadline = time.monotonic() + 15
            while ps.count_colour(display, window, GRIN_YELLOW) < 12 * 20:
                assert time.monotonic() < deadline, "no emoji picture in the packaged client's window"
                time.sleep(0.05)
            ps.close_window(display, window)
            code = proc.wait(15)
        except BaseException:
            print("windows:", ps.window_names(display))
            raise
    finally:
        ps.stop(proc)
    assert code == 0, (tmp_path / "client.log").read_text()
    assert watcher.recv_type("left", timeout=10)["nick"] == "packed"
    # The packaged app made this computer's identity in its config directory (issue 11).
    made = os.path.join(os.environ["NATTER_HOME"], "config", "identity")
    assert stat.S_IMODE(os.stat(made).st_mode) == 0o600


PICTURE_SENT = (0x12, 0xC4, 0x6A)        # the picture the packaged client sends
PICTURE_SHOWN = (0xD0, 0x20, 0xB0)       # the one it must show inline


def test_the_bundle_has_pillow_and_the_tkdnd_package(unpacked):
    internal = unpacked / ps.APP.client_name / "_internal"
    assert list((internal / "PIL").glob("_imaging*.so")), "Pillow's C core is not in the bundle"
    machine = {"x86_64": "linux-x64", "aarch64": "linux-arm64"}[os.uname().machine]
    tkdnd = internal / "tkinterdnd2" / "tkdnd" / machine
    assert list(tkdnd.glob("libtkdnd*.so")) and (tkdnd / "pkgIndex.tcl").exists()


def test_packaged_client_sends_a_picture_and_shows_one_inline(unpacked, display, make_server, tmp_path):
    """Pillow works packaged: the client sends a picture with a thumbnail it
    made (/send typed in its window), and shows one sent to it inline."""
    import base64
    import io
    from PIL import Image
    from chatgui.app import images
    from tests import filetools
    from tests.servertools import hello_v2
    srv = make_server(rate_limit=0, upload_rate=0)
    watcher = LineClient(srv.port)
    session = hello_v2(watcher, "watcher")["welcome"]["session"]
    sent = tmp_path / "sent.png"
    Image.new("RGB", (400, 300), PICTURE_SENT).save(sent)
    proc = _start_client(unpacked, display, tmp_path,
                         "--host", "127.0.0.1", "--port", str(srv.port), "--nick", "packed")
    try:
        assert watcher.recv_type("joined", timeout=30)["nick"] == "packed"
        window = ps.wait_for_window(display, "^packed @ ", timeout=20)
        ps.type_into(display, window, f"/send {sent}")
        m = _file_message(watcher)
        assert m["from"] == "packed" and m["file"]["name"] == "sent.png" and m["file"]["mime"] == "image/png"
        thumb = Image.open(io.BytesIO(base64.b64decode(m["file"]["thumb"])))
        assert thumb.format == "PNG" and thumb.convert("RGB").getpixel((5, 5)) == PICTURE_SENT
        head, body = filetools.get(srv.port, m["file"]["id"], session)
        assert head["type"] == "blob" and body == sent.read_bytes()
        shown = tmp_path / "shown.png"
        Image.new("RGB", (300, 200), PICTURE_SHOWN).save(shown)
        data = shown.read_bytes()
        ready = filetools.offer(watcher, data, "shown.png", mime="image/png",
                                thumb=images.make_thumb(str(shown)))
        assert filetools.put(srv.port, ready, data)["type"] == "put_ok"
        deadline = time.monotonic() + 20
        while ps.count_colour(display, window, PICTURE_SHOWN) < 200 * 100:
            assert time.monotonic() < deadline, "the picture is not inline in the packaged window"
            time.sleep(0.1)
        ps.close_window(display, window)
        code = proc.wait(15)
    finally:
        ps.stop(proc)
        watcher.close()
    assert code == 0, (tmp_path / "client.log").read_text()


def _file_message(client: LineClient, timeout: float = 60) -> dict:
    while True:
        f = client.recv(timeout)
        if f["type"] == "message" and f.get("file"):
            return f


def test_packaged_client_hosts_a_room_and_quits_on_ctrl_q(unpacked, display, tmp_path):
    """"Host a room on this computer" works packaged: the server code is in
    the bundle. A client of the test's own joins that room."""
    port = ps.free_port()
    proc = _start_client(unpacked, display, tmp_path, "--host-room", "--port", str(port), "--nick", "hoster")
    guest = None
    try:
        guest = ps.connect_when_listening(port, timeout=30)
        welcome = guest.hello("guest")
        users = [u if isinstance(u, str) else u.get("nick") for u in welcome["users"]]
        if "hoster" not in users:       # the room is up before its own client joins it
            assert guest.recv_type("joined", timeout=20)["nick"] == "hoster"
        window = ps.wait_for_window(display, ps.APP.name, timeout=20)
        ps.xdotool(display, "windowfocus", "--sync", str(window))
        ps.xdotool(display, "key", "ctrl+q")
        code = proc.wait(15)
        assert guest.closed_by_server(timeout=10)     # the hosted room went with the window
    finally:
        if guest:
            guest.close()
        ps.stop(proc)
    assert code == 0, (tmp_path / "client.log").read_text()


def test_packaged_client_scan_finds_the_packaged_server_on_a_lan(unpacked, tmp_path):
    """Inside a throwaway LAN of network namespaces (tests/netlab.py): the
    packaged server on one "computer", the packaged client's --scan --json
    on another."""
    from tests import netlab
    server = str(unpacked / ps.APP.server_name / ps.APP.server_name)
    client = str(unpacked / ps.APP.client_name / ps.APP.client_name)
    with netlab.lab(str(tmp_path), {"a": "198.51.100.1/24", "b": "198.51.100.2/24"}) as lan:
        _proc, port = lan.server("a", "--host", "0.0.0.0", "--name", "Packaged room", exe=[server])
        found = lan.scan("b", exe=[client])
    assert [(f["name"], f["host"], f["port"], f["tls"]) for f in found] == \
        [("Packaged room", "198.51.100.1", port, False)]


def test_desktop_entry_opens_the_connect_window(unpacked, display, tmp_path):
    """What a double-click on the unpacked natter.desktop runs: the client
    with no arguments shows its connect window; closing it exits with 0."""
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(unpacked / "natter.desktop")
    argv = ps.desktop_exec_argv(entry["Desktop Entry"]["Exec"], str(unpacked / "natter.desktop"))
    log = open(tmp_path / "client.log", "wb")
    proc = subprocess.Popen(argv, cwd=tmp_path, env=dict(os.environ, DISPLAY=display), stdin=subprocess.DEVNULL,
                            stdout=log, stderr=subprocess.STDOUT)
    log.close()
    try:
        window = ps.wait_for_window(display, ps.APP.name, timeout=20)
        ps.close_window(display, window)
        code = proc.wait(15)
    finally:
        ps.stop(proc)
    assert code == 0, (tmp_path / "client.log").read_text()


def test_the_readme_names_paths_the_tarball_really_has(unpacked):
    """Every path the README gives inside the unpacked tarball
    (``Natter-VERSION-linux-ARCH/...``) exists in the real one."""
    import re
    readme = open(os.path.join(ps.ROOT, "README.md"), encoding="utf-8").read()
    top = unpacked.name
    named = set(re.findall(r"Natter-VERSION-linux-ARCH/([\w./-]+)", readme))
    assert f"{ps.APP.client_name}/{ps.APP.client_name}" in named, named
    for rel in named:
        assert (unpacked / rel).exists(), f"README names {top}/{rel}, which the tarball does not have"
