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
# given extras (comma-separated). Reinstalled only when pyproject.toml
# changes or an extra is missing: a venv made with "test,package" also
# serves "" and "package", so the scripts do not undo each other's work.
ensure_venv() {
    local want=$1 venv="$ROOT/.venv" sum have stamp extra ok
    sum=$(cksum <"$ROOT/pyproject.toml" | cut -d' ' -f1)
    if [ ! -x "$venv/bin/python" ]; then
        "$PY" -m venv "$venv"
    fi
    have=
    for stamp in "$venv"/.natter-"$sum"-*; do
        [ -f "$stamp" ] && have=${stamp##*/.natter-"$sum"-}
    done
    ok=1
    for extra in ${want//,/ }; do
        case ",${have//_/,}," in *",$extra,"*) ;; *) ok=0 ;; esac
    done
    [ -f "$venv/.natter-$sum-${have}" ] || ok=0
    if [ $ok = 0 ]; then
        # Keep what was there and add what is asked for.
        local all
        all=$(printf '%s\n' ${have//_/ } ${want//,/ } | sort -u | paste -sd, -)
        "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
        "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT${all:+[$all]}"
        rm -f "$venv"/.natter-*
        touch "$venv/.natter-$sum-${all//,/_}"
    fi
    VENV_PY="$venv/bin/python"
}
