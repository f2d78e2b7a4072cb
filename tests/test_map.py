"""The map pages and their JSON over real HTTP: local assets only, audiences kept apart,
values as PostGIS has them."""
from __future__ import annotations

import re

import pytest
import requests
from sqlalchemy import text

from layers import REGISTRY
from tests.staff import login, staff_users

URL_ATTR = re.compile(r'(?:src|href)="([^"]+)"')


class StaffClient:
    """A logged-in supervisor's requests session on a server; `get` takes paths."""

    def __init__(self, url: str, session: requests.Session):
        self.url, self.session = url, session

    def get(self, path: str, **kwargs):
        return self.session.get(self.url + path, timeout=30, **kwargs)


@pytest.fixture(scope="module")
def staff_server(map_server, engine):
    with staff_users(engine, ("map.supervisor", "supervisor", "220000")):
        yield StaffClient(map_server.url, login(map_server.url, "map.supervisor"))


def _page_config(html: str) -> dict:
    import json
    start = html.index("OneMap.start(")
    body = html[html.index(",", start) + 1:]
    return json.JSONDecoder().raw_decode(body.strip())[0]


@pytest.mark.parametrize("path", ["/public/", "/"])
def test_map_page_loads_only_local_assets(staff_server, path):
    page = staff_server.get(path)
    assert page.status_code == 200
    assert "http://" not in page.text and "https://" not in page.text and "//cdn" not in page.text
    urls = URL_ATTR.findall(page.text)
    assert any(u.endswith("leaflet.js") for u in urls) and any(u.endswith("onemap.js") for u in urls)
    for url in urls:
        assert url.startswith("/"), url
        assert staff_server.get(url).status_code == 200, url


def test_the_page_lists_the_audience_layers_from_the_registry(staff_server):
    staff = _page_config(staff_server.get("/").text)
    public = _page_config(staff_server.get("/public/").text)
    names = lambda cfg: [layer["name"] for g in cfg["groups"] for layer in g["layers"]]   # noqa: E731
    assert sorted(names(staff)) == sorted(layer.name for layer in REGISTRY)
    assert sorted(names(public)) == sorted(layer.name for layer in REGISTRY.published())
    kinds = {layer["name"]: layer for g in staff["groups"] for layer in g["layers"]}
    assert kinds["land_use"]["kind"] == "tiles" and "/tiles/internal/vector/land_use/{z}/" in kinds["land_use"]["url"]
    assert kinds["hazard_point"]["kind"] == "geojson"
    assert kinds["land_use"]["zh"] == "土地利用现状"
    assert {row["code"] for row in kinds["land_use"]["legend"]} >= {"01", "0101", "03"}
    public_kinds = {layer["name"]: layer for g in public["groups"] for layer in g["layers"]}
    assert public_kinds["admin_division"]["url"].startswith("/tiles/vector/admin_division/")
    assert "query" in staff["api"] and "query" not in public["api"]
    assert staff["messages"]["zh"].keys() == staff["messages"]["en"].keys()


def test_without_a_login_the_supervisor_map_and_internal_data_are_closed(live_server):
    front = live_server.get("/", allow_redirects=False)
    assert front.status_code == 302 and "/login?next=" in front.headers["Location"]
    assert live_server.get("/public/").status_code == 200
    for path in ("/api/map/layers/hazard_point.geojson", "/api/map/search?q=x",
                 "/api/map/identify?lon=125&lat=43&z=10&layers=land_use"):
        assert live_server.get(path).status_code == 401, path
    assert live_server.get("/tiles/internal/vector/land_use/12/3473/1497.pbf").status_code == 401


def test_vendor_serves_only_the_declared_packages(staff_server):
    assert staff_server.get("/vendor/leaflet/dist/leaflet.js").status_code == 200
    assert staff_server.get("/vendor/leaflet.vectorgrid/dist/Leaflet.VectorGrid.bundled.min.js").status_code == 200
    for path in ("/vendor/pbf/package.json", "/vendor/leaflet/../../package.json", "/vendor/%2e%2e/package.json"):
        assert staff_server.get(path).status_code == 404, path


def test_public_geojson_has_public_rows_and_fields_only(staff_server, engine):
    cases = staff_server.get("/public/api/layers/enforcement_case.geojson").json()
    with engine.connect() as conn:
        closed = conn.execute(text("SELECT count(*) FROM enforcement_case WHERE status = 'closed'")).scalar()
        everything = conn.execute(text("SELECT count(*) FROM enforcement_case")).scalar()
    assert closed < everything
    assert len(cases["features"]) == closed
    public_names = {f.name for f in REGISTRY["enforcement_case"].public_fields}
    assert all(set(f["properties"]) == public_names for f in cases["features"])
    assert "party" not in public_names
    staff = staff_server.get("/api/map/layers/enforcement_case.geojson").json()
    assert len(staff["features"]) == everything and "party" in staff["features"][0]["properties"]
    assert staff_server.get("/public/api/layers/land_use.geojson").status_code == 404


def test_geojson_date_range_follows_the_time_field(staff_server, engine):
    with engine.connect() as conn:
        expected = conn.execute(text("SELECT count(*) FROM hazard_point WHERE surveyed_on BETWEEN "
                                     "'2022-01-01' AND '2023-12-31'")).scalar()
        total = conn.execute(text("SELECT count(*) FROM hazard_point")).scalar()
    body = staff_server.get("/api/map/layers/hazard_point.geojson?from=2022-01-01&to=2023-12-31").json()
    assert 0 < len(body["features"]) == expected < total
    assert all("2022-01-01" <= f["properties"]["surveyed_on"] <= "2023-12-31" for f in body["features"])
    bad = staff_server.get("/api/map/layers/hazard_point.geojson?from=2022-13-01")
    assert bad.status_code == 400 and "parameter from" in bad.json()["description"]


def test_identify_answers_the_features_under_a_point(staff_server, engine):
    with engine.connect() as conn:
        fid, lon, lat, name, county = conn.execute(text(
            "SELECT id, ST_X(geom), ST_Y(geom), name, county_code FROM hazard_point ORDER BY id LIMIT 1")).one()
        parcel = conn.execute(text("SELECT id, class_code FROM land_use WHERE ST_Intersects(geom, "
                                   "ST_SetSRID(ST_MakePoint(:x, :y), 4490))"), {"x": lon, "y": lat}).one()
    body = staff_server.get(f"/api/map/identify?lon={lon + 0.0005}&lat={lat}&z=14"
                            "&layers=hazard_point,land_use").json()["features"]
    assert body[0]["layer"] == "hazard_point" and body[0]["id"] == fid and body[0]["label"] == name
    fields = {f["name"]: f for f in body[0]["fields"]}
    assert fields["county_code"]["value"] == county and fields["name"]["zh"] == "名称"
    assert fields["risk_level"]["label_zh"] in {"特大型", "大型", "中型", "小型"}
    assert body[-1]["layer"] == "land_use" and body[-1]["id"] == parcel.id
    # a click 8 px away at zoom 14 (~0.0027°) misses the point
    far = staff_server.get(f"/api/map/identify?lon={lon + 0.01}&lat={lat}&z=14&layers=hazard_point").json()
    assert all(f["id"] != fid for f in far["features"])
    public = staff_server.get(f"/public/api/identify?lon={lon}&lat={lat}&z=14&layers=hazard_point").json()
    assert "monitor_phone" not in {f["name"] for f in public["features"][0]["fields"]}
    assert staff_server.get(f"/public/api/identify?lon={lon}&lat={lat}&z=14&layers=land_use").status_code == 404
    assert staff_server.get("/api/map/identify?lon=x&lat=43&z=14&layers=land_use").status_code == 400


def test_search_by_number_and_by_name(staff_server, engine):
    with engine.connect() as conn:
        number, doc = conn.execute(text("SELECT supervision_no, document_no FROM approval ORDER BY id LIMIT 1")).one()
        chain = conn.execute(text("SELECT count(*) FROM (SELECT supervision_no FROM approval UNION ALL "
                                  "SELECT supervision_no FROM supply UNION ALL SELECT supervision_no "
                                  "FROM development_report) s WHERE supervision_no = :n"), {"n": number}).scalar()
        parcel = conn.execute(text("SELECT parcel_no FROM land_use ORDER BY id LIMIT 1")).scalar()
        licence = conn.execute(text("SELECT licence_no FROM mining_right ORDER BY id LIMIT 1")).scalar()
    results = staff_server.get("/api/map/search", params={"q": number}).json()["results"]
    assert len(results) == min(chain, 20) and all(r["exact"] for r in results)
    assert {"approval"} <= {r["layer"] for r in results}
    assert any(r["label"] == doc for r in results)
    assert staff_server.get("/api/map/search", params={"q": parcel}).json()["results"][0]["layer"] == "land_use"
    assert staff_server.get("/public/api/search", params={"q": parcel}).json()["results"] == []
    found = staff_server.get("/public/api/search", params={"q": licence}).json()["results"]
    assert found[0]["layer"] == "mining_right" and found[0]["label"] == licence
    changchun = staff_server.get("/public/api/search", params={"q": "长春"}).json()["results"]
    assert any(r["layer"] == "admin_division" and r["label"] == "长春市" for r in changchun)
    box = next(r["bbox"] for r in changchun if r["label"] == "长春市")
    assert 124 < box[0] < box[2] < 128 and 43 < box[1] < box[3] < 46
    assert staff_server.get("/public/api/search", params={"q": " "}).status_code == 400


def test_regions_form_the_province_city_county_tree(staff_server):
    regions = staff_server.get("/public/api/regions").json()["regions"]
    levels = [r["level"] for r in regions]
    assert levels.count("province") == 1 and levels.count("city") == 9 and levels.count("county") == 60
    cities = {r["code"] for r in regions if r["level"] == "city"}
    assert all(r["parent_code"] in cities for r in regions if r["level"] == "county")


def test_staff_session_opens_internal_tiles(staff_server):
    tile = staff_server.get("/tiles/internal/vector/land_use/12/3473/1497.pbf")
    assert tile.status_code == 200 and tile.headers["Content-Type"] == "application/vnd.mapbox-vector-tile"
    assert requests.get(staff_server.url + "/public/", timeout=30).headers["Cache-Control"].startswith("public")
    page = staff_server.get("/").text
    assert _page_config(page)["user"]["username"] == "map.supervisor" and _page_config(page)["csrf_token"]
