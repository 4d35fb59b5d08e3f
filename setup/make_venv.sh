#!/usr/bin/env bash
# Build the course environment: make_venv.sh PYTHON VENV [--no-editable]
#
# Installs requirements.lock (the universal lock, Python 3.11-3.13), torch at the version requirements.txt pins, and
# the helper package: editable (a link to this checkout), or with --no-editable a copy (a class server's shared
# environment, which must not read from the instructor's checkout). Uses uv (the version requirements-dev.txt pins, from PyPI, kept in the user's cache so a second clone starts in seconds);
# falls back to venv + pip where uv can't be had. Environment:
#   TORCH_FIND_LINKS  folders of wheels to take torch from (default: PIP_FIND_LINKS, which uv does not read itself);
#                     empty to take torch from the index.
set -euo pipefail
python=${1:?usage: make_venv.sh PYTHON VENV}
venv=${2:?usage: make_venv.sh PYTHON VENV [--no-editable]}
helper=(-e .)
if [ "${3:-}" = --no-editable ]; then
  # built from a copy: setuptools writes build/ and *.egg-info beside the sources, which must stay out of the
  # checkout (it may be the instructor's, and this may run as root)
  src=$(mktemp -d)
  trap 'rm -rf "$src"' EXIT
  cp -r pyproject.toml README.md attention_steps "$src/"
  helper=("$src")
fi
cd "$(dirname "$0")/.."

uv_version=$(sed -n 's/^uv==//p' requirements-dev.txt)
torch_pin=$(grep -E '^torch==' requirements.txt)
torch_links=()
for d in ${TORCH_FIND_LINKS-${PIP_FIND_LINKS:-}}; do torch_links+=(--find-links "$d"); done

py_version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "The course needs Python 3.11 or newer; $python is $py_version." >&2
  exit 1
fi

# Debian and Ubuntu ship venv's ensurepip apart from Python: install pythonX.Y-venv when it is missing.
ensure_venv_module() {
  "$python" -c 'import ensurepip' 2>/dev/null && return 0
  if command -v apt-get >/dev/null; then
    sudo=$([ "$(id -u)" = 0 ] || echo sudo)
    echo "$python cannot create virtual environments: installing Debian's python$py_version-venv" >&2
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "python$py_version-venv"
  else
    echo "$python cannot create virtual environments (no ensurepip): install its venv module" >&2
    return 1
  fi
}

# uv itself: on PATH at the right version, or bootstrapped once into the user's cache with pip.
find_uv() {
  if command -v uv >/dev/null && [ "$(uv --version | cut -d' ' -f2)" = "$uv_version" ]; then
    command -v uv; return 0
  fi
  local home=${XDG_CACHE_HOME:-$HOME/.cache}/attention-steps/uv-$uv_version
  if [ ! -x "$home/bin/uv" ]; then
    ensure_venv_module || return 1
    rm -rf "$home"
    "$python" -m venv "$home" >&2 && "$home/bin/python" -m pip install --quiet --disable-pip-version-check \
      "uv==$uv_version" >&2 || { rm -rf "$home"; return 1; }
  fi
  echo "$home/bin/uv"
}

if uv=$(find_uv); then
  "$uv" venv --quiet --seed --allow-existing --python "$python" "$venv"
  # --compile-bytecode: what pip does by default. Grading kernels see the environment read-only (the sandbox) and
  # can't cache bytecode themselves: without it every one of them compiles torch and Jupyter anew (5 s or so each).
  "$uv" pip install --quiet --compile-bytecode --python "$venv/bin/python" -r requirements.lock "$torch_pin" \
    "${torch_links[@]}"
  "$uv" pip install --quiet --python "$venv/bin/python" --no-deps "${helper[@]}"
else
  echo "uv could not be installed; building the environment with pip instead (slower)" >&2
  ensure_venv_module
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet -r requirements.lock "$torch_pin"
  "$venv/bin/python" -m pip install --quiet --no-deps "${helper[@]}"
fi
