"""Applying the Alembic migrations from code (CLI, tests) on a given connection."""
from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

from config.settings import ROOT


def alembic_config(conn: Connection | None = None) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    if conn is not None:
        cfg.attributes["connection"] = conn
    return cfg


def upgrade(conn: Connection, revision: str = "head") -> None:
    command.upgrade(alembic_config(conn), revision)
