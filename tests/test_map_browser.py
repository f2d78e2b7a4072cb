"""The maps in a real browser: Debian's chromium driven by Playwright (never a downloaded browser).

Every request to a host other than the test server is blocked and counted; the tests assert
that count is zero, and that the console shows no error, after loading, toggling layers,
opening popups (one holding a hostile string), switching language, searching, jumping to a
region and filtering by date.
"""
from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import sync_playwright
from sqlalchemy import text

from layers import REGISTRY
from tests.conftest import LiveServer
from tests.staff import PASSWORD, staff_users

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--disable-default-apps", "--disable-sync", "--no-first-run", "--disable-domain-reliability",
                 "--disable-client-side-phishing-detection", "--disable-features=Translate,MediaRouter,OptimizationHints"]
HOSTILE = '<img src=x onerror="window.__pwned=1;alert(1)">'
HOSTILE_AT = (126.55, 43.84)      # lon/lat of the planted hazard point (吉林市 area)
VIEWPORT = {"width": 1440, "height": 900}


@pytest.fixture(scope="module")
def hostile_point(engine, demo):
    """A published hazard point whose name is an HTML payload; removed afterwards."""
    with engine.begin() as conn:
        fid = conn.execute(text(
            "INSERT INTO hazard_point (hazard_no, name, hazard_type, risk_level, threatened_people, "
            "monitor_name, surveyed_on, county_code, geom) VALUES ('XSS-0001', :name, 'landslide', 'large', 12, "
            ":name, '2024-05-01', '220202', ST_SetSRID(ST_MakePoint(:x, :y), 4490)) RETURNING id"),
            {"name": HOSTILE, "x": HOSTILE_AT[0], "y": HOSTILE_AT[1]}).scalar_one()
    yield fid
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM hazard_point WHERE id = :id"), {"id": fid})


@pytest.fixture(scope="module")
def supervisor(engine):
    with staff_users(engine, ("browser.supervisor", "supervisor", "220000")):
        yield "browser.supervisor"


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class MapPage:
    """One browser tab on the server, with what it asked of other hosts and what it complained of."""

    def __init__(self, browser, server: LiveServer, locale: str = "zh-CN"):
        self.base = server.url
        self.origin = urlsplit(server.url)
        self.external: list[str] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.context = browser.new_context(viewport=VIEWPORT, locale=locale)
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", self._dialog)

    def _route(self, route):
        url = urlsplit(route.request.url)
        if url.scheme in ("data", "blob") or (url.hostname, url.port) == (self.origin.hostname, self.origin.port):
            route.continue_()
        else:
            self.external.append(route.request.url)
            route.abort()

    def _dialog(self, dialog):
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def login(self, username: str) -> None:
        self.page.goto(self.base + "/login?next=/")
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", PASSWORD)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(self.base + "/")

    def open(self, path: str) -> None:
        self.page.goto(self.base + path)
        self.page.wait_for_function("window.OneMap && OneMap.ready")

    def js(self, expression: str, arg=None):
        return self.page.evaluate(expression, arg)

    def wait_loaded(self, layer: str) -> int:
        """Waits for a GeoJSON layer's features; returns their count."""
        self.page.wait_for_function("n => OneMap.state.layers[n] && OneMap.state.layers[n].featureCount !== undefined "
                                    "&& !document.querySelector('.om-status-loading')", arg=layer)
        return self.js("n => OneMap.state.layers[n].getLayers().length", layer)

    def view(self, lon: float, lat: float, zoom: int) -> None:
        self.js("([lon, lat, z]) => { OneMap.map.setView([lat, lon], z, {animate: false}); }", [lon, lat, zoom])

    def click_at(self, lon: float, lat: float) -> None:
        box = self.page.locator(".folium-map").bounding_box()
        point = self.js("([lon, lat]) => { const p = OneMap.map.latLngToContainerPoint([lat, lon]); "
                        "return [p.x, p.y]; }", [lon, lat])
        self.page.mouse.click(box["x"] + point[0], box["y"] + point[1])

    def close(self) -> None:
        self.context.unroute_all(behavior="ignoreErrors")
        self.context.close()


@pytest.fixture()
def tab(browser, map_server):
    page = MapPage(browser, map_server)
    yield page
    page.close()


def _count(engine, sql: str, **params) -> int:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def test_public_map_loads_offline_without_console_errors(tab, engine, hostile_point):
    with tab.page.expect_response(lambda r: "/tiles/vector/admin_division/" in r.url and r.status == 200):
        tab.open("/public/")
    assert tab.wait_loaded("hazard_point") == _count(engine, "SELECT count(*) FROM pub.hazard_point")
    assert tab.wait_loaded("enforcement_case") == _count(engine, "SELECT count(*) FROM pub.enforcement_case") \
        < _count(engine, "SELECT count(*) FROM enforcement_case")
    tree = tab.js("() => [...document.querySelectorAll('.om-tree input[data-layer]')].map(e => e.dataset.layer)")
    assert sorted(tree) == sorted(layer.name for layer in REGISTRY.published())
    assert tab.page.locator("h1").inner_text() == "吉林省自然资源信息公开地图"
    assert tab.external == [] and tab.errors == [] and tab.dialogs == []
    # the counter does count: a request to another host is blocked and recorded
    tab.js("() => fetch('https://cdn.example.invalid/x.js').catch(() => null)")
    tab.page.wait_for_timeout(200)
    assert tab.external == ["https://cdn.example.invalid/x.js"]


def test_supervisor_map_after_login_shows_every_layer(tab, engine, supervisor):
    tab.login(supervisor)
    tab.page.wait_for_function("window.OneMap && OneMap.ready")
    tree = tab.js("() => [...document.querySelectorAll('.om-tree input[data-layer]')].map(e => e.dataset.layer)")
    assert sorted(tree) == sorted(layer.name for layer in REGISTRY)
    assert tab.wait_loaded("violation_lead") == _count(engine, "SELECT count(*) FROM violation_lead")
    with tab.page.expect_response(lambda r: "/tiles/internal/vector/land_use/12/" in r.url and r.status == 200):
        tab.view(125.32, 43.88, 12)
    assert "测试 browser.supervisor" in tab.page.locator(".om-user").inner_text()
    assert tab.external == [] and tab.errors == []


def test_toggle_layers(tab, engine, supervisor):
    tab.login(supervisor)
    tab.page.wait_for_function("window.OneMap && OneMap.ready")
    tab.wait_loaded("hazard_point")
    on_map = "n => OneMap.map.hasLayer(OneMap.state.layers[n])"
    assert tab.js(on_map, "hazard_point")
    tab.page.uncheck("#om-layer-hazard_point")
    assert not tab.js(on_map, "hazard_point")
    tab.page.check("#om-layer-supply")
    assert tab.wait_loaded("supply") == _count(engine, "SELECT count(*) FROM supply")
    tab.view(125.32, 43.88, 11)
    with tab.page.expect_response(lambda r: "/tiles/internal/vector/basic_farmland/11/" in r.url and r.status == 200):
        tab.page.check("#om-layer-basic_farmland")
    assert tab.js(on_map, "basic_farmland") and tab.js(on_map, "supply")
    legend = tab.page.locator("#om-layer-supply >> xpath=ancestor::div[@class='om-layer']//ul")
    assert "挂牌出让" in legend.inner_text()
    assert tab.external == [] and tab.errors == []


@pytest.mark.parametrize("path", ["/public/", "/"])
def test_a_hostile_attribute_is_shown_as_text_and_never_runs(tab, hostile_point, supervisor, path):
    if path == "/":
        tab.login(supervisor)
    tab.open(path)
    tab.wait_loaded("hazard_point")
    tab.view(*HOSTILE_AT, 14)
    with tab.page.expect_response(lambda r: "/identify?" in r.url):
        tab.click_at(*HOSTILE_AT)
    popup = tab.page.locator(".om-popup section[data-layer=hazard_point]").first
    popup.wait_for()
    assert HOSTILE in popup.inner_text()
    assert tab.js("() => document.querySelectorAll('.leaflet-popup img, .om-panel img').length") == 0
    tab.page.wait_for_timeout(300)
    assert tab.js("() => window.__pwned") is None
    assert tab.dialogs == [] and tab.external == [] and tab.errors == []
    fields = popup.inner_text()
    assert "险情等级" in fields and "大型" in fields
    assert ("监测人" in fields) == (path == "/")         # an internal field, staff only


def test_switch_language(tab, supervisor):
    tab.login(supervisor)
    tab.page.wait_for_function("window.OneMap && OneMap.ready")
    assert tab.js("() => document.documentElement.lang") == "zh-CN"
    assert tab.page.locator("label[for=om-layer-land_use]").inner_text() == "土地利用现状"
    tab.page.click("#om-lang")
    assert tab.js("() => document.documentElement.lang") == "en"
    assert tab.page.locator("h1").inner_text() == "Jilin Natural Resources One-Map Supervision Platform"
    assert tab.page.locator("label[for=om-layer-land_use]").inner_text() == "Land-use status parcels"
    assert tab.page.locator("[data-group=base] .om-group-head").inner_text().endswith("One map · base layers")
    assert "Supervisor" in tab.page.locator(".om-user").inner_text()
    tab.page.reload()
    tab.page.wait_for_function("window.OneMap && OneMap.ready")
    assert tab.page.locator("#om-lang").inner_text() == "中文"        # the choice is remembered
    tab.page.click("#om-lang")
    assert tab.page.locator("h1").inner_text() == "吉林省自然资源一张图综合监管平台"
    assert tab.external == [] and tab.errors == []


def test_search_jump_and_date_range(tab, engine, supervisor):
    with engine.connect() as conn:
        number, x0, y0, x1, y1 = conn.execute(text(
            "SELECT supervision_no, ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) "
            "FROM approval ORDER BY id LIMIT 1")).one()
        city = conn.execute(text("SELECT code, ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) "
                                 "FROM admin_division WHERE name = '延边朝鲜族自治州'")).one()
    tab.login(supervisor)
    tab.page.wait_for_function("window.OneMap && OneMap.ready && OneMap.state.regions.length")
    tab.page.fill("#om-search", number)
    tab.page.press("#om-search", "Enter")
    first = tab.page.locator("#om-search-results .om-result").first
    first.wait_for()
    assert number in tab.page.locator("#om-search-results").inner_text() or "审批" in first.inner_text()
    first.click()
    tab.page.wait_for_function("() => OneMap.map.getZoom() >= 12")
    lon, lat = tab.js("() => { const c = OneMap.map.getCenter(); return [c.lng, c.lat]; }")
    assert x0 - 0.01 < lon < x1 + 0.01 and y0 - 0.01 < lat < y1 + 0.01

    tab.page.select_option("#om-city", city.code)
    tab.page.wait_for_function("() => OneMap.map.getZoom() < 12")
    lon, lat = tab.js("() => { const c = OneMap.map.getCenter(); return [c.lng, c.lat]; }")
    assert city[1] < lon < city[3] and city[2] < lat < city[4]
    counties = tab.js("() => [...document.querySelectorAll('#om-county option')].filter(o => o.value).length")
    assert counties == _count(engine, "SELECT count(*) FROM admin_division WHERE parent_code = :c", c=city.code)

    tab.wait_loaded("hazard_point")
    with tab.page.expect_response(lambda r: "hazard_point.geojson?from=2022-01-01" in r.url):
        tab.page.fill("#om-date-from", "2022-01-01")
    with tab.page.expect_response(lambda r: "hazard_point.geojson?from=2022-01-01&to=2023-12-31" in r.url):
        tab.page.fill("#om-date-to", "2023-12-31")
    expected = _count(engine, "SELECT count(*) FROM hazard_point WHERE surveyed_on BETWEEN '2022-01-01' AND "
                              "'2023-12-31'")
    tab.page.wait_for_function("n => OneMap.state.layers.hazard_point.getLayers().length === n", arg=expected)
    assert 0 < expected < _count(engine, "SELECT count(*) FROM hazard_point")
    assert tab.external == [] and tab.errors == []


@pytest.fixture(scope="module")
def inspector(engine):
    with staff_users(engine, ("browser.inspector", "inspector", "220000")):
        yield "browser.inspector"


def _expected_areas(engine, polygon, layer: str) -> dict[int, float]:
    """Each feature's area inside `polygon`, computed apart from PostGIS: Shapely cuts, pyproj measures."""
    import shapely
    from services.areas import geodesic_area_m2
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT id, ST_AsBinary(geom) FROM {layer} WHERE geom && "   # noqa: S608 (a registry name)
                                 "ST_GeomFromText(:wkt, 4490)"), {"wkt": polygon.wkt}).all()
    out = {}
    for fid, wkb in rows:
        part = shapely.intersection(shapely.from_wkb(bytes(wkb)), polygon)
        if not part.is_empty and part.area > 0:
            out[fid] = geodesic_area_m2(part)
    return out


def test_an_inspector_draws_a_polygon_and_reads_the_areas_per_layer(tab, engine, inspector):
    from shapely.geometry import shape
    tab.login(inspector)
    tab.page.wait_for_function("window.OneMap && OneMap.ready")
    tab.view(125.35, 43.87, 14)         # southern Changchun: parcels, approvals, farmland
    box = tab.page.locator(".folium-map").bounding_box()
    corners = [(300, 220), (720, 200), (760, 520), (520, 640), (330, 560)]
    tab.page.click(".leaflet-draw-draw-polygon")
    tab.page.mouse.move(box["x"] + 500, box["y"] + 400, steps=10)   # the draw tool follows the pointer
    tab.page.wait_for_timeout(300)
    with tab.page.expect_request(lambda r: r.url.endswith("/api/query") and r.method == "POST") as sent:
        for x, y in corners + corners[:1]:       # clicks at a person's pace; the first vertex again closes it
            tab.page.mouse.move(box["x"] + x, box["y"] + y, steps=12)
            tab.page.wait_for_timeout(150)
            tab.page.mouse.down()
            tab.page.wait_for_timeout(100)
            tab.page.mouse.up()
            tab.page.wait_for_timeout(400)
    geometry = sent.value.post_data_json["geometry"]
    polygon = shape(geometry)
    assert geometry["type"] == "Polygon" and len(geometry["coordinates"][0]) == len(corners) + 1
    tab.page.locator(".om-query-layer[data-layer=land_use]").wait_for()

    def shown(layer):   # (label, m² as shown, m² as sent) per row of the layer's table, the total last
        return tab.js("n => [...document.querySelectorAll(`.om-query-layer[data-layer=${n}] tbody tr`)].map("
                      "r => [r.cells[0].innerText, r.cells[1].innerText, Number(r.cells[1].dataset.m2)])", layer)

    for layer in ("land_use", "basic_farmland", "approval"):
        expected = _expected_areas(engine, polygon, layer)
        rows = shown(layer)
        if not expected:
            assert rows == [], layer
            continue
        *features, total = rows
        assert len(features) == len(expected), layer
        assert sorted(m2 for _, _, m2 in features) == pytest.approx(sorted(expected.values()), abs=0.01), layer
        # parcels of one layer do not overlap here: the union's total is their sum
        assert total[0] == "合计" and total[2] == pytest.approx(sum(expected.values()), abs=0.05)
        assert total[1] == f"{round(sum(expected.values())):,}"
    parcels = _expected_areas(engine, polygon, "land_use")
    from services.areas import geodesic_area_m2
    query_area = tab.page.locator(".om-query-area").inner_text()     # 查询范围面积 1,234,567 m²
    assert float(query_area.split()[-2].replace(",", "")) == pytest.approx(geodesic_area_m2(polygon), abs=1)
    assert sum(parcels.values()) == pytest.approx(geodesic_area_m2(polygon), rel=1e-3)   # parcels cover it
    classes = tab.js("() => [...document.querySelectorAll('.om-query-layer[data-layer=land_use_by_class] tbody tr')]"
                     ".map(r => r.cells[0].innerText.slice(0, 4))")
    with engine.connect() as conn:
        codes = dict(conn.execute(text("SELECT id, class_code FROM land_use WHERE id = ANY(:ids)"),
                                  {"ids": list(parcels)}).all())
    assert sorted(classes) == sorted(set(codes.values()))
    # the list and the map highlight each other
    first = tab.page.locator(".om-query-layer[data-layer=land_use] tbody tr.om-query-row").first
    first.hover()
    assert "om-active" in first.get_attribute("class")
    assert tab.external == [] and tab.errors == []


def test_an_uploaded_zipped_shapefile_is_drawn_measured_and_printable(tab, engine, inspector, tmp_path):
    """A zipped Shapefile outline in Gauss-Krüger (zone 42 with prefix): the server reads it, the map
    draws the outline it queried, the areas match, and the print page opens on the same outline."""
    from shapely.geometry import box as shapely_box, shape
    from services.areas import geodesic_area_m2
    from tests.import_fixtures import outline_zip, to_gk
    outline = shapely_box(125.34, 43.86, 125.36, 43.875)
    archive = outline_zip(tmp_path, to_gk([outline], 4530)[0], 4530)
    tab.login(inspector)
    tab.page.wait_for_function("window.OneMap && OneMap.ready")
    tab.page.click("#om-tab-results")
    with tab.page.expect_response(lambda r: r.url.endswith("/api/query/upload")) as answered:
        tab.page.set_input_files("#om-upload", str(archive))
    drawn = shape(answered.value.json()["query_geometry"])
    assert drawn.symmetric_difference(outline).area < 1e-12
    tab.page.locator(".om-query-layer[data-layer=land_use]").wait_for()
    query_area = tab.page.locator(".om-query-area").inner_text()
    assert float(query_area.split()[-2].replace(",", "")) == pytest.approx(geodesic_area_m2(outline), abs=1)
    assert tab.js("() => OneMap.map.getBounds().contains([43.8675, 125.35])")   # the map went to the outline
    with tab.context.expect_page() as printed:
        tab.page.get_by_role("button", name="打印").click()
    page = printed.value
    page.wait_for_load_state()
    printed_m2 = re.search(r"Query area：([\d.]+) m²", page.inner_text("body")).group(1)
    assert float(printed_m2) == pytest.approx(geodesic_area_m2(outline), abs=1)
    page.close()
    assert tab.external == [] and tab.errors == []
