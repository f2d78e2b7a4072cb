"""What each audience may read of a layer, as database views (公开/内部发布).

The public OGC API reads every published layer through its own view in schema `pub`: the
view has `id`, the layer's public fields and `geom`, and only the rows of `public_where`.
Because the view is all the public service can name, no filter, sort, property selection or
query parameter can reach an unpublished column or row (hiding columns in pygeoapi's
`properties:` does not stop a filter on them).

The views are created by an Alembic migration calling `replace_public_views`; a test checks
that the views in the database still match the registry, so a registry change that alters
what is public fails until a new migration re-runs it.
"""
from __future__ import annotations

from typing import Callable

from layers import REGISTRY, Layer

PUBLIC_SCHEMA = "pub"


def _ident(name: str) -> str:
    if not name.replace("_", "").isalnum() or not name.isascii():
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    return f'"{name}"'


def public_columns(layer: Layer) -> list[str]:
    """The columns of the layer's public view, in order."""
    return ["id", *(f.name for f in layer.public_fields), "geom"]


def public_view_ddl(layer: Layer) -> list[str]:
    if not layer.published:
        raise ValueError(f"layer {layer.name} is not published")
    columns = ", ".join(_ident(c) for c in public_columns(layer))
    where = f" WHERE {layer.public_where}" if layer.public_where else ""
    view = f"{PUBLIC_SCHEMA}.{_ident(layer.table)}"
    comment = f"{layer.zh} {layer.en} (public view)".replace("'", "''")
    return [
        f"CREATE VIEW {view} AS SELECT {columns} FROM public.{_ident(layer.table)}{where}",
        f"COMMENT ON VIEW {view} IS '{comment}'",
    ]


def replace_public_views(execute: Callable[[str], object]) -> None:
    """(Re)create schema `pub` with one view per published layer of the registry."""
    execute(f"DROP SCHEMA IF EXISTS {PUBLIC_SCHEMA} CASCADE")
    execute(f"CREATE SCHEMA {PUBLIC_SCHEMA}")
    execute(f"COMMENT ON SCHEMA {PUBLIC_SCHEMA} IS "
            "'Public views of the published layers: public fields and rows only'")
    for layer in REGISTRY.published():
        for statement in public_view_ddl(layer):
            execute(statement)
