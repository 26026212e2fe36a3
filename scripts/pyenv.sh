#!/usr/bin/env bash
# Prints the path of a Python interpreter that has the packages listed in the given requirement
# files, creating a virtual environment for them when needed (default: target/pyenv-<name>).
#   PY=$(scripts/pyenv.sh scripts/requirements-test.txt)
# Set BALLAST_PYTHON to use an interpreter you already have instead.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${BALLAST_PYTHON:-}" ]; then
  echo "$BALLAST_PYTHON"
  exit 0
fi
[ $# -ge 1 ] || { echo "usage: $0 REQUIREMENTS.txt..." >&2; exit 2; }
name=$(basename "$1" .txt)
env_dir=${BALLAST_PYENV:-$root/target/pyenv-$name}
stamp="$env_dir/.installed"
want=$(cat "$@" | sha256sum | cut -c1-16)
if [ ! -x "$env_dir/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setting up Python environment in $env_dir" >&2
  python3 -m venv "$env_dir" >&2
  reqs=()
  for f in "$@"; do reqs+=(-r "$f"); done
  "$env_dir/bin/python" -m pip install --quiet --disable-pip-version-check "${reqs[@]}" >&2
  echo "$want" > "$stamp"
fi
echo "$env_dir/bin/python"
