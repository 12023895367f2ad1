# Shared by scripts/run and scripts/test: find Python 3.12+, create .venv, install the project.
# Sourced, not executed. Installs only when pyproject.toml changed since the last install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

works() {  # a candidate counts only if it runs and is 3.12 or newer (pyenv shims may not run)
  "$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1
}

find_python() {
  local candidate root="${PYENV_ROOT:-$HOME/.pyenv}"
  command -v pyenv >/dev/null 2>&1 && root="$(pyenv root)"
  for candidate in "$(command -v python3.12 || true)" "$(command -v python3.13 || true)" \
      "$root"/versions/3.12*/bin/python3.12 "$root"/versions/3.13*/bin/python3.13; do
    if [ -n "$candidate" ] && [ -x "$candidate" ] && works "$candidate"; then
      echo "$candidate"; return 0
    fi
  done
  return 1
}

setup_venv() {  # $1: the extras to install, e.g. "" or "[dev]"
  local extras="${1:-}"
  if [ ! -x .venv/bin/python ]; then
    local python
    if ! python="$(find_python)"; then
      echo "Tollhouse needs Python 3.12 or newer: no python3.12/python3.13 on PATH or under pyenv." >&2
      echo "Install it (e.g. 'pyenv install 3.12') and run this again." >&2
      exit 1
    fi
    echo "creating .venv with $python" >&2
    "$python" -m venv .venv
  fi
  local stamp=".venv/.tollhouse-installed${extras}" dev=".venv/.tollhouse-installed[dev]"
  # An install with the dev tools includes everything scripts/run needs.
  if [ -z "$extras" ] && [ -f "$dev" ] && [ ! pyproject.toml -nt "$dev" ]; then
    return 0
  fi
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "installing tollhouse${extras} into .venv" >&2
    .venv/bin/python -m pip install --quiet --upgrade pip >&2
    .venv/bin/python -m pip install --quiet -e ".${extras}" >&2
    touch "$stamp"
  fi
}
