#!/usr/bin/env bash
# Open the Natter client (it can host a room on this computer too).
# Any arguments go to the client, e.g. --host H --port P --nick N, or --cli.
. "$(dirname "$0")/_env.sh"
ensure_system "py:venv:python3-venv" "py:ensurepip:python3-venv" "py:tkinter:python3-tk"
ensure_venv ""
cd "$ROOT"
exec "$VENV_PY" -m chatgui "$@"
