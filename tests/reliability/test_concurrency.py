"""Guarantee 4, concurrency: many clients creating, editing, deleting and matching against the
real server for a bounded time; every acknowledged write is there afterwards, nothing fails
except by design, and no answer shows a record whose delete was acknowledged before the
request started.

16 client threads (httpx, one connection each) for 20 s in CI (5 minutes in the soak variant),
each going on past that until it has sent 50 requests (for at most 90 s more: on a loaded
machine the run keeps its whole mix rather than failing a throughput floor):
staff and admin writers (demands, partners, capabilities, feedback, small imports), enterprises
(their own demands), institutes (their own partner's capabilities, demand search). Each thread
edits and deletes only what it created, so the last acknowledged state of every record is
known exactly. By design, and counted: 409 for a deliberate duplicate id, 404 when reading a
record the same thread deleted.

Afterwards, from the SQLite file of the stopped server: every acknowledged create, edit and
feedback is present with its acknowledged content, every acknowledged delete is gone, and the
index saved at shutdown holds exactly the database's ids.
"""

from __future__ import annotations

import collections
import itertools
import random
import statistics
import threading
import time
from dataclasses import dataclass, field

import httpx
import pytest
from reliability_kit import (
    WORDS,
    ServerProcess,
    bearer,
    capabilities_jsonl,
    csv_bytes,
    db_connect,
    demands_csv,
    index_disagreements,
    seed_http,
    upload,
    write_figures,
)

CLIENTS = 16
CI_SECONDS, SOAK_SECONDS = 20, 300
PERMANENT = [f"BASE-{i:05d}" for i in range(150)]  # never deleted: feedback goes on these
# Every client sends at least this many requests, so that a slow (shared, loaded) machine still
# runs the whole mix: past the time bound a client goes on until it has, for at most GRACE_SECONDS.
MIN_REQUESTS_PER_CLIENT, GRACE_SECONDS = 50, 90


@dataclass
class Ledger:
    """What the server acknowledged, shared by the client threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    demands: dict[str, str | None] = field(default_factory=dict)  # id -> acknowledged title, None once deleted
    capabilities: dict[str, str | None] = field(default_factory=dict)
    partners: dict[str, bool] = field(default_factory=dict)  # id -> alive
    feedback: dict[int, str] = field(default_factory=dict)  # id -> reason
    deleted_at: dict[str, float] = field(default_factory=dict)  # "kind:id" -> when its delete was acknowledged
    answers: list[tuple[float, str, list[str]]] = field(default_factory=list)  # (started, kind, ids in the answer)
    statuses: collections.Counter = field(default_factory=collections.Counter)
    by_design: collections.Counter = field(default_factory=collections.Counter)
    failures: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)


class Client(threading.Thread):
    """One simulated user: a role, its own records, a seeded random mix of operations."""

    def __init__(self, n: int, role: str, token: str, url: str, ledger: Ledger, deadline: float,
                 partner: str | None = None) -> None:
        super().__init__(name=f"client-{n}", daemon=True)
        self.n, self.role, self.ledger, self.deadline, self.partner = n, role, ledger, deadline, partner
        self.http = httpx.Client(base_url=url, timeout=60, headers=bearer(token))
        self.rnd = random.Random(1000 + n)
        self.ids = itertools.count()
        self.mine_d: list[str] = []  # alive demands this client made
        self.mine_c: list[str] = []
        self.mine_p: list[str] = []
        self.cap_partner: dict[str, str] = {}  # capability -> partner, to follow a partner's cascade
        self.sent = 0  # requests this client sent

    # -- plumbing ------------------------------------------------------------------------------
    def call(self, method: str, path: str, expect: tuple[int, ...], by_design: tuple[int, ...] = (), **kw):
        started = time.monotonic()
        self.sent += 1
        try:
            r = self.http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            with self.ledger.lock:
                self.ledger.failures.append(f"{method} {path}: {type(exc).__name__}: {exc}")
            return None, started
        elapsed = time.monotonic() - started
        with self.ledger.lock:
            self.ledger.statuses[r.status_code] += 1
            self.ledger.latencies.append(elapsed)
            if r.status_code in by_design:
                self.ledger.by_design[f"{method} {r.status_code}"] += 1
            elif r.status_code not in expect:
                self.ledger.failures.append(f"{self.role} {method} {path}: {r.status_code} {r.text[:200]}")
                return None, started
        return r, started

    def words(self, n: int = 6) -> str:
        return " ".join(self.rnd.choice(WORDS) for _ in range(n))

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{self.n:02d}-{next(self.ids):05d}"

    # -- operations ------------------------------------------------------------------------------
    def create_demand(self) -> None:
        did = self.new_id("CD")
        title = f"{did} {self.words(3)}"
        body = {"id": did, "title": title, "text": self.words(10)}
        if self.role == "enterprise":
            body["enterprise"] = self.partner  # the enterprise name rides in `partner` for this role
            del body["id"]  # enterprises never choose ids (a 409 would reveal hidden demands)
        r, _ = self.call("POST", "/api/demands", (201,), json=body)
        if r is not None:
            did = r.json()["id"]
            with self.ledger.lock:
                self.ledger.demands[did] = title
            self.mine_d.append(did)

    def duplicate_demand(self) -> None:
        if self.mine_d:
            self.call("POST", "/api/demands", (), by_design=(403,) if self.role == "enterprise" else (409,),
                      json={"id": self.rnd.choice(self.mine_d), "title": "duplicate", "text": "x"})

    def edit_demand(self) -> None:
        if not self.mine_d:
            return
        did = self.rnd.choice(self.mine_d)
        title = f"{did} v{self.rnd.randrange(10**6)} {self.words(2)}"
        r, _ = self.call("PATCH", f"/api/demands/{did}", (200,), json={"title": title})
        if r is not None:
            assert r.json()["title"] == title
            with self.ledger.lock:
                self.ledger.demands[did] = title

    def delete_demand(self) -> None:
        if not self.mine_d:
            return
        did = self.mine_d.pop(self.rnd.randrange(len(self.mine_d)))
        r, _ = self.call("DELETE", f"/api/demands/{did}", (204,))
        if r is not None:
            with self.ledger.lock:
                self.ledger.demands[did] = None
                self.ledger.deleted_at[f"demand:{did}"] = time.monotonic()
            self.call("GET", f"/api/demands/{did}", (), by_design=(404,))  # gone at once for its deleter

    def read_own(self) -> None:
        if not self.mine_d:
            return
        did = self.rnd.choice(self.mine_d)
        r, _ = self.call("GET", f"/api/demands/{did}", (200,))
        if r is not None:
            with self.ledger.lock:
                want = self.ledger.demands[did]
            if r.json()["title"] != want:
                with self.ledger.lock:
                    self.ledger.failures.append(f"read-your-writes: {did} shows {r.json()['title']!r}, not {want!r}")

    def create_partner(self) -> None:
        pid = self.new_id("CP")
        r, _ = self.call("POST", "/api/partners", (201,), json={"id": pid, "name": f"并发单位 {pid}", "type": "team"})
        if r is not None:
            with self.ledger.lock:
                self.ledger.partners[pid] = True
            self.mine_p.append(pid)

    def delete_partner(self) -> None:
        if not self.mine_p:
            return
        pid = self.mine_p.pop(self.rnd.randrange(len(self.mine_p)))
        r, _ = self.call("DELETE", f"/api/partners/{pid}", (204,))
        if r is not None:
            now = time.monotonic()
            with self.ledger.lock:
                self.ledger.partners[pid] = False
                self.ledger.deleted_at[f"partner:{pid}"] = now
            gone = [c for c in self.mine_c if self.cap_partner.get(c) == pid]
            with self.ledger.lock:
                for cid in gone:
                    self.ledger.capabilities[cid] = None
                    self.ledger.deleted_at[f"capability:{cid}"] = now
            self.mine_c = [c for c in self.mine_c if c not in gone]

    def create_capability(self) -> None:
        if self.role == "institute":
            partner = self.partner
        elif self.mine_p:
            partner = self.rnd.choice(self.mine_p)
        else:
            return
        cid = self.new_id("CC")
        title = f"{cid} {self.words(3)}"
        r, _ = self.call("POST", "/api/capabilities", (201,),
                         json={"id": cid, "partner_id": partner, "title": title, "text": self.words(10)})
        if r is not None:
            with self.ledger.lock:
                self.ledger.capabilities[cid] = title
            self.mine_c.append(cid)
            self.cap_partner[cid] = partner

    def edit_capability(self) -> None:
        if not self.mine_c:
            return
        cid = self.rnd.choice(self.mine_c)
        title = f"{cid} v{self.rnd.randrange(10**6)}"
        r, _ = self.call("PATCH", f"/api/capabilities/{cid}", (200,), json={"title": title})
        if r is not None:
            with self.ledger.lock:
                self.ledger.capabilities[cid] = title

    def delete_capability(self) -> None:
        if not self.mine_c:
            return
        cid = self.mine_c.pop(self.rnd.randrange(len(self.mine_c)))
        r, _ = self.call("DELETE", f"/api/capabilities/{cid}", (204,))
        if r is not None:
            with self.ledger.lock:
                self.ledger.capabilities[cid] = None
                self.ledger.deleted_at[f"capability:{cid}"] = time.monotonic()

    def match_text(self) -> None:
        r, started = self.call("POST", "/api/match", (200,), json={"text": self.words(6), "k": 50})
        if r is not None:
            self.note_matches(started, r.json())

    def match_demand(self) -> None:
        pool = self.mine_d or (PERMANENT if self.role != "enterprise" else [])
        if not pool:
            return
        did = self.rnd.choice(pool)
        r, started = self.call("GET", f"/api/demands/{did}/matches", (200,), params={"k": 30})
        if r is not None:
            self.note_matches(started, r.json())

    def note_matches(self, started: float, body: dict) -> None:
        ids = [f"partner:{m['partner_id']}" for m in body["results"]]
        ids += [f"capability:{e['capability_id']}" for m in body["results"] for e in m["evidence"]]
        with self.ledger.lock:
            self.ledger.answers.append((started, "match", ids))

    def search_demands(self) -> None:
        r, started = self.call("POST", "/api/demands/search", (200,), json={"text": self.words(6), "k": 100})
        if r is not None:
            ids = [f"demand:{h['demand']['id']}" for h in r.json()["results"]]
            with self.ledger.lock:
                self.ledger.answers.append((started, "search", ids))

    def feedback(self) -> None:
        reason = f"fb {self.n}-{next(self.ids)} {self.words(2)}"
        body = {"demand_id": self.rnd.choice(PERMANENT), "partner_id": self.rnd.choice(["P1", "P2"]),
                "status": "rejected", "reason": reason}
        r, _ = self.call("POST", "/api/feedback", (201,), json=body)
        if r is not None:
            with self.ledger.lock:
                self.ledger.feedback[r.json()["id"]] = reason

    def small_import(self) -> None:
        ids = [self.new_id("CI") for _ in range(5)]
        rows = [[i, f"{i} 导入", self.words(8)] for i in ids]
        r = None
        started = time.monotonic()
        self.sent += 1
        try:
            data = csv_bytes(["id", "title", "text"], rows)
            r = self.http.post("/api/imports/demands", files={"file": ("c.csv", data)})
        except httpx.HTTPError as exc:
            with self.ledger.lock:
                self.ledger.failures.append(f"import: {type(exc).__name__}")
            return
        with self.ledger.lock:
            self.ledger.statuses[r.status_code] += 1
            self.ledger.latencies.append(time.monotonic() - started)
            if r.status_code != 200:
                self.ledger.failures.append(f"import: {r.status_code} {r.text[:200]}")
                return
            for i, row in zip(ids, rows):
                self.ledger.demands[i] = row[1]
        self.mine_d.extend(ids)

    MIX = {
        "staff": [("create_demand", 6), ("edit_demand", 6), ("delete_demand", 3), ("read_own", 3),
                  ("duplicate_demand", 1), ("create_partner", 1), ("delete_partner", 0.3), ("create_capability", 4),
                  ("edit_capability", 2), ("delete_capability", 2), ("match_text", 8), ("match_demand", 6),
                  ("search_demands", 6), ("feedback", 4), ("small_import", 0.5)],
        "enterprise": [("create_demand", 5), ("edit_demand", 5), ("delete_demand", 3), ("read_own", 3),
                       ("match_demand", 6), ("match_text", 4)],
        "institute": [("create_capability", 4), ("edit_capability", 3), ("delete_capability", 2),
                      ("search_demands", 8), ("match_text", 4)],
    }

    def run(self) -> None:
        ops, weights = zip(*self.MIX["staff" if self.role in ("staff", "admin") else self.role])
        try:
            while time.monotonic() < self.deadline or (self.sent < MIN_REQUESTS_PER_CLIENT
                                                         and time.monotonic() < self.deadline + GRACE_SECONDS):
                getattr(self, self.rnd.choices(ops, weights)[0])()
        except Exception as exc:  # a bug in this test must not pass as "no failures"
            with self.ledger.lock:
                self.ledger.failures.append(f"client {self.n} crashed: {type(exc).__name__}: {exc}")
        finally:
            self.http.close()


def _run(tmp_path, seconds: float, name: str) -> None:
    srv = ServerProcess(tmp_path / "srv").start()
    ledger = Ledger()
    figures: dict = {"clients": CLIENTS, "seconds": seconds}
    try:
        srv.wait_ready()
        with httpx.Client(base_url=srv.url, timeout=120) as c:
            tokens = seed_http(c, srv)
            assert upload(c, "demands", "base.csv", demands_csv(PERMANENT, "BASE")).status_code == 200
            r = upload(c, "capabilities", "base.jsonl", capabilities_jsonl([f"BC-{i:04d}" for i in range(80)]))
            assert r.status_code == 200, r.text
        from service_testkit import E1, E2

        roles = (["admin", "staff"] * 5 + ["enterprise", "other_enterprise", "enterprise", "institute",
                                           "other_institute", "institute"])[:CLIENTS]
        binding = {"enterprise": E1, "other_enterprise": E2, "institute": "P1", "other_institute": "P2"}
        deadline = time.monotonic() + seconds
        clients = [Client(n, {"other_enterprise": "enterprise", "other_institute": "institute"}.get(role, role),
                          tokens[role], srv.url, ledger, deadline, partner=binding.get(role))
                   for n, role in enumerate(roles)]
        for cl in clients:
            cl.start()
        began = time.monotonic()
        for cl in clients:
            cl.join(seconds + GRACE_SECONDS + 120)
            assert not cl.is_alive(), f"{cl.name} hung"
        figures["seconds_run"] = round(time.monotonic() - began, 1)
        figures["fewest_requests_of_a_client"] = min(cl.sent for cl in clients)

        # -- no answer showed a record whose delete was acknowledged before the request started
        stale = [(kind, i) for started, kind, ids in ledger.answers for i in ids
                 if i in ledger.deleted_at and ledger.deleted_at[i] < started]
        figures["answers_checked"] = len(ledger.answers)
        figures["ids_in_answers_checked"] = sum(len(ids) for _, _, ids in ledger.answers)
        figures["deleted_records_seen"] = len(stale)

        # -- every acknowledged write is in the database of the stopped server
        r = httpx.get(srv.url + "/readyz", timeout=30)
        assert r.status_code == 200 and r.json()["revision"] == r.json()["index_revision"], r.text
        assert srv.stop() == 0
        lost = []
        with db_connect(srv.db_path) as conn:
            have_d = dict(conn.execute("SELECT id, title FROM demands").fetchall())
            have_c = dict(conn.execute("SELECT id, title FROM capabilities").fetchall())
            have_p = {row[0] for row in conn.execute("SELECT id FROM partners")}
            have_f = dict(conn.execute("SELECT id, reason FROM feedback").fetchall())
        for did, title in ledger.demands.items():
            if have_d.get(did) != title:
                lost.append(f"demand {did}: acknowledged {title!r}, stored {have_d.get(did)!r}")
        for cid, title in ledger.capabilities.items():
            if have_c.get(cid) != title:
                lost.append(f"capability {cid}: acknowledged {title!r}, stored {have_c.get(cid)!r}")
        for pid, alive in ledger.partners.items():
            if (pid in have_p) != alive:
                lost.append(f"partner {pid}: acknowledged alive={alive}")
        for fid, reason in ledger.feedback.items():
            if have_f.get(fid) != reason:
                lost.append(f"feedback {fid} missing")
        figures["records_lost"] = len(lost)
        figures["acknowledged_demands"] = len(ledger.demands)
        figures["acknowledged_capabilities"] = len(ledger.capabilities)
        figures["acknowledged_partners"] = len(ledger.partners)
        figures["acknowledged_feedback"] = len(ledger.feedback)
        figures["acknowledged_deletes"] = len(ledger.deleted_at)
        figures["requests_sent"] = sum(ledger.statuses.values())
        figures["statuses"] = {str(k): v for k, v in sorted(ledger.statuses.items())}
        figures["by_design"] = dict(ledger.by_design)
        figures["unexpected_failures"] = len(ledger.failures)
        if ledger.latencies:
            lat = sorted(ledger.latencies)
            figures["latency_ms"] = {"p50": round(1000 * statistics.median(lat)),
                                     "p95": round(1000 * lat[int(0.95 * (len(lat) - 1))]),
                                     "max": round(1000 * lat[-1])}
        figures["server_errors"] = len(srv.server_errors())
        assert not ledger.failures, ledger.failures[:20]
        assert not stale, stale[:20]
        assert not lost, lost[:20]
        assert figures["server_errors"] == 0, srv.server_errors()[:3]
        problems = index_disagreements(srv)
        assert problems == [], problems
        # the run did exercise the server: every client its whole share (a floor, not a speed target)
        assert figures["fewest_requests_of_a_client"] >= MIN_REQUESTS_PER_CLIENT, figures
    finally:
        srv.stop()
        figures["inputs_tried"] = figures.get("requests_sent", 0)
        write_figures(name, figures)


def test_concurrent_clients_lose_nothing_and_never_see_deleted_records(tmp_path):
    _run(tmp_path, CI_SECONDS, "concurrency")


@pytest.mark.soak
def test_concurrency_soak(tmp_path):
    _run(tmp_path, SOAK_SECONDS, "concurrency_soak")
