"""The layer registry: every layer of the domain declared once, and the database schema
(Alembic migrations) exactly what the registry derives."""
from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from etl.schema import include_object
from layers import REGISTRY, FieldType, UnknownLayer
from layers.codes import CONSTRUCTION_CLASSES, FARMLAND_CLASSES, LAND_USE_CLASS, PLAN_ZONE
from layers.models import LAYER_TABLES, metadata
from layers.registry import Field, Layer, Geometry

DOMAIN_LAYERS = {
    "admin_division", "land_use", "plan_zone", "eco_redline", "urban_boundary", "basic_farmland",
    "imagery_epoch", "approval", "supply", "development_report", "consolidation_project",
    "enforcement_case", "violation_lead", "change_patch", "comparison_result", "mining_right", "mine_report",
    "hazard_point", "disaster_event", "disaster_report",
}


def test_every_domain_layer_is_declared_once():
    assert {layer.name for layer in REGISTRY} == DOMAIN_LAYERS
    assert len(REGISTRY) == len(DOMAIN_LAYERS)
    with pytest.raises(UnknownLayer, match="unknown layer 'parcels'"):
        REGISTRY["parcels"]


def test_layers_have_titles_in_both_languages_typed_fields_and_valid_references():
    for layer in REGISTRY:
        assert layer.zh and layer.en, layer.name
        for f in layer.fields:
            assert f.zh and f.en, (layer.name, f.name)
            if f.type in (FieldType.CODE, FieldType.CODES):
                assert f.codes is not None and len(f.codes.codes) > 1
            if f.references:
                table, column = f.references.split(".")
                assert table in metadata.tables and column in metadata.tables[table].c
        if layer.time_field:
            assert layer.field(layer.time_field).type in (FieldType.DATE, FieldType.DATETIME)
        if layer.published:
            assert layer.public_fields, f"{layer.name} is published with no public field"
        else:
            assert layer.public_where is None


def test_internal_fields_never_public():
    assert not REGISTRY["hazard_point"].field("monitor_phone").public
    assert not REGISTRY["enforcement_case"].field("party").public
    assert REGISTRY["enforcement_case"].public_where == "status = 'closed'"
    assert not REGISTRY["land_use"].published and not REGISTRY["violation_lead"].published


def test_registry_rejects_inconsistent_declarations():
    with pytest.raises(ValueError, match="code field needs a code list"):
        Field("x", FieldType.CODE, "x", "x")
    with pytest.raises(ValueError, match="unknown field 'when'"):
        Layer("t", "t", "t", "base", Geometry.POINT, (Field("a", FieldType.TEXT, "a", "a"),), time_field="when")
    with pytest.raises(ValueError, match="time field must be a date"):
        Layer("t", "t", "t", "base", Geometry.POINT, (Field("a", FieldType.TEXT, "a", "a"),), time_field="a")


def test_code_lists_follow_the_standards():
    assert LAND_USE_CLASS.zh_label("0103") == "旱地"
    assert LAND_USE_CLASS.zh_label("0602") == "采矿用地"
    assert LAND_USE_CLASS.zh_label("1202") == "设施农用地"
    assert len([c for c in LAND_USE_CLASS.codes if len(c) == 2]) == 12
    assert FARMLAND_CLASSES == {"01", "0101", "0102", "0103"}
    assert {"0701", "0601", "1003", "1109", "09"} <= CONSTRUCTION_CLASSES
    assert not {"1006", "0103", "0301", "1101"} & CONSTRUCTION_CLASSES
    assert list(PLAN_ZONE.codes) == ["010", "020", "030", "040"]


def test_migrations_produce_exactly_the_registry_schema(engine):
    with engine.connect() as conn:  # the same comparison `alembic revision --autogenerate` makes
        context = MigrationContext.configure(conn, opts={"include_object": include_object, "compare_type": True})
        diff = compare_metadata(context, metadata)
    assert diff == []


def test_geometries_are_cgcs2000_with_gist_indexes(engine):
    with engine.connect() as conn:
        columns = {r.f_table_name: (r.srid, r.type) for r in conn.execute(text(
            "SELECT f_table_name, srid, type FROM geometry_columns WHERE f_table_schema = 'public'"))}
        gist = {r.tablename for r in conn.execute(text(
            "SELECT tablename FROM pg_indexes WHERE schemaname = 'public' AND indexdef LIKE '%USING gist (geom)%'"))}
    # the layers, and one derived work table: the zones cut for comparison runs (services.comparison)
    assert set(columns) == set(LAYER_TABLES) | {"comparison_zone_piece"}
    for layer in REGISTRY:
        assert columns[layer.table] == (4490, layer.geometry.value), layer.name
    assert columns["comparison_zone_piece"] == (4490, "GEOMETRY")
    assert gist == set(LAYER_TABLES) | {"comparison_zone_piece"}
