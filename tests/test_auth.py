"""Staff login over a real HTTP server with real `requests` sessions: login and logout, wrong
passwords, lock-out, CSRF, the session as a way into the internal OGC API and vector tiles,
the `users` CLI, and password hashes that never hold the password."""
from __future__ import annotations

import re

import pytest
import requests
from sqlalchemy import text

from services import accounts
from tests.staff import PASSWORD, login, login_form_token, staff_users


@pytest.fixture()
def inspector(engine):
    with staff_users(engine, ("insp.wang", "inspector", "220000")) as users:
        yield users[0]


def _post_login(session, base, username, password, token, **extra):
    return session.post(base + "/login", data={"username": username, "password": password, "csrf_token": token,
                                               **extra}, allow_redirects=False, timeout=30)


def test_login_logout_and_cookie_flags(live_server, inspector):
    base = live_server.url
    s = requests.Session()
    first = s.get(base + "/", allow_redirects=False, timeout=30)
    assert first.status_code == 302 and first.headers["Location"] == "/login?next=/"
    token = login_form_token(s, base)
    ok = _post_login(s, base, "Insp.Wang", PASSWORD, token, next="/")
    assert ok.status_code == 302 and ok.headers["Location"] == "/"
    cookie = ok.headers["Set-Cookie"]
    assert cookie.startswith("onemap_session=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie            # plain http here; see test_cookie_is_secure_over_https
    home = s.get(base + "/", timeout=30)
    assert home.status_code == 200 and "一张图综合监管平台" in home.text
    me = s.get(base + "/api/session", timeout=30).json()
    assert me["user"] == {"username": "insp.wang", "display_name": "测试 insp.wang", "role": "inspector",
                          "role_title": "执法核查人员 Inspector", "region_code": "220000"}
    assert s.post(base + "/logout", allow_redirects=False, timeout=30).status_code == 400   # no CSRF token
    out = s.post(base + "/logout", headers={"X-CSRFToken": me["csrf_token"]}, allow_redirects=False, timeout=30)
    assert out.status_code == 302 and out.headers["Location"] == "/login"
    assert s.get(base + "/", allow_redirects=False, timeout=30).status_code == 302
    assert s.get(base + "/api/session", timeout=30).json()["user"] is None


def test_wrong_password_unknown_user_and_csrf(live_server, inspector, engine):
    base = live_server.url
    s = requests.Session()
    token = login_form_token(s, base)
    for user, password in (("insp.wang", "wrong password!"), ("nobody.here", PASSWORD)):
        wrong = _post_login(s, base, user, password, token)
        assert wrong.status_code == 401 and "用户名或密码错误" in wrong.text
    no_csrf = s.post(base + "/login", data={"username": "insp.wang", "password": PASSWORD}, allow_redirects=False,
                     timeout=30)
    assert no_csrf.status_code == 400 and "CSRF" in no_csrf.text
    assert s.get(base + "/api/session", timeout=30).json()["user"] is None
    forged = _post_login(requests.Session(), base, "insp.wang", PASSWORD, token)   # a token of another session
    assert forged.status_code == 400 and "CSRF" in forged.text
    with engine.connect() as conn:
        assert conn.execute(text("SELECT failed_logins FROM staff_user WHERE username = 'insp.wang'")).scalar() == 1


def test_open_redirect_refused(live_server, inspector):
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        s = requests.Session()
        answer = _post_login(s, live_server.url, "insp.wang", PASSWORD, login_form_token(s, live_server.url),
                             next=target)
        assert answer.status_code == 302 and answer.headers["Location"] == "/", target


def test_lock_out_after_repeated_failures(live_server, inspector, engine):
    base = live_server.url
    s = requests.Session()
    token = login_form_token(s, base)
    codes = [_post_login(s, base, "insp.wang", f"wrong password {i}", token).status_code
             for i in range(accounts.MAX_FAILURES)]
    assert codes == [401] * (accounts.MAX_FAILURES - 1) + [429]
    locked = _post_login(s, base, "insp.wang", PASSWORD, token)       # even the right password now
    assert locked.status_code == 429 and "账号已锁定" in locked.text
    assert 0 < int(locked.headers["Retry-After"]) <= accounts.LOCK_MINUTES * 60
    with engine.begin() as conn:
        row = conn.execute(text("SELECT locked_until - now() AS left FROM staff_user WHERE username = 'insp.wang'")).one()
        assert 14 * 60 < row.left.total_seconds() <= accounts.LOCK_MINUTES * 60
        accounts.set_password(conn, "insp.wang", PASSWORD + "2")          # an admin's reset unlocks
    assert _post_login(s, base, "insp.wang", PASSWORD + "2", token).status_code == 302


def test_password_change_and_disable_end_open_sessions(live_server, inspector, engine):
    base = live_server.url
    s = login(base, "insp.wang")
    assert s.get(base + "/", allow_redirects=False, timeout=30).status_code == 200
    with engine.begin() as conn:
        accounts.set_password(conn, "insp.wang", PASSWORD + "!")
    assert s.get(base + "/", allow_redirects=False, timeout=30).status_code == 302
    s = login(base, "insp.wang", PASSWORD + "!")
    with engine.begin() as conn:
        accounts.disable(conn, "insp.wang")
    assert s.get(base + "/", allow_redirects=False, timeout=30).status_code == 302
    s2 = requests.Session()
    assert _post_login(s2, base, "insp.wang", PASSWORD + "!", login_form_token(s2, base)).status_code == 401


def test_session_reads_internal_ogc_and_tiles(live_server, inspector, demo):
    base = live_server.url
    assert requests.get(base + "/internal/ogc/collections?f=json", timeout=30).status_code == 401
    assert requests.get(base + "/tiles/internal/vector/land_use/12/3442/1512.pbf", timeout=30).status_code == 401
    s = login(base, "insp.wang")
    collections = s.get(base + "/internal/ogc/collections?f=json", timeout=30)
    assert collections.status_code == 200
    from layers import REGISTRY
    assert {c["id"] for c in collections.json()["collections"]} == {layer.name for layer in REGISTRY}
    items = s.get(base + "/internal/ogc/collections/land_use/items?f=json&limit=3", timeout=30).json()
    assert len(items["features"]) == 3 and "owner_code" in items["features"][0]["properties"]
    tile = s.get(base + "/tiles/internal/vector/basic_farmland/tilejson.json", timeout=30)
    assert tile.status_code == 200 and "/tiles/internal/vector/basic_farmland/" in tile.json()["tiles"][0]
    # a bearer token is the only credential of a request that names one: a bad token is 401 even with a session
    assert s.get(base + "/internal/ogc/collections?f=json", headers={"Authorization": "Bearer omt_bad"},
                 timeout=30).status_code == 401


def test_cookie_is_secure_over_https(test_settings, engine, inspector):
    from app import create_app
    client = create_app(test_settings).test_client()
    page = client.get("/login", base_url="https://onemap.example")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    answer = client.post("/login", base_url="https://onemap.example",
                         headers={"Referer": "https://onemap.example/login"},
                         data={"username": "insp.wang", "password": PASSWORD, "csrf_token": token})
    assert answer.status_code == 302
    assert "Secure" in answer.headers["Set-Cookie"] and "HttpOnly" in answer.headers["Set-Cookie"]


def test_users_cli_and_hashes(test_settings, engine, demo):
    from app import create_app
    runner = create_app(test_settings).test_cli_runner()
    try:
        made = runner.invoke(args=["users", "create", "clerk.li", "--role", "clerk", "--region", "220102",
                                   "--name", "李文书", "--password-stdin"], input=PASSWORD + "\n")
        assert made.exit_code == 0, made.output
        assert "clerk.li: clerk, region 220102" in made.output
        prompted = runner.invoke(args=["users", "create", "sup.zhao", "--role", "supervisor", "--region", "220100"],
                                 input=f"{PASSWORD}\n{PASSWORD}\n")
        assert prompted.exit_code == 0 and PASSWORD not in prompted.output, prompted.output
        for args, problem in ((["bad", "--role", "clerk", "--region", "229999"], "no such administrative division"),
                              (["bad2", "--role", "boss", "--region", "220000"], "Invalid value for '--role'"),
                              (["clerk.li", "--role", "clerk", "--region", "220102"], "exists already")):
            refused = runner.invoke(args=["users", "create", *args, "--password-stdin"], input=PASSWORD + "\n")
            assert refused.exit_code == 2 and problem in refused.output, refused.output
        short = runner.invoke(args=["users", "create", "c3", "--role", "clerk", "--region", "220102",
                                    "--password-stdin"], input="short\n")
        assert short.exit_code == 2 and "at least 10 characters" in short.output
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT username, password_hash FROM staff_user WHERE username IN "
                                     "('clerk.li', 'sup.zhao') ORDER BY username")).all()
        assert [r.username for r in rows] == ["clerk.li", "sup.zhao"]
        assert all(r.password_hash.startswith("$argon2id$v=19$m=65536,t=3,p=4$") for r in rows)
        assert rows[0].password_hash != rows[1].password_hash      # same password, own salts
        assert all(PASSWORD not in r.password_hash and PASSWORD.encode().hex() not in r.password_hash for r in rows)
        listed = runner.invoke(args=["users", "list"])
        assert re.search(r"clerk\.li\s+clerk\s+220102  李文书  active  last login never", listed.output), listed.output
        assert "$argon2" not in listed.output
        changed = runner.invoke(args=["users", "set-password", "clerk.li", "--password-stdin"], input="新的密码 long enough\n")
        assert changed.exit_code == 0
        with engine.begin() as conn:
            assert accounts.authenticate(conn, "clerk.li", "新的密码 long enough").outcome is accounts.LoginOutcome.OK
            assert accounts.authenticate(conn, "clerk.li", PASSWORD).outcome is accounts.LoginOutcome.WRONG
        assert runner.invoke(args=["users", "disable", "clerk.li"]).exit_code == 0
        assert "clerk.li" in runner.invoke(args=["users", "list"]).output.split("disabled")[0]
        assert runner.invoke(args=["users", "disable", "nobody"]).exit_code == 2
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM staff_user WHERE username IN ('clerk.li', 'sup.zhao')"))


def test_region_scope():
    user = accounts.StaffUser(1, "u", "u", "supervisor", "220100", True, 0, 0, None, None, None)
    assert [user.covers(c) for c in ("220100", "220102", "220201", "220000", "2201", None)] == \
           [True, True, False, False, False, False]
    assert accounts.region_prefix("220000") == "22" and accounts.region_prefix("220102") == "220102"


def test_unknown_user_hash_costs_what_a_password_hash_costs():
    """The hash verified for an unknown username is argon2id at HASHER's parameters (a wrong name
    takes as long as a wrong password) and verifies its own phrase only."""
    assert accounts.HASHER.check_needs_rehash(accounts._DUMMY_HASH) is False
    assert accounts._DUMMY_HASH.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert accounts._verify(accounts._DUMMY_HASH, "not a password of anyone") is True
    assert accounts._verify(accounts._DUMMY_HASH, "something else") is False
