"""run.sh installs torch from PyTorch's CPU wheel index, and falls back quickly to the plain
install when that index is unreachable (issue 13.8). pip and techmatch are stubs here."""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

STUB_PYTHON = """#!/usr/bin/env bash
if [ "$1" = "-c" ]; then exec "{python}" "$@"; fi
echo "$*" >> "{log}"
if [ -n "$STUB_FAIL_INDEX" ] && [[ "$*" == *--index-url* ]]; then exit 1; fi
exit 0
"""


@pytest.fixture
def fake_venv(tmp_path):
    if shutil.which("bash") is None:
        pytest.skip("bash is needed")
    log = tmp_path / "pip.log"
    bin_ = tmp_path / "venv" / "bin"
    bin_.mkdir(parents=True)
    (bin_ / "python").write_text(STUB_PYTHON.format(python=sys.executable, log=log))
    (bin_ / "techmatch").write_text("#!/usr/bin/env bash\nexit 0\n")
    for f in bin_.iterdir():
        f.chmod(0o755)
    return tmp_path / "venv", log


def run_setup(venv: Path, **env) -> tuple[float, list[str], str]:
    start = time.monotonic()
    proc = subprocess.run(["bash", str(REPO / "run.sh"), "--version"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TECHMATCH_VENV": str(venv), **env})
    assert proc.returncode == 0, proc.stderr
    log = (venv.parent / "pip.log").read_text().splitlines()
    return time.monotonic() - start, [line for line in log if "torch" in line], proc.stderr


def test_an_unreachable_index_falls_back_to_the_plain_install_quickly(fake_venv):
    venv, _ = fake_venv
    took, torch, err = run_setup(venv, TECHMATCH_TORCH_INDEX="http://192.0.2.1:9/whl/cpu",
                                 TECHMATCH_TORCH_INDEX_TIMEOUT="2")
    assert torch == ["-m pip install -q torch==2.13.0"]
    assert "not reachable" in err and took < 30


def test_the_cpu_index_is_used_when_it_answers_and_a_failure_there_falls_back(fake_venv, tmp_path):
    venv, log = fake_venv
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        _, torch, _ = run_setup(venv, TECHMATCH_TORCH_INDEX=url)
        assert torch == [f"-m pip install -q --timeout 30 --index-url {url} torch==2.13.0"]
        log.unlink()
        (venv / ".techmatch-installed").unlink()
        _, torch, err = run_setup(venv, TECHMATCH_TORCH_INDEX=url, STUB_FAIL_INDEX="1")
        assert torch[-1] == "-m pip install -q torch==2.13.0" and "failed" in err
    finally:
        server.shutdown()


def test_the_default_index_is_pytorchs_cpu_wheels():
    text = (REPO / "run.sh").read_text()
    assert "TORCH_INDEX=${TECHMATCH_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}" in text
