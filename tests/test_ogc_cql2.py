"""CQL2 text and JSON parsing and compiling, without a server (see test_ogc_public for HTTP)."""
from __future__ import annotations

import pytest
from geoalchemy2 import Geometry
from sqlalchemy import Column, Date, MetaData, Table, Text, BigInteger
from sqlalchemy.dialects import postgresql

from app.ogc.cql2 import FilterError, compile_filter, parse_json, parse_text

TABLE = Table("t", MetaData(), Column("id", BigInteger), Column("name", Text), Column("kind", Text),
              Column("n", BigInteger), Column("d", Date), Column("geom", Geometry("POINT", 4490)))
COLUMNS = {c.name: c for c in TABLE.c if c.name != "geom"}


def sql(tree, crs=None) -> str:
    clause = compile_filter(tree, COLUMNS, TABLE.c.geom, crs, {"d"})
    return str(clause.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))


@pytest.mark.parametrize("text, expected", [
    ("name = 'x'", {"op": "=", "args": [{"property": "name"}, "x"]}),
    ("n BETWEEN 1 AND 5", {"op": "between", "args": [{"property": "n"}, 1, 5]}),
    ("kind NOT IN ('a','b')", {"op": "not", "args": [{"op": "in", "args": [{"property": "kind"}, ["a", "b"]]}]}),
    ("CASEI(name) LIKE casei('ab%')",
     {"op": "like", "args": [{"op": "casei", "args": [{"property": "name"}]}, {"op": "casei", "args": ["ab%"]}]}),
    ("T_DURING(d, INTERVAL('2020-01-01','..'))",
     {"op": "t_during", "args": [{"property": "d"}, {"interval": ["2020-01-01", ".."]}]}),
    ("S_WITHIN(geometry, BBOX(125,43,126,44))",
     {"op": "s_within", "args": [{"property": "geometry"}, {"bbox": [125, 43, 126, 44]}]}),
    ("name = 'it''s' AND NOT n IS NULL",
     {"op": "and", "args": [{"op": "=", "args": [{"property": "name"}, "it's"]},
                            {"op": "not", "args": [{"op": "isNull", "args": [{"property": "n"}]}]}]}),
])
def test_cql2_text_reads_into_the_cql2_json_form(text, expected):
    assert parse_text(text) == expected


def test_compiled_sql_is_parameter_safe_and_tags_geometries_4490():
    assert "lower(t.name) LIKE lower('%%'' OR 1=1 --')" in sql(parse_text("CASEI(name) LIKE CASEI('%'' OR 1=1 --')"))
    spatial = sql(parse_text("S_INTERSECTS(geometry, POINT(125.5 43.5))"))
    assert "ST_GeomFromText('POINT(125.5 43.5)', 4490)" in spatial
    assert "ST_MakeEnvelope(125.0, 43.0, 126.0, 44.0, 4490)" in sql(parse_text("S_INTERSECTS(geom, BBOX(125,43,126,44))"))
    # EPSG:4326 literals are lat,lon; they arrive in storage as lon,lat
    assert "POINT(125.5 43.5)" in sql(parse_text("S_INTERSECTS(geometry, POINT(43.5 125.5))"),
                                     "http://www.opengis.net/def/crs/EPSG/0/4326")


def test_temporal_functions_follow_cql2_on_instants():
    assert sql(parse_text("T_AFTER(d, DATE('2020-01-01'))")) == "t.d > '2020-01-01'"
    assert sql(parse_text("T_DURING(d, INTERVAL('2020-01-01','2020-12-31'))")) == \
        "t.d > '2020-01-01' AND t.d < '2020-12-31'"
    assert sql(parse_text("T_INTERSECTS(d, INTERVAL('..','2020-12-31'))")) == "t.d <= '2020-12-31'"


def test_cql2_json_in_its_final_form_and_the_draft_between():
    tree = parse_json('{"op":"between","args":[{"property":"n"},1,5]}')
    assert sql(tree) == "t.n BETWEEN 1 AND 5"
    assert sql(parse_json('{"op":"between","args":[{"property":"n"},[1,5]]}')) == "t.n BETWEEN 1 AND 5"
    assert sql(parse_json({"op": "in", "args": [{"property": "kind"}, ["a", "b"]]})) == "t.kind IN ('a', 'b')"


@pytest.mark.parametrize("bad, message", [
    ("party = 'x'", "unknown queryable 'party'"),
    ("name = ", "invalid CQL2 text"),
    ("name = 'x'; DROP TABLE t", "invalid CQL2 text"),
    ("ACCENTI(name) = 'x'", "ACCENTI is not supported"),
    ("T_AFTER(name, DATE('2020-01-01'))", "not a date or time property"),
    ("S_INTERSECTS(name, POINT(1 2))", "not a geometry"),
    ("d > DATE('2020-13-45')", "not a date"),
    ("(" * 5000, "invalid CQL2 text"),
    ("x" * 30000, "longer than"),
])
def test_bad_filters_are_filter_errors_with_a_message(bad, message):
    with pytest.raises(FilterError, match=message):
        sql(parse_text(bad))


def test_bad_cql2_json_is_a_filter_error():
    for bad in ('{"op": "=", "args": [', '{"op": "frobnicate", "args": []}', '[1, 2]',
                '{"op": "=", "args": [{"property": "party"}, 1]}', '{"op": "not", "args": []}'):
        with pytest.raises(FilterError):
            sql(parse_json(bad))
