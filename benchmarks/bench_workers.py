"""Throughput and latency of `techmatch serve --workers N` (N = 1, 2, 4) on one database.

1. writes a fresh SQLite database (or uses --db, e.g. a PostgreSQL URL) holding C synthetic
   capabilities of C/20 partners and 2,000 demands, with the service's own storage functions;
2. for each N, starts `techmatch serve --workers N --model M`, waits for /readyz (the first
   start builds and saves the index once; later starts load it), then for --seconds runs
   --clients threads, each with its own keep-alive connection, sending a mix of
   * `POST /api/demands/search` with a short free text (70 %),
   * `GET /api/demands?q=...` (20 %),
   * `POST /api/demands` followed at once by a search for the new demand through a new
     connection (10 %: any worker may answer; a miss is counted);
3. prints requests/s and p50/p99 per kind, and the misses (a write not found by the next read).

    python benchmarks/bench_workers.py                          # 42,461 capabilities, fake model
    python benchmarks/bench_workers.py --capabilities 5000 --seconds 20
    python benchmarks/bench_workers.py --model minilm          # a real model: query embedding dominates
    python benchmarks/bench_workers.py --smoke                  # 1 and 2 workers, a few requests (CI)

Needs nothing from ../shared.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import common  # noqa: E402
import httpx  # noqa: E402
from common import pct, print_table  # noqa: E402

WORDS = ("低温 涂层 附着力 玉米 发酵 乳酸 冷链 保鲜 特种钢 冶炼 夹杂物 风电 叶片 除冰 轴承 铸造 焊接 检测 传感器 农机 "
         "大豆 育种 马铃薯 淀粉 光伏 积雪 运维 机器人 数控 机床 coating bearing sensor drone battery").split()
ADMIN = "bench-workers-admin-token"


def text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def build_database(url: str, n_caps: int, n_dems: int) -> None:
    from matcher.records import Capability, Demand, Partner
    from service.storage import store
    from service.storage.db import capabilities, demands, init_db, make_engine, partners

    rng = random.Random(7)
    engine = make_engine(url)
    init_db(engine)
    parts = [Partner(id=f"BP{i:05d}", name=f"单位{i}") for i in range(max(1, n_caps // 20))]
    caps = [Capability(id=f"BC{i:06d}", partner_id=parts[i % len(parts)].id, title=text(rng, 4), text=text(rng, 30))
            for i in range(n_caps)]
    dems = [Demand(id=f"BD{i:05d}", title=text(rng, 4), text=text(rng, 30)) for i in range(n_dems)]
    with engine.begin() as conn:
        store.upsert_rows(conn, partners, [store.partner_values(p) for p in parts])
        for start in range(0, len(caps), 5000):
            store.upsert_rows(conn, capabilities, [store.capability_values(c) for c in caps[start:start + 5000]])
        store.upsert_rows(conn, demands, [store.demand_values(d, owner="", published=True) for d in dems])
    engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(url: str, data_dir: Path, workers: int, model: str, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "TECHMATCH_ADMIN_TOKEN": ADMIN, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "matcher.cli.commands", "serve", "--db", url, "--data-dir", str(data_dir),
           "--model", model, "--port", str(port), "--workers", str(workers), "--log-level", "info"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 1800
    ready_in_a_row = 0
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited; see {log}")
        try:  # a new connection each time: every worker must answer ready, not just the first
            ready_in_a_row = ready_in_a_row + 1 if httpx.get(base + "/readyz", timeout=5).status_code == 200 else 0
        except httpx.HTTPError:
            ready_in_a_row = 0
        # every worker logs "ready" once its index is loaded (a busy one may not be the one answering)
        if ready_in_a_row >= 3 and log.read_text(errors="replace").count('"msg": "ready"') >= workers:
            return proc, base
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("server not ready in 30 min")


def load(base: str, clients: int, seconds: float) -> dict:
    h = {"Authorization": f"Bearer {ADMIN}"}
    times: dict[str, list[float]] = {"search": [], "list": [], "write+read": []}
    misses, errors = [0], [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(n: int) -> None:
        rng = random.Random(n)
        with httpx.Client(base_url=base, timeout=120, headers=h) as http:
            i = 0
            while time.monotonic() < stop_at:
                roll, i = rng.random(), i + 1
                t0 = time.perf_counter()
                try:
                    if roll < 0.7:
                        kind = "search"
                        ok = http.post("/api/demands/search", json={"text": text(rng, 6), "k": 10}).status_code == 200
                    elif roll < 0.9:
                        kind = "list"
                        ok = http.get("/api/demands", params={"q": rng.choice(WORDS), "limit": 20}).status_code == 200
                    else:
                        kind = "write+read"
                        words = f"{text(rng, 5)} 标记{n}x{i}"
                        did = f"BW{n}x{i}x{os.getpid()}x{int(time.time() * 1000)}"
                        body = {"id": did, "title": words, "text": words}
                        ok = http.post("/api/demands", json=body).status_code == 201
                        with httpx.Client(base_url=base, timeout=120, headers=h) as other:  # any worker
                            r = other.post("/api/demands/search", json={"text": words, "k": 20})
                        if ok and did not in {x["demand"]["id"] for x in r.json()["results"]}:
                            with lock:
                                misses[0] += 1
                except httpx.HTTPError:
                    ok = False
                dt = time.perf_counter() - t0
                with lock:
                    if ok:
                        times[kind].append(dt)
                    else:
                        errors[0] += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return {"wall": wall, "times": times, "misses": misses[0], "errors": errors[0]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--capabilities", type=int, default=42_461)
    ap.add_argument("--demands", type=int, default=2_000)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--model", default="fake")
    ap.add_argument("--db", help="a database URL to fill (default: a new SQLite file)")
    ap.add_argument("--smoke", action="store_true", help=common.SMOKE_HELP)
    ap.add_argument("--out", type=Path, help="JSON output (default: benchmarks/results/bench_workers.json)")
    args = ap.parse_args(argv)
    if args.smoke:
        args.capabilities, args.demands, args.workers, args.clients, args.seconds = 48, 40, "1,2", 2, 1.0
        args.model, args.db = "fake", None
        common.start_smoke("bench_workers.json", model=None)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    tmp = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    try:
        url = args.db or f"sqlite:///{tmp / 'bench.db'}"
        t0 = time.perf_counter()
        build_database(url, args.capabilities, args.demands)
        print(f"database: {args.capabilities:,} capabilities, {args.demands:,} demands "
              f"({time.perf_counter() - t0:.1f} s); model {args.model}; {args.clients} clients, "
              f"{args.seconds:g} s per run; {os.cpu_count()} CPUs", flush=True)
        rows = []
        for n in [int(x) for x in args.workers.split(",")]:
            t0 = time.perf_counter()
            proc, base = start_server(url, tmp / "data", n, args.model, tmp / f"server-{n}.log")
            ready = time.perf_counter() - t0
            try:
                res = load(base, args.clients, args.seconds)
            finally:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
            total = sum(len(v) for v in res["times"].values())
            s, li, w = (res["times"][k] for k in ("search", "list", "write+read"))
            rows.append([n, round(ready, 1), total / res["wall"], pct(s, 50) * 1000, pct(s, 99) * 1000,
                         pct(li, 50) * 1000, pct(li, 99) * 1000, pct(w, 50) * 1000, pct(w, 99) * 1000,
                         res["misses"], res["errors"]])
        table = print_table(["workers", "ready s", "req/s", "search p50 ms", "search p99 ms", "list p50 ms",
                             "list p99 ms", "write+read p50 ms", "write+read p99 ms", "misses", "errors"], rows,
                            title="techmatch serve --workers N")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report = {"benchmark": "workers", "machine": common.machine(), "database": "SQLite" if not args.db else "--db",
              "settings": {k: v for k, v in vars(args).items() if k not in ("db", "out")},
              "runs": [dict(zip(["workers", "ready_s", "requests_per_s", "search_p50_ms", "search_p99_ms",
                                 "list_p50_ms", "list_p99_ms", "write_read_p50_ms", "write_read_p99_ms", "misses",
                                 "errors"], r)) for r in rows],
              "table": table}
    common.write_json("bench_workers.json", report, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
