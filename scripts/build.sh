#!/usr/bin/env bash
# Build the double-clickable executables with PyInstaller into dist/:
#   dist/Natter/        the client (windowed; it can host a room too)
#   dist/NatterServer/  the server (console)
# and on Linux dist/Natter-VERSION-linux-ARCH.tar.gz (both folders, a .desktop
# entry, the icon, install.sh). Names and version come from pyproject.toml.
# Options: --clean (throw away PyInstaller's cache in build/ first).
# Windows and macOS: see docs/packaging.md. NATTER_BUILD_EXTRAS picks the
# .venv extras (scripts/test.sh passes "test,package" so the two scripts
# share one .venv without reinstalling it back and forth).
. "$(dirname "$0")/_env.sh"

clean=
for arg in "$@"; do
    case $arg in
        --clean) clean=--clean ;;
        *) echo "usage: $0 [--clean]" >&2; exit 2 ;;
    esac
done

os=$(uname -s)
if [ "$os" = Linux ]; then
    ensure_system "py:venv:python3-venv" "py:ensurepip:python3-venv" "py:tkinter:python3-tk" \
                  "bin:objdump:binutils" "bin:strip:binutils"
    # PyInstaller bundles the shared libpython: Debian's python3 keeps it in
    # a package of its own (pyenv and python.org builds have it already).
    if ! "$PY" - <<'EOF'
import os, sys, sysconfig
name = sysconfig.get_config_var("INSTSONAME") or ""
dirs = [sysconfig.get_config_var("LIBDIR") or "", "/usr/lib", "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu", "/lib/x86_64-linux-gnu"]
sys.exit(0 if name and any(os.path.exists(os.path.join(d, name)) for d in dirs) else 1)
EOF
    then
        ensure_system "py:natter_libpython_missing:libpython$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    fi
fi
ensure_venv "${NATTER_BUILD_EXTRAS:-package}"
cd "$ROOT"

start=${EPOCHREALTIME:-$(date +%s)}   # macOS bash 3.2 has no EPOCHREALTIME
info=$("$VENV_PY" -c 'import sys; sys.path.insert(0, "packaging"); import natter_specinfo as i
a = i.load(); print(a.name, a.version, a.client_name, a.server_name)')
read -r APP VERSION CLIENT SERVER <<<"$info"

# The icon files are generated, committed and checked by the tests; make
# them only when missing (e.g. someone deleted packaging/icons/).
[ -f packaging/icons/natter.ico ] || "$VENV_PY" packaging/make_icon.py

rm -f dist/BUILD-INFO.txt
for spec in server client; do
    echo "Building the $spec ..." >&2
    "$VENV_PY" -m PyInstaller --noconfirm $clean --log-level WARN \
        --distpath dist --workpath build/pyinstaller "packaging/natter_$spec.spec"
done

made=("dist/$CLIENT/" "dist/$SERVER/")
[ "$os" = Darwin ] && made+=("dist/$APP.app")
if [ "$os" = Linux ]; then
    arch=$(uname -m)
    top="$APP-$VERSION-linux-$arch"
    stage=build/linux
    rm -rf "$stage" && mkdir -p "$stage"
    for f in natter.desktop install.sh README.txt; do
        sed -e "s|@APP@|$APP|g" -e "s|@SERVER@|$SERVER|g" -e "s|@VERSION@|$VERSION|g" -e "s|@ARCH@|$arch|g" \
            "packaging/linux/$f" >"$stage/$f"
    done
    chmod 755 "$stage/install.sh" "$stage/natter.desktop"
    cp packaging/icons/natter.png "$stage/natter.png"
    tarball="dist/$top.tar.gz"
    # Both folders straight from dist/ and the extras from the stage, all
    # under one top folder; owner and order fixed so the listing is stable.
    tar --create --gzip --file "$tarball" --owner=0 --group=0 --numeric-owner --sort=name \
        --transform "s,^\./,,;s,^,$top/," \
        -C dist "$CLIENT" "$SERVER" -C "$ROOT/$stage" natter.desktop install.sh README.txt natter.png
    made+=("$tarball")
fi

secs=$(awk "BEGIN { printf \"%.1f\", ${EPOCHREALTIME:-$(date +%s)} - $start }")
{
    echo "app: $APP $VERSION"
    echo "commit: $(git describe --always --dirty 2>/dev/null || echo unknown)"
    echo "python: $("$VENV_PY" -c 'import sys; print(sys.version.split()[0])')"
    echo "pyinstaller: $("$VENV_PY" -m PyInstaller --version)"
    echo "platform: $os $(uname -m)"
    echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) in ${secs}s"
    for m in "${made[@]}"; do echo "made: $m"; done
} >dist/BUILD-INFO.txt
du -sh "${made[@]}" >&2
echo "Built in ${secs}s; see dist/BUILD-INFO.txt" >&2
