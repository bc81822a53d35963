"""The landscape's engine copies (`service.jobs.snapshots`): a process that exits or is killed
mid-build leaves no copy behind for long (regression: CI runs left `techmatch-landscape-*`
folders in /tmp, a whole index each at 42k capabilities)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from service.jobs.snapshots import PREFIX, UNNAMED_STALE_SECONDS, snapshot_folder, sweep

REPO = Path(__file__).resolve().parents[2]
# A build on a daemon thread that holds its copy open; the main thread says where and then waits
# for its end (exit or a kill).
BUILDER = textwrap.dedent("""
    import sys, threading, time
    from service.jobs.snapshots import snapshot_folder

    def build():
        with snapshot_folder(sys.argv[1]) as folder:
            (folder / "engine.npy").write_bytes(b"x" * 1000)
            print(folder, flush=True)
            time.sleep(600)

    threading.Thread(target=build, daemon=True).start()
    sys.stdin.readline()
""")


def _builder(root: Path) -> tuple[subprocess.Popen, Path]:
    proc = subprocess.Popen([sys.executable, "-c", BUILDER, str(root)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    folder = Path(proc.stdout.readline().strip())
    assert folder.parent == root and (folder / "engine.npy").exists()
    return proc, folder


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_process_that_exits_mid_build_removes_its_copy(tmp_path):
    proc, folder = _builder(tmp_path)
    proc.stdin.write("\n")
    proc.stdin.close()
    assert proc.wait(30) == 0
    assert not folder.exists()


def test_the_copy_of_a_killed_process_is_swept_by_the_next_build(tmp_path):
    proc, folder = _builder(tmp_path)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert folder.exists()  # nothing runs in a killed process
    with snapshot_folder(tmp_path) as mine:
        assert not folder.exists() and mine.exists()
    assert not mine.exists() and list(tmp_path.iterdir()) == []


def test_a_sweep_keeps_the_copies_of_running_processes(tmp_path):
    proc, theirs = _builder(tmp_path)
    try:
        ours = tmp_path / f"{PREFIX}{os.getpid()}-abc"
        gone = tmp_path / f"{PREFIX}{_dead_pid()}-abc"
        for p in (ours, gone):
            p.mkdir()
        assert sweep(tmp_path) == [gone]
        assert ours.exists() and theirs.exists()
    finally:
        proc.kill()
        proc.wait(30)


def test_copies_named_before_pids_are_swept_once_a_day_old(tmp_path):
    old, fresh = tmp_path / f"{PREFIX}73ga7gk_", tmp_path / f"{PREFIX}i5n2onqa"
    for p in (old, fresh):
        p.mkdir()
    now = time.time()
    os.utime(old, (now - UNNAMED_STALE_SECONDS - 60, now - UNNAMED_STALE_SECONDS - 60))
    assert sweep(tmp_path, now=now) == [old]
    assert fresh.exists()


def test_a_sweep_leaves_other_folders_alone(tmp_path):
    (tmp_path / "techmatch-landscapes").mkdir()
    (tmp_path / "other-123-x").mkdir()
    assert sweep(tmp_path) == []
    assert len(list(tmp_path.iterdir())) == 2
