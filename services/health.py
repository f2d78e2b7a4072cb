"""Health of the platform's data: the database, PostGIS, and every layer's row count."""
from __future__ import annotations

from sqlalchemy import Connection, text

from layers import REGISTRY


def layer_counts(conn: Connection) -> dict[str, int]:
    """Exact row count of every registered layer, in one statement."""
    parts = [f"SELECT '{layer.name}' AS layer, count(*) AS n FROM {layer.table}" for layer in REGISTRY]
    rows = conn.execute(text(" UNION ALL ".join(parts))).all()
    return {row.layer: row.n for row in rows}


def report(conn: Connection) -> dict:
    postgis = conn.execute(text("SELECT postgis_lib_version()")).scalar_one()
    server = conn.execute(text("SHOW server_version")).scalar_one()
    revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one_or_none()
    counts = layer_counts(conn)
    empty = sorted(name for name, n in counts.items() if n == 0)
    return {
        "status": "ok" if not empty else "degraded",
        "database": {"reachable": True, "postgresql": server, "postgis": postgis, "schema_revision": revision},
        "layers": counts,
        "empty_layers": empty,
    }
