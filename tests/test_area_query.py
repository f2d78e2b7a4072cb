"""The inspector's area query over a real HTTP server with logged-in `requests` sessions.

Every expected area is computed here independently: the intersections with Shapely, the areas
with pyproj.Geod on GRS80 (the CGCS2000 ellipsoid), and compared with the server's to 0.01 m².
"""
from __future__ import annotations

import csv
import io
import json
import zipfile

import numpy as np
import pyogrio.raw
import pytest
import requests
import shapely
from pyproj import Geod
from shapely.geometry import Point, Polygon, box, mapping, shape
from sqlalchemy import text

from layers import REGISTRY
from layers.codes import LAND_USE_CLASS
from services import area_query
from tests.import_fixtures import outline_zip, to_gk
from tests.staff import login, staff_users

GEOD = Geod(ellps="GRS80")
TOL_M2 = 0.01
SPOT_COUNTY = "220721"                      # hand-made features go near (124.0, 44.5): no demo urban
# boundaries, red lines or hazard points there (asserted below)
SQUARE_A = box(123.990, 44.490, 124.010, 44.510)
SQUARE_B = box(124.000, 44.500, 124.020, 44.520)          # overlaps A by a quarter
SQUARE_FAR = box(124.040, 44.540, 124.045, 44.545)        # outside the query
POINT_IN, POINT_OUT = Point(124.005, 44.498), Point(124.030, 44.530)
QUERY = Polygon([(123.995, 44.495), (124.015, 44.493), (124.018, 44.512), (124.006, 44.503),
                 (123.996, 44.514)])                      # concave: the notch cuts both squares
DEMO_BOX = box(125.25, 43.80, 125.40, 43.92)              # Changchun, ~161 km²


def geod_m2(geom) -> float:
    """Independent ellipsoidal area: pyproj.Geod over each ring (holes subtracted)."""
    total = 0.0
    for poly in getattr(geom, "geoms", [geom]):
        if poly.geom_type != "Polygon" or poly.is_empty:
            continue
        total += abs(GEOD.geometry_area_perimeter(Polygon(poly.exterior))[0])
        total -= sum(abs(GEOD.geometry_area_perimeter(Polygon(r))[0]) for r in poly.interiors)
    return total


def polygons_of(geom):
    parts = [g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else Polygon()


@pytest.fixture(scope="module")
def hand_made(engine, demo):
    layers = {"urban_boundary": [("TEST-UB-A", SQUARE_A), ("TEST-UB-B", SQUARE_B), ("TEST-UB-FAR", SQUARE_FAR)],
              "hazard_point": [("TEST-HZ-IN", POINT_IN), ("TEST-HZ-OUT", POINT_OUT)]}
    with engine.begin() as conn:
        for table in ("urban_boundary", "hazard_point", "eco_redline"):
            assert conn.execute(text(f"SELECT count(*) FROM {table} WHERE geom && ST_MakeEnvelope(123.9, 44.4, "
                                     "124.1, 44.6, 4490)")).scalar() == 0, table
        ids = {}
        for label, geom in layers["urban_boundary"]:
            ids[label] = conn.execute(text(
                "INSERT INTO urban_boundary (zone_no, county_code, geom) VALUES (:n, :c, "
                "ST_Multi(ST_GeomFromText(:w, 4490))) RETURNING id"),
                dict(n=label, c=SPOT_COUNTY, w=geom.wkt)).scalar()
        for label, geom in layers["hazard_point"]:
            ids[label] = conn.execute(text(
                "INSERT INTO hazard_point (hazard_no, name, hazard_type, risk_level, county_code, geom) VALUES "
                "(:n, :n, 'landslide', 'medium', :c, ST_GeomFromText(:w, 4490)) RETURNING id"),
                dict(n=label, c=SPOT_COUNTY, w=geom.wkt)).scalar()
    yield ids
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM urban_boundary WHERE zone_no LIKE 'TEST-UB-%'"))
        conn.execute(text("DELETE FROM hazard_point WHERE hazard_no LIKE 'TEST-HZ-%'"))


@pytest.fixture(scope="module")
def staff(live_server, engine):
    with staff_users(engine, ("q.inspector", "inspector", "220000"), ("q.clerk", "clerk", "220000"),
                     ("q.county", "inspector", "220104")):
        yield {name: login(live_server.url, name) for name in ("q.inspector", "q.clerk", "q.county")}


def ask(live_server, session, geometry, layers=None, fmt=None, **kwargs):
    body = {"geometry": geometry if isinstance(geometry, (dict, str)) else mapping(geometry)}
    if layers is not None:
        body["layers"] = layers
    params = {"f": fmt} if fmt else None
    return session.post(live_server.url + "/api/query", json=body, params=params, timeout=60, **kwargs)


def by_layer(answer):
    return {layer["layer"]: layer for layer in answer["layers"]}


def test_hand_made_polygons_areas_union_and_points(live_server, staff, hand_made):
    answer = ask(live_server, staff["q.inspector"], QUERY, ["urban_boundary", "hazard_point"])
    assert answer.status_code == 200, answer.text
    result = by_layer(answer.json())
    assert list(result) == ["urban_boundary", "hazard_point"]
    urban = result["urban_boundary"]
    assert urban["title_zh"] == REGISTRY["urban_boundary"].zh and urban["title_en"] == REGISTRY["urban_boundary"].en
    features = {f["label"]: f for f in urban["features"]}
    assert set(features) == {"TEST-UB-A", "TEST-UB-B"}                  # the far square is not hit
    for label, square in (("TEST-UB-A", SQUARE_A), ("TEST-UB-B", SQUARE_B)):
        expected = geod_m2(square.intersection(QUERY))
        got = features[label]
        assert got["id"] == hand_made[label]
        assert abs(got["area_m2"] - expected) <= TOL_M2, (label, got["area_m2"], expected)
        assert abs(got["area_ha"] - expected / 1e4) <= 1e-6 and abs(got["area_mu"] - expected * 15 / 1e4) <= 1e-4
        assert abs(geod_m2(shapely.geometry.shape(got["geometry"])) - expected) <= TOL_M2
    parts = [SQUARE_A.intersection(QUERY), SQUARE_B.intersection(QUERY)]
    union = geod_m2(shapely.union_all(parts))
    summed = sum(geod_m2(p) for p in parts)
    assert summed - union > 1e4                                         # the overlap is real (> 1 ha)
    assert abs(urban["total_m2"] - union) <= TOL_M2                     # counted once
    points = result["hazard_point"]
    assert [(f["id"], f["label"], f["area_m2"]) for f in points["features"]] == [(hand_made["TEST-HZ-IN"], "TEST-HZ-IN", 0)]
    assert points["total_m2"] == 0 and points["features"][0]["geometry"]["coordinates"] == [124.005, 44.498]
    assert abs(answer.json()["query_area_m2"] - geod_m2(QUERY)) <= TOL_M2
    assert "union" in answer.json()["totals_note"]


def expected_answer(conn, query, layers):
    """Per layer {id: m2}, the union total, and land use by class, from the rows read with && only."""
    out, classes = {}, {}
    for layer in layers:
        rows = conn.execute(text(f"SELECT id, ST_AsBinary(geom) AS wkb, "
                                 f"{'class_code' if layer.name == 'land_use' else 'NULL'} AS cls FROM {layer.table} "
                                 "WHERE geom && ST_GeomFromText(:w, 4490)"), {"w": query.envelope.wkt}).all()
        geoms = shapely.from_wkb([bytes(r.wkb) for r in rows]) if rows else np.array([])
        hit = shapely.intersects(geoms, query) if len(rows) else np.array([], dtype=bool)
        parts = {r.id: (polygons_of(shapely.intersection(g, query)) if layer.geometry.value != "POINT" else g, r.cls)
                 for r, g, h in zip(rows, geoms, hit) if h}
        parts = {i: p for i, p in parts.items() if not p[0].is_empty}
        out[layer.name] = ({i: geod_m2(p) for i, (p, _) in parts.items()},
                           geod_m2(shapely.union_all([p for p, _ in parts.values()])) if parts else 0.0)
        for p, cls in parts.values():
            if cls is not None:
                classes.setdefault(cls, []).append(p)
    return out, {c: geod_m2(shapely.union_all(ps)) for c, ps in classes.items()}


def test_demo_box_matches_an_independent_computation(live_server, staff, engine):
    response = ask(live_server, staff["q.inspector"], DEMO_BOX)
    assert response.status_code == 200, response.text
    answer = response.json()
    layers = area_query.queryable_layers()
    assert [layer["layer"] for layer in answer["layers"]] == [layer.name for layer in layers]
    with engine.connect() as conn:
        province = shapely.from_wkb(bytes(conn.execute(text(
            "SELECT ST_AsBinary(geom) FROM admin_division WHERE code = '220000'")).scalar()))
        query = polygons_of(DEMO_BOX.intersection(province))
        expected, classes = expected_answer(conn, query, layers)
    assert abs(answer["query_area_m2"] - geod_m2(query)) <= TOL_M2
    assert 1.5e8 < answer["query_area_m2"] < 1.7e8
    hit_layers = 0
    for layer in answer["layers"]:
        features, total = expected[layer["layer"]]
        got = {f["id"]: f["area_m2"] for f in layer["features"]}
        assert set(got) == set(features), layer["layer"]
        for fid, m2 in features.items():
            assert abs(got[fid] - m2) <= TOL_M2, (layer["layer"], fid, got[fid], m2)
        assert abs(layer["total_m2"] - total) <= max(TOL_M2, 1e-9 * total), layer["layer"]
        hit_layers += bool(got)
    assert hit_layers >= 5 and len(expected["land_use"][0]) >= 10
    got_classes = {c["class_code"]: c for c in answer["land_use_by_class"]}
    assert set(got_classes) == set(classes)
    for code, m2 in classes.items():
        assert abs(got_classes[code]["area_m2"] - m2) <= TOL_M2
        assert got_classes[code]["class_name"] == LAND_USE_CLASS.zh_label(code)
    # land-use parcels tile the province: the classes add up to the query area (the demo's parcels
    # of different classes overlap by a few hundred m² here, 1.5e-6 of the box)
    assert abs(sum(c["area_m2"] for c in answer["land_use_by_class"]) / answer["query_area_m2"] - 1) < 1e-5


def test_query_is_clipped_to_the_users_region(live_server, staff, engine):
    with engine.connect() as conn:
        county = shapely.from_wkb(bytes(conn.execute(text(
            "SELECT ST_AsBinary(geom) FROM admin_division WHERE code = '220104'")).scalar()))
    edge = county.boundary.interpolate(0.25, normalized=True)
    straddling = box(edge.x - 0.02, edge.y - 0.02, edge.x + 0.02, edge.y + 0.02)
    assert straddling.intersects(county) and not county.contains(straddling)
    answer = ask(live_server, staff["q.county"], straddling, ["land_use"]).json()
    inside = polygons_of(straddling.intersection(county))
    assert answer["region_code"] == "220104"
    assert abs(answer["query_area_m2"] - geod_m2(inside)) <= TOL_M2 and answer["query_area_m2"] < geod_m2(straddling)
    outside = ask(live_server, staff["q.county"], box(124.0, 44.5, 124.01, 44.51))
    assert outside.status_code == 403 and "outside your region 220104" in outside.json()["error"]


@pytest.mark.parametrize("geometry, problem", [
    ({"type": "Polygon", "coordinates": [[[124.0, 44.5], [124.01, 44.51], [124.01, 44.5], [124.0, 44.51],
                                          [124.0, 44.5]]]}, "Self-intersection"),
    ({"type": "Polygon", "coordinates": [[[44.5, 124.0], [44.5, 124.01], [44.51, 124.01], [44.5, 124.0]]]},
     "lat,lon order"),
    ({"type": "Polygon", "coordinates": [[[41500000, 4930000], [41501000, 4930000], [41501000, 4931000],
                                          [41500000, 4930000]]]}, "not lon/lat degrees"),
    ({"type": "Polygon", "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4529"}},
      "coordinates": [[[124.0, 44.5], [124.01, 44.5], [124.01, 44.51], [124.0, 44.5]]]}, "EPSG::4529' is not accepted"),
    ({"type": "LineString", "coordinates": [[124.0, 44.5], [124.01, 44.5]]}, "not a Polygon or MultiPolygon"),
    ({"type": "Polygon", "coordinates": [[[124.0, 44.5], [124.3, 44.5], [124.3, 44.7], [124.0, 44.7],
                                          [124.0, 44.5]]]}, "larger than the limit of 200 km²"),
    ({"type": "Polygon", "coordinates": [[[124.0, 44.5], [124.01]]]}, "malformed Polygon coordinates"),
    ("POLYGON((124 44.5, 124.1 44.5, 124.1 44.6, 124 44.5))", "a GeoJSON Polygon or MultiPolygon object"),
])
def test_bad_polygons_are_refused_with_the_problem(live_server, staff, geometry, problem):
    refused = ask(live_server, staff["q.inspector"], geometry)
    assert refused.status_code == 400 and problem in refused.json()["error"], refused.text


def test_bad_requests_roles_and_csrf(live_server, staff):
    inspector = staff["q.inspector"]
    unknown = ask(live_server, inspector, SQUARE_A, ["land_use", "no_such_layer"])
    assert unknown.status_code == 400 and "no_such_layer" in unknown.json()["error"]
    assert "geometry: missing" in inspector.post(live_server.url + "/api/query", json={}, timeout=30).json()["error"]
    assert ask(live_server, inspector, SQUARE_A, fmt="xlsx").status_code == 400
    clerk = ask(live_server, staff["q.clerk"], SQUARE_A)
    assert clerk.status_code == 403 and "role clerk" in clerk.json()["error"]
    assert ask(live_server, requests.Session(), SQUARE_A).status_code == 401
    no_token = requests.Session()
    no_token.cookies.update(inspector.cookies)
    refused = ask(live_server, no_token, SQUARE_A)
    assert refused.status_code == 400 and "CSRF" in refused.json()["error"]


def test_exports_csv_geojson_and_print(live_server, staff, hand_made):
    inspector = staff["q.inspector"]
    layers = ["urban_boundary", "hazard_point", "land_use"]
    answer = ask(live_server, inspector, QUERY, layers).json()
    geo = ask(live_server, inspector, QUERY, layers, fmt="geojson")
    assert geo.headers["Content-Type"] == "application/geo+json"
    assert "attachment" in geo.headers["Content-Disposition"]
    fc = geo.json()
    assert fc["type"] == "FeatureCollection"
    assert len(fc["features"]) == sum(len(layer["features"]) for layer in answer["layers"])
    a_part = next(f for f in fc["features"] if f["properties"]["label"] == "TEST-UB-A")
    assert abs(a_part["properties"]["area_m2"] - geod_m2(SQUARE_A.intersection(QUERY))) <= TOL_M2
    table = ask(live_server, inspector, QUERY, layers, fmt="csv")
    assert table.headers["Content-Type"].startswith("text/csv") and table.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(table.content.decode("utf-8-sig"))))
    assert list(rows[0]) == list(area_query.CSV_HEADER)
    total = next(r for r in rows if r["kind"] == "layer_total" and r["layer"] == "urban_boundary")
    assert float(total["area_m2"]) == by_layer(answer)["urban_boundary"]["total_m2"]
    assert len([r for r in rows if r["kind"] == "feature"]) == len(fc["features"])
    assert float(next(r for r in rows if r["kind"] == "query")["area_m2"]) == answer["query_area_m2"]
    page = inspector.post(live_server.url + "/query/print", timeout=60, headers={"X-CSRFToken": ""},
                          data={"geometry": json.dumps(mapping(QUERY)), "layers": ",".join(layers),
                                "csrf_token": inspector.headers["X-CSRFToken"]})
    assert page.status_code == 200 and "区域查询结果" in page.text and "TEST-UB-A" in page.text
    assert f"{by_layer(answer)['urban_boundary']['total_m2']:.2f}" in page.text
    assert "http://" not in page.text and "https://" not in page.text      # nothing from elsewhere


def test_uploaded_outlines(live_server, staff, hand_made, tmp_path):
    inspector = staff["q.inspector"]
    layers = "urban_boundary,hazard_point"
    direct = ask(live_server, inspector, QUERY, layers.split(",")).json()
    geojson = tmp_path / "outline.geojson"
    geojson.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": mapping(QUERY)}]}), encoding="utf-8")
    gk = outline_zip(tmp_path, to_gk([QUERY], 4529)[0], 4529)     # CGCS2000 3-degree zone 41, with prefix
    for path in (geojson, gk):
        with open(path, "rb") as fh:
            got = inspector.post(live_server.url + "/api/query/upload", files={"file": (path.name, fh)},
                                 data={"layers": layers}, timeout=60)
        assert got.status_code == 200, got.text
        body = got.json()
        assert abs(body["query_area_m2"] - direct["query_area_m2"]) <= TOL_M2, path.name
        # the outline that was queried comes back (lon/lat), for the map and the print page
        assert shape(body["query_geometry"]).symmetric_difference(QUERY).area < 1e-12, path.name
        for mine, theirs in zip(body["layers"], direct["layers"]):
            assert [(f["id"], f["label"]) for f in mine["features"]] == [(f["id"], f["label"]) for f in theirs["features"]]
            for f, g in zip(mine["features"], theirs["features"]):
                assert abs(f["area_m2"] - g["area_m2"]) <= TOL_M2
            # The GK round trip leaves 1e-14° of noise, so the union keeps a vertex on one of the
            # notch's edges that the exact polygon drops; edges are geodesics between vertices, so
            # the union's area moves by ~1e-5 (Shapely + pyproj agree with PostGIS in both cases).
            assert abs(mine["total_m2"] - theirs["total_m2"]) <= 2e-5 * theirs["total_m2"] + TOL_M2
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../etc/outline.geojson", "{}")
    with open(evil, "rb") as fh:
        refused = inspector.post(live_server.url + "/api/query/upload", files={"file": ("evil.zip", fh)}, timeout=30)
    assert refused.status_code == 400 and "path traversal" in refused.json()["error"]
    line = tmp_path / "line.geojson"
    line.write_text(json.dumps({"type": "Feature", "properties": {},
                                "geometry": {"type": "LineString", "coordinates": [[124, 44.5], [124.1, 44.6]]}}))
    with open(line, "rb") as fh:
        refused = inspector.post(live_server.url + "/api/query/upload", files={"file": ("line.geojson", fh)},
                                 timeout=30)
    assert refused.status_code == 400 and "line.geojson: the outline must be polygons" in refused.json()["error"]
