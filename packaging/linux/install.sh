#!/bin/sh
# Put @APP@ in this user's applications menu, with its icon (no root needed).
# Run it from the unpacked folder and keep that folder where it is:
# the menu entry points into it. `./install.sh --uninstall` takes it out.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data=${XDG_DATA_HOME:-$HOME/.local/share}
apps=$data/applications
icons=$data/icons/hicolor/256x256/apps
if [ "${1:-}" = --uninstall ]; then
    rm -f "$apps/natter.desktop" "$icons/natter.png"
    echo "@APP@ removed from the menu (this folder is left alone)."
    exit 0
fi
case $here in
    *[\"\`\$\\%]*) echo "Move this folder to a path without \" \` \$ \\ or %, then run me again." >&2; exit 1 ;;
esac
mkdir -p "$apps" "$icons"
cp "$here/natter.png" "$icons/natter.png"
sed -e "s|^Exec=.*|Exec=\"$here/@APP@/@APP@\"|" \
    -e "s|^Icon=.*|Icon=$icons/natter.png|" \
    -e "/^# /d" "$here/natter.desktop" >"$apps/natter.desktop"
chmod 755 "$apps/natter.desktop"
command -v update-desktop-database >/dev/null && update-desktop-database "$apps" 2>/dev/null || true
echo "@APP@ is in your applications menu now ($apps/natter.desktop)."
