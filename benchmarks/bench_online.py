"""Online matching over HTTP against a real server, beside the naive stack on the same queries.

For each corpus size (the first N sbir-firms capabilities, whole firms in file order; each
size contains the smaller ones) this

1. writes a fresh SQLite database with the service's own storage functions (the fastest
   correct bulk load: the same rows `POST /api/imports/...` would write, without HTTP
   multipart), holding the N capabilities, their firms as partners, and S sbir-topics as
   stored demands;
2. starts `techmatch serve --db ... --model M --port P` in its own process and waits for
   `/readyz` (the index is rebuilt from the database; the embedding cache holds the
   capability embeddings, so start-up embeds nothing but new texts);
3. from this process, with httpx (keep-alive, one client per thread), times
   * stored demand: `GET /api/demands/{id}/matches?k=10`, after one warm-up pass over the
     same ids so the query embeddings come from the cache (as they do in production once a
     demand has been matched once) and the engine's answers are kept (asked again at the same
     data revision, a demand is not matched again: `service.jobs.answers`);
   * stored demand, first view after a write ("stored-new"): the same requests, each run
     after one write through the API (a new partner with no capability), which empties the
     kept answers: every request is matched again, with the query embeddings still cached
     (distinct ids as long as --queries is at most --stored);
   * free text: `POST /api/match` with texts never seen before (unseen sbir-topics, first
     2,000 characters, plus a per-run tag so no run hits the embedding cache);
   with 1 and with 8 concurrent clients, R repeats; p50/p99 are medians over the repeats;
   with the machine's speed measured before and after (`common.speed_probe`: the build
   machine is shared, and its speed changes from one minute to the next);
4. records the server's resident memory (current and peak, /proc VmRSS/VmHWM) and stops it,
   then starts it again on the same database (it loads the index the first start saved) and
   records the memory and the stored-demand latency of that second start;
5. builds the naive stack (`benchmarks/naive.py`) over the same capabilities, with the same
   model and the same document embeddings (read from the cache, so neither side encodes
   documents), and times it on the same queries, in this process (no HTTP: a lower bound
   for a naive service).

    python benchmarks/bench_online.py                       # 1k, 10k, 42,461; minilm
    python benchmarks/bench_online.py --quick               # 1k and 2k, few requests
    python benchmarks/bench_online.py --model e5-multilingual-small --sizes 42461
    python benchmarks/bench_online.py --smoke               # synthetic corpus, fake encoder (CI)

Needs every capability's embedding in the cache (run bench_batch.py first); skips cleanly
without ../shared/data.
"""

from __future__ import annotations

import argparse
import os
import queue
import secrets
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
from common import med, pct, print_table  # noqa: E402

FREE_TEXT_CHARS = 2000  # "free": a long description, beyond the models' 256-token window
SHORT_TEXT_CHARS = 300  # "short": a paragraph such as a user types into the match box
KINDS = ("stored", "stored-new", "free", "short")
STORED_KINDS = ("stored", "stored-new")  # matched by id
NAIVE_KINDS = ("stored", "free", "short")  # the naive stack keeps nothing: each stored request is a first view


def shorten(text: str, limit: int) -> str:
    """At most `limit` characters, cut at a word boundary."""
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0]


# -- the corpus and the database -----------------------------------------------------------
def prepare_db(path: Path, caps, demands) -> dict:
    """A service database holding `caps` (their firms as partners) and `demands`."""
    from matcher.records import partners_from_capabilities
    from service.storage import store
    from service.storage.db import bump_revision, capabilities, init_db, make_engine, partners
    from service.storage.db import demands as demand_table

    db = make_engine(f"sqlite:///{path}")
    try:
        init_db(db)
        parts = partners_from_capabilities(list(caps))
        with db.begin() as conn:
            store.upsert_rows(conn, partners, [store.partner_values(p) for p in parts])
            store.upsert_rows(conn, capabilities, [store.capability_values(c) for c in caps])
            store.upsert_rows(
                conn, demand_table, [store.demand_values(d, owner=d.enterprise, published=True) for d in demands]
            )
            bump_revision(conn)
    finally:
        db.dispose()
    return {"capabilities": len(caps), "partners": len(parts), "stored_demands": len(demands)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`techmatch serve` in a child process, with its log in `workdir`."""

    def __init__(self, db: Path, model: str, workdir: Path, index: str = "exact", log: str = "server.log") -> None:
        self.port = free_port()
        self.token = "bench-" + secrets.token_urlsafe(16)
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(workdir / log, "wb")
        exe = Path(sys.executable).parent / "techmatch"
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "matcher.cli.commands"]
        env = {**os.environ, "TECHMATCH_ADMIN_TOKEN": self.token, "HF_HUB_OFFLINE": "1", "TECHMATCH_INDEX": index}
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [*cmd, "serve", "--db", str(db), "--model", model, "--port", str(self.port)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=workdir,
        )

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def wait_ready(self, timeout: float) -> float:
        import httpx

        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited with {self.proc.returncode}; see {self.log.name}")
            try:
                if httpx.get(self.base + "/readyz", timeout=5).status_code == 200:
                    return time.perf_counter() - self.started
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise SystemExit(f"server not ready after {timeout:.0f} s; see {self.log.name}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# -- load generation -----------------------------------------------------------------------
def run_load(requests: list, clients: int, send) -> dict:
    """Send every request (each `send(client, request)` returns when answered) from `clients`
    threads; returns latencies (ms) and throughput."""
    work: queue.Queue = queue.Queue()
    for r in requests:
        work.put(r)
    lat: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        client = send.client()
        try:
            while True:
                try:
                    r = work.get_nowait()
                except queue.Empty:
                    return
                t0 = time.perf_counter()
                try:
                    send(client, r)
                except Exception as exc:  # recorded, the run goes on
                    with lock:
                        errors.append(f"{type(exc).__name__}: {exc}"[:200])
                    continue
                dt = (time.perf_counter() - t0) * 1e3
                with lock:
                    lat.append(dt)
        finally:
            send.close(client)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {
        "p50_ms": pct(lat, 50),
        "p99_ms": pct(lat, 99),
        "mean_ms": sum(lat) / len(lat) if lat else float("nan"),
        "throughput_rps": len(lat) / wall if wall else float("nan"),
        "n": len(lat),
        "errors": errors[:5],
        "n_errors": len(errors),
    }


class HttpSender:
    def __init__(self, server: Server, kind: str) -> None:
        self.server, self.kind = server, kind

    def client(self):
        import httpx

        return httpx.Client(base_url=self.server.base, headers=self.server.headers, timeout=300)

    def close(self, client) -> None:
        client.close()

    def write(self) -> None:
        """One write that touches a record, so the kept answers are dropped, but changes no match: a
        partner without capabilities."""
        import httpx

        pid = "bench-write-" + secrets.token_hex(6)
        r = httpx.post(self.server.base + "/api/partners", json={"id": pid, "name": pid}, headers=self.server.headers,
                       timeout=300)
        if r.status_code != 201:
            raise RuntimeError(f"write refused: HTTP {r.status_code}: {r.text[:200]}")

    def __call__(self, client, request) -> None:
        if self.kind in STORED_KINDS:
            r = client.get(f"/api/demands/{request}/matches", params={"k": 10})
        else:
            r = client.post("/api/match", json={"text": request, "k": 10})
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")
        if not r.json()["results"]:
            raise RuntimeError("empty result")


class NaiveSender:
    def __init__(self, stack, stage_log: list) -> None:
        self.stack, self.stage_log = stack, stage_log

    def client(self):
        return None

    def close(self, client) -> None:
        pass

    def __call__(self, client, text) -> None:
        ranked, stages = self.stack.match_partners_timed(text, 10)
        self.stage_log.append(stages)
        if not ranked:
            raise RuntimeError("empty result")


def summarise(runs: list[dict]) -> dict:
    """Medians over repeated runs of the per-run p50/p99/throughput."""
    return {
        "p50_ms": med(r["p50_ms"] for r in runs),
        "p99_ms": med(r["p99_ms"] for r in runs),
        "throughput_rps": med(r["throughput_rps"] for r in runs),
        "p50_runs": [round(r["p50_ms"], 2) for r in runs],
        "p99_runs": [round(r["p99_ms"], 2) for r in runs],
        "requests_per_run": runs[0]["n"] if runs else 0,
        "repeats": len(runs),
        "errors": sum(r["n_errors"] for r in runs),
        "error_examples": [e for r in runs for e in r["errors"]][:3],
    }


# -- one corpus size -------------------------------------------------------------------------
def bench_size(args, n_caps: int, all_caps, topics, workdir: Path, naive_model) -> dict:
    caps = all_caps[:n_caps]
    stored = topics[: args.stored]
    free_pool = topics[args.stored :]
    unseen = [d.full_text for d in free_pool if d.full_text.strip()]
    need = 2 * (args.queries * args.repeats * len(args.clients) + 5) + args.queries  # + the restart pass
    if len(unseen) < need:
        raise SystemExit(f"not enough unseen topics for free-text queries ({len(unseen)} < {need})")
    tag = secrets.token_hex(4)  # never-seen texts in every run, whatever the cache holds
    pool = iter(enumerate(unseen))
    limits = {"free": FREE_TEXT_CHARS, "short": SHORT_TEXT_CHARS}

    def fresh(kind: str) -> str:
        i, text = next(pool)
        return f"{shorten(text, limits[kind])} [{tag}-{i}]"

    sizedir = workdir / f"n{n_caps}"
    sizedir.mkdir(parents=True, exist_ok=True)
    probe_before = common.speed_probe()
    t0 = time.perf_counter()
    counts = prepare_db(sizedir / "tm.db", caps, stored)
    db_seconds = time.perf_counter() - t0
    print(
        f"\n== {n_caps} capabilities of {counts['partners']} partners, {len(stored)} stored demands "
        f"(database written in {db_seconds:.1f} s)",
        flush=True,
    )

    server = Server(sizedir / "tm.db", args.model, sizedir, args.index)
    texts = list(dict.fromkeys(c.full_text for c in caps))
    sur = common.surrogate_count(args.model, "passage", texts)
    print(common.describe_probe(probe_before, "before this size"), flush=True)
    out: dict = {
        "capabilities": n_caps,
        "probe_before": probe_before,
        **counts,
        "db_seconds": db_seconds,
        "unique_texts": len(texts),
        "surrogate_vectors": sur,
        "real_vectors": len(texts) - sur,
    }
    if sur:
        print(f"{sur} of {len(texts)} capability vectors are surrogates (timing only, see surrogate_cache.py)")
    try:
        out["startup_seconds"] = server.wait_ready(args.ready_timeout)
        out["memory_after_start"] = common.proc_memory(server.proc.pid)
        print(
            f"server ready in {out['startup_seconds']:.1f} s, RSS {out['memory_after_start'].get('rss_mb', 0):.0f} MB",
            flush=True,
        )
        ids = [d.id for d in stored]
        stored_q = (ids * (args.queries // len(ids) + 1))[: args.queries]
        sender = {k: HttpSender(server, k) for k in KINDS}
        warm = run_load(ids, 1, sender["stored"])  # fills the query-embedding cache
        run_load([fresh("free") for _ in range(5)], 1, sender["free"])  # warms code paths only
        out["warmup_stored"] = {"p50_ms": warm["p50_ms"], "n": warm["n"], "errors": warm["n_errors"]}
        ours: dict = {k: {} for k in KINDS}
        for clients in args.clients:
            for kind in KINDS:
                runs = []
                for _ in range(args.repeats):
                    if kind == "stored-new":
                        sender[kind].write()
                    reqs = stored_q if kind in STORED_KINDS else [fresh(kind) for _ in range(args.queries)]
                    runs.append(run_load(reqs, clients, sender[kind]))
                ours[kind][str(clients)] = summarise(runs)
                s = ours[kind][str(clients)]
                print(
                    f"ours  {kind:<10} clients={clients}: p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms, "
                    f"{s['throughput_rps']:.1f} req/s ({s['errors']} errors)",
                    flush=True,
                )
        out["ours"] = ours
        out["memory_after_load"] = common.proc_memory(server.proc.pid)
    finally:
        server.stop()
    out["probe_after"] = common.speed_probe()  # before the restart, which measures memory mostly
    print(common.describe_probe(out["probe_after"], "after the requests"), flush=True)
    out["restart"] = bench_restart(args, sizedir, stored_q, [fresh("free") for _ in range(args.queries)])

    if args.naive:
        out["naive"] = bench_naive(args, caps, stored, unseen, naive_model)
    return out


def bench_restart(args, sizedir: Path, stored_q: list[str], free_q: list[str]) -> dict:
    """A second start on the same database: the service loads the index the first start
    saved instead of rebuilding it, which is the memory a long-running deployment sees.
    One pass of stored demands (timed) and one of free texts (so the peak includes encoding)."""
    server = Server(sizedir / "tm.db", args.model, sizedir, args.index, log="server-restart.log")
    try:
        seconds = server.wait_ready(args.ready_timeout)
        after_start = common.proc_memory(server.proc.pid)
        run = run_load(stored_q, 1, HttpSender(server, "stored"))
        run_load(free_q, 1, HttpSender(server, "free"))
        after_load = common.proc_memory(server.proc.pid)
    finally:
        server.stop()
    loaded = '"index loaded"' in (sizedir / "server-restart.log").read_text(encoding="utf-8", errors="replace")
    print(
        f"restart: ready in {seconds:.1f} s ({'saved index loaded' if loaded else 'index REBUILT'}), "
        f"RSS {after_start.get('rss_mb', 0):.0f} MB, peak {after_load.get('peak_rss_mb', 0):.0f} MB, "
        f"stored p50 {run['p50_ms']:.1f} ms",
        flush=True,
    )
    return {"seconds": seconds, "loaded_saved_index": loaded, "memory_after_start": after_start,
            "memory_after_load": after_load, "stored_p50_ms": run["p50_ms"], "stored_p99_ms": run["p99_ms"]}


def bench_naive(args, caps, stored, unseen, naive_model) -> dict:
    from naive import PREFIXES, NaiveStack

    from matcher.retrieval.encoders import REGISTRY

    texts = [c.full_text for c in caps]
    t0 = time.perf_counter()
    emb = common.cached_vectors(args.model, "passage", texts)
    t_emb = time.perf_counter() - t0
    spec = REGISTRY.get(args.model)
    t0 = time.perf_counter()
    stack = NaiveStack(
        naive_model,
        texts,
        [c.partner_id for c in caps],
        emb,
        query_prefix=PREFIXES.get(args.model, ("", ""))[0],
        max_seq_length=spec.max_seq_length if spec else None,
    )
    t_build = time.perf_counter() - t0
    n = min(args.naive_queries, len(stored))
    stored_texts = [d.full_text for d in stored[:n]]
    last = unseen[-n * args.naive_repeats :]  # no cache on the naive side anyway
    texts_of = {
        "stored": [stored_texts] * args.naive_repeats,
        "free": [[shorten(t, FREE_TEXT_CHARS) for t in last[r * n : (r + 1) * n]] for r in range(args.naive_repeats)],
        "short": [[shorten(t, SHORT_TEXT_CHARS) for t in last[r * n : (r + 1) * n]] for r in range(args.naive_repeats)],
    }
    stack.match_partners(stored_texts[0])  # first call pays one-off costs
    res: dict = {
        "build_seconds": t_build,
        "embeddings_from_cache_seconds": t_emb,
        "max_seq_length": spec.max_seq_length if spec else None,
        **{k: {} for k in NAIVE_KINDS},
    }
    stages: list[dict] = []  # one-client runs only (with 8 clients the stages wait for each other)
    for clients in args.clients:
        sender = NaiveSender(stack, stages if clients == 1 else [])
        for kind in NAIVE_KINDS:
            # at least one request per client (a request list shorter than the clients is cycled)
            runs = [run_load((reqs * clients)[: max(len(reqs), clients)], clients, sender) for reqs in texts_of[kind]]
            res[kind][str(clients)] = summarise(runs)
            s = res[kind][str(clients)]
            print(
                f"naive {kind:<10} clients={clients}: p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms, "
                f"{s['throughput_rps']:.1f} req/s",
                flush=True,
            )
    res["stages_ms_median"] = {k: med(s[k] for s in stages) * 1e3 for k in stages[0]} if stages else {}
    print("naive stages (median ms): " + ", ".join(f"{k} {v:.1f}" for k, v in res["stages_ms_median"].items()))
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="minilm")
    ap.add_argument(
        "--index", choices=("exact", "hnsw", "ivf"), default="exact", help="the server's vector index (TECHMATCH_INDEX)"
    )
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 42461])
    ap.add_argument("--stored", type=int, default=100, help="sbir-topics stored as demands (matched by id)")
    ap.add_argument("--queries", type=int, default=100, help="requests per run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--naive-queries", type=int, default=10, help="requests per naive run (it is slow)")
    ap.add_argument("--naive-repeats", type=int, default=2)
    ap.add_argument("--no-naive", dest="naive", action="store_false")
    ap.add_argument("--quick", action="store_true", help="1k and 2k, 20 requests, 2 repeats")
    ap.add_argument("--smoke", action="store_true", help=common.SMOKE_HELP)
    ap.add_argument("--ready-timeout", type=float, default=1800)
    ap.add_argument("--workdir", type=Path, help="where databases and server logs go (default: a temp folder)")
    ap.add_argument("--out", type=Path, help="JSON output (default: benchmarks/results/bench_online_<model>.json)")
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.queries, args.repeats, args.stored, args.naive_queries = [1000, 2000], 20, 2, 20, 5
    if args.smoke:
        args.model, args.sizes, args.queries, args.repeats, args.clients = "fake", [48], 4, 1, [1, 2]
        args.stored, args.naive_queries, args.naive_repeats, args.ready_timeout = 5, 2, 1, 120
        common.start_smoke(f"bench_online_{args.model}.json")
    if common.missing_data(common.SBIR_FIRMS, common.SBIR_TOPICS):
        return 0
    common.setup_env()
    info = common.machine()
    task = common.load_task(common.SBIR_FIRMS)
    all_caps = task.capabilities
    topics = common.load_topics()
    sizes = [min(n, len(all_caps)) for n in args.sizes]
    wanted = list(dict.fromkeys(c.full_text for c in all_caps[: max(sizes)]))
    missing = len(wanted) - common.cached_count(args.model, "passage", wanted)
    print(common.describe_machine(info))
    print(
        f"model: {args.model}; corpus: sbir-firms, sizes {sizes} capabilities; demands: sbir-topics; "
        f"{args.queries} requests per run, {args.repeats} repeats, clients {args.clients}"
    )
    if missing > 0:
        print(f"note: {missing} capability embeddings are not cached yet: the server start-up encodes them", flush=True)

    naive_model = None
    if args.naive and args.smoke:
        naive_model = common.SmokeSentenceModel()
    elif args.naive:
        from sentence_transformers import SentenceTransformer

        from matcher.retrieval.encoders import prepare_model

        naive_model = SentenceTransformer(str(prepare_model(args.model)), device="cpu")  # loaded once

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="tm-online-"))
    results = []
    try:
        for n in sizes:
            results.append(bench_size(args, n, all_caps, topics, workdir, naive_model))
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    rows = []
    for r in results:
        for kind in KINDS:
            for c in args.clients:
                o = r["ours"][kind][str(c)]
                naive_kind = "stored" if kind in STORED_KINDS else kind  # it keeps no answers
                nv = r.get("naive", {}).get(naive_kind, {}).get(str(c))
                rows.append(
                    [
                        r["capabilities"],
                        f"{r['real_vectors'] / r['unique_texts']:.0%}",
                        kind,
                        c,
                        o["p50_ms"],
                        o["p99_ms"],
                        o["throughput_rps"],
                        nv["p50_ms"] if nv else float("nan"),
                        nv["p99_ms"] if nv else float("nan"),
                        (nv["p50_ms"] / o["p50_ms"]) if nv else float("nan"),
                    ]
                )
    print()
    table = print_table(
        [
            "capabilities",
            "real vectors",
            "query",
            "clients",
            "p50 ms",
            "p99 ms",
            "req/s",
            "naive p50",
            "naive p99",
            "naive/ours p50",
        ],
        rows,
        title=f"Online matching over HTTP, model {args.model}, index {args.index} (medians of {args.repeats} runs of "
        f"{args.queries} requests; naive: {args.naive_queries} requests, in-process)",
    )
    mem_rows = [
        [
            r["capabilities"],
            r["startup_seconds"],
            r["memory_after_start"].get("rss_mb"),
            r["memory_after_load"].get("rss_mb"),
            r["memory_after_load"].get("peak_rss_mb"),
            r["restart"]["seconds"],
            r["restart"]["memory_after_load"].get("peak_rss_mb"),
            f"{r['probe_before']['python_ms']:.0f} / {r['probe_after']['python_ms']:.0f}",
            f"{r['probe_before']['scan_ms']:.2f} / {r['probe_after']['scan_ms']:.2f}",
        ]
        for r in results
    ]
    print()
    mem_table = print_table(
        ["capabilities", "start-up s", "RSS after start MB", "RSS after load MB", "peak RSS MB", "restart s",
         "restart peak MB", "probe Python ms", "probe scan ms"],
        mem_rows,
        title="Service process memory; the machine's speed before / after the requests (common.speed_probe: "
        "about 50 and 2.4 ms on a quiet build machine)",
    )
    report = {
        "benchmark": "online",
        "machine": info,
        "model": args.model,
        "index": args.index,
        "corpus": "sbir-firms capabilities (first N, whole firms in file order); sbir-topics as demands",
        "free_text": f"free: unseen sbir-topics, first {FREE_TEXT_CHARS} characters; short: first {SHORT_TEXT_CHARS} "
        "characters; each plus a per-run tag (never cached)",
        "stored_demand": "GET /api/demands/{id}/matches?k=10 after one warm-up pass (query embeddings cached, "
        "engine answers kept); stored-new: the same after one write per run (answers matched again)",
        "naive": "benchmarks/naive.py in the benchmark process (no HTTP); same model, same document embeddings "
        "from the cache; RRF k=60 of numpy exact cosine and rank_bm25 BM25Okapi over whitespace tokens; "
        "stored demands are encoded again on every request (no cache)",
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "sizes": results,
        "tables": [table, mem_table],
    }
    suffix = "" if args.index == "exact" else f"_{args.index}"
    common.write_json(f"bench_online_{args.model}{suffix}.json", report, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
