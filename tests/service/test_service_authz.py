"""Authorisation matrix: every route of the app, every role, the expected status.

`MATRIX` has one entry per (method, path) of `app.routes` (mounts as ("MOUNT", path));
`test_every_route_is_in_the_matrix` fails when a route is added without an entry. Each entry
builds a request (creating a fresh target for routes that change or delete it) and lists the
status for each of the roles in `service_testkit.ROLES`.
"""

from __future__ import annotations

import io
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from fastapi.routing import APIRoute
from service_testkit import E1, ROLES, World
from sqlalchemy import update
from starlette.routing import Mount, Route

from service.storage.db import conference_jobs

# landscape builds in the background on the matrix's many look-alike demands: quiet the
# engine's clustering and chart warnings
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning",
                                        "ignore:No artists with labels:UserWarning")
BAD_TOKEN = ("anonymous", "forged", "expired")
_counter = itertools.count()


def uid(prefix: str) -> str:
    return f"{prefix}{next(_counter)}"


@dataclass(frozen=True)
class Case:
    request: Callable[[World], tuple[str, dict]]  # -> (url, httpx keyword arguments)
    expect: dict[str, int]
    page: bool = False  # authenticate with the cookie instead of a header
    optional: bool = False  # the route exists only with an optional package


def statuses(ok: int, allowed: tuple[str, ...] | None = None, *, denied: int = 403, unauth: int = 401,
             **special: int) -> dict[str, int]:
    """`ok` for allowed roles (all when None), `denied` for the other roles, `unauth` for bad tokens."""
    out = {}
    for role in ROLES:
        if role in BAD_TOKEN:
            out[role] = unauth
        elif allowed is None or role in allowed:
            out[role] = ok
        else:
            out[role] = denied
    out.update(special)
    return out


STAFF = ("admin", "staff")
PUBLIC = dict.fromkeys(ROLES, 200)


def get(url: str) -> Callable[[World], tuple[str, dict]]:
    return lambda w: (url, {})


def new_demand(w: World, owner: str = E1) -> str:
    did = uid("DM")
    r = w.client.post("/api/demands", json={"id": did, "title": "待改需求", "text": "待改需求的描述", "owner": owner,
                                                "enterprise": owner},
                      headers=w.h("admin"))
    assert r.status_code == 201
    return did


def new_capability(w: World, partner: str = "P1") -> str:
    cid = uid("CM")
    r = w.client.post("/api/capabilities", json={"id": cid, "partner_id": partner, "title": "待改能力"},
                      headers=w.h("admin"))
    assert r.status_code == 201
    return cid


def new_partner(w: World) -> str:
    pid = uid("PM")
    assert w.client.post("/api/partners", json={"id": pid, "name": "待改单位"}, headers=w.h("admin")).status_code == 201
    return pid


def new_token(w: World) -> str:
    r = w.client.post("/api/tokens", json={"name": "tmp", "role": "staff"}, headers=w.h("admin"))
    return r.json()["id"]


def partners_csv(w: World) -> tuple[str, dict]:
    text = f"单位编号,单位名称\n{uid('PI')},导入单位\n"
    return "/api/imports/partners", {"files": {"file": ("p.csv", io.BytesIO(text.encode()), "text/csv")}}


def pipeline_csv(url: str) -> Callable[[World], tuple[str, dict]]:
    text = "demand_id,partner_id,status\nD1,P1,contacted\n"
    return lambda w: (url, {"files": {"file": ("pipeline.csv", io.BytesIO(text.encode()), "text/csv")}})


def upload_page(w: World) -> tuple[str, dict]:
    text = f"单位编号,单位名称\n{uid('PU')},网页导入单位\n"
    return "/upload", {"files": {"file": ("p.csv", io.BytesIO(text.encode()), "text/csv")},
                       "data": {"kind": "partners"}}


def login_request(w: World, role: str) -> tuple[str, dict]:
    return "/login", {"data": {"token": w.tokens[role] or "", "next": "/demands"}}


JOB = {"k": 2, "demand_ids": ["D1", "D3"], "slots": "09:00-10:00", "schedule_seconds": 1}
JOB_FORM = {"k": "2", "demand_ids": "D1 D3", "slots": "09:00-10:00"}


def start_job(w: World, *, wait: bool) -> str:
    r = w.client.post("/api/conference/jobs", json=JOB, headers=w.h("admin"))
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    deadline = time.monotonic() + 60
    while wait and w.client.get(f"/api/conference/jobs/{job_id}", headers=w.h("admin")).json()["status"] != "done":
        assert time.monotonic() < deadline, "conference job not done in 60 s"
        time.sleep(0.05)
    return job_id


def finished_job(w: World) -> str:
    """One finished conference job per world."""
    if not hasattr(w, "conference_job"):
        w.conference_job = start_job(w, wait=True)
    return w.conference_job


def interrupted_job(w: World) -> str:
    job_id = start_job(w, wait=True)
    with w.ctx.db.begin() as conn:
        conn.execute(update(conference_jobs).where(conference_jobs.c.id == job_id).values(status="interrupted"))
    return job_id


def built(url: str) -> Callable[[World], tuple[str, dict]]:
    """`url` once the landscape has been built (answers may be stale after that, never empty)."""

    def request(w: World) -> tuple[str, dict]:
        if not w.ctx.landscape.has_result:
            assert w.ctx.landscape.wait(120).status == "ready"
        return url, {}

    return request


PAGE_ANON = 303  # pages redirect to /login without a valid cookie
FILERS = ("admin", "staff", "enterprise", "other_enterprise")
DEMAND_FORM = {"title": "齿轮渗碳变形", "text": "目前采用气体渗碳，变形超差0.1mm。", "action": "save"}


def pending_demand(w: World) -> str:
    """A fresh unpublished demand of E1 (the 'enterprise' role's)."""
    did = uid("DP")
    r = w.client.post("/api/demands", json={"id": did, "title": "待审需求", "text": "齿轮渗碳后变形超差。", "owner": E1,
                                            "enterprise": E1, "published": False}, headers=w.h("admin"))
    assert r.status_code == 201
    return did


MATRIX: dict[tuple[str, str], Case] = {
    # -- operations and docs: public
    ("GET", "/healthz"): Case(get("/healthz"), PUBLIC),
    ("GET", "/readyz"): Case(get("/readyz"), PUBLIC),
    ("GET", "/openapi.json"): Case(get("/openapi.json"), PUBLIC),
    ("GET", "/docs"): Case(get("/docs"), PUBLIC),
    ("GET", "/redoc"): Case(get("/redoc"), PUBLIC),
    ("MOUNT", "/static"): Case(get("/static/style.css"), PUBLIC),
    ("MOUNT", "/docs-assets"): Case(get("/docs-assets/swagger-ui.css"), PUBLIC, optional=True),
    ("GET", "/api/me"): Case(get("/api/me"), statuses(200)),
    # -- demands: confidential D2 belongs to the enterprise; others get 404, not 403
    ("GET", "/api/demands"): Case(get("/api/demands"), statuses(200)),
    ("POST", "/api/demands"): Case(lambda w: ("/api/demands", {"json": {"title": "新需求", "text": "描述"}}),
                                   statuses(201, STAFF + ("enterprise", "other_enterprise"))),
    ("GET", "/api/demands/{demand_id}"): Case(
        get("/api/demands/D2"), statuses(200, STAFF + ("enterprise",), denied=404)),
    ("PATCH", "/api/demands/{demand_id}"): Case(
        lambda w: (f"/api/demands/{new_demand(w)}", {"json": {"title": "改过"}}),
        statuses(200, STAFF + ("enterprise",), other_enterprise=404)),
    ("DELETE", "/api/demands/{demand_id}"): Case(
        lambda w: (f"/api/demands/{new_demand(w)}", {}),
        statuses(204, STAFF + ("enterprise",), other_enterprise=404)),
    ("GET", "/api/demands/{demand_id}/matches"): Case(
        get("/api/demands/D2/matches"), statuses(200, STAFF + ("enterprise",), other_enterprise=404)),
    ("POST", "/api/demands/{demand_id}/matches"): Case(
        lambda w: ("/api/demands/D2/matches", {"json": {"k": 3}}),
        statuses(200, STAFF + ("enterprise",), other_enterprise=404)),
    ("POST", "/api/demands/search"): Case(
        lambda w: ("/api/demands/search", {"json": {"text": "低温涂层"}}),
        statuses(200, STAFF + ("institute", "other_institute"))),
    ("POST", "/api/match"): Case(lambda w: ("/api/match", {"json": {"text": "低温涂层"}}), statuses(200)),
    ("GET", "/api/partners/{partner_id}/demands"): Case(
        get("/api/partners/P1/demands"), statuses(200, STAFF + ("institute",))),
    # -- capabilities: an institute edits only its own partner's
    ("GET", "/api/capabilities"): Case(get("/api/capabilities"), statuses(200)),
    ("POST", "/api/capabilities"): Case(
        lambda w: ("/api/capabilities", {"json": {"partner_id": "P1", "title": "新能力"}}),
        statuses(201, STAFF + ("institute",))),
    ("GET", "/api/capabilities/{capability_id}"): Case(get("/api/capabilities/C1"), statuses(200)),
    ("PATCH", "/api/capabilities/{capability_id}"): Case(
        lambda w: (f"/api/capabilities/{new_capability(w)}", {"json": {"title": "改过"}}),
        statuses(200, STAFF + ("institute",))),
    ("DELETE", "/api/capabilities/{capability_id}"): Case(
        lambda w: (f"/api/capabilities/{new_capability(w)}", {}), statuses(204, STAFF + ("institute",))),
    # -- partners: everyone reads, staff write
    ("GET", "/api/partners"): Case(get("/api/partners"), statuses(200)),
    ("POST", "/api/partners"): Case(lambda w: ("/api/partners", {"json": {"name": "新单位"}}), statuses(201, STAFF)),
    ("GET", "/api/partners/{partner_id}"): Case(get("/api/partners/P1"), statuses(200)),
    ("PATCH", "/api/partners/{partner_id}"): Case(
        lambda w: (f"/api/partners/{new_partner(w)}", {"json": {"region": "建华区"}}), statuses(200, STAFF)),
    ("DELETE", "/api/partners/{partner_id}"): Case(
        lambda w: (f"/api/partners/{new_partner(w)}", {}), statuses(204, STAFF)),
    # -- feedback, imports: staff; tokens: admin
    ("POST", "/api/feedback"): Case(
        lambda w: ("/api/feedback", {"json": {"demand_id": "D1", "partner_id": "P1", "status": "contacted"}}),
        statuses(201, STAFF)),
    ("GET", "/api/feedback"): Case(get("/api/feedback"), statuses(200, STAFF)),
    ("GET", "/api/feedback/export"): Case(get("/api/feedback/export"), statuses(200, STAFF)),
    ("POST", "/api/feedback/bulk"): Case(
        lambda w: ("/api/feedback/bulk", {"json": {"items": [{"demand_id": "D1", "partner_id": "P1",
                                                               "status": "suggested"}]}}), statuses(201, STAFF)),
    ("POST", "/api/feedback/from-conference/{job_id}"): Case(
        lambda w: (f"/api/feedback/from-conference/{finished_job(w)}", {}), statuses(201, STAFF)),
    ("POST", "/api/feedback/import"): Case(pipeline_csv("/api/feedback/import"), statuses(201, STAFF)),
    ("GET", "/api/funnel"): Case(get("/api/funnel"), statuses(200, STAFF)),
    ("GET", "/api/funnel.xlsx"): Case(get("/api/funnel.xlsx"), statuses(200, STAFF)),
    ("GET", "/api/learning/models"): Case(get("/api/learning/models"), statuses(200, STAFF)),
    ("POST", "/api/learning/train"): Case(lambda w: ("/api/learning/train", {}), statuses(200, STAFF)),
    ("POST", "/api/learning/rollback"): Case(lambda w: ("/api/learning/rollback", {}), statuses(409, STAFF)),
    ("POST", "/api/imports/{kind}"): Case(partners_csv, statuses(200, STAFF)),
    ("GET", "/api/tokens"): Case(get("/api/tokens"), statuses(200, ("admin",))),
    ("POST", "/api/tokens"): Case(lambda w: ("/api/tokens", {"json": {"name": "x", "role": "staff"}}),
                                  statuses(201, ("admin",))),
    ("DELETE", "/api/tokens/{token_id}"): Case(lambda w: (f"/api/tokens/{new_token(w)}", {}),
                                               statuses(204, ("admin",))),
    # -- conference jobs, landscape, duplicate decisions: staff
    ("POST", "/api/conference/jobs"): Case(lambda w: ("/api/conference/jobs", {"json": JOB}), statuses(202, STAFF)),
    ("GET", "/api/conference/jobs"): Case(get("/api/conference/jobs"), statuses(200, STAFF)),
    ("GET", "/api/conference/jobs/{job_id}"): Case(
        lambda w: (f"/api/conference/jobs/{finished_job(w)}", {}), statuses(200, STAFF)),
    ("POST", "/api/conference/jobs/{job_id}/resume"): Case(
        lambda w: (f"/api/conference/jobs/{interrupted_job(w)}/resume", {}), statuses(202, STAFF)),
    ("GET", "/api/conference/jobs/{job_id}/files"): Case(
        lambda w: (f"/api/conference/jobs/{finished_job(w)}/files", {}), statuses(200, STAFF)),
    ("GET", "/api/conference/jobs/{job_id}/files/{name:path}"): Case(
        lambda w: (f"/api/conference/jobs/{finished_job(w)}/files/conference.xlsx", {}), statuses(200, STAFF)),
    ("GET", "/api/landscape"): Case(built("/api/landscape"), statuses(200, STAFF)),
    ("GET", "/api/landscape.xlsx"): Case(built("/api/landscape.xlsx"), statuses(200, STAFF)),
    ("POST", "/api/demands/links"): Case(
        lambda w: ("/api/demands/links", {"json": {"action": "link", "demand_ids": ["D1", "D3"]}}),
        statuses(200, STAFF)),
    # -- web pages (cookie)
    ("GET", "/login"): Case(get("/login"), PUBLIC, page=True),
    ("POST", "/login"): Case(None, statuses(303, unauth=401), page=True),  # request built per role
    ("POST", "/logout"): Case(lambda w: ("/logout", {}), dict.fromkeys(ROLES, 303), page=True),
    ("GET", "/"): Case(get("/"), dict.fromkeys(ROLES, 303), page=True),
    ("GET", "/demands"): Case(get("/demands"), statuses(200, unauth=PAGE_ANON), page=True),
    ("GET", "/demands/{demand_id}"): Case(
        get("/demands/D2"), statuses(200, STAFF + ("enterprise",), denied=404, unauth=PAGE_ANON), page=True),
    ("POST", "/demands/{demand_id}/feedback"): Case(
        lambda w: ("/demands/D1/feedback", {"data": {"partner_id": "P1", "status": "contacted"}}),
        statuses(303, STAFF, unauth=PAGE_ANON), page=True),
    ("GET", "/feedback/export"): Case(get("/feedback/export"), statuses(200, STAFF, unauth=PAGE_ANON), page=True),
    ("GET", "/upload"): Case(get("/upload"), statuses(200, STAFF, unauth=PAGE_ANON), page=True),
    ("GET", "/funnel"): Case(get("/funnel"), statuses(200, STAFF, unauth=PAGE_ANON), page=True),
    ("GET", "/funnel.xlsx"): Case(get("/funnel.xlsx"), statuses(200, STAFF, unauth=PAGE_ANON), page=True),
    ("POST", "/funnel/train"): Case(lambda w: ("/funnel/train", {}), statuses(200, STAFF, unauth=PAGE_ANON),
                                    page=True),
    ("POST", "/funnel/rollback"): Case(lambda w: ("/funnel/rollback", {}), statuses(303, STAFF, unauth=PAGE_ANON),
                                       page=True),
    ("POST", "/funnel/import"): Case(pipeline_csv("/funnel/import"), statuses(303, STAFF, unauth=PAGE_ANON),
                                     page=True),
    ("POST", "/upload"): Case(upload_page, statuses(200, STAFF, unauth=PAGE_ANON), page=True),
    ("GET", "/institute"): Case(get("/institute"),
                                statuses(200, ("institute", "other_institute"), unauth=PAGE_ANON), page=True),
    ("GET", "/conference"): Case(get("/conference"), statuses(200, STAFF, unauth=PAGE_ANON), page=True),
    ("POST", "/conference"): Case(lambda w: ("/conference", {"data": JOB_FORM}),
                                  statuses(303, STAFF, unauth=PAGE_ANON), page=True),
    ("POST", "/conference/jobs/{job_id}/resume"): Case(
        lambda w: (f"/conference/jobs/{interrupted_job(w)}/resume", {}),
        statuses(303, STAFF, unauth=PAGE_ANON), page=True),
    ("GET", "/conference/jobs/{job_id}"): Case(lambda w: (f"/conference/jobs/{finished_job(w)}", {}),
                                               statuses(200, STAFF, unauth=PAGE_ANON), page=True),
    ("POST", "/conference/jobs/{job_id}/replan"): Case(
        lambda w: (f"/conference/jobs/{finished_job(w)}/replan", {"data": {"keep": []}}),
        statuses(303, STAFF, unauth=PAGE_ANON), page=True),
    ("GET", "/conference/jobs/{job_id}/files/{name:path}"): Case(
        lambda w: (f"/conference/jobs/{finished_job(w)}/files/agendas/index.html", {}),
        statuses(200, STAFF, unauth=PAGE_ANON), page=True),
    ("GET", "/landscape"): Case(get("/landscape"), statuses(200, STAFF, unauth=PAGE_ANON), page=True),
    ("GET", "/landscape/report"): Case(built("/landscape/report"), statuses(200, STAFF, unauth=PAGE_ANON),
                                       page=True),
    ("GET", "/landscape.xlsx"): Case(built("/landscape.xlsx"), statuses(200, STAFF, unauth=PAGE_ANON), page=True),
    # -- demand form, review queue, partner and capability pages
    ("GET", "/demands/new"): Case(get("/demands/new"), statuses(200, FILERS, unauth=PAGE_ANON), page=True),
    ("POST", "/demands/new"): Case(lambda w: ("/demands/new", {"data": DEMAND_FORM}),
                                   statuses(303, FILERS, unauth=PAGE_ANON), page=True),
    ("POST", "/demands/assist"): Case(lambda w: ("/demands/assist", {"data": DEMAND_FORM}),
                                      statuses(200, FILERS, unauth=PAGE_ANON), page=True),
    ("GET", "/demands/{demand_id}/edit"): Case(
        lambda w: (f"/demands/{pending_demand(w)}/edit", {}),
        statuses(200, STAFF + ("enterprise",), unauth=PAGE_ANON, other_enterprise=404), page=True),
    ("POST", "/demands/{demand_id}/edit"): Case(
        lambda w: (f"/demands/{pending_demand(w)}/edit", {"data": DEMAND_FORM}),
        statuses(303, STAFF + ("enterprise",), unauth=PAGE_ANON, other_enterprise=404), page=True),
    ("GET", "/review"): Case(get("/review"), statuses(200, STAFF, unauth=PAGE_ANON), page=True),
    ("POST", "/demands/{demand_id}/review"): Case(
        lambda w: (f"/demands/{pending_demand(w)}/review", {"data": {"action": "publish"}}),
        statuses(303, STAFF, unauth=PAGE_ANON), page=True),
    ("GET", "/partners/{partner_id}"): Case(get("/partners/P1"), statuses(200, unauth=PAGE_ANON), page=True),
    ("GET", "/capabilities/{capability_id}"): Case(get("/capabilities/C1"), statuses(200, unauth=PAGE_ANON),
                                                   page=True),
    ("POST", "/landscape/links"): Case(lambda w: ("/landscape/links", {"data": {"action": "link", "ids": "D1,D3"}}),
                                       statuses(303, STAFF, unauth=PAGE_ANON), page=True),
}


def walk_routes(routes, prefix: str = ""):
    """(prefix, route) for every route, descending into included routers (newer FastAPI
    keeps `include_router` results as nested router objects in `app.routes`)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from walk_routes(inner.routes, prefix + getattr(route.include_context, "prefix", ""))
        else:
            yield prefix, route


def app_routes(app) -> set[tuple[str, str]]:
    found = set()
    for prefix, route in walk_routes(app.routes):
        if isinstance(route, Mount):
            found.add(("MOUNT", prefix + route.path))
        elif isinstance(route, (APIRoute, Route)):
            found.update((m, prefix + route.path) for m in route.methods - {"HEAD"})
        else:  # pragma: no cover - a new kind of route needs a decision here
            found.add((type(route).__name__, prefix + getattr(route, "path", "?")))
    return found


@pytest.fixture(scope="module")
def shared_world(tmp_path_factory):
    """One seeded app for the whole matrix (cases that change data make their own targets),
    its index built: a case may be the first this process runs (`/readyz` expects 200)."""
    from service_testkit import make_settings, running, seed

    from matcher.retrieval.encoders import FakeEncoder
    from service.app import create_app

    with running(create_app(make_settings(tmp_path_factory.mktemp("matrix")), encoder=FakeEncoder())) as client:
        world = World(client, client.app.state.ctx.settings)
        world.tokens = seed(client)
        yield world


def test_every_route_is_in_the_matrix(shared_world):
    routes = app_routes(shared_world.app)
    missing = routes - MATRIX.keys()
    assert not missing, f"routes without an authorisation entry: {sorted(missing)}"
    stale = {key for key, case in MATRIX.items() if not case.optional} - routes
    assert not stale, f"matrix entries for routes that no longer exist: {sorted(stale)}"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("key", list(MATRIX), ids=lambda k: f"{k[0]} {k[1]}")
def test_route_role(shared_world, key, role):
    case = MATRIX[key]
    world = shared_world
    if key not in app_routes(world.app):
        pytest.skip(f"{key} is optional and not installed here")
    url, kwargs = login_request(world, role) if key == ("POST", "/login") else case.request(world)
    auth = world.cookie(role) if case.page else world.h(role)
    headers = {**kwargs.pop("headers", {}), **auth}
    method = "GET" if key[0] == "MOUNT" else key[0]
    world.client.cookies.clear()
    r = world.client.request(method, url, headers=headers, follow_redirects=False, **kwargs)
    world.client.cookies.clear()
    assert r.status_code == case.expect[role], f"{key} as {role}: {r.status_code} {r.text[:300]}"
    if r.status_code >= 400 and not case.page:
        assert set(r.json()["error"]) == {"status", "code", "message", "details"}
    if r.status_code == 401 and not case.page:
        assert r.headers.get("www-authenticate") == "Bearer"
