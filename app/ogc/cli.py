"""`flask --app wsgi tokens create|list|revoke`: department tokens for the internal OGC API."""
from __future__ import annotations

import click
from flask.cli import AppGroup

from app.db import engine
from services import department_tokens
from services.department_tokens import TokenError


# An AppGroup pushes the application context for its commands, also under a test CLI runner.
tokens_group = AppGroup("tokens", help="Department tokens for the internal OGC API (/internal/ogc).")


@tokens_group.command("create", help="Issue a token; it is printed once and stored only as a hash.")
@click.option("--department", required=True, help="Department the token is for, e.g. 耕地保护处.")
@click.option("--collections", required=True,
              help="Comma-separated collection (layer) names the token grants, or '*' for all.")
@click.option("--note", default=None, help="Free text kept with the token.")
def tokens_create(department: str, collections: str, note: str | None) -> None:
    try:
        with engine().begin() as conn:
            token, grant = department_tokens.create(conn, department, collections.split(","), note)
    except TokenError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(f"token {grant.id} for {grant.department}: {', '.join(sorted(grant.collections))}")
    click.echo("store it now; it is not shown again:")
    click.echo(token)


@tokens_group.command("list", help="List tokens (never the secrets).")
def tokens_list() -> None:
    with engine().connect() as conn:
        grants = department_tokens.list_all(conn)
    if not grants:
        click.echo("no tokens")
    for grant in grants:
        state = "active" if grant.active else f"revoked {grant.revoked_at:%Y-%m-%d %H:%M}"
        click.echo(f"{grant.id:>4}  {grant.hint}…  {grant.department}  [{', '.join(sorted(grant.collections))}]  "
                   f"created {grant.created_at:%Y-%m-%d %H:%M}  {state}")


@tokens_group.command("revoke", help="Revoke a token by its id (see `tokens list`).")
@click.argument("token_id", type=int)
def tokens_revoke(token_id: int) -> None:
    try:
        with engine().begin() as conn:
            grant = department_tokens.revoke(conn, token_id)
    except TokenError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(f"token {grant.id} of {grant.department} revoked")
