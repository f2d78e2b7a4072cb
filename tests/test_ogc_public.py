"""The public OGC API Features service at /ogc, over a real HTTP server, read with real clients
(OWSLib, GDAL's OAPIF driver through pyogrio) against the demo province."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import requests
from owslib.ogcapi.features import Features
from sqlalchemy import text

from app.ogc.config import MAX_ITEMS
from app.ogc.crs import CRS84, SUPPORTED_CRS
from layers import REGISTRY

EPSG = "http://www.opengis.net/def/crs/EPSG/0/{}".format
PUBLISHED = [layer.name for layer in REGISTRY.published()]


@pytest.fixture(scope="module")
def ogc(live_server):
    return live_server.url + "/ogc"


def view_count(engine, collection: str, where: str = "TRUE") -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM pub.{collection} WHERE {where}")).scalar_one()


def view_ids(engine, collection: str, where: str) -> set[int]:
    with engine.connect() as conn:
        return set(conn.execute(text(f"SELECT id FROM pub.{collection} WHERE {where}")).scalars())


def all_items(url: str, headers: dict | None = None, **params) -> list[dict]:
    """Every feature, following the next links."""
    features = []
    page = requests.get(url, params={"limit": MAX_ITEMS, **params}, headers=headers, timeout=60)
    while True:
        assert page.status_code == 200, page.text
        body = page.json()
        features += body["features"]
        nxt = [link["href"] for link in body["links"] if link["rel"] == "next"]
        if not nxt or not body["features"]:
            return features
        page = requests.get(nxt[0], headers=headers, timeout=60)


def test_landing_conformance_and_collections_come_from_the_registry(ogc):
    api = Features(ogc)
    conformance = api.conformance()["conformsTo"]
    for cls in ("ogcapi-features-2/1.0/conf/crs", "ogcapi-features-3/1.0/conf/filter", "cql2/1.0/conf/cql2-text",
                "cql2/1.0/conf/cql2-json", "cql2/1.0/conf/advanced-comparison-operators",
                "cql2/1.0/conf/case-insensitive-comparison", "cql2/1.0/conf/spatial-functions",
                "cql2/1.0/conf/temporal-functions"):
        assert any(c.endswith(cls) for c in conformance), cls
    assert not any("create-replace-delete" in c or "accent-insensitive" in c for c in conformance)
    collections = {c["id"]: c for c in api.collections()["collections"]}
    assert list(collections) == PUBLISHED
    for layer in REGISTRY.published():
        c = collections[layer.name]
        assert c["title"] == layer.zh
        assert c["crs"] == SUPPORTED_CRS and c["storageCrs"] == CRS84
        minx, miny, maxx, maxy = c["extent"]["spatial"]["bbox"][0]
        assert 115 < minx <= maxx < 135 and 38 < miny <= maxy < 50
        if layer.time_field:
            assert "temporal" in c["extent"], layer.name
    english = requests.get(f"{ogc}/collections/hazard_point", params={"lang": "en"}, timeout=30).json()
    assert english["title"] == REGISTRY["hazard_point"].en


def test_every_public_collection_reads_fully_through_owslib(ogc, engine):
    api = Features(ogc)
    for name in PUBLISHED:
        first = api.collection_items(name, limit=MAX_ITEMS)
        features = first["features"]
        nxt = [link["href"] for link in first["links"] if link["rel"] == "next"]
        while nxt:
            page = requests.get(nxt[0], timeout=60).json()
            features += page["features"]
            nxt = [link["href"] for link in page["links"] if link["rel"] == "next"] if page["features"] else []
        assert len(features) == view_count(engine, name), name
        assert len({f["id"] for f in features}) == len(features)


GDAL_READER = """
import json, sys
import pyogrio, pyogrio.raw
if len(sys.argv) > 3:
    pyogrio.set_gdal_config_options({"GDAL_HTTP_AUTH": "BEARER", "GDAL_HTTP_BEARER": sys.argv[3]})
out = {}
for name in sys.argv[2].split(","):
    meta, _, geometry, _ = pyogrio.raw.read("OAPIF:" + sys.argv[1], layer=name)
    out[name] = {"count": len(geometry), "fields": list(meta["fields"])}
print(json.dumps(out))
"""


def read_with_gdal(url: str, layers: list[str], token: str | None = None) -> dict:
    """GDAL's OAPIF driver in a child process: pyogrio holds the GIL while GDAL waits on HTTP,
    which would starve the in-process test server."""
    args = [sys.executable, "-c", GDAL_READER, url, ",".join(layers)] + ([token] if token else [])
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_public_collection_reads_fully_through_gdal_oapif(ogc, engine):
    read = read_with_gdal(ogc, PUBLISHED)
    for name in PUBLISHED:
        assert read[name]["count"] == view_count(engine, name), name
        visible = {f.name for f in REGISTRY[name].public_fields}
        assert set(read[name]["fields"]) <= visible, name


def test_unpublished_columns_and_rows_cannot_be_reached(ogc, engine):
    items = f"{ogc}/collections/enforcement_case/items"
    for params in ({"filter": "party = 'x'"}, {"filter": "party LIKE '%'"}, {"sortby": "party"},
                   {"properties": "party"}, {"party": "x"},
                   {"filter": json.dumps({"op": "=", "args": [{"property": "party"}, "x"]}),
                    "filter-lang": "cql2-json"}):
        response = requests.get(items, params=params, timeout=30)
        assert response.status_code == 400, params
        assert response.json()["description"]
    response = requests.get(f"{ogc}/collections/hazard_point/items", params={"filter": "monitor_phone IS NULL"},
                            timeout=30)
    assert response.status_code == 400 and "monitor_phone" in response.json()["description"]
    cases = all_items(items)
    assert {f["properties"]["status"] for f in cases} <= {"closed"}
    with engine.connect() as conn:
        closed = conn.execute(text("SELECT count(*) FROM enforcement_case WHERE status = 'closed'")).scalar_one()
    assert len(cases) == closed
    assert all("party" not in f["properties"] for f in cases)
    for unpublished in ("land_use", "violation_lead", "change_patch"):
        assert requests.get(f"{ogc}/collections/{unpublished}/items", timeout=30).status_code == 404


def _first_point(engine):
    with engine.connect() as conn:
        return conn.execute(text("SELECT id, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM pub.hazard_point "
                                 "ORDER BY id LIMIT 1")).one()


@pytest.mark.parametrize("epsg, north_first", [(4490, True), (4326, True), (3857, False), (4529, True),
                                               (4530, True), (4531, True), (4532, True), (4550, True),
                                               (4551, True), (4552, True), (4553, True)])
def test_crs_output_has_the_crs_axis_order_and_content_crs(ogc, engine, epsg, north_first):
    point = _first_point(engine)
    with engine.connect() as conn:
        x, y = conn.execute(text("SELECT ST_X(g), ST_Y(g) FROM (SELECT ST_Transform(geom, :srid) g "
                                 "FROM hazard_point WHERE id = :id) s"), {"srid": epsg, "id": point.id}).one()
    expected = (y, x) if north_first else (x, y)
    for url in (f"{ogc}/collections/hazard_point/items/{point.id}",
                f"{ogc}/collections/hazard_point/items?filter=id={point.id}"):
        response = requests.get(url, params={"crs": EPSG(epsg)}, timeout=30)
        assert response.status_code == 200
        assert response.headers["Content-Crs"] == f"<{EPSG(epsg)}>"
        body = response.json()
        coords = (body["features"][0] if "features" in body else body)["geometry"]["coordinates"]
        tolerance = 1e-7 if epsg in (4490, 4326) else 1e-3
        assert coords == pytest.approx(expected, abs=tolerance)
    default = requests.get(f"{ogc}/collections/hazard_point/items/{point.id}", timeout=30)
    assert default.headers["Content-Crs"] == f"<{CRS84}>"
    assert default.json()["geometry"]["coordinates"] == pytest.approx([point.lon, point.lat], abs=1e-8)


def test_bbox_in_crs84_4490_3857_and_gauss_kruger_select_the_same_features(ogc, engine):
    point = _first_point(engine)
    lon0, lat0, lon1, lat1 = point.lon - 0.3, point.lat - 0.2, point.lon + 0.3, point.lat + 0.2
    expected = view_ids(engine, "hazard_point",
                        f"ST_Intersects(geom, ST_MakeEnvelope({lon0}, {lat0}, {lon1}, {lat1}, 4490))")
    assert point.id in expected
    with engine.connect() as conn:
        x0, y0, x1, y1 = conn.execute(text(
            "SELECT ST_X(a), ST_Y(a), ST_X(b), ST_Y(b) FROM (SELECT "
            "ST_Transform(ST_SetSRID(ST_Point(:x0, :y0), 4490), 3857) a, "
            "ST_Transform(ST_SetSRID(ST_Point(:x1, :y1), 4490), 3857) b) s"),
            {"x0": lon0, "y0": lat0, "x1": lon1, "y1": lat1}).one()
    queries = [({"bbox": f"{lon0},{lat0},{lon1},{lat1}"}, expected),
               ({"bbox": f"{lat0},{lon0},{lat1},{lon1}", "bbox-crs": EPSG(4490)}, expected),
               ({"bbox": f"{x0},{y0},{x1},{y1}", "bbox-crs": EPSG(3857)}, expected)]
    for params, ids in queries:
        got = {f["id"] for f in all_items(f"{ogc}/collections/hazard_point/items", skipGeometry="true", **params)}
        assert got == ids, params
    gk = requests.get(f"{ogc}/collections/hazard_point/items/{point.id}", params={"crs": EPSG(4530)},
                      timeout=30).json()["geometry"]["coordinates"]
    northing, easting = gk
    box = f"{northing - 100},{easting - 100},{northing + 100},{easting + 100}"
    near = {f["id"] for f in all_items(f"{ogc}/collections/hazard_point/items", bbox=box, **{"bbox-crs": EPSG(4530)})}
    assert point.id in near


CQL2_CASES = [
    # (collection, CQL2 text, CQL2 JSON, the same condition in SQL on the public view)
    ("hazard_point", "hazard_type IN ('landslide','rockfall')",
     {"op": "in", "args": [{"property": "hazard_type"}, ["landslide", "rockfall"]]},
     "hazard_type IN ('landslide','rockfall')"),
    ("hazard_point", "threatened_people BETWEEN 10 AND 100",
     {"op": "between", "args": [{"property": "threatened_people"}, 10, 100]},
     "threatened_people BETWEEN 10 AND 100"),
    ("hazard_point", "CASEI(hazard_no) LIKE casei('%1%')",
     {"op": "like", "args": [{"op": "casei", "args": [{"property": "hazard_no"}]}, {"op": "casei", "args": ["%1%"]}]},
     "lower(hazard_no) LIKE '%1%'"),
    ("hazard_point", "NOT (risk_level = 'small') AND threatened_people IS NOT NULL",
     {"op": "and", "args": [{"op": "not", "args": [{"op": "=", "args": [{"property": "risk_level"}, "small"]}]},
                            {"op": "not", "args": [{"op": "isNull", "args": [{"property": "threatened_people"}]}]}]},
     "NOT (risk_level = 'small') AND threatened_people IS NOT NULL"),
    ("hazard_point", "S_INTERSECTS(geometry, BBOX(122,40,126,44))",
     {"op": "s_intersects", "args": [{"property": "geometry"}, {"bbox": [122, 40, 126, 44]}]},
     "ST_Intersects(geom, ST_MakeEnvelope(122,40,126,44,4490))"),
    ("enforcement_case", "S_WITHIN(geometry, POLYGON((121 40,127 40,127 47,121 47,121 40)))",
     {"op": "s_within", "args": [{"property": "geometry"}, {"type": "Polygon", "coordinates":
                                 [[[121, 40], [127, 40], [127, 47], [121, 47], [121, 40]]]}]},
     "ST_Within(geom, ST_GeomFromText('POLYGON((121 40,127 40,127 47,121 47,121 40))', 4490))"),
    ("enforcement_case", "T_AFTER(filed_on, DATE('2024-02-01'))",
     {"op": "t_after", "args": [{"property": "filed_on"}, {"date": "2024-02-01"}]},
     "filed_on > DATE '2024-02-01'"),
    ("enforcement_case", "T_DURING(filed_on, INTERVAL('2024-01-01','2024-06-30'))",
     {"op": "t_during", "args": [{"property": "filed_on"}, {"interval": ["2024-01-01", "2024-06-30"]}]},
     "filed_on > DATE '2024-01-01' AND filed_on < DATE '2024-06-30'"),
    ("enforcement_case", "closed_on >= filed_on",
     {"op": ">=", "args": [{"property": "closed_on"}, {"property": "filed_on"}]},
     "closed_on >= filed_on"),
    ("disaster_event", "T_BEFORE(started_at, TIMESTAMP('2025-01-01T00:00:00Z'))",
     {"op": "t_before", "args": [{"property": "started_at"}, {"timestamp": "2025-01-01T00:00:00Z"}]},
     "started_at < TIMESTAMPTZ '2025-01-01T00:00:00Z'"),
]


@pytest.mark.parametrize("collection, cql_text, cql_json, where", CQL2_CASES,
                         ids=[c[1][:40] for c in CQL2_CASES])
def test_cql2_text_and_json_filters_select_what_sql_selects(ogc, engine, collection, cql_text, cql_json, where):
    expected = view_ids(engine, collection, where)
    url = f"{ogc}/collections/{collection}/items"
    as_text = {f["id"] for f in all_items(url, filter=cql_text, skipGeometry="true")}
    as_json = {f["id"] for f in all_items(url, filter=json.dumps(cql_json), **{"filter-lang": "cql2-json"})}
    posted = requests.post(url, data=json.dumps(cql_json), params={"limit": MAX_ITEMS},
                           headers={"Content-Type": "application/query-cql-json"}, timeout=30)
    assert posted.status_code == 200, posted.text
    assert as_text == as_json == expected
    assert {f["id"] for f in posted.json()["features"]} == expected


def test_filter_crs_puts_geometry_literals_into_storage_coordinates(ogc, engine):
    point = _first_point(engine)
    url = f"{ogc}/collections/hazard_point/items"
    in_4326 = f"S_INTERSECTS(geometry, BBOX({point.lat - 0.01},{point.lon - 0.01},{point.lat + 0.01},{point.lon + 0.01}))"
    got = {f["id"] for f in all_items(url, filter=in_4326, **{"filter-crs": EPSG(4326)})}
    assert point.id in got


def test_owslib_filters_with_cql2(ogc, engine):
    api = Features(ogc)
    result = api.collection_items("hazard_point", filter="hazard_type = 'landslide'", limit=MAX_ITEMS)
    assert {f["id"] for f in result["features"]} == view_ids(engine, "hazard_point", "hazard_type = 'landslide'")


def test_paging_sortby_properties_skip_geometry_datetime(ogc, engine):
    url = f"{ogc}/collections/hazard_point/items"
    first = requests.get(url, params={"limit": 5, "sortby": "-threatened_people,hazard_no"}, timeout=30).json()
    assert first["numberReturned"] == 5 and "numberMatched" not in first
    people = [f["properties"]["threatened_people"] for f in first["features"]]
    assert people == sorted(people, key=lambda v: (v is None, -(v or 0)))[:5] or None in people
    nxt = [link["href"] for link in first["links"] if link["rel"] == "next"][0]
    second = requests.get(nxt, timeout=30).json()
    assert not {f["id"] for f in first["features"]} & {f["id"] for f in second["features"]}
    slim = requests.get(url, params={"properties": "name", "skipGeometry": "true", "limit": 3}, timeout=30).json()
    assert all(f["geometry"] is None and set(f["properties"]) == {"name"} for f in slim["features"])
    capped = requests.get(url, params={"limit": 10**12}, timeout=60).json()
    assert capped["numberReturned"] <= MAX_ITEMS
    with engine.connect() as conn:
        day = conn.execute(text("SELECT min(surveyed_on) FROM pub.hazard_point")).scalar_one()
    dated = all_items(url, datetime=f"{day.isoformat()}/..")
    assert len(dated) == view_count(engine, "hazard_point", f"surveyed_on >= DATE '{day.isoformat()}'")
    hits = requests.get(url, params={"resulttype": "hits"}, timeout=30).json()
    assert hits["numberMatched"] == view_count(engine, "hazard_point")


@pytest.mark.parametrize("path, params, status", [
    ("collections/hazard_point/items", {"bbox": "1,2,3"}, 400),
    ("collections/hazard_point/items", {"bbox": "a,b,c,d"}, 400),
    ("collections/hazard_point/items", {"bbox": "nan,1,2,3"}, 400),
    ("collections/hazard_point/items", {"crs": EPSG(32651)}, 400),
    ("collections/hazard_point/items", {"bbox": "1,2,3,4", "bbox-crs": "EPSG:4326"}, 400),
    ("collections/hazard_point/items", {"filter": "name = 'x' OR 1=1; DROP TABLE hazard_point; --"}, 400),
    ("collections/hazard_point/items", {"filter": "threatened_people = 'many'"}, 400),
    ("collections/hazard_point/items", {"filter": "NOT (" * 200 + "name = 'x'" + ")" * 200}, 400),
    ("collections/hazard_point/items", {"filter": "{not json", "filter-lang": "cql2-json"}, 400),
    ("collections/hazard_point/items", {"filter": "name = 'x'", "filter-lang": "sql"}, 400),
    ("collections/hazard_point/items", {"limit": "lots"}, 400),
    ("collections/hazard_point/items", {"limit": "0"}, 400),
    ("collections/hazard_point/items", {"offset": "-5"}, 400),
    ("collections/hazard_point/items", {"offset": "9" * 30}, 400),
    ("collections/hazard_point/items", {"datetime": "yesterday"}, 400),
    ("collections/hazard_point/items", {"sortby": "nope"}, 400),
    ("collections/hazard_point/items", {"frobnicate": "1"}, 400),
    ("collections/admin_division/items", {"datetime": "2024-01-01"}, 400),
    ("collections/no_such_layer/items", {}, 404),
    ("collections/no_such_layer", {}, 404),
    ("collections/hazard_point/items/999999999", {}, 404),
    ("collections/hazard_point/items/not-an-id", {}, 404),
])
def test_bad_requests_get_a_4xx_with_a_message(ogc, path, params, status):
    response = requests.get(f"{ogc}/{path}", params=params, timeout=30)
    assert response.status_code == status, (params, response.text[:300])
    assert response.json()["description"]


def test_html_pages_load_every_asset_from_this_server(ogc, live_server):
    pages = ["", "/collections", "/collections/hazard_point", "/collections/hazard_point/items",
             "/collections/hazard_point/queryables", "/conformance", "/openapi", "/openapi?ui=redoc"]
    first = requests.get(f"{ogc}/collections/hazard_point/items", params={"limit": 1}, timeout=30).json()
    pages.append(f"/collections/hazard_point/items/{first['features'][0]['id']}")
    assets = set()
    for page in pages:
        url = f"{ogc}{page}{'&' if '?' in page else '?'}f=html"
        response = requests.get(url, timeout=30)
        assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html"), url
        html = response.text
        loaded = re.findall(r'<script[^>]+src="([^"]+)"', html) + re.findall(r'<img[^>]+src="([^"]+)"', html)
        loaded += [href for tag in re.findall(r"<link[^>]+>", html) if re.search(r'rel="(stylesheet|icon|shortcut icon)"', tag)
                   for href in re.findall(r'href="([^"]+)"', tag)]
        for asset in loaded:
            assert asset.startswith(live_server.url + "/"), (page, asset)
            assets.add(asset)
    assert any(a.endswith("/ol.js") for a in assets) and any(a.endswith("swagger-ui-bundle.js") for a in assets)
    for asset in assets:
        assert requests.get(asset, timeout=30).status_code == 200, asset
