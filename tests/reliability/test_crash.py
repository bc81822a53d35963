"""Guarantee 3, crashes: SIGKILL the real server in the middle of a bulk import, an index
rebuild and a conference batch run; restart; nothing is half done and nothing is lost.

* bulk import: a 5,000-row upload (2,500 new demands, 2,500 updates of existing ones) killed
  at several points while the request is in flight. After the restart both halves are all
  there or both are absent; an acknowledged import is always all there.
* index rebuild: the database changed behind the saved index (rows written, deleted, the
  revision bumped from outside), the index folder deleted or its files corrupted; the server
  is killed while it rebuilds; after the restart /readyz is 200, a search finds the row written
  from outside and never the deleted one, and the index saved at the next shutdown holds
  exactly the database's ids.
* batch run: `techmatch conference --resume` after kills at several points of the ranking
  (checked through its checkpoint: no demand ranked twice, results equal to an uninterrupted
  run), and the service's conference job (`POST /api/conference/jobs`) killed mid-ranking,
  then resumed through the API.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from reliability_kit import (
    ADMIN,
    REPO,
    ServerProcess,
    capabilities_jsonl,
    db_connect,
    db_revision,
    demands_csv,
    index_disagreements,
    text_for,
    upload,
    write_figures,
)

IMPORT_ROWS = 5_000
CI_IMPORT_FRACTIONS = (0.15, 0.35, 0.55, 0.75, 0.95)


# -- bulk import ----------------------------------------------------------------------------------
def _marked(db: Path | str, prefix: str, marker: str) -> tuple[int, int]:
    """(rows whose id starts with `prefix`, BASE rows whose title carries `marker`)."""
    with db_connect(db) as conn:
        new = conn.execute("SELECT COUNT(*) FROM demands WHERE id LIKE ?", (prefix + "%",)).fetchone()[0]
        upd = conn.execute("SELECT COUNT(*) FROM demands WHERE id LIKE ? AND title LIKE ?",
                           ("BASE-%", marker + " %")).fetchone()[0]  # a literal % is not portable
    return new, upd


def _post_in_thread(url: str, data: bytes, name: str) -> dict:
    out: dict = {}

    def go() -> None:
        try:
            with httpx.Client(base_url=url, timeout=120) as c:
                out["response"] = upload(c, "demands", name, data)
        except httpx.HTTPError as exc:
            out["error"] = type(exc).__name__

    out["thread"] = threading.Thread(target=go, daemon=True)
    out["thread"].start()
    return out


def _import_run(tmp_path: Path, fractions: tuple[float, ...], name: str) -> None:
    half = IMPORT_ROWS // 2
    base = [f"BASE-{i:05d}" for i in range(half)]
    srv = ServerProcess(tmp_path / "srv").start()
    figures = {"attempts": 0, "kills_survived": 0, "in_flight_at_kill": 0, "outcome_all": 0, "outcome_none": 0,
               "acknowledged_then_killed": 0, "partial_loads": 0, "records_lost": 0, "rows_per_import": IMPORT_ROWS}
    try:
        srv.wait_ready()
        with httpx.Client(base_url=srv.url, timeout=120) as c:
            assert upload(c, "demands", "base.csv", demands_csv(base, "M0")).status_code == 200
            # a full, uninterrupted import of the same shape tells how long one takes
            ids = [f"T-{i:05d}" for i in range(half)] + base
            started = time.perf_counter()
            r = upload(c, "demands", "timing.csv", demands_csv(ids, "MT"))
            took = time.perf_counter() - started
            assert r.status_code == 200 and r.json()["created"] == half and r.json()["updated"] == half, r.text
        figures["uninterrupted_import_seconds"] = round(took, 2)
        for k, frac in enumerate(fractions, start=1):
            prefix, marker = f"K{k}-", f"M{k}"
            data = demands_csv([f"{prefix}{i:05d}" for i in range(half)] + base, marker)
            call = _post_in_thread(srv.url, data, f"crash-{k}.csv")
            time.sleep(frac * took)
            in_flight = "response" not in call and "error" not in call
            srv.kill()
            call["thread"].join(30)
            figures["attempts"] += 1
            figures["in_flight_at_kill"] += in_flight
            acked = "response" in call and call["response"].status_code == 200
            figures["acknowledged_then_killed"] += acked
            srv.start()
            srv.wait_ready()
            figures["kills_survived"] += 1
            new, upd = _marked(srv.db_path, prefix, marker)
            assert (new, upd) in ((0, 0), (half, half)), f"attempt {k}: partial import ({new} new, {upd} updated)"
            if acked:
                assert (new, upd) == (half, half), f"attempt {k}: acknowledged import lost"
            figures["outcome_all" if new else "outcome_none"] += 1
            with httpx.Client(base_url=srv.url, timeout=60) as c:
                probe = f"{prefix}{half // 2:05d}"
                hits = c.post("/api/demands/search", json={"text": f"编号 {probe}", "k": 5}, headers=ADMIN).json()
                found = [h["demand"]["id"] for h in hits["results"]]
                assert (probe in found) == bool(new), (probe, found[:5], new)
                ready = c.get("/readyz").json()
                assert ready["revision"] == ready["index_revision"] and ready["demands"] >= 2 * half
        assert figures["in_flight_at_kill"] >= len(fractions) - 2, figures  # the kills did land mid-request
        assert srv.stop() == 0
        assert index_disagreements(srv) == []
    finally:
        srv.stop()
        write_figures(name, {**figures, "inputs_tried": figures["attempts"]})


def test_bulk_import_killed_in_flight_is_all_or_none(tmp_path):
    _import_run(tmp_path, CI_IMPORT_FRACTIONS, "crash_import")


@pytest.mark.soak
def test_bulk_import_kill_soak(tmp_path):
    rnd = random.Random(7)
    _import_run(tmp_path, tuple(rnd.uniform(0.02, 1.1) for _ in range(30)), "crash_import_soak")


# -- index rebuild --------------------------------------------------------------------------------
def _outside_write(db: Path | str, round_no: int) -> tuple[str, str]:
    """Insert one demand and delete another straight into SQLite (another process's write),
    bumping the revision as the service does. Returns (inserted id, deleted id)."""
    new_id, gone = f"EXT-{round_no}", f"R-{round_no * 37:05d}"
    now = "2025-01-01 00:00:00.000000"
    with db_connect(db) as conn:
        conn.execute("INSERT INTO demands (id, title, text, industry, region, enterprise, contact, confidential, date, "
                     "language, extra, owner, published, created_at, updated_at) "
                     "VALUES (?, ?, ?, '', '', '', '', ?, '', '', '{}', '', ?, ?, ?)",
                     (new_id, f"外部写入 {new_id}", f"外部写入的需求 独有词 {new_id} 风电叶片除冰", False, True,
                      now, now))
        assert conn.execute("DELETE FROM demands WHERE id = ?", (gone,)).rowcount == 1
        conn.execute("UPDATE meta SET value = value + 1 WHERE key = ?", ("revision",))
    return new_id, gone


def _damage_index(srv: ServerProcess, how: str) -> None:
    """Damage the saved index. The corrupting kinds also stamp it with the database's current
    revision, so the server believes it and tries to load it (and must fall back to a rebuild)."""
    engine = srv.index_dir / "engine"
    stamp_path = srv.index_dir / "revision.json"
    if how == "delete":
        import shutil

        shutil.rmtree(srv.index_dir)
        return
    stamp = json.loads(stamp_path.read_text())
    if how == "garbage_meta":
        (engine / "engine.json").write_text("{not json")
        stamp["revision"] = db_revision(srv.db_path)
    elif how == "truncated_vectors":
        path = engine / "demands" / "vectors.npy"
        path.write_bytes(path.read_bytes()[:100])
        stamp["revision"] = db_revision(srv.db_path)
    elif how == "stamp_from_the_future":
        stamp["revision"] += 1000
    stamp_path.write_text(json.dumps(stamp))


# Where a start-up rebuilds the index. One process: in the background once it answers HTTP,
# until /readyz is 200. With `--workers N` (TECHMATCH_TEST_SERVER_WORKERS): in the supervisor,
# before any worker starts, between its "open http://" line and its "index ... starting the
# workers" line (service/cli.py); nothing answers HTTP meanwhile, so the log tells.
WORKERS = int(os.environ.get("TECHMATCH_TEST_SERVER_WORKERS") or 1)


def _this_start_log(srv: ServerProcess) -> str:
    return srv.log_text().rpartition(f"=== start {srv.starts} ===")[2]


def _rebuild_begins(srv: ServerProcess, timeout: float = 120) -> float:
    """Wait until this start begins rebuilding; returns when (time.monotonic)."""
    if WORKERS == 1:
        srv.wait_up(timeout)
        return time.monotonic()
    deadline = time.monotonic() + timeout
    while "techmatch: open http://" not in _this_start_log(srv):
        assert srv.proc.poll() is None, srv.log_tail()
        assert time.monotonic() < deadline, srv.log_tail()
        time.sleep(0.005)
    return time.monotonic()


def _rebuilt(srv: ServerProcess) -> bool:
    if WORKERS == 1:
        return httpx.get(srv.url + "/readyz", timeout=10).status_code == 200
    return "starting the workers" in _this_start_log(srv)


def _rebuild_ends(srv: ServerProcess, timeout: float = 120) -> float:
    deadline = time.monotonic() + timeout
    while not _rebuilt(srv):
        assert srv.proc.poll() is None, srv.log_tail()
        assert time.monotonic() < deadline, srv.log_tail()
        time.sleep(0.005)
    return time.monotonic()


def _rebuild_run(tmp_path: Path, rounds: list[tuple[str, float]], name: str) -> None:
    srv = ServerProcess(tmp_path / "srv").start()
    figures = {"rounds": 0, "kills_survived": 0, "killed_while_rebuilding": 0, "records_lost": 0,
               "deleted_records_seen": 0}
    try:
        srv.wait_ready()
        with httpx.Client(base_url=srv.url, timeout=120) as c:
            r = upload(c, "demands", "r.csv", demands_csv([f"R-{i:05d}" for i in range(2000)], "R"))
            assert r.status_code == 200, r.text
            r = upload(c, "capabilities", "c.jsonl", capabilities_jsonl([f"RC-{i:04d}" for i in range(300)]))
            assert r.status_code == 200, r.text
        assert srv.stop() == 0
        _damage_index(srv, "delete")
        srv.start()
        started = _rebuild_begins(srv)
        rebuild = _rebuild_ends(srv) - started  # a start-up that rebuilds the whole index
        figures["full_rebuild_seconds"] = round(rebuild, 2)
        srv.wait_ready()
        assert srv.stop() == 0
        for round_no, (how, frac) in enumerate(rounds, start=1):
            inserted, deleted = _outside_write(srv.db_path, round_no)
            _damage_index(srv, how)
            srv.start()
            started = _rebuild_begins(srv)
            time.sleep(max(0.0, started + frac * rebuild - time.monotonic()))
            still_building = not _rebuilt(srv)
            srv.kill()
            figures["killed_while_rebuilding"] += still_building
            srv.start()
            srv.wait_ready()
            figures["kills_survived"] += 1
            figures["rounds"] += 1
            with httpx.Client(base_url=srv.url, timeout=60) as c:
                ready = c.get("/readyz").json()
                assert ready["revision"] == ready["index_revision"]
                hits = c.post("/api/demands/search", json={"text": f"独有词 {inserted} 风电叶片除冰", "k": 1000},
                              headers=ADMIN).json()["results"]
                ids = [h["demand"]["id"] for h in hits]
                assert ids and ids[0] == inserted, (how, ids[:5])
                figures["deleted_records_seen"] += deleted in ids
                assert deleted not in ids
            assert srv.stop() == 0
            problems = index_disagreements(srv)
            assert problems == [], (how, problems)
        assert figures["killed_while_rebuilding"] >= 1, figures
    finally:
        srv.stop()
        write_figures(name, {**figures, "inputs_tried": figures["rounds"]})


def test_index_rebuild_killed_midway_recovers_and_agrees_with_the_database(tmp_path):
    rounds = [("outside_write", 0.3), ("delete", 0.6), ("garbage_meta", 0.2), ("truncated_vectors", 0.5)]
    _rebuild_run(tmp_path, rounds, "crash_rebuild")


@pytest.mark.soak
def test_index_rebuild_kill_soak(tmp_path):
    hows = ["outside_write", "delete", "garbage_meta", "truncated_vectors", "stamp_from_the_future"]
    rnd = random.Random(11)
    _rebuild_run(tmp_path, [(rnd.choice(hows), rnd.uniform(0.05, 1.2)) for _ in range(25)], "crash_rebuild_soak")


# -- conference batch run: the CLI ---------------------------------------------------------------
def _task(folder: Path, n_demands: int, n_caps: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "capabilities.jsonl", "w", encoding="utf-8") as fh:
        for i in range(n_caps):
            fh.write(json.dumps({"id": f"C{i:04d}", "partner_id": f"P{i % 40:03d}", "partner_name": f"单位{i % 40}",
                                 "title": text_for(i + 1, 3), "text": text_for(i + 2)}, ensure_ascii=False) + "\n")
    with open(folder / "demands.jsonl", "w", encoding="utf-8") as fh:
        for i in range(n_demands):
            fh.write(json.dumps({"id": f"D{i:04d}", "title": text_for(i + 9, 3), "text": text_for(i * 5),
                                 "enterprise": f"企业{i % 50}"}, ensure_ascii=False) + "\n")
    return folder


def _checkpoint_ids(path: Path) -> list[str]:
    """Demand ids of the complete lines of a ranking checkpoint (a torn last line is ignored)."""
    if not path.exists():
        return []
    raw = path.read_bytes()
    lines = raw.split(b"\n")[:-1] if not raw.endswith(b"\n") else raw.split(b"\n")
    out = []
    for line in lines[1:]:
        if line.strip():
            out.append(json.loads(line)["demand_id"])
    return out


def _conference_cmd(task: Path, out: Path, resume: bool) -> list[str]:
    return [sys.executable, "-m", "matcher.cli.commands", "conference", "--task", str(task), "--model", "fake", "--out",
            str(out), "--k", "5", "--chunk-size", "4", "--schedule-seconds", "2", *(["--resume"] if resume else [])]


def _batch_cli_run(tmp_path: Path, kill_at: list[int], name: str) -> None:
    from matcher.conference.run import rank_batch
    from matcher.io import load_task
    from matcher.retrieval.encoders import FakeEncoder
    from matcher.retrieval.engine import MatchEngine

    task = _task(tmp_path / "task", 400, 160)
    out = tmp_path / "out"
    ckpt = out / "ranking-checkpoint.jsonl"
    env = {**os.environ, "TECHMATCH_HOME": str(tmp_path / "home"), "PYTHONUNBUFFERED": "1"}
    figures = {"kills_survived": 0, "demands": 400, "re_ranked": 0, "records_lost": 0, "runs": 0}
    done_before: list[list[str]] = []
    try:
        for k, threshold in enumerate(kill_at):
            with open(tmp_path / "conference.log", "ab") as log:  # a file, not a pipe nobody drains
                proc = subprocess.Popen(_conference_cmd(task, out, resume=k > 0), cwd=REPO, env=env,
                                        stdout=log, stderr=log)
            figures["runs"] += 1
            deadline = time.monotonic() + 120
            while len(_checkpoint_ids(ckpt)) < threshold:
                assert proc.poll() is None, (tmp_path / "conference.log").read_text(errors="replace")[-2000:]
                assert time.monotonic() < deadline, "the ranking did not progress"
                time.sleep(0.02)
            proc.kill()
            proc.wait(30)
            figures["kills_survived"] += 1
            ids = _checkpoint_ids(ckpt)
            assert len(ids) == len(set(ids)), "a demand was ranked twice"
            done_before.append(ids)
        final = subprocess.run(_conference_cmd(task, out, resume=True), cwd=REPO, env=env, capture_output=True,
                               timeout=300)
        figures["runs"] += 1
        assert final.returncode == 0, final.stderr.decode(errors="replace")[-3000:]
        ids = _checkpoint_ids(ckpt)
        figures["re_ranked"] = len(ids) - len(set(ids))
        assert figures["re_ranked"] == 0, "a demand already in the checkpoint was ranked again"
        assert sorted(ids) == sorted(f"D{i:04d}" for i in range(400))
        for before in done_before:  # each resume kept what was done and appended after it
            assert ids[: len(before)] == before
        # the results equal an uninterrupted run
        loaded = load_task(task)
        engine = MatchEngine(FakeEncoder()).fit(loaded.capabilities, (), ())
        # (same chunks as the CLI, so the same float32 batches; scores compared to 1e-5 all the same)
        reference = rank_batch(lambda ds: engine.match_partners_batch(ds, k=5), loaded.demands, 5, chunk_size=4)
        stored = {json.loads(line)["demand_id"]: json.loads(line)["matches"]
                  for line in ckpt.read_text(encoding="utf-8").splitlines()[1:]}
        for did, matches in reference.items():
            assert [m["partner_id"] for m in stored[did]] == [m.partner_id for m in matches], did
            assert all(abs(a["score"] - b.score) < 1e-5 for a, b in zip(stored[did], matches)), did
        for produced in ("assignment.csv", "schedule.csv", "conference.xlsx"):
            assert (out / produced).exists(), produced
    finally:
        write_figures(name, {**figures, "kill_points_in_checkpoint_lines": kill_at, "inputs_tried": figures["runs"]})


def test_conference_cli_resumes_after_kills_without_ranking_twice(tmp_path):
    _batch_cli_run(tmp_path, [40, 160, 320], "crash_batch_cli")


@pytest.mark.soak
def test_conference_cli_kill_soak(tmp_path):
    _batch_cli_run(tmp_path, sorted(random.Random(5).sample(range(4, 396), 12)), "crash_batch_cli_soak")


# -- conference batch run: the service's job ------------------------------------------------------
def _has_route(url: str, method: str, path: str) -> bool:
    paths = httpx.get(url + "/openapi.json", timeout=30).json()["paths"]
    return method.lower() in paths.get(path, {})


def test_conference_job_killed_mid_ranking_resumes_through_the_api(tmp_path):
    srv = ServerProcess(tmp_path / "srv").start()
    figures = {"kills_survived": 0, "re_ranked": 0, "records_lost": 0, "demands": 1500}
    try:
        srv.wait_ready()
        if not _has_route(srv.url, "POST", "/api/conference/jobs"):
            pytest.skip("no conference job endpoints in this build")
        with httpx.Client(base_url=srv.url, timeout=120) as c:
            r = upload(c, "demands", "j.csv", demands_csv([f"J-{i:05d}" for i in range(1500)], "J"))
            assert r.status_code == 200, r.text
            assert upload(c, "capabilities", "c.jsonl", capabilities_jsonl([f"JC-{i:04d}" for i in range(300)])
                          ).status_code == 200
            r = c.post("/api/conference/jobs", headers=ADMIN,
                       json={"k": 5, "chunk_size": 2, "schedule_seconds": 2,
                             "demand_ids": [f"J-{i:05d}" for i in range(1500)]})
            assert r.status_code == 202, r.text
            job_id = r.json()["id"]
        ckpt = srv.jobs_dir / job_id / "ranking-checkpoint.jsonl"
        deadline = time.monotonic() + 120
        while len(_checkpoint_ids(ckpt)) < 200:
            assert time.monotonic() < deadline, f"the job did not progress: {ckpt}"
            time.sleep(0.02)
        srv.kill()
        figures["kills_survived"] += 1
        before = _checkpoint_ids(ckpt)
        assert 200 <= len(before) < 1500, len(before)
        srv.start()
        srv.wait_ready()
        with httpx.Client(base_url=srv.url, timeout=60) as c:
            job = c.get(f"/api/conference/jobs/{job_id}", headers=ADMIN).json()
            assert job["status"] == "interrupted", job["status"]
            assert c.post(f"/api/conference/jobs/{job_id}/resume", headers=ADMIN).status_code == 202
            deadline = time.monotonic() + 240
            while (job := c.get(f"/api/conference/jobs/{job_id}", headers=ADMIN).json())["status"] in ("queued",
                                                                                                       "running"):
                assert time.monotonic() < deadline, job
                time.sleep(0.3)
            assert job["status"] == "done", job
        ids = _checkpoint_ids(ckpt)
        figures["re_ranked"] = len(ids) - len(set(ids))
        assert figures["re_ranked"] == 0
        assert ids[: len(before)] == before and len(ids) == 1500
        figures["ranked_before_kill"] = len(before)
    finally:
        srv.stop()
        write_figures("crash_batch_api", {**figures, "inputs_tried": 1})
