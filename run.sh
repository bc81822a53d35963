#!/usr/bin/env bash
# techmatch: one command to set up and run.
#   bash run.sh          set up (first time), then start the service on the demo corpus
#   bash run.sh test     set up (first time), then run the whole test suite
# Set-up makes ./.venv, installs the CPU build of torch first from PyTorch's CPU wheel index
# (the default Linux wheel on PyPI pulls CUDA, gigabytes of it), then techmatch with its test
# extras. When that index cannot be reached (a machine with only a local or mirrored package
# index), it falls back to a plain `pip install torch==...` after a few seconds.
#   TECHMATCH_TORCH_INDEX=https://download.pytorch.org/whl/cu128 bash run.sh   a CUDA build instead
#   TECHMATCH_TORCH_INDEX=none bash run.sh                                    plain pip install only
# Nothing is downloaded at run time: models come from PyPI packages and load from disk.
set -euo pipefail
cd "$(dirname "$0")"

PY=${PYTHON:-python3}
VENV=${TECHMATCH_VENV:-.venv}
TORCH_VERSION=${TECHMATCH_TORCH_VERSION:-2.13.0}
TORCH_INDEX=${TECHMATCH_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}
TORCH_INDEX_TIMEOUT=${TECHMATCH_TORCH_INDEX_TIMEOUT:-5}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

# Whether a URL answers within the timeout (name resolution included, which urllib's own
# timeout does not bound, hence the thread).
reachable() {
  "$VENV/bin/python" -c '
import os, sys, threading, urllib.request
def probe():
    try:
        urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2])).close()
        os._exit(0)
    except Exception:
        os._exit(1)
threading.Thread(target=probe, daemon=True).start()
threading.Event().wait(float(sys.argv[2]) + 1)
os._exit(1)' "$1" "$TORCH_INDEX_TIMEOUT"
}

install_torch() {
  local pip=("$VENV/bin/python" -m pip install -q)
  if [ "$TORCH_INDEX" != "none" ]; then
    if reachable "$TORCH_INDEX"; then
      echo ">> installing torch $TORCH_VERSION from $TORCH_INDEX"
      if "${pip[@]}" --timeout 30 --index-url "$TORCH_INDEX" "torch==$TORCH_VERSION"; then
        return 0
      fi
      echo ">> installing torch from $TORCH_INDEX failed; trying the default package index" >&2
    else
      echo ">> $TORCH_INDEX is not reachable; installing torch $TORCH_VERSION from the default package index" >&2
    fi
  fi
  "${pip[@]}" "torch==$TORCH_VERSION"
}

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    echo ">> creating $VENV"
    "$PY" -m venv "$VENV"
  fi
  local stamp="$VENV/.techmatch-installed"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo ">> installing dependencies (first run takes a few minutes)"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    install_torch
    # the ray extra too: tests/distributed run the --ray path on a local cluster
    "$VENV/bin/python" -m pip install -q -e ".[test,ray]"
    touch "$stamp"
  fi
}

setup
case "${1:-serve}" in
  test)
    shift || true
    # Tests run on up to 4 worker processes (pytest-xdist, one per core); tests that share a
    # built model or the Ray cluster stay on one worker (tests/conftest.py).
    # TECHMATCH_TEST_PROCESSES=N sets how many; 1 runs them all in this one.
    cores=$(nproc 2>/dev/null || echo 1)
    workers=${TECHMATCH_TEST_PROCESSES:-$(( cores < 4 ? cores : 4 ))}
    if ! [[ "$workers" =~ ^[1-9][0-9]*$ ]]; then
      echo "run.sh: TECHMATCH_TEST_PROCESSES must be a whole number of processes, 1 or more (got '$workers')" >&2
      exit 2
    fi
    xdist=()
    if [ "$workers" -gt 1 ]; then xdist=(-n "$workers"); fi
    exec "$VENV/bin/python" -m pytest "${xdist[@]}" "$@"
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
