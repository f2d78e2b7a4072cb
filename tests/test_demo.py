"""The demo province (etl.demo) at test scale: contents, geometry, planted answers, determinism.

Uses the session's `demo` fixture (scale 0.03, seed 2026). The checks of the planted cases
recompute their overlaps with plain PostGIS against the loaded layers, independently of the
generator, and the mining-right check converts the stored corner tables with pyproj alone.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
import shapely
from pyproj import Transformer
from sqlalchemy import text

from layers import REGISTRY
from layers.codes import COMPARISON_CATEGORY, LAND_USE_CLASS
from layers.registry import FieldType
from services.supervision import trace

AREA = "ST_Area(({})::geography, true)"
FOOTPRINT_SQL = "(SELECT ST_Union(geom) FROM imagery_epoch)"


@pytest.fixture(scope="module")
def manifest(demo) -> dict:
    return json.loads(Path(demo["manifest"]).read_text(encoding="utf-8"))


def scalar(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


def all_rows(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).mappings().all()


def table_md5(engine, table: str) -> str:
    """md5 of the table's rows as text, in the order of their text (ids included)."""
    return scalar(engine, f"SELECT md5(string_agg(t::text, E'\\n' ORDER BY t::text)) FROM {table} t")


# --- contents ----------------------------------------------------------------------------

def test_every_layer_has_rows(demo, engine):
    assert demo["scale"] == 0.03 and demo["seed"] == 2026
    assert set(demo["counts"]) == {layer.name for layer in REGISTRY}
    for layer in REGISTRY:
        rows = scalar(engine, f"SELECT count(*) FROM {layer.table}")
        assert rows == demo["counts"][layer.name] > 0, layer.name
    assert scalar(engine, "SELECT count(*) FROM farmland_balance") > 0
    assert 2_000 <= demo["counts"]["land_use"] <= 5_000          # ~3,000 parcels at scale 0.03
    assert scalar(engine, "SELECT count(*) FROM admin_division WHERE level = 'county'") == 60
    assert scalar(engine, "SELECT count(*) FROM admin_division WHERE level = 'city'") == 9


def test_province_loaded(demo, engine):
    from etl.demo import province_loaded
    assert province_loaded(engine) is True


def test_codes_are_valid(demo, engine):
    for layer in REGISTRY:
        for field in layer.fields:
            if field.type == FieldType.CODE:
                values = {v for (v,) in _values(engine, layer.table, field.name)}
                assert values - {None} <= set(field.codes.codes), (layer.name, field.name, values)
            elif field.type == FieldType.CODES:
                values = {v for (v,) in _values(engine, layer.table, f"unnest({field.name})")}
                assert values <= set(field.codes.codes), (layer.name, field.name, values)
    names = all_rows(engine, "SELECT DISTINCT class_code, class_name FROM land_use")
    assert all(LAND_USE_CLASS.zh_label(r["class_code"]) == r["class_name"] for r in names)
    assert {r["class_code"] for r in names} >= {"0101", "0103", "0301", "0701", "0702", "1003", "1101", "1102",
                                                 "1204", "0601"}


def _values(engine, table: str, expr: str):
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT DISTINCT {expr} FROM {table}")).all()


# --- geometry ----------------------------------------------------------------------------

def test_parcels_tile_every_county(demo, engine):
    rows = all_rows(engine, """
        SELECT a.code, a.area_m2, coalesce(sum(l.area_m2), 0) AS parcels
        FROM admin_division a LEFT JOIN land_use l ON l.county_code = a.code
        WHERE a.level = 'county' GROUP BY a.code, a.area_m2""")
    assert len(rows) == 60
    for r in rows:
        assert r["parcels"] == pytest.approx(r["area_m2"], rel=0.005), r["code"]
    assert scalar(engine, "SELECT count(*) FROM land_use WHERE NOT ST_IsValid(geom)") == 0


def test_neighbouring_parcels_do_not_overlap(demo, engine):
    """Every fifth parcel against all its neighbours: no interior overlap, ~0 m² in common."""
    row = all_rows(engine, f"""
        SELECT count(*) AS pairs, count(*) FILTER (WHERE ST_Overlaps(a.geom, b.geom)) AS overlapping,
               coalesce(sum({AREA.format('ST_Intersection(a.geom, b.geom, 1e-9)')}), 0) AS m2
        FROM land_use a JOIN land_use b ON a.id <> b.id AND ST_Intersects(a.geom, b.geom)
        WHERE a.id % 5 = 0""")[0]
    assert row["pairs"] > 1000
    assert row["overlapping"] == 0
    assert row["m2"] < 0.01


def test_every_record_lies_in_its_county(demo, engine):
    """county_code names the county containing the record (clipped layers within 1e-8°)."""
    layers = [layer for layer in REGISTRY if "county_code" in {f.name for f in layer.fields}]
    assert len(layers) >= 14
    for layer in layers:
        outside = scalar(engine, f"""
            WITH county AS MATERIALIZED (
              SELECT code, ST_Buffer(geom, 1e-8) AS geom FROM admin_division WHERE level = 'county')
            SELECT count(*) FROM {layer.table} t LEFT JOIN county c ON c.code = t.county_code
            WHERE c.code IS NULL OR NOT ST_CoveredBy(t.geom, c.geom)""")
        assert outside == 0, layer.name
    events = scalar(engine, """SELECT count(*) FROM disaster_event e JOIN admin_division a ON a.code = e.region_code
                               WHERE ST_Within(e.geom, a.geom)""")
    assert events == scalar(engine, "SELECT count(*) FROM disaster_event")


def test_mining_rights_equal_their_corner_tables(demo, engine):
    """Each geometry's vertices are its '点号,X,Y' corners (X northing, Y easting) converted
    from the stated CGCS2000 Gauss-Krüger zone with pyproj, to better than 1 mm."""
    rows = all_rows(engine, "SELECT licence_no, corner_crs, corners, ST_AsBinary(geom) AS wkb FROM mining_right")
    assert rows and {r["corner_crs"] for r in rows} & {4529, 4530, 4531, 4532} \
        and {r["corner_crs"] for r in rows} & {4550, 4551, 4552, 4553}
    for r in rows:
        lines = [line.split(",") for line in r["corners"].splitlines() if not line.startswith("*")]
        assert all(len(p) == 3 for p in lines), r["licence_no"]
        x = np.array([float(p[1]) for p in lines])
        y = np.array([float(p[2]) for p in lines])
        assert (x > 4e6).all() and (x < 5.3e6).all()                      # northings first
        lon, lat = Transformer.from_crs(f"EPSG:{r['corner_crs']}", "EPSG:4490", always_xy=True).transform(y, x)
        geom = shapely.from_wkb(bytes(r["wkb"]))
        rings = shapely.get_rings(shapely.get_parts(geom))
        vertices = np.concatenate([shapely.get_coordinates(ring)[:-1] for ring in rings])
        assert len(vertices) == len(lines), r["licence_no"]
        # metres per degree at the corner's latitude (good to far better than 1 %)
        dx = (vertices[None, :, 0] - lon[:, None]) * 111_320 * np.cos(np.radians(lat[:, None]))
        dy = (vertices[None, :, 1] - lat[:, None]) * 110_950
        assert np.hypot(dx, dy).min(axis=1).max() < 0.001, r["licence_no"]


# --- the manifest and the planted cases ----------------------------------------------------

def test_manifest_is_complete(demo, manifest):
    assert Path(demo["manifest"]).name == "manifest.json"
    assert manifest["reference_date"] == "2026-11-01"
    assert manifest["scale"] == 0.03 and manifest["seed"] == 2026
    assert manifest["counts"] == demo["counts"]
    planted = manifest["planted_patches"]
    categories = set().union(*(p["categories"] for p in planted))
    assert categories == set(COMPARISON_CATEGORY.codes), "a comparison category is not planted"
    assert any(len(p["categories"]) >= 3 for p in planted)
    assert {"unapproved", "basic_farmland"} <= next(set(p["categories"]) for p in planted if len(p["categories"]) >= 3)
    assert {d["colour"] for d in manifest["idle_land"]} == {"yellow", "red"}
    assert {d["rule"] for d in manifest["idle_land"]} == {"not_started", "halted"}
    assert manifest["red_agreement_supplies"] and manifest["supplies_without_approval"]
    assert all("-G-" in s["supervision_no"] for s in manifest["supplies_without_approval"])
    data_dir = Path(demo["manifest"]).parent.parent
    for epoch in manifest["imagery"]["epochs"]:
        path = data_dir / epoch["path"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == epoch["sha256"]


def test_imagery_epochs_are_georeferenced_rasters(demo, engine, manifest):
    import rasterio
    data_dir = Path(demo["manifest"]).parent.parent
    rows = all_rows(engine, "SELECT name, path, ST_XMin(geom) x0, ST_YMax(geom) y1 FROM imagery_epoch ORDER BY acquired_on")
    assert len(rows) == 2
    images = []
    for r in rows:
        with rasterio.open(data_dir / r["path"]) as src:
            assert src.crs.to_epsg() == 4490 and src.count == 3 and src.dtypes[0] == "uint8"
            assert src.transform.c == pytest.approx(r["x0"]) and src.transform.f == pytest.approx(r["y1"])
            images.append(src.read())
    assert (images[0] != images[1]).any(axis=0).mean() > 0          # the change patches show


def test_planted_patches_exist_inside_the_imagery(demo, engine, manifest):
    planted = {p["patch_no"]: p for p in manifest["planted_patches"]}
    rows = all_rows(engine, f"""SELECT patch_no, kind, ST_Within(geom, {FOOTPRINT_SQL}) AS inside, area_m2
                                FROM change_patch WHERE patch_no = ANY(:nos)""", nos=list(planted))
    assert {r["patch_no"] for r in rows} == set(planted)
    for r in rows:
        assert r["inside"], r["patch_no"]
        assert r["kind"] == planted[r["patch_no"]]["kind"]
        assert r["area_m2"] == pytest.approx(planted[r["patch_no"]]["area_m2"], abs=0.01)
    outside = scalar(engine, f"SELECT count(*) FROM change_patch WHERE NOT ST_Within(geom, {FOOTPRINT_SQL})")
    assert outside == 0


OVERLAP_SQL = {
    "approval_m2": "approval",
    "supply_m2": "supply",
    "basic_farmland_m2": "basic_farmland",
}


def _overlap(engine, patch_no: str, table: str) -> float:
    return scalar(engine, f"""
        SELECT coalesce(sum({AREA.format('ST_Intersection(p.geom, o.geom)')}), 0)
        FROM change_patch p JOIN {table} o ON ST_Intersects(p.geom, o.geom) WHERE p.patch_no = :no""", no=patch_no)


def test_planted_overlaps_match_postgis(demo, engine, manifest):
    """The expected overlap areas (GRS80, from the construction geometry) equal what PostGIS
    measures against the loaded layers; the zone conditions behind each category hold."""
    for p in manifest["planted_patches"]:
        no, cats, overlaps = p["patch_no"], set(p["categories"]), p["overlaps"]
        for key, table in OVERLAP_SQL.items():
            if key in overlaps:
                assert _overlap(engine, no, table) == pytest.approx(overlaps[key], abs=0.05), (p["case"], key)
        if "uncovered_m2" in overlaps:
            uncovered = p["area_m2"] - _overlap(engine, no, "approval")
            assert uncovered == pytest.approx(overlaps["uncovered_m2"], abs=0.05)
            assert 0 < overlaps["uncovered_m2"] < p["area_m2"]
        if p["kind"] != "construction":
            continue
        if "other" in cats:      # facility agriculture, temporary use, false change: not construction
            assert cats == {"other"}
            assert p["class_after"] == "1202" or p["temporary"] or p["false_change"]
            continue
        zones = all_rows(engine, f"""
            SELECT bool_or(z.zone_code IN ('030', '040')) AS restricted,
                   (SELECT ST_CoveredBy(p.geom, ST_Union(u.geom)) FROM urban_boundary u
                    WHERE ST_Intersects(u.geom, p.geom)) AS in_boundary
            FROM change_patch p JOIN plan_zone z ON ST_Intersects(p.geom, z.geom) AND NOT ST_Touches(p.geom, z.geom)
            WHERE p.patch_no = :no GROUP BY p.geom""", no=no)[0]
        outside_plan = bool(zones["restricted"]) or not zones["in_boundary"]
        assert outside_plan == ("outside_plan" in cats), p["case"]
        approved = _overlap(engine, no, "approval")
        if "unapproved" in cats:
            assert approved == 0
        if "legal" in cats or "unsupplied" in cats:
            assert approved == pytest.approx(p["area_m2"], abs=0.05)
        assert (_overlap(engine, no, "basic_farmland") > 0) == ("basic_farmland" in cats), p["case"]


def test_planted_mining_cases(demo, engine, manifest):
    mining = {p["case"]: p for p in manifest["planted_patches"] if p["kind"] == "mining"}
    assert {c for p in mining.values() for c in p["categories"]} >= {
        "unlicensed_mining", "beyond_boundary_mining", "expired_mining"}
    for p in mining.values():
        rows = all_rows(engine, f"""
            SELECT m.licence_no, m.valid_to < DATE '2026-11-01' AS expired,
                   {AREA.format('ST_Intersection(c.geom, m.geom)')} AS inside
            FROM change_patch c JOIN mining_right m ON ST_Intersects(c.geom, m.geom) AND m.right_type = 'mining'
            WHERE c.patch_no = :no""", no=p["patch_no"])
        cats = set(p["categories"])
        if "unlicensed_mining" in cats:
            assert rows == []
        else:
            assert [r["licence_no"] for r in rows] == [p["licence"]["licence_no"]]
            assert rows[0]["expired"] == ("expired_mining" in cats)
            assert rows[0]["inside"] == pytest.approx(p["overlaps"]["own_right_m2"], abs=0.05)


def test_idle_land_colours_follow_the_2012_rules(demo, engine, manifest):
    """Recompute the colour from the supply and its latest report (reference date 2026-11-01)."""
    for case in manifest["idle_land"]:
        r = all_rows(engine, """
            SELECT s.agreed_start, d.status, d.developed_share, d.invested_share, d.halted_since
            FROM supply s JOIN development_report d ON d.supply_id = s.id
            WHERE s.contract_no = :no ORDER BY d.reported_on DESC LIMIT 1""", no=case["contract_no"])[0]
        from datetime import date
        today = date(2026, 11, 1)
        if r["status"] == "not_started":
            years = (today - r["agreed_start"]).days / 365.25
        else:
            assert r["status"] == "halted"
            assert r["developed_share"] < 100 / 3 or r["invested_share"] < 25
            years = (today - r["halted_since"]).days / 365.25
        assert case["colour"] == ("red" if years >= 2 else "yellow" if years >= 1 else None), case


def test_red_agreement_and_unapproved_supply(demo, engine, manifest):
    for s in manifest["red_agreement_supplies"]:
        r = all_rows(engine, "SELECT method, land_use FROM supply WHERE contract_no = :no", no=s["contract_no"])[0]
        assert r["method"] == "agreement" and r["land_use"][:2] in ("05", "07")
    for s in manifest["supplies_without_approval"]:
        assert scalar(engine, "SELECT approval_id IS NULL FROM supply WHERE contract_no = :no", no=s["contract_no"])


def test_supervision_chain_traces(demo, engine, manifest):
    """The fullest chain of the manifest, traced by its number through services.supervision."""
    chain = max(manifest["chains"], key=lambda c: (len(c["supplies"]) > 0) + (len(c["development_reports"]) > 0)
                + (len(c["balancing_projects"]) > 0) + (len(c["cases"]) > 0))
    assert chain["supplies"] and chain["development_reports"] and chain["balancing_projects"] and chain["cases"]
    with engine.connect() as conn:
        found = trace(conn, chain["supervision_no"])
    labels = lambda layer: {row["label"] for row in found[layer]}  # noqa: E731
    assert labels("approval") == {chain["approval"]}
    assert labels("supply") == set(chain["supplies"])
    assert {row["id"] for row in found["development_report"]} == set(chain["development_reports"])
    assert labels("enforcement_case") == set(chain["cases"])
    assert labels("balanced_by") == set(chain["balancing_projects"])
    assert re.fullmatch(r"\d{6}-\d{4}-P-\d{6}", chain["supervision_no"])


def test_disasters_and_their_reports(demo, engine, manifest):
    events = {e["event_no"]: e for e in manifest["disasters"]}
    assert {e["kind"] for e in events.values()} == {"flood", "earthquake"}
    kinds = {(r["event_no"], r["kind"]) for r in all_rows(engine, """
        SELECT e.event_no, r.kind FROM disaster_report r JOIN disaster_event e ON e.id = r.event_id""")}
    for no in events:
        assert {k for e, k in kinds if e == no} == {"initial", "daily", "verified"}
    late = [n for e in events.values() for n in e["late_reports"]]
    assert late and scalar(engine, """SELECT bool_and(extract(hour FROM reported_at AT TIME ZONE 'Asia/Shanghai') >= 10)
                                      FROM disaster_report WHERE report_no = ANY(:nos)""", nos=late)


# --- corner tables (the converter the importers reuse) --------------------------------------

def test_corner_tables_parse_detect_and_refuse():
    from etl.corners import CornerError, corners_to_geometry, detect_gk_crs, parse_corners
    text_ = "1,4852000.00,42510000.00\n2,4852000.00,42511000.00\n3,4853000.00,42511000.00\n4,4853000.00,42510000.00"
    assert detect_gk_crs(parse_corners(text_)) == 4530
    geom = corners_to_geometry(text_)
    assert geom.geom_type == "MultiPolygon" and 126.1 < geom.centroid.x < 126.2
    holed = text_ + "\n*\n5,4852400,42510400\n6,4852400,42510600\n7,4852600,42510600"
    assert len(corners_to_geometry(holed).geoms[0].interiors) == 1
    with pytest.raises(CornerError, match="swapped"):
        detect_gk_crs(parse_corners("1,42510000,4852000\n2,42511000,4852000\n3,42511000,4853000"))
    with pytest.raises(CornerError, match="zone"):
        detect_gk_crs(parse_corners("1,4852000,510000\n2,4852000,511000\n3,4853000,511000"))
    with pytest.raises(CornerError, match="line 2"):
        parse_corners("1,4852000,510000\n2,4852000\n")
    from etl.corners import lonlat_to_corners, rings_to_lonlat
    corners = lonlat_to_corners([(126.1, 43.8), (126.2, 43.8), (126.2, 43.9)], 4551, decimals=4)
    back = rings_to_lonlat([corners], 4551)[0]
    assert np.allclose(back, [(126.1, 43.8), (126.2, 43.8), (126.2, 43.9)], atol=1e-8)


# --- atomic and deterministic -----------------------------------------------------------------

def test_failed_load_leaves_the_previous_province(demo, engine, manifest, tmp_path, monkeypatch):
    import etl.demo
    before = table_md5(engine, "change_patch")

    def broken(*args, **kwargs):
        raise RuntimeError("simulated failure half-way through the load")
    monkeypatch.setattr(etl.demo, "business", broken)
    with pytest.raises(RuntimeError, match="simulated"):
        etl.demo.load_demo(engine, tmp_path, scale=0.03, seed=2026)
    assert table_md5(engine, "change_patch") == before
    assert scalar(engine, "SELECT count(*) FROM land_use") == demo["counts"]["land_use"]
    assert scalar(engine, "SELECT count(*) FROM pg_namespace WHERE nspname = 'demo_stage'") == 0
    assert not list(tmp_path.rglob("*.tif")) and not (tmp_path / "demo" / "manifest.json").exists()


def test_same_scale_and_seed_load_identically(demo, engine, tmp_path):
    from etl.demo import load_demo
    before = {t: table_md5(engine, t) for t in ("land_use", "change_patch", "approval", "supervision_number")}
    first_dir = Path(demo["manifest"]).parent.parent
    again = load_demo(engine, tmp_path, scale=0.03, seed=2026)
    assert again["counts"] == demo["counts"]
    assert {t: table_md5(engine, t) for t in before} == before
    for rel in ("demo/manifest.json", "imagery/changchun_2025.tif", "imagery/changchun_2026.tif"):
        assert (tmp_path / rel).read_bytes() == (first_dir / rel).read_bytes(), rel
