"""The public views (schema pub) are exactly what the registry publishes."""
from __future__ import annotations

from sqlalchemy import text

from layers import REGISTRY
from services.publication import PUBLIC_SCHEMA, public_columns


def test_one_view_per_published_layer_with_only_its_public_columns(engine):
    with engine.connect() as conn:
        views = {r.table_name for r in conn.execute(text(
            "SELECT table_name FROM information_schema.views WHERE table_schema = :s"), {"s": PUBLIC_SCHEMA})}
        assert views == {layer.table for layer in REGISTRY.published()}
        for layer in REGISTRY.published():
            columns = [r.column_name for r in conn.execute(text(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = :s AND table_name = :t "
                "ORDER BY ordinal_position"), {"s": PUBLIC_SCHEMA, "t": layer.table})]
            assert columns == public_columns(layer), (
                f"pub.{layer.table} no longer matches the registry: add a migration that calls "
                "services.publication.replace_public_views")


def test_views_keep_unpublished_columns_and_rows_out(engine):
    with engine.connect() as conn:
        case_columns = {r.column_name for r in conn.execute(text(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'pub' "
            "AND table_name = 'enforcement_case'"))}
        assert "party" not in case_columns and "status" in case_columns
        hazard_columns = {r.column_name for r in conn.execute(text(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'pub' "
            "AND table_name = 'hazard_point'"))}
        assert not {"monitor_name", "monitor_phone"} & hazard_columns
        definition = conn.execute(text("SELECT pg_get_viewdef('pub.enforcement_case'::regclass)")).scalar_one()
        assert "'closed'" in definition
