"""Applying the Alembic migrations from code (CLI, tests) on a given connection."""
from __future__ import annotations

from alembic import command
from alembic.config import Config
from geoalchemy2 import alembic_helpers
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


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """What autogenerate compares: our tables, not PostGIS's own (spatial_ref_sys …)."""
    from layers.models import metadata
    if type_ == "table" and reflected and compare_to is None and name not in metadata.tables:
        return False
    return alembic_helpers.include_object(obj, name, type_, reflected, compare_to)
