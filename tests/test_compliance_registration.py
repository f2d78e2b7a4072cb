"""The approval compliance check at registration (建设用地审批合规性核查, issue 7 point 4): approvals
imported by the one engine (directly, by `etl import`, by the clerk's upload page) are checked in
the batch's transaction and the result is stored (table approval_check, approval.compliance); a
dry run reports without storing; re-importing changes nothing; a rollback removes the results; an
on-demand recheck stores the new latest.

Hand-made geometry in two made-up counties far from the demo province (no demo layer there); the
overlap with basic farmland is computed independently with pyproj.Geod on the hand-made shapes."""
from __future__ import annotations

import re

import pytest
from pyproj import Geod
from shapely.geometry import Polygon, box
from shapely.geometry.polygon import orient
from sqlalchemy import text

from etl.importer import import_file, rollback_batch
from services.compliance import check_and_record, latest
from tests.import_fixtures import write_vector

COUNTY_A, COUNTY_B = "229911", "229912"
BOX_A, BOX_B = (100.0, 30.0, 100.5, 30.5), (100.5, 30.0, 101.0, 30.5)
FARMLAND = box(100.10, 30.10, 100.12, 30.12)
HOLE = [(100.116, 30.108), (100.118, 30.108), (100.118, 30.110), (100.116, 30.110)]
ON_FARMLAND = Polygon(box(100.115, 30.105, 100.125, 30.115).exterior.coords, [HOLE])
# the part of ON_FARMLAND inside FARMLAND, by hand: x from 100.115 to 100.12, the hole inside it
OVERLAP = Polygon(box(100.115, 30.105, 100.12, 30.115).exterior.coords, [HOLE])
CLEAN = box(100.30, 30.30, 100.31, 30.31)
OVER_QUOTA = box(100.60, 30.20, 100.61, 30.21)
QUOTA_B = 100_000.0
YEAR = 2026
DOCS = {"red": "测试政地〔2026〕1号", "green": "测试政地〔2026〕2号", "quota": "测试政地〔2026〕3号"}
GEOD = Geod(a=6378137.0, rf=298.257222101)      # the CGCS2000 ellipsoid, spelled out


def geod_m2(geom) -> float:
    area, _ = GEOD.geometry_area_perimeter(orient(geom, 1.0))
    return abs(area)


def add_reference(conn) -> None:
    """Two counties, a 010 zone and an urban boundary over each, one basic-farmland patch, quotas."""
    for code, b in ((COUNTY_A, BOX_A), (COUNTY_B, BOX_B)):
        env = dict(c=code, a=b[0], b=b[1], x=b[2], y=b[3])
        conn.execute(text("INSERT INTO admin_division (code, name, level, parent_code, geom) VALUES "
                          "(:c, '核查测试县' || :c, 'county', '229900', "
                          "ST_Multi(ST_MakeEnvelope(:a, :b, :x, :y, 4490)))"), env)
        conn.execute(text("INSERT INTO plan_zone (zone_code, zone_no, county_code, geom) VALUES "
                          "('010', 'Z-' || :c, :c, ST_Multi(ST_MakeEnvelope(:a, :b, :x, :y, 4490)))"), env)
        conn.execute(text("INSERT INTO urban_boundary (town, zone_no, county_code, geom) VALUES "
                          "('测试镇', 'U-' || :c, :c, ST_Multi(ST_MakeEnvelope(:a, :b, :x, :y, 4490)))"), env)
    conn.execute(text("INSERT INTO basic_farmland (patch_no, class_code, grade, county_code, geom) VALUES "
                      "('BF-229911-1', '0101', '5', :c, ST_Multi(ST_GeomFromText(:w, 4490)))"),
                 dict(c=COUNTY_A, w=FARMLAND.wkt))
    conn.execute(text("INSERT INTO construction_quota VALUES (:a, :y, 1e9), (:b, :y, :q)"),
                 dict(a=COUNTY_A, b=COUNTY_B, y=YEAR, q=QUOTA_B))


def remove_reference(conn) -> None:
    conn.execute(text("DELETE FROM approval WHERE county_code IN (:a, :b)"), dict(a=COUNTY_A, b=COUNTY_B))
    for table in ("basic_farmland", "plan_zone", "urban_boundary"):
        conn.execute(text(f"DELETE FROM {table} WHERE county_code IN (:a, :b)"), dict(a=COUNTY_A, b=COUNTY_B))
    conn.execute(text("DELETE FROM construction_quota WHERE county_code IN (:a, :b)"), dict(a=COUNTY_A, b=COUNTY_B))
    conn.execute(text("DELETE FROM admin_division WHERE code IN (:a, :b)"), dict(a=COUNTY_A, b=COUNTY_B))


def approvals_file(path, which=("red", "green", "quota")):
    geoms = {"red": ON_FARMLAND, "green": CLEAN, "quota": OVER_QUOTA}
    counties = {"red": COUNTY_A, "green": COUNTY_A, "quota": COUNTY_B}
    return write_vector(path, [geoms[w] for w in which], {
        "PZWH": [DOCS[w] for w in which], "SPLX": ["conversion"] * len(which),
        "PZJG": ["province"] * len(which), "PZRQ": [f"{YEAR}-03-0{i + 1}" for i in range(len(which))],
        "XZQDM": [counties[w] for w in which]}, driver="GeoJSON", geometry_type="Polygon")


def stored(conn) -> dict[str, dict]:
    ids = conn.execute(text("SELECT id FROM approval WHERE document_no = ANY(:d)"), {"d": list(DOCS.values())})
    return {c["document_no"]: c for c in latest(conn, [i for i, in ids])}


def history(conn) -> int:
    return conn.execute(text("SELECT count(*) FROM approval_check c JOIN approval a ON a.id = c.approval_id "
                             "WHERE a.county_code IN (:a, :b)"), dict(a=COUNTY_A, b=COUNTY_B)).scalar()


def assert_registered_colours(checks: dict[str, dict]) -> None:
    red = checks[DOCS["red"]]
    assert red["colour"] == "red" and [r["check"] for r in red["reasons"]] == ["basic_farmland"]
    reason = red["reasons"][0]
    assert reason["colour"] == "red" and reason["m2"] == pytest.approx(geod_m2(OVERLAP), abs=0.01)
    assert "not approved by the State Council" in reason["en"] and f"{geod_m2(OVERLAP):.2f} m²" in reason["zh"]
    assert red["basic_farmland_m2"] == pytest.approx(geod_m2(OVERLAP), abs=0.01)
    assert red["area_m2"] == pytest.approx(geod_m2(ON_FARMLAND), abs=0.01)
    green = checks[DOCS["green"]]
    assert green["colour"] == "green" and green["reasons"] == []
    quota = checks[DOCS["quota"]]
    assert quota["colour"] == "red" and [r["check"] for r in quota["reasons"]] == ["quota"]
    assert quota["reasons"][0]["m2"] == pytest.approx(geod_m2(OVER_QUOTA) - QUOTA_B, abs=0.01)


def test_hand_made_figures():
    """The fixture itself: the overlap is a strict part of the approval and the quota is exceeded."""
    assert ON_FARMLAND.intersection(FARMLAND).symmetric_difference(OVERLAP).area < 1e-15
    assert 0 < geod_m2(OVERLAP) < geod_m2(ON_FARMLAND) and geod_m2(OVER_QUOTA) > QUOTA_B + 1


def test_registration_stores_the_check(conn, tmp_path):
    add_reference(conn)
    path = approvals_file(tmp_path / "批复.geojson")
    before = history(conn)
    dry = import_file(conn, "approval", path, dry_run=True, user="clerk.a")
    assert dry.status == "dry-run" and history(conn) == before == 0
    assert {a["document_no"]: a["colour"] for a in dry.compliance} == {
        DOCS["red"]: "red", DOCS["green"]: "green", DOCS["quota"]: "red"}
    assert_registered_colours({a["document_no"]: a for a in dry.compliance})
    assert conn.execute(text("SELECT count(*) FROM approval WHERE document_no = ANY(:d)"),
                        {"d": list(DOCS.values())}).scalar() == 0

    done = import_file(conn, "approval", path, user="clerk.a")
    assert done.status == "imported" and done.rows_inserted == 3
    summary = done.compliance_summary()
    assert summary["counts"] == {"red": 2, "yellow": 0, "green": 1}
    assert [a["document_no"] for a in summary["flagged"]] == sorted([DOCS["red"], DOCS["quota"]])
    assert "compliance check of the 3 approvals: 2 red, 0 yellow, 1 green" in [r["problem"] for r in done.report]
    checks = stored(conn)
    assert_registered_colours(checks)
    assert {(c["triggered_by"], c["import_batch_id"], c["requested_by"]) for c in checks.values()} == {
        ("registration", done.batch_id, "clerk.a")}
    assert dict(conn.execute(text("SELECT document_no, compliance FROM approval WHERE document_no = ANY(:d)"),
                             {"d": list(DOCS.values())}).all()) == {
        DOCS["red"]: "red", DOCS["green"]: "green", DOCS["quota"]: "red"}
    assert history(conn) == 3

    again = import_file(conn, "approval", path, user="clerk.a")          # the same file: nothing changes
    assert again.status == "unchanged" and again.compliance is None and history(conn) == 3
    assert stored(conn) == checks

    # on demand after the quota of county B is raised: the stored latest turns green, history kept
    conn.execute(text("UPDATE construction_quota SET quota_m2 = :q WHERE county_code = :c"),
                 dict(q=geod_m2(OVER_QUOTA) + 10, c=COUNTY_B))
    quota_id = checks[DOCS["quota"]]["id"]
    now = check_and_record(conn, ids=[quota_id], triggered_by="on_demand", requested_by="supervisor.b")
    assert [(a["colour"], a["reasons"]) for a in now] == [("green", [])]
    after = stored(conn)[DOCS["quota"]]
    assert (after["colour"], after["triggered_by"], after["requested_by"], after["import_batch_id"]) == (
        "green", "on_demand", "supervisor.b", None)
    assert after["check_id"] > checks[DOCS["quota"]]["check_id"] and history(conn) == 4
    assert conn.execute(text("SELECT compliance FROM approval WHERE id = :i"), {"i": quota_id}).scalar() == "green"

    assert rollback_batch(conn, done.batch_id, user="clerk.a") == 3        # the results go with the rows
    assert history(conn) == 0 and stored(conn) == {}


def test_a_compliance_column_in_a_file_is_ignored(conn, tmp_path):
    """The colour is the platform's: a submitted 合规性核查 column cannot set it."""
    add_reference(conn)
    path = write_vector(tmp_path / "a.geojson", [ON_FARMLAND], {
        "PZWH": [DOCS["red"]], "SPLX": ["conversion"], "PZJG": ["province"], "PZRQ": [f"{YEAR}-03-01"],
        "XZQDM": [COUNTY_A], "合规性核查": ["green"]}, driver="GeoJSON", geometry_type="Polygon")
    result = import_file(conn, "approval", path, user="clerk.a")
    assert "column '合规性核查' matches no field of approval; ignored" in [r["problem"] for r in result.warnings]
    assert stored(conn)[DOCS["red"]]["colour"] == "red"
    assert conn.execute(text("SELECT compliance FROM approval WHERE document_no = :d"),
                        {"d": DOCS["red"]}).scalar() == "red"


@pytest.fixture()
def committed(engine):
    """The reference data committed (for the CLI and the web page, which commit), removed afterwards."""
    with engine.begin() as conn:
        add_reference(conn)
    yield
    with engine.begin() as conn:
        remove_reference(conn)
        conn.execute(text("DELETE FROM import_batch WHERE layer = 'approval' AND file_name LIKE '核查%'"))
        for table in ("supervision_number", "supervision_counter"):      # issued to the test approvals
            conn.execute(text(f"DELETE FROM {table} WHERE region_code IN (:a, :b)"), dict(a=COUNTY_A, b=COUNTY_B))


def test_cli_import_reports_colours_and_compare_approvals_stores(committed, test_settings, engine, tmp_path):
    from app import create_app
    runner = create_app(test_settings).test_cli_runner()
    path = approvals_file(tmp_path / "核查批复.geojson")
    dry = runner.invoke(args=["etl", "import", "approval", str(path), "--dry-run", "--user", "clerk.c"])
    assert dry.exit_code == 0, dry.output
    assert "compliance check (建设用地审批合规性核查, not stored: dry run): 2 red, 0 yellow, 1 green" in dry.output
    with engine.connect() as conn:
        assert history(conn) == 0
    out = runner.invoke(args=["etl", "import", "approval", str(path), "--user", "clerk.c"])
    assert out.exit_code == 0, out.output
    batch = int(re.search(r"batch (\d+): 3 rows into approval", out.output).group(1))
    assert f"compliance check (建设用地审批合规性核查, stored with batch {batch}): 2 red, 0 yellow, 1 green" in out.output
    lines = out.output.splitlines()
    red_at = lines.index(next(x for x in lines if x.strip().startswith(f"red    {DOCS['red']}")))
    assert lines[red_at + 1].split()[:2] == ["red", "basic_farmland"]
    assert f"占用永久基本农田 {geod_m2(OVERLAP):.2f} m²" in lines[red_at + 1]
    assert any(x.strip().startswith(f"red    {DOCS['quota']}") for x in lines)
    assert not any(DOCS["green"] in x for x in lines)                     # only red and yellow are listed
    again = runner.invoke(args=["etl", "import", "approval", str(path), "--user", "clerk.c"])
    assert "nothing changed" in again.output and "compliance check" not in again.output
    with engine.connect() as conn:
        assert history(conn) == 3

    with engine.begin() as conn:
        conn.execute(text("UPDATE construction_quota SET quota_m2 = :q WHERE county_code = :c"),
                     dict(q=geod_m2(OVER_QUOTA) + 10, c=COUNTY_B))
    recheck = runner.invoke(args=["compare", "approvals", "--county", COUNTY_B, "--user", "supervisor.d"])
    assert recheck.exit_code == 0, recheck.output
    assert recheck.output.startswith(f"green  {DOCS['quota']}")
    assert "1 approvals: 0 red, 0 yellow, 1 green (stored as checked on demand by supervisor.d)" in recheck.output
    with engine.connect() as conn:
        checks = stored(conn)
        assert checks[DOCS["quota"]]["colour"] == "green" and checks[DOCS["quota"]]["requested_by"] == "supervisor.d"
        assert checks[DOCS["red"]]["triggered_by"] == "registration" and history(conn) == 4
    rolled = runner.invoke(args=["etl", "rollback", str(batch), "--user", "clerk.c"])
    assert rolled.exit_code == 0 and "3 rows deleted" in rolled.output
    with engine.connect() as conn:
        assert history(conn) == 0 and stored(conn) == {}


def test_web_upload_shows_the_colours_and_the_api_the_stored_latest(committed, test_settings, engine, tmp_path):
    from app import create_app
    from services import department_tokens
    from tests.conftest import LiveServer
    from tests.staff import login, staff_users
    live = LiveServer(create_app(test_settings))
    path = approvals_file(tmp_path / "核查上传.geojson", which=("red", "green"))
    with engine.begin() as conn:
        secret, grant = department_tokens.create(conn, "用地处 registration test", ["approval"])
    try:
        with staff_users(engine, ("ac.clerk", "clerk", COUNTY_A), ("ac.supervisor", "supervisor", COUNTY_A)):
            clerk = login(live.url, "ac.clerk")
            page = clerk.get(live.url + "/upload/", timeout=30).text
            assert 'id="compliance"' in page and "合规性核查" in page

            def post(commit: str):
                with open(path, "rb") as fh:
                    return clerk.post(live.url + "/upload/api", timeout=60, files={"file": (path.name, fh)},
                                      data={"layer": "approval", "county": COUNTY_A, "commit": commit})

            checked = post("0").json()
            assert checked["status"] == "dry-run" and checked["compliance"]["counts"] == {
                "red": 1, "yellow": 0, "green": 1}
            with engine.connect() as conn:
                assert history(conn) == 0
            body = post("1").json()
            assert body["status"] == "imported" and body["rows_inserted"] == 2, body
            assert body["compliance"]["counts"] == {"red": 1, "yellow": 0, "green": 1}
            [flagged] = body["compliance"]["flagged"]
            assert flagged["document_no"] == DOCS["red"] and flagged["colour"] == "red"
            assert flagged["reasons"][0]["m2"] == pytest.approx(geod_m2(OVERLAP), abs=0.01)
            assert post("1").json() | {"report": None} == {
                "status": "unchanged", "batch": body["batch"], "layer": "approval", "file": path.name,
                "rows_read": 2, "rows_inserted": 0, "source_crs": 4490, "report": None, "compliance": None}

            with engine.connect() as conn:
                red_id = conn.execute(text("SELECT id FROM approval WHERE document_no = :d"),
                                      {"d": DOCS["red"]}).scalar()
            auth = {"Authorization": f"Bearer {secret}"}
            got = live.get(f"/api/approvals/{red_id}/compliance", headers=auth).json()
            assert (got["colour"], got["triggered_by"], got["import_batch_id"], got["requested_by"]) == (
                "red", "registration", body["batch"], "测试 ac.clerk (ac.clerk, clerk)")
            assert got["checked_at"][:4] == str(YEAR) and got["basic_farmland_m2"] == pytest.approx(
                geod_m2(OVERLAP), abs=0.01)
            supervisor = login(live.url, "ac.supervisor")
            rechecked = supervisor.post(live.url + f"/api/approvals/{red_id}/compliance", timeout=30).json()
            assert (rechecked["colour"], rechecked["triggered_by"], rechecked["requested_by"]) == (
                "red", "on_demand", "ac.supervisor")
            assert live.get(f"/api/approvals/{red_id}/compliance", headers=auth).json()["check_id"] == \
                rechecked["check_id"]

            # the supervisor's map popup shows the colour, a field of the approval layer like any other
            [feature] = supervisor.get(live.url + "/api/map/identify", timeout=30, params={
                "lon": 100.124, "lat": 30.112, "z": 14, "layers": "approval"}).json()["features"]
            field = next(f for f in feature["fields"] if f["name"] == "compliance")
            assert (field["value"], field["label_zh"], field["zh"]) == ("red", "红（不合规）", "合规性核查")
            # and the internal OGC API listing (a token granting approval) serves it; the public one not
            item = live.get(f"/internal/ogc/collections/approval/items/{red_id}?f=json", headers=auth).json()
            assert item["properties"]["compliance"] == "red"
            listed = live.get(f"/internal/ogc/collections/approval/items?f=json&filter=compliance='red' "
                              f"AND county_code='{COUNTY_A}'", headers=auth).json()["features"]
            assert [f["properties"]["document_no"] for f in listed] == [DOCS["red"]]
            assert "compliance" not in live.get(f"/ogc/collections/approval/items/{red_id}?f=json").json()["properties"]
            public = live.get("/public/api/identify", params={"lon": 100.124, "lat": 30.112, "z": 14,
                                                               "layers": "approval"}).json()["features"]
            assert public and "compliance" not in {f["name"] for f in public[0]["fields"]}
    finally:
        live.stop()
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM department_token WHERE id = :i"), {"i": grant.id})


def test_upload_page_in_a_browser_shows_the_colours(committed, test_settings, engine, tmp_path):
    """Debian's chromium (Playwright) on the clerk's page: the committed batch's colours and reasons."""
    from playwright.sync_api import sync_playwright

    from app import create_app
    from tests.conftest import LiveServer
    from tests.staff import PASSWORD, staff_users
    from tests.test_map_browser import CHROMIUM, CHROMIUM_ARGS
    live = LiveServer(create_app(test_settings))
    path = approvals_file(tmp_path / "核查浏览器.geojson", which=("red", "green"))
    try:
        with staff_users(engine, ("ac.browser", "clerk", COUNTY_A)), sync_playwright() as p:
            chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = chromium.new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(live.url + "/login?next=/upload/")
            page.fill("input[name=username]", "ac.browser")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(live.url + "/upload/")
            page.select_option("select[name=layer]", "approval")
            page.fill("input[name=county]", COUNTY_A)
            page.check("input[name=commit]")
            page.set_input_files("input[name=file]", str(path))
            page.click("#upload button[type=submit]")
            page.locator("#flagged tbody tr").first.wait_for()
            counts = page.inner_text("#compliance-counts")
            assert "红 red: 1" in counts and "黄 yellow: 0" in counts and "绿 green: 1" in counts and "已保存" in counts
            assert page.locator("#compliance-counts .c-red").inner_text() == "红 red: 1"
            rows = page.locator("#flagged tbody tr")
            assert rows.count() == 1 and rows.first.get_attribute("class") == "c-red"
            cells = rows.first.locator("td").all_inner_texts()
            assert cells[:2] == ["红 red", DOCS["red"]] and cells[3] == "basic_farmland"
            assert f"占用永久基本农田 {geod_m2(OVERLAP):.2f} m²" in cells[4]
            assert "已入库 2 行" in page.inner_text("#state") and errors == []
            chromium.close()
        with engine.connect() as conn:
            assert {d: c["colour"] for d, c in stored(conn).items()} == {DOCS["red"]: "red", DOCS["green"]: "green"}
    finally:
        live.stop()
