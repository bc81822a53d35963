"""Request dependencies and their aliases (`CtxDep`, `PrincipalDep`, `StaffDep` ...)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import Field, StringConstraints
from sqlalchemy import Engine

from service.auth.tokens import Principal, resolve
from service.errors import Forbidden, Unauthenticated
from service.jobs.live import LiveIndex
from service.settings import Settings

if TYPE_CHECKING:
    from service.jobs.conference import ConferenceJobs
    from service.jobs.landscape import LandscapeCache
    from service.storage.impressions import ImpressionLog


@dataclass
class Context:
    """What the app holds for its requests: settings, the database and the live index, plus
    the conference job runner and the landscape cache (see `app.create_app`)."""

    settings: Settings
    db: Engine
    live: LiveIndex
    jobs: ConferenceJobs | None = None
    landscape: LandscapeCache | None = None
    impressions: ImpressionLog | None = None

    def admin_token(self) -> str | None:
        tok = self.settings.admin_token
        return tok.get_secret_value() if tok else None

    def principal_for(self, token: str | None) -> Principal | None:
        if not token:
            return None
        with self.db.connect() as conn:
            principal = resolve(conn, token, self.admin_token())
        if principal is None:
            return None
        return replace(principal, public_extra=self.settings.public_extra())

    def k(self, requested: int | None) -> int:
        return max(1, min(requested or self.settings.default_k, self.settings.max_k))


# Dependencies that neither block nor take long are coroutines: FastAPI runs a plain function
# dependency in its thread pool, a hop to another thread and back for every request.
async def get_ctx(request: Request) -> Context:
    return request.app.state.ctx


CtxDep = Annotated[Context, Depends(get_ctx)]

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <token>`")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="or `X-API-Key: <token>`")


def current_principal(
    request: Request,
    ctx: CtxDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> Principal:
    """The caller, from a bearer token or an X-API-Key header; 401 when missing or invalid."""
    token = bearer.credentials if bearer else api_key
    if not token:
        raise Unauthenticated("a token is required (Authorization: Bearer <token> or X-API-Key)")
    principal = ctx.principal_for(token)
    if principal is None:
        raise Unauthenticated("unknown or expired token")
    request.state.role = principal.role
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: str):
    """A dependency admitting only the given roles (403 for the others)."""

    async def check(principal: PrincipalDep) -> Principal:
        if principal.role not in roles:
            raise Forbidden(f"the role '{principal.role}' may not do this (needs: {', '.join(roles)})")
        return principal

    return check


StaffDep = Annotated[Principal, Depends(require_roles("admin", "staff"))]
AdminDep = Annotated[Principal, Depends(require_roles("admin"))]
StaffOrEnterpriseDep = Annotated[Principal, Depends(require_roles("admin", "staff", "enterprise"))]
StaffOrInstituteDep = Annotated[Principal, Depends(require_roles("admin", "staff", "institute"))]


@dataclass
class Paging:
    limit: int
    offset: int


def paging(limit: Annotated[int, Query(ge=1, le=500)] = 50,
           offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0) -> Paging:  # SQL integers are finite
    return Paging(limit, offset)


PagingDep = Annotated[Paging, Depends(paging)]
# Free text and filters reach SQL (LIKE patterns, PostgreSQL text): bounded, and never a NUL.
MAX_QUERY_CHARS = 500
_NO_NUL = r"^[^\x00]*$"
FilterList = Annotated[list[Annotated[str, StringConstraints(max_length=200, pattern=_NO_NUL)]] | None, Query()]


def filter_list(max_items: int):
    """A list filter of at most `max_items` values (the matching options' limits), in the schema too."""
    return Annotated[Annotated[list[Annotated[str, StringConstraints(max_length=200, pattern=_NO_NUL)]],
                               Field(max_length=max_items)] | None, Query()]
SearchQuery = Annotated[str | None, Query(max_length=MAX_QUERY_CHARS, pattern=_NO_NUL,
                                          description=f"words to find (at most {MAX_QUERY_CHARS} characters)")]
PageQuery = Annotated[str, Query(max_length=MAX_QUERY_CHARS, pattern=_NO_NUL)]


async def known_query_parameters(request: Request) -> None:
    """An API request with a query parameter its operation does not declare is a 422, as an
    unknown field of a body is: a misspelt filter (`?industy=`) is an error, not a silent no-op,
    and a value the query string cannot carry (an object spread into keys of its own) is refused.
    What an operation declares is read from the OpenAPI schema itself."""
    if not request.query_params or not request.url.path.startswith("/api/"):
        return
    route = request.scope.get("route")
    declared = _declared_query(request.app, getattr(route, "path_format", None), request.method.lower())
    unknown = sorted(set(request.query_params) - declared) if declared is not None else []
    if unknown:
        raise RequestValidationError([{"loc": ("query", name), "msg": "unknown query parameter",
                                       "type": "extra_forbidden", "input": request.query_params[name]}
                                      for name in unknown])


def _declared_query(app, path: str | None, method: str) -> set[str] | None:
    return declared_query_table(app).get((path, method))


def declared_query_table(app) -> dict[tuple[str, str], set[str]]:
    """(path, method) -> the query parameters the operation declares, from the OpenAPI schema
    (made once: 0.2 s, which the service spends at start-up, off the event loop)."""
    table = getattr(app.state, "declared_query", None)
    if table is None:
        table = {(p, m): {x["name"] for x in op.get("parameters", []) if x.get("in") == "query"}
                 for p, ops in app.openapi().get("paths", {}).items() for m, op in ops.items()}
        app.state.declared_query = table
    return table
