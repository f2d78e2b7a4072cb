"""`flask --app wsgi users create|list|set-password|disable`: staff accounts (工作人员账号).

The password is asked at a prompt (twice, not echoed), never taken as an argument that would
land in the shell history; `--password-stdin` reads it from the first line of stdin instead,
for scripts and tests (`printf '%s\n' "$PW" | flask … --password-stdin`).
"""
from __future__ import annotations

import sys
from datetime import datetime, timezone

import click
from flask.cli import AppGroup

from app.db import engine
from services import accounts
from services.accounts import AccountError

users_group = AppGroup("users", help="Staff accounts: roles admin/supervisor/inspector/clerk, region scope.")

password_stdin = click.option("--password-stdin", is_flag=True,
                              help="Read the password from the first line of stdin instead of a prompt.")


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("password (密码)", hide_input=True, confirmation_prompt=True)


def _run(change):
    try:
        with engine().begin() as conn:
            return change(conn)
    except AccountError as exc:
        raise click.UsageError(str(exc)) from None


@users_group.command("create", help="Create a staff account (the password is prompted for).")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(accounts.ROLES))
@click.option("--region", "region_code", required=True,
              help="GB/T 2260 code of the user's scope: the province (220000), a city (220100) or a county (220102).")
@click.option("--name", "display_name", default=None, help="Full name shown in records (defaults to the username).")
@password_stdin
def users_create(username: str, role: str, region_code: str, display_name: str | None, password_stdin: bool) -> None:
    password = _password(password_stdin)
    user = _run(lambda conn: accounts.create(conn, username, password, role=role, region_code=region_code,
                                             display_name=display_name))
    click.echo(f"user {user.id} {user.username}: {user.role}, region {user.region_code}")


@users_group.command("list", help="List staff accounts (never the password hashes).")
def users_list() -> None:
    with engine().connect() as conn:
        users = accounts.list_all(conn)
    if not users:
        click.echo("no users")
    for u in users:
        state = "active" if u.active else "disabled"
        if u.active and u.locked_until is not None and u.locked_until > datetime.now(timezone.utc):
            state = f"active, locked until {u.locked_until:%Y-%m-%d %H:%M}"
        last = f"{u.last_login_at:%Y-%m-%d %H:%M}" if u.last_login_at else "never"
        click.echo(f"{u.id:>4}  {u.username:<16} {u.role:<10} {u.region_code}  {u.display_name}  {state}  "
                   f"last login {last}")


@users_group.command("set-password", help="Set a new password; unlocks the account and ends its sessions.")
@click.argument("username")
@password_stdin
def users_set_password(username: str, password_stdin: bool) -> None:
    password = _password(password_stdin)
    user = _run(lambda conn: accounts.set_password(conn, username, password))
    click.echo(f"user {user.username}: password set, open sessions ended")


@users_group.command("disable", help="Disable an account: no more logins, open sessions end.")
@click.argument("username")
def users_disable(username: str) -> None:
    user = _run(lambda conn: accounts.disable(conn, username))
    click.echo(f"user {user.username}: disabled")
