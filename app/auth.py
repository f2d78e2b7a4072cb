"""Staff login (登录) for the other blueprints: `current_user`, `login_required(*roles)`, CSRF.

- `current_user` is the logged-in `services.accounts.StaffUser`, or falsy (None) for anyone
  else. It is read from the session on first use only (public tiles never touch the
  database for it) and checked against the account on every request: a disabled account, a
  changed password or a session older than `SESSION_HOURS` ends the session.
- `@login_required()` lets any staff member in; `@login_required("clerk")` only clerks (and
  admins, who hold every role). Pages send the anonymous to `/login?next=…`; JSON (`/api/…`,
  or a request that is not a GET for HTML) gets 401, a missing role 403.
- CSRF (Flask-WTF): every POST/PUT/PATCH/DELETE of a browser carries the session's token, as
  the form field `csrf_token` or the header `X-CSRFToken`; without it the answer is 400 (the
  login form too; an anonymous request elsewhere gets 401 from `login_required`). A
  request naming a department token (`Authorization: Bearer …`, or the upload form's `token`
  field) is authenticated by that token alone, never by the session, so it needs no CSRF
  token. The OGC APIs are read-only and exempt (their POST carries a CQL2 query).
- The session cookie is HttpOnly, SameSite=Lax, and Secure whenever the request came over
  https (or always, with ONEMAP_COOKIE_SECURE=1 in the environment).
"""
from __future__ import annotations

import os
import time
from functools import wraps
from urllib.parse import urlsplit

from flask import (Blueprint, Flask, g, jsonify, redirect, render_template, request, session,
                   url_for)
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf
from werkzeug.local import LocalProxy

from app.db import engine
from services import accounts

SESSION_HOURS = 12
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
READ_ONLY_BLUEPRINTS = {"ogc_public", "ogc_internal"}   # POST there is a query, never a change

bp = Blueprint("auth", __name__)
csrf = CSRFProtect()


def _session_user() -> accounts.StaffUser | None:
    uid = session.get("uid")
    if uid is None:
        return None
    if time.time() - session.get("login_at", 0) > SESSION_HOURS * 3600:
        session.clear()
        return None
    with engine().connect() as conn:
        user = accounts.get(conn, uid)
    if user is None or not user.active or user.session_epoch != session.get("epoch"):
        session.clear()
        return None
    return user


def _current_user() -> accounts.StaffUser | None:
    if "staff_user" not in g:
        g.staff_user = None if department_token_of_request() else _session_user()
    return g.staff_user


current_user: accounts.StaffUser | None = LocalProxy(_current_user)  # type: ignore[assignment]


def department_token_of_request() -> str | None:
    """The department token the request names, if any (then the session is not used)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    if request.blueprint == "upload" and request.method == "POST":   # the upload form's token field
        return (request.form.get("token") or "").strip() or None
    return None


def _wants_html() -> bool:
    return (request.method == "GET" and not request.path.startswith("/api/")
            and request.accept_mimetypes.accept_html)


def login_required(*roles: str):
    """Only staff (with one of `roles`, when given; admins pass every role check) reach the view."""
    unknown = set(roles) - set(accounts.ROLES)
    if unknown:
        raise ValueError(f"unknown role(s): {', '.join(sorted(unknown))}")

    def decorate(view):
        @wraps(view)
        def guarded(*args, **kwargs):
            user = _current_user()
            if user is None:
                if _wants_html():
                    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
                return jsonify({"error": "login required (请先登录)"}), 401
            if roles and not user.has_role(*roles):
                message = f"role {user.role} may not do this; needed: {' or '.join(roles)} (权限不足)"
                return jsonify({"error": message}), 403
            return view(*args, **kwargs)
        return guarded
    return decorate


def _safe_next(target: str | None) -> str:
    """Only a path on this server (never //host or a scheme) is followed after login."""
    if not target:
        return url_for("map.staff_map")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith(("//", "/\\")):
        return url_for("map.staff_map")
    return target


@bp.get("/login")
def login():
    if _current_user() is not None:
        return redirect(_safe_next(request.args.get("next")))
    return render_template("login.html", next=request.args.get("next", ""), error=None)


@bp.post("/login")
def login_submit():
    username = request.form.get("username", "")
    with engine().begin() as conn:   # the outcome is recorded whatever it is (lock-out counts)
        result = accounts.authenticate(conn, username, request.form.get("password", ""))
    if result.outcome is accounts.LoginOutcome.OK:
        session.clear()              # a fresh session (and CSRF token) for the new login
        session.update(uid=result.user.id, epoch=result.user.session_epoch, login_at=int(time.time()))
        return redirect(_safe_next(request.form.get("next")))
    if result.outcome is accounts.LoginOutcome.LOCKED:
        until = result.locked_until.astimezone().strftime("%H:%M")
        error = (f"连续 {accounts.MAX_FAILURES} 次登录失败，账号已锁定至 {until}。"
                 f"Too many failed logins: the account is locked until {until}.")
        retry = max(1, int(result.locked_until.timestamp() - time.time()))
        page = render_template("login.html", next=request.form.get("next", ""), error=error, username=username)
        return page, 429, {"Retry-After": str(retry)}
    error = "用户名或密码错误。Wrong username or password."
    return render_template("login.html", next=request.form.get("next", ""), error=error, username=username), 401


@bp.post("/logout")
def logout():
    session.clear()
    return redirect(url_for("auth.login"))


@bp.get("/api/session")
def session_info():
    """Who is logged in, and the CSRF token the page's JSON POSTs send as X-CSRFToken."""
    user = _current_user()
    return jsonify({"user": user.public() if user else None, "csrf_token": generate_csrf()})


class _SessionInterface(SecureCookieSessionInterface):
    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


def _check_csrf():
    """Session-authenticated changes, and the login form itself (login CSRF), need the token; an
    anonymous request gets its 401 from login_required instead."""
    if (request.method in STATE_CHANGING and request.blueprint not in READ_ONLY_BLUEPRINTS
            and not department_token_of_request()
            and (request.endpoint == "auth.login_submit" or _current_user() is not None)):
        csrf.protect()


def _csrf_refused(error: CSRFError):
    message = f"CSRF check failed: {error.description} (请刷新页面后重试)"
    if request.accept_mimetypes.best_match(["application/json", "text/html"]) != "text/html":
        return jsonify({"error": message}), 400     # scripts and APIs; a browser's form post gets the page
    return render_template("login.html", next="", error=message), 400


def init_app(app: Flask) -> None:
    app.config.update(SESSION_COOKIE_NAME="onemap_session", SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax", WTF_CSRF_CHECK_DEFAULT=False, WTF_CSRF_TIME_LIMIT=None)
    if os.environ.get("ONEMAP_COOKIE_SECURE") == "1":    # behind a TLS-terminating proxy
        app.config["SESSION_COOKIE_SECURE"] = True
    app.session_interface = _SessionInterface()
    csrf.init_app(app)
    app.before_request(_check_csrf)
    app.register_error_handler(CSRFError, _csrf_refused)
    app.register_blueprint(bp)
    app.context_processor(lambda: {"current_user": current_user})


def staff_label(user: accounts.StaffUser) -> str:
    """How a user is named in records (import batches …)."""
    return f"{user.display_name} ({user.username}, {user.role})"
