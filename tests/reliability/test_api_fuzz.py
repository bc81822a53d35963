"""Guarantee 2, API fuzzing: no request generated from the service's own OpenAPI schema gets a
5xx from the real server.

schemathesis turns `/openapi.json` of a running `techmatch serve --model fake` into Hypothesis
strategies, one per operation, in both modes: positive (requests the schema allows) and
negative (requests it forbids: wrong types, missing fields, bad path and query values). Each
request goes out as a random role (admin and staff most often, so the deep paths run; also
institute, enterprise and whatever credentials schemathesis invented), and path parameters are
often swapped for ids that exist (a confidential demand, an unpublished one, a partner with
capabilities), so the generated requests reach the code behind the 404s.

Checked for every response: status < 500; an /api answer of 4xx has the one error body; and
every schemathesis check (`--checks all`: status codes, content types, headers and bodies as
the schema declares them, negative data rejected, positive data accepted, auth not ignored,
missing headers, unsupported methods, ...) through `case.validate_response`. A failed check is
recorded and the run goes on (no shrinking: the CI run keeps its size); the test then lists them
all. After the run: the server log holds no unhandled error and /readyz says the index is in step.
"""

from __future__ import annotations

import collections
import contextlib
import time

import httpx
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from reliability_kit import REPO, ServerProcess, bearer, seed_http, write_figures

schemathesis = pytest.importorskip("schemathesis", minversion="4.0",
                                   reason="pip install 'schemathesis>=4' to fuzz the API")
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.config import SchemathesisConfig  # noqa: E402
from schemathesis.core.errors import SerializationNotPossible  # noqa: E402
from schemathesis.core.failures import Failure, FailureGroup  # noqa: E402

from service.jobs.conference import STATE_PROBLEMS  # noqa: E402

CI_EXAMPLES, SOAK_EXAMPLES = 20, 400
ROLES = ["admin", "admin", "admin", "staff", "staff", "institute", "enterprise", "generated"]
KNOWN = {"demand_id": ["D1", "D2", "D4"], "partner_id": ["P1", "P2"], "capability_id": ["C1", "C3"],
         "kind": ["demands", "capabilities", "partners"], "name": ["assignment.csv", "../../etc/passwd"]}
# Answered 503 "not_ready" by design while a derived view is (re)built in the background.
NOT_READY_BY_DESIGN = {"/readyz", "/api/landscape", "/api/landscape.xlsx"}
FIGURES: collections.Counter = collections.Counter()
CHECK_FAILURES: dict[tuple[str, str], list[str]] = {}  # (operation, check title) -> examples
# The schema states every input rule JSON Schema can state (service/schemas.py), and a request
# refused for what the stored records say gets a 409, so every check must pass. The rules JSON
# Schema cannot state are declared to schemathesis in the repository's schemathesis.toml (a 422
# is an accepted answer to a schema-valid request on their operations; docs/reliability.md lists
# each with its reason). That declaration accepts any 422 there; this test is stricter: such a
# 422 must be for the rule alone (the error's code, or every problem's code, is the rule's) and
# is counted (`check_failures_not_expressible_<rule>`); any other 422 fails the test.
CONFIG = REPO / "schemathesis.toml"
STATE = STATE_PROBLEMS  # problems of the stored records (409 when they are the only ones)
NOT_EXPRESSIBLE = {
    # an uploaded file's rows and columns (and the mapping or sheet naming them): not a schema's
    "file_content": ({"POST /api/imports/{kind}", "POST /api/feedback/import"}, {"invalid_input"}),
    # a window's start before its end; slots that overlap or fit no slot; min_per_demand <=
    # max_per_demand; at most one rule of each kind: comparisons between values (the answer lists
    # every problem: ids the database lacks, 409 alone, may come with them)
    "conference_values": ({"POST /api/conference/jobs"},
                          {"bad_window", "conf_no_slot", "slots_overlap", "min_above_max", "rule_twice"}),
    # required of staff, defaulted for an institute: a rule of the caller's role
    "partner_of_role": ({"POST /api/capabilities"}, {"partner_id_required"}),
}
DECLARED_422 = set().union(*(ops for ops, _ in NOT_EXPRESSIBLE.values()))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = ServerProcess(tmp_path_factory.mktemp("fuzz")).start()
    srv.wait_ready()
    with httpx.Client(base_url=srv.url, timeout=60) as client:
        srv.tokens = seed_http(client, srv)
    yield srv
    srv.stop()


def _operations(schema) -> list:
    ops = [r.ok() for r in schema.get_all_operations()]
    # Deleting the known records last keeps them around for the other operations.
    return sorted(ops, key=lambda op: (op.method.upper() == "DELETE", op.path, op.method))


def _runner(server: ServerProcess, session: requests.Session, op, mode: GenerationMode, examples: int):
    """A Hypothesis test sending `examples` generated requests for one operation."""
    known = {name: KNOWN[name] for name in KNOWN if f"{{{name}}}" in op.path}
    strategies = [op.as_strategy(mode)]
    if known:
        fixed = st.fixed_dictionaries({k: st.sampled_from(v) for k, v in known.items()})
        strategies.append(fixed.flatmap(lambda p: op.as_strategy(mode, path_parameters=p)))

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=st.one_of(*strategies), role=st.sampled_from(ROLES))
    def run(case, role):
        try:
            kwargs = case.as_transport_kwargs(base_url=server.url)
        except SerializationNotPossible:  # e.g. a negative file part as XLSX: nothing can be sent
            FIGURES["unsendable"] += 1
            return
        headers = dict(kwargs.pop("headers", None) or {})
        if role != "generated":
            headers = {k: v for k, v in headers.items() if k.lower() not in ("authorization", "x-api-key")}
            headers.update(bearer(server.tokens[role]))
        kwargs.pop("cookies", None)
        try:
            r = session.request(headers=headers, timeout=60, allow_redirects=False, **kwargs)
        except (requests.exceptions.InvalidURL, requests.exceptions.InvalidHeader, UnicodeError, ValueError):
            FIGURES["unsendable"] += 1  # the client library refused to send it: nothing reached the server
            return
        FIGURES["requests_sent"] += 1
        if r.status_code == 503 and op.path in NOT_READY_BY_DESIGN and r.json()["error"]["code"] == "not_ready":
            FIGURES["status_503_not_ready_by_design"] += 1
            return
        FIGURES[f"status_{r.status_code // 100}xx"] += 1
        assert r.status_code < 500, f"{op.method.upper()} {op.path} as {role}: {r.status_code} {r.text[:300]}"
        if r.status_code >= 400 and op.path.startswith("/api"):
            err = r.json()["error"]
            assert err["status"] == r.status_code and err["code"] and err["message"], r.text[:300]

        def failed(title: str) -> None:
            FIGURES["check_failures"] += 1
            examples = CHECK_FAILURES.setdefault((f"{op.method.upper()} {op.path}", title), [])
            if len(examples) < 2:
                sent = {k: v for k, v in (("path", case.path_parameters), ("query", case.query),
                                          ("body", case.body)) if v}
                examples.append(f"as {role}: {r.status_code} {str(sent)[:200]} -> {r.text[:400]}")

        label = f"{op.method.upper()} {op.path}"
        if mode is GenerationMode.POSITIVE and r.status_code == 422 and label in DECLARED_422:
            rule = _not_expressible(r, op)
            if rule:
                FIGURES[f"check_failures_not_expressible_{rule}"] += 1
            else:
                failed("Schema-valid request rejected (not for a rule schemathesis.toml declares)")
        try:
            case.validate_response(r, headers=headers, transport_kwargs={"base_url": server.url})
        except (Failure, FailureGroup) as exc:
            for failure in getattr(exc, "exceptions", None) or [exc]:
                failed(failure.title)

    return run


def _not_expressible(r, op) -> str | None:
    """The rule of NOT_EXPRESSIBLE behind a 422 to a schema-valid request, or None."""
    err = r.json()["error"]
    codes = {d.get("code") for d in err.get("details") or [] if isinstance(d, dict)} or {err["code"]}
    label = f"{op.method.upper()} {op.path}"
    return next((rule for rule, (ops, allowed) in NOT_EXPRESSIBLE.items()
                 if label in ops and (err["code"] in allowed or (codes & allowed and codes <= allowed | STATE)))
                , None)


def _fuzz(server: ServerProcess, mode: GenerationMode, examples: int) -> None:
    with contextlib.chdir(REPO):  # the file's `hooks` path is relative to the repository root
        config = SchemathesisConfig.from_path(CONFIG)
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json", config=config)
    session = requests.Session()
    failures: list[str] = []
    started = time.perf_counter()
    for op in _operations(schema):
        try:
            _runner(server, session, op, mode, examples)()
        except Unsatisfiable:  # nothing to get wrong: no parameters, no body (negative mode)
            FIGURES["operations_without_negative_cases"] += 1
        except Exception as exc:  # AssertionError, or Hypothesis' FlakyFailure wrapping one
            first = next((ln for ln in str(exc).splitlines() if "as " in ln and ": 5" in ln), str(exc))
            failures.append(f"{op.method.upper()} {op.path}: {first[:400]}")
        FIGURES["operations"] += 1
    FIGURES[f"seconds_{mode.value}"] += round(time.perf_counter() - started, 1)
    assert not failures, "server errors:\n" + "\n".join(failures)
    found = [f"{op} - {title}:\n    " + "\n    ".join(ex) for (op, title), ex in sorted(CHECK_FAILURES.items())]
    CHECK_FAILURES.clear()
    assert not found, f"{len(found)} schemathesis check failures:\n" + "\n".join(found)


@pytest.fixture(scope="module", autouse=True)
def _figures(server):
    FIGURES.clear()
    yield
    errors = server.server_errors()
    FIGURES["server_errors"] += len(errors)
    write_figures("api_fuzz", {**dict(sorted(FIGURES.items())), "inputs_tried": FIGURES["requests_sent"],
                               "records_lost": 0})


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_no_generated_request_gets_a_5xx(server, mode):
    _fuzz(server, mode, CI_EXAMPLES)


@pytest.mark.soak
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_no_5xx_soak(server, mode):
    _fuzz(server, mode, SOAK_EXAMPLES)


# -- the web pages are not in the schema: the same promise, with strategies of our own ------------
text = st.one_of(st.text(max_size=40), st.sampled_from(["<script>alert(1)</script>", "%", "\x00", "涂层" * 300,
                                                          "../../etc/passwd", "' OR 1=1 --", "99999999999999999999"]))
number = st.one_of(st.integers(), st.integers(min_value=2**62), st.sampled_from(["x", "-1", "1e9", "", "NaN"]))
page_requests = st.one_of(
    st.builds(lambda q, ind, reg, mode, page: ("GET", "/demands", {"params": {"q": q, "industry": ind, "region": reg,
                                                                            "mode": mode, "page": page}}),
              text, text, text, st.sampled_from(["keyword", "semantic", "x", ""]), number),
    st.builds(lambda did, k, pt, lang: ("GET", f"/demands/{did}",
                                        {"params": {"k": k, "partner_type": pt, "lang": lang}}),
              st.sampled_from(["D1", "D2", "D4", "nope"]), number, text, st.sampled_from(["zh", "en", "xx", ""])),
    st.builds(lambda q: ("GET", "/institute", {"params": {"q": q}}), text),
    st.builds(lambda nxt: ("GET", "/login", {"params": {"next": nxt}}), text),
    st.builds(lambda tok, nxt: ("POST", "/login", {"data": {"token": tok, "next": nxt}}), text, text),
    st.builds(lambda did, pid, status, reason: ("POST", f"/demands/{did}/feedback",
                                                {"data": {"partner_id": pid, "status": status, "reason": reason}}),
              st.sampled_from(["D1", "D3", "nope"]), st.sampled_from(["P1", "P2", "nope", ""]),
              st.sampled_from(["contacted", "rejected", "x", ""]), text),
    st.builds(lambda did: ("GET", "/feedback/export", {"params": {"demand_id": did}}), text),
    # pages of the conference and landscape features (404 in builds without them)
    st.builds(lambda path, q: ("GET", path, {"params": {"q": q, "status": q, "page": q}}),
              st.sampled_from(["/conference", "/landscape", "/landscape/report", "/landscape.xlsx"]), text),
    st.builds(lambda form: ("POST", "/conference", {"data": form}),
              st.dictionaries(st.sampled_from(["k", "capacity", "slots", "tables", "industry", "title", "demand_ids",
                                               "slot_minutes", "min_score"]), text, max_size=5)),
    st.builds(lambda kind, mapping, name, body: ("POST", "/upload", {"data": {"kind": kind, "mapping": mapping},
                                                                     "files": {"file": (name, body)}}),
              st.sampled_from(["demands", "capabilities", "partners", "x"]), text,
              st.sampled_from(["a.csv", "a.xlsx", "a.jsonl", "a", "a.csv.gz"]), st.binary(max_size=300)),
)


def _fuzz_pages(server: ServerProcess, examples: int) -> None:
    clients = {role: httpx.Client(base_url=server.url, timeout=60, headers={"Accept": "text/html"},
                                  cookies={"techmatch_token": server.tokens[role]})
               for role in ("admin", "staff", "institute", "enterprise")}

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(req=page_requests, role=st.sampled_from(sorted(clients)))
    def run(req, role):
        method, path, kwargs = req
        try:
            r = clients[role].request(method, path, follow_redirects=False, **kwargs)
        except (httpx.InvalidURL, UnicodeError, ValueError):
            FIGURES["unsendable"] += 1
            return
        FIGURES["requests_sent"] += 1
        FIGURES["page_requests"] += 1
        FIGURES[f"status_{r.status_code // 100}xx"] += 1
        assert r.status_code < 500, f"{method} {path} {kwargs} as {role}: {r.status_code} {r.text[:300]}"

    try:
        run()
    finally:
        for c in clients.values():
            c.close()


def test_no_page_request_gets_a_5xx(server):
    _fuzz_pages(server, 150)


@pytest.mark.soak
def test_no_page_5xx_soak(server):
    _fuzz_pages(server, 3000)


def test_after_fuzzing_the_server_is_healthy_and_logged_no_unhandled_error(server):
    """Runs after the fuzzing (file order): nothing crashed behind a 4xx, the index is in step."""
    r = httpx.get(server.url + "/readyz", timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["revision"] == r.json()["index_revision"]
    errors = server.server_errors()
    assert not errors, [e.get("msg") + " " + str(e.get("path", "")) + str(e.get("exc", ""))[-600:] for e in errors]


def test_schemathesis_toml_declares_exactly_the_rules_this_test_counts():
    """The CLI and this test read the same declaration: the operations where a 422 may answer a
    schema-valid request are this file's NOT_EXPRESSIBLE operations, no more; a 503 only where it
    is `not_ready` by design."""
    import tomllib

    declared = tomllib.loads(CONFIG.read_text(encoding="utf-8"))["operations"]
    positive = [d for d in declared if "positive_data_acceptance" in d.get("checks", {})]
    assert {name for d in positive for name in d["include-name"]} == DECLARED_422
    for d in positive:
        statuses = d["checks"]["positive_data_acceptance"]["expected-statuses"]
        assert "422" in statuses and "400" not in statuses and "4xx" not in statuses
    not_5xx = [d for d in declared if "not_a_server_error" in d.get("checks", {})]
    assert {name for d in not_5xx for name in d["include-name"]} == {f"GET {p}" for p in NOT_READY_BY_DESIGN}
    for d in not_5xx:
        assert set(d["checks"]["not_a_server_error"]["expected-statuses"]) - {"2xx", "3xx", "4xx"} == {"503"}
