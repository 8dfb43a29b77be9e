#!/usr/bin/env bash
# Run the whole test suite: protocol, server, client logic, the real Tk
# window on a virtual display the suite starts itself, and the packaged
# executables. Arguments go to pytest (e.g. -k protocol, -m "not packaging").
. "$(dirname "$0")/_env.sh"
ensure_system "py:venv:python3-venv" "py:ensurepip:python3-venv" "py:tkinter:python3-tk" \
              "bin:Xvfb:xvfb" "bin:xdotool:xdotool" "bin:objdump:binutils" \
              "bin:ip:iproute2" "bin:bridge:iproute2" \
              "bin:weechat-headless:weechat-headless" "bin:irssi:irssi" "bin:tmux:tmux" \
              "bin:xclip:xclip" "bin:import:imagemagick" \
              "bin:redis-server:redis-server"
ensure_venv "test,package,redis"
cd "$ROOT"
exec "$VENV_PY" -m pytest "$@"
