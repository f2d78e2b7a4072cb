"""Staff accounts and logged-in `requests` sessions for the tests that need a login."""
from __future__ import annotations

import re
from contextlib import contextmanager

import requests
from sqlalchemy import text

from services import accounts

PASSWORD = "correct horse 电池 staple"


@contextmanager
def staff_users(engine, *specs: tuple[str, str, str]):
    """Accounts (username, role, region) with PASSWORD for the duration of a test, removed afterwards."""
    names = [s[0] for s in specs]
    with engine.begin() as conn:
        users = [accounts.create(conn, name, PASSWORD, role=role, region_code=region, display_name=f"测试 {name}")
                 for name, role, region in specs]
    try:
        yield users
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM staff_user WHERE username = ANY(:n)"), {"n": names})


def login_form_token(session: requests.Session, base: str) -> str:
    page = session.get(base + "/login", timeout=30)
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def login(base: str, username: str, password: str = PASSWORD) -> requests.Session:
    """A requests session logged in as `username`; its CSRF token is in session.headers (X-CSRFToken)."""
    session = requests.Session()
    token = login_form_token(session, base)
    answer = session.post(base + "/login", data={"username": username, "password": password, "csrf_token": token},
                          allow_redirects=False, timeout=30)
    assert answer.status_code == 302, answer.text
    session.headers["X-CSRFToken"] = session.get(base + "/api/session", timeout=30).json()["csrf_token"]
    return session
