"""Staff accounts (工作人员账号): roles, region scope, passwords, lock-out.

Roles: `admin` (管理员), `supervisor` (监管人员), `inspector` (执法/核查人员), `clerk`
(数据采集员). Each account has a region scope, a GB/T 2260 code: the province (220000), a
prefecture-level city (220100) or a county (220102); `StaffUser.covers(code)` says whether a
region code lies inside it.

Passwords are hashed with argon2id (argon2-cffi's RFC 9106 low-memory profile: 64 MiB, 3
passes); hashes are upgraded at the next login when the parameters change. After
`MAX_FAILURES` wrong passwords in a row an account is locked for `LOCK_MINUTES` (both
counted in the database, so every worker process sees them). `session_epoch` grows when the
password is set or the account disabled: sessions opened before are then refused.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Connection, text

from layers.registry import STAFF_ROLES

ROLES = STAFF_ROLES
ROLE_TITLES = {"admin": "管理员 Administrator", "supervisor": "监管人员 Supervisor",
               "inspector": "执法核查人员 Inspector", "clerk": "数据采集员 Data clerk"}
MAX_FAILURES = 5
LOCK_MINUTES = 15
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,62}")
REGION = re.compile(r"[1-9]\d{5}")

HASHER = PasswordHasher()
# Verified when the username is unknown, so that a wrong name costs as long as a wrong password.
# A hash made once by HASHER (argon2id, its default cost), written here: hashing it at import
# cost every process, CLI commands included, ~0.2 s (tests/test_auth.py checks its cost is HASHER's).
_DUMMY_HASH = "$argon2id$v=19$m=65536,t=3,p=4$FciDr0nxU4O07DKmRXqNag$ESrhyS9R1BpRjTCo6oZ7C6QpHmQTZwOV4HhhzsP+Qko"

_COLUMNS = ("id, username, display_name, role, region_code, active, session_epoch, failed_logins, "
            "locked_until, last_login_at, created_at")


class AccountError(ValueError):
    """A bad account request (unknown user, weak password, bad role or region), with its reason."""


class LoginOutcome(str, Enum):
    OK = "ok"
    WRONG = "wrong"          # unknown user, wrong password or disabled account: one answer for all three
    LOCKED = "locked"


@dataclass(frozen=True)
class StaffUser:
    id: int
    username: str
    display_name: str
    role: str
    region_code: str
    active: bool
    session_epoch: int
    failed_logins: int
    locked_until: datetime | None
    last_login_at: datetime | None
    created_at: datetime

    @property
    def region_prefix(self) -> str:
        return region_prefix(self.region_code)

    def covers(self, code: str | None) -> bool:
        """Whether region `code` (a province, city or county) lies inside this user's scope."""
        return bool(code) and code.startswith(self.region_prefix) and len(code) == 6

    def has_role(self, *roles: str) -> bool:
        """An administrator holds every role."""
        return self.role == "admin" or self.role in roles

    def public(self) -> dict:
        return {"username": self.username, "display_name": self.display_name, "role": self.role,
                "role_title": ROLE_TITLES[self.role], "region_code": self.region_code}


@dataclass(frozen=True)
class Login:
    outcome: LoginOutcome
    user: StaffUser | None = None
    locked_until: datetime | None = None


def region_prefix(code: str) -> str:
    """The code prefix every region inside `code` shares: 220000 → 22, 220100 → 2201, 220102 → 220102."""
    if code.endswith("0000"):
        return code[:2]
    if code.endswith("00"):
        return code[:4]
    return code


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password must have at least {MIN_PASSWORD} characters (密码至少 {MIN_PASSWORD} 位)")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"the password must have at most {MAX_PASSWORD} characters")
    if password != password.strip() or "\n" in password:
        raise AccountError("the password must not start or end with spaces or hold a line break")


def _check_region(conn: Connection, code: str) -> None:
    if not REGION.fullmatch(code):
        raise AccountError(f"region {code!r} is not a 6-digit GB/T 2260 code (e.g. 220000, 220100, 220102)")
    divisions = conn.execute(text("SELECT count(*) FROM admin_division")).scalar_one()
    if divisions and not conn.execute(text("SELECT 1 FROM admin_division WHERE code = :c"), {"c": code}).first():
        raise AccountError(f"region {code}: no such administrative division in admin_division")


def create(conn: Connection, username: str, password: str, *, role: str, region_code: str,
           display_name: str | None = None) -> StaffUser:
    username = username.strip().lower()
    if not USERNAME.fullmatch(username):
        raise AccountError(f"username {username!r}: 2-63 characters of a-z, 0-9, '.', '_', '-'")
    if role not in ROLES:
        raise AccountError(f"role {role!r}: one of {', '.join(ROLES)}")
    _check_region(conn, region_code)
    check_password(password)
    if conn.execute(text("SELECT 1 FROM staff_user WHERE username = :u"), {"u": username}).first():
        raise AccountError(f"user {username!r} exists already")
    row = conn.execute(text(
        "INSERT INTO staff_user (username, display_name, role, region_code, password_hash) "
        f"VALUES (:u, :d, :r, :c, :h) RETURNING {_COLUMNS}"),
        {"u": username, "d": (display_name or username).strip(), "r": role, "c": region_code,
         "h": HASHER.hash(password)}).one()
    return StaffUser(**row._mapping)


def get(conn: Connection, user_id: int) -> StaffUser | None:
    row = conn.execute(text(f"SELECT {_COLUMNS} FROM staff_user WHERE id = :i"), {"i": user_id}).first()
    return StaffUser(**row._mapping) if row else None


def list_all(conn: Connection) -> list[StaffUser]:
    return [StaffUser(**r._mapping) for r in conn.execute(text(f"SELECT {_COLUMNS} FROM staff_user ORDER BY id"))]


def set_password(conn: Connection, username: str, password: str) -> StaffUser:
    """New password; unlocks the account and ends its open sessions."""
    check_password(password)
    return _update(conn, username, "password_hash = :h, failed_logins = 0, locked_until = NULL, "
                   "session_epoch = session_epoch + 1", {"h": HASHER.hash(password)})


def disable(conn: Connection, username: str) -> StaffUser:
    """The account can no longer log in, and its open sessions end (the row stays, for the record)."""
    return _update(conn, username, "active = false, session_epoch = session_epoch + 1", {})


def _update(conn: Connection, username: str, assignments: str, params: dict) -> StaffUser:
    row = conn.execute(text(f"UPDATE staff_user SET {assignments} WHERE username = :u RETURNING {_COLUMNS}"),
                       {**params, "u": username.strip().lower()}).first()
    if row is None:
        raise AccountError(f"no user {username!r}")
    return StaffUser(**row._mapping)


def authenticate(conn: Connection, username: str, password: str) -> Login:
    """Check a login and record its outcome (the caller commits, whatever the outcome)."""
    row = conn.execute(text(
        "SELECT id, password_hash, active, locked_until, locked_until > now() AS locked FROM staff_user "
        "WHERE username = :u FOR UPDATE"), {"u": username.strip().lower()}).first()
    if row is None or len(password) > MAX_PASSWORD:
        _verify(_DUMMY_HASH, password[:MAX_PASSWORD])
        return Login(LoginOutcome.WRONG)
    if row.locked:
        return Login(LoginOutcome.LOCKED, locked_until=row.locked_until)
    if not _verify(row.password_hash, password) or not row.active:
        failed = conn.execute(text(
            "UPDATE staff_user SET failed_logins = CASE WHEN failed_logins + 1 >= :n THEN 0 ELSE failed_logins + 1 END, "
            "locked_until = CASE WHEN failed_logins + 1 >= :n THEN now() + make_interval(mins => :m) "
            "ELSE locked_until END WHERE id = :i RETURNING locked_until > now() AS locked, locked_until"),
            {"n": MAX_FAILURES, "m": LOCK_MINUTES, "i": row.id}).one()
        if failed.locked:
            return Login(LoginOutcome.LOCKED, locked_until=failed.locked_until)
        return Login(LoginOutcome.WRONG)
    rehash = HASHER.hash(password) if HASHER.check_needs_rehash(row.password_hash) else row.password_hash
    user = conn.execute(text(
        "UPDATE staff_user SET failed_logins = 0, locked_until = NULL, last_login_at = now(), password_hash = :h "
        f"WHERE id = :i RETURNING {_COLUMNS}"), {"i": row.id, "h": rehash}).one()
    return Login(LoginOutcome.OK, StaffUser(**user._mapping))


def _verify(stored: str, password: str) -> bool:
    try:
        return HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
