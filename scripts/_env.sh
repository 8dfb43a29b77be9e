# Shared by run.sh, test.sh and build.sh: make sure the system has what a
# fresh Debian/Ubuntu lacks, then create or reuse the project's .venv.
# Usage: . scripts/_env.sh; ensure_system PKG...; ensure_venv EXTRAS
set -eu
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-python3}

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "Need root to run: $*" >&2; return 1; fi
}

# ensure_system CMD_OR_MODULE:PACKAGE ...  e.g. "py:tkinter:python3-tk" "bin:Xvfb:xvfb"
ensure_system() {
    local missing=()
    for spec in "$@"; do
        IFS=: read -r kind name pkg <<<"$spec"
        case $kind in
            py) "$PY" -c "import $name" >/dev/null 2>&1 || missing+=("$pkg") ;;
            bin) command -v "$name" >/dev/null 2>&1 || missing+=("$pkg") ;;
        esac
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if ! command -v apt-get >/dev/null; then
        echo "Please install: ${missing[*]} (no apt-get here)" >&2; return 1
    fi
    echo "Installing system packages: ${missing[*]}" >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 install -y -qq "${missing[@]}" >/dev/null \
      || { as_root apt-get -o DPkg::Lock::Timeout=120 update -qq && \
           as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 install -y -qq "${missing[@]}" >/dev/null; }
}

# ensure_venv EXTRAS: .venv with the project installed (editable) and the
# given extras; redone only when pyproject.toml changes.
ensure_venv() {
    local extras=$1 venv="$ROOT/.venv" stamp
    stamp="$venv/.natter-$(cksum <"$ROOT/pyproject.toml" | cut -d' ' -f1)-${extras//,/_}"
    if [ ! -x "$venv/bin/python" ]; then
        "$PY" -m venv "$venv"
    fi
    if [ ! -f "$stamp" ]; then
        "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
        "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT${extras:+[$extras]}"
        rm -f "$venv"/.natter-*
        touch "$stamp"
    fi
    VENV_PY="$venv/bin/python"
}
