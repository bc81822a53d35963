"""API tokens and the principal behind a request.

Tokens are random secrets shown once; the database keeps only their SHA-256. Each token has
a role (admin, staff, institute, enterprise), an institute token is bound to a partner id and
an enterprise token to an enterprise name (the `owner` of its demands). `TECHMATCH_ADMIN_TOKEN`
is an admin token that lives only in the environment.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.engine import Connection

from service.storage.db import tokens, utcnow

STAFF_ROLES = frozenset({"admin", "staff"})


@dataclass(frozen=True)
class Principal:
    """Who is calling: role, a display name (recorded as "who" on feedback) and bindings."""

    role: str
    name: str
    token_id: str | None = None
    partner_id: str | None = None
    enterprise: str | None = None
    # `extra` fields the bureau made public (Settings.public_extra_fields); every other one is staff-only
    public_extra: frozenset[str] = frozenset()

    @property
    def is_staff(self) -> bool:
        """Bureau staff or admin: sees and edits everything."""
        return self.role in STAFF_ROLES


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return "tm_" + secrets.token_urlsafe(32)


_BY_HASH = select(tokens).where(tokens.c.token_hash == bindparam("digest"))  # built once: every request reads it


def resolve(conn: Connection, token: str, admin_token: str | None) -> Principal | None:
    """The principal for a presented token, or None when unknown or expired."""
    if not token or len(token) > 512:
        return None
    digest = hash_token(token)
    if admin_token and hmac.compare_digest(digest, hash_token(admin_token)):
        return Principal(role="admin", name="admin (environment)")
    row = conn.execute(_BY_HASH, {"digest": digest}).first()
    if row is None:
        return None
    if row.expires_at is not None and row.expires_at <= utcnow():
        return None
    return Principal(role=row.role, name=row.name, token_id=row.id, partner_id=row.partner_id,
                     enterprise=row.enterprise)


def create_token(conn: Connection, *, name: str, role: str, partner_id: str | None = None,
                 enterprise: str | None = None, expires_in_days: int | None = None,
                 secret: str | None = None) -> tuple[dict, str]:
    """Store a new token; returns (row, secret). `secret` fixes the value (demo tokens)."""
    secret = secret or new_token()
    now = utcnow()
    row = {"id": "tok_" + secrets.token_hex(6), "name": name, "token_hash": hash_token(secret), "role": role,
           "partner_id": partner_id, "enterprise": enterprise, "created_at": now,
           "expires_at": now + timedelta(days=expires_in_days) if expires_in_days else None}
    conn.execute(insert(tokens).values(**row))
    return row, secret


def token_exists(conn: Connection, secret: str) -> bool:
    return conn.execute(select(tokens.c.id).where(tokens.c.token_hash == hash_token(secret))).first() is not None


def list_tokens(conn: Connection) -> list[dict]:
    return [dict(r._mapping) for r in conn.execute(select(tokens).order_by(tokens.c.created_at, tokens.c.id))]


def delete_token(conn: Connection, token_id: str) -> bool:
    return conn.execute(delete(tokens).where(tokens.c.id == token_id)).rowcount > 0
