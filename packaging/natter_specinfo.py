"""What both PyInstaller specs share: paths, names and versions.

Every path is derived from this file's location (the repo's ``packaging/``
folder), so the specs run from any working directory, and every name comes
from ``pyproject.toml``: ``[project] version`` and ``[tool.natter]
app-name`` / ``bundle-id``. Imported by the specs (PyInstaller runs them with
``SPECPATH`` set) and by the tests; standard library only.
"""
from __future__ import annotations

import os
import re
import sys
import tomllib
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ICONS = os.path.join(HERE, "icons")


@dataclass(frozen=True)
class AppInfo:
    name: str          # "Natter": client executable, folder and .app name
    version: str       # "0.1.0"
    bundle_id: str     # "org.natter.Natter" (macOS CFBundleIdentifier)
    description: str

    @property
    def client_name(self) -> str:
        return self.name

    @property
    def server_name(self) -> str:
        return self.name + "Server"

    @property
    def server_bundle_id(self) -> str:
        return self.bundle_id + ".server"

    def version_tuple(self) -> tuple[int, int, int, int]:
        """The first four numbers of the version, for Windows' FILEVERSION."""
        nums = [int(n) for n in re.findall(r"\d+", self.version)[:4]]
        return tuple(nums + [0] * (4 - len(nums)))  # type: ignore[return-value]


def load(pyproject: str | None = None) -> AppInfo:
    with open(pyproject or os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        data = tomllib.load(f)
    project, natter = data["project"], data["tool"]["natter"]
    return AppInfo(name=natter["app-name"], version=project["version"],
                   bundle_id=natter["bundle-id"], description=project.get("description", ""))


def icon_for_platform(platform: str = sys.platform) -> str | None:
    """The icon file PyInstaller embeds: .ico on Windows, .icns on macOS.

    Linux executables carry no icon; the tarball's .desktop entry points at
    ``icons/natter.png`` instead, so None here.
    """
    if platform == "win32":
        return os.path.join(ICONS, "natter.ico")
    if platform == "darwin":
        return os.path.join(ICONS, "natter.icns")
    return None


def windows_version_file(info: AppInfo, exe_name: str, description: str, workdir: str) -> str:
    """Write a VSVersionInfo file (the Properties > Details tab) and return its path.

    Plain text that PyInstaller evaluates on Windows; writing it needs no
    Windows-only module, so it is also exercised by the tests on Linux.
    """
    v = info.version_tuple()
    text = f"""VSVersionInfo(
  ffi=FixedFileInfo(filevers={v}, prodvers={v}, mask=0x3f, flags=0x0, OS=0x40004,
                    fileType=0x1, subtype=0x0, date=(0, 0)),
  kids=[
    StringFileInfo([StringTable('040904B0', [
      StringStruct('CompanyName', {info.name!r}),
      StringStruct('FileDescription', {description!r}),
      StringStruct('FileVersion', {info.version!r}),
      StringStruct('InternalName', {exe_name!r}),
      StringStruct('OriginalFilename', {exe_name + '.exe'!r}),
      StringStruct('ProductName', {info.name!r}),
      StringStruct('ProductVersion', {info.version!r})])]),
    VarFileInfo([VarStruct('Translation', [1033, 1200])])
  ]
)
"""
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, f"{exe_name}-version.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path
