"""Department tokens (部门令牌) for the internal OGC API.

A token is a random secret shown once when created; the database keeps only its SHA-256
(the secret has 256 bits of entropy, so a fast hash is enough), a short hint to tell tokens
apart, the department, and the collections it grants (`*` grants every layer).

Servers may keep checks in memory (`GrantCache`) for a short time: a revocation (any update or
delete of the table) sends `NOTIFY onemap_token_change` at commit, and a listening server
forgets every cached check at once (app/notify.py); without the listener, the time-to-live bounds
how long a revoked token keeps working.
"""
from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, text

from layers import REGISTRY

TOKEN_PREFIX = "omt_"
ALL = "*"
CHANNEL = "onemap_token_change"

NOTIFY_DDL = [
    "CREATE FUNCTION department_token_notify() RETURNS trigger LANGUAGE plpgsql AS $$ "
    f"BEGIN PERFORM pg_notify('{CHANNEL}', TG_OP); RETURN NULL; END $$",
    "COMMENT ON FUNCTION department_token_notify() IS 'Tells servers to forget cached token checks'",
    "CREATE TRIGGER department_token_notify AFTER UPDATE OR DELETE ON department_token "
    "FOR EACH STATEMENT EXECUTE FUNCTION department_token_notify()",
]
DROP_NOTIFY_DDL = ["DROP TRIGGER IF EXISTS department_token_notify ON department_token",
                   "DROP FUNCTION IF EXISTS department_token_notify()"]


class TokenError(ValueError):
    pass


@dataclass(frozen=True)
class Grant:
    id: int
    department: str
    collections: frozenset[str]
    hint: str
    created_at: datetime
    revoked_at: datetime | None
    note: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, collection: str) -> bool:
        return ALL in self.collections or collection in self.collections

    def granted(self, available: list[str]) -> frozenset[str]:
        return frozenset(c for c in available if self.allows(c))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create(conn: Connection, department: str, collections: list[str], note: str | None = None) -> tuple[str, Grant]:
    """Issue a token; returns (the secret, shown only now, and its grant)."""
    department = department.strip()
    if not department:
        raise TokenError("department must not be empty")
    wanted = [c.strip() for c in collections if c.strip()]
    if not wanted:
        raise TokenError("grant at least one collection (or '*' for all)")
    unknown = [c for c in wanted if c != ALL and c not in REGISTRY]
    if unknown:
        raise TokenError(f"unknown collection(s): {', '.join(unknown)}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = conn.execute(text(
        "INSERT INTO department_token (department, token_hash, token_hint, collections, note) "
        "VALUES (:d, :h, :hint, :c, :n) RETURNING id, department, collections, token_hint, created_at, "
        "revoked_at, note"),
        {"d": department, "h": token_hash(token), "hint": token[:10], "c": sorted(set(wanted)), "n": note}).one()
    return token, _grant(row)


def verify(conn: Connection, token: str) -> Grant | None:
    """The active grant of `token`, or None when it is unknown or revoked."""
    if not token or len(token) > 200:
        return None
    row = conn.execute(text(
        "SELECT id, department, collections, token_hint, created_at, revoked_at, note FROM department_token "
        "WHERE token_hash = :h AND revoked_at IS NULL"), {"h": token_hash(token)}).first()
    return _grant(row) if row else None


class GrantCache:
    """Active grants checked in the last `ttl` seconds, by token hash. Unknown or revoked tokens are
    never cached (a new token works at once); `clear()` forgets everything (on a revocation)."""

    def __init__(self, ttl: float = 30.0):
        self.ttl = ttl
        self._grants: dict[str, tuple[Grant, float]] = {}
        self._generation = 0
        self._lock = threading.Lock()

    def get(self, token: str) -> Grant | None:
        """The cached grant of `token`, or None when it must be checked in the database."""
        entry = self._grants.get(token_hash(token))
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def verify(self, conn: Connection, token: str) -> Grant | None:
        """Like `verify`, from the cache when possible."""
        grant = self.get(token)
        if grant is not None:
            return grant
        generation = self._generation
        grant = verify(conn, token)
        with self._lock:
            # a clear() while the database was asked may be a revocation this answer missed
            if grant is not None and generation == self._generation:
                self._grants[token_hash(token)] = (grant, time.monotonic() + self.ttl)
        return grant

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._grants = {}


def list_all(conn: Connection) -> list[Grant]:
    rows = conn.execute(text(
        "SELECT id, department, collections, token_hint, created_at, revoked_at, note FROM department_token "
        "ORDER BY id")).all()
    return [_grant(r) for r in rows]


def revoke(conn: Connection, token_id: int) -> Grant:
    row = conn.execute(text(
        "UPDATE department_token SET revoked_at = coalesce(revoked_at, now()) WHERE id = :i "
        "RETURNING id, department, collections, token_hint, created_at, revoked_at, note"), {"i": token_id}).first()
    if row is None:
        raise TokenError(f"no token with id {token_id}")
    return _grant(row)


def _grant(row) -> Grant:
    return Grant(id=row.id, department=row.department, collections=frozenset(row.collections),
                 hint=row.token_hint, created_at=row.created_at, revoked_at=row.revoked_at, note=row.note)
