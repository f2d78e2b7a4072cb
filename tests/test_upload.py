"""The clerk's upload check page and its API over a real HTTP server: token required and checked
per layer, a zipped GBK shapefile validated, a rejected file answered with its report; the web
path writes nothing (a read token must not become a write right)."""
from __future__ import annotations

import zipfile

import pytest
from sqlalchemy import text

from services import department_tokens
from tests.import_fixtures import COUNTY, OTHER_COUNTY, add_counties, parcels, write_land_use_shp


@pytest.fixture()
def server(test_settings, engine):
    from app import create_app
    from tests.conftest import LiveServer
    with engine.begin() as conn:
        add_counties(conn)
        token, grant = department_tokens.create(conn, "测试县自然资源局", ["land_use"], note="upload test")
        other, other_grant = department_tokens.create(conn, "其他部门", ["hazard_point"], note="upload test")
    live = LiveServer(create_app(test_settings))
    yield live, token, other
    live.stop()
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM land_use t USING import_batch b WHERE t.id <@ b.row_ids"))
        conn.execute(text("DELETE FROM import_batch"))
        conn.execute(text("DELETE FROM department_token WHERE id IN (:a, :b)"), dict(a=grant.id, b=other_grant.id))
        conn.execute(text("DELETE FROM admin_division WHERE code LIKE '2299%'"))


def _zip(tmp_path, name, shp):
    archive = tmp_path / name
    with zipfile.ZipFile(archive, "w") as zf:
        for p in shp.parent.glob(shp.stem + ".*"):
            zf.write(p, p.name)
    return archive


def test_upload_page_and_api(server, engine, tmp_path):
    import requests
    live, token, other = server
    page = live.get("/upload/")
    assert page.status_code == 200 and "数据上传" in page.text and "部门令牌" in page.text and 'value="land_use"' in page.text
    archive = _zip(tmp_path, "图斑.zip", write_land_use_shp(tmp_path / "a.shp"))

    def post(tok, path=archive, **form):
        with open(path, "rb") as fh:
            return requests.post(live.url + "/upload/api", timeout=30, files={"file": (path.name, fh)},
                                 data={"layer": "land_use", "county": COUNTY, "token": tok, **form})

    assert post("omt_wrong").status_code == 401
    denied = post(other)
    assert denied.status_code == 403 and "does not grant layer land_use" in denied.json()["error"]
    ok = post(token)
    body = ok.json()
    assert ok.status_code == 200 and body["status"] == "dry-run" and body["rows_read"] == 3
    assert body["file"] == "图斑.zip" and body["rows_inserted"] == 0 and body["batch"] is None
    assert any("encoding GBK (detected)" in r["problem"] for r in body["report"])
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM import_batch")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM land_use WHERE bsm LIKE 'T000%'")).scalar() == 0
    bad = _zip(tmp_path, "bad.zip", write_land_use_shp(tmp_path / "b.shp", geoms=parcels(1),
                                                       rows=[("B1", "1", "9999", "?", "", "")]))
    rejected = post(token, bad)
    assert rejected.status_code == 422
    assert {(r["row"], r["field"]) for r in rejected.json()["report"] if r["severity"] == "error"} == {(1, "class_code")}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM land_use WHERE bsm = 'B1'")).scalar() == 0
    odd = tmp_path / "x.exe"
    odd.write_bytes(b"MZ")
    assert post(token, odd).status_code == 400


def test_logged_in_clerk_commits_a_batch_for_their_region(server, engine, tmp_path):
    import requests
    from tests.staff import login, staff_users
    live, token, _ = server
    archive = _zip(tmp_path, "图斑.zip", write_land_use_shp(tmp_path / "a.shp"))

    def post(session, commit="1", county=COUNTY, **extra):
        with open(archive, "rb") as fh:
            return session.post(live.url + "/upload/api", timeout=60, files={"file": (archive.name, fh)},
                                data={"layer": "land_use", "county": county, "commit": commit, **extra})

    with staff_users(engine, ("up.clerk", "clerk", COUNTY), ("up.other", "clerk", OTHER_COUNTY),
                     ("up.inspector", "inspector", "229901")):
        clerk = login(live.url, "up.clerk")
        page = clerk.get(live.url + "/upload/", timeout=30)
        assert 'name="commit"' in page.text and 'name="token"' not in page.text and "测试 up.clerk" in page.text
        no_csrf = requests.Session()
        no_csrf.cookies.update(clerk.cookies)
        refused = post(no_csrf)
        assert refused.status_code == 400 and "CSRF" in refused.json()["error"]
        elsewhere = post(login(live.url, "up.other"))
        assert elsewhere.status_code == 403 and f"not inside your region {OTHER_COUNTY}" in elsewhere.json()["error"]
        inspector = post(login(live.url, "up.inspector"))
        assert inspector.status_code == 403 and "role inspector may not upload" in inspector.json()["error"]
        # a department token only validates, whatever the form asks
        with open(archive, "rb") as fh:
            token_try = requests.post(live.url + "/upload/api", timeout=60, files={"file": (archive.name, fh)},
                                      headers={"Authorization": f"Bearer {token}"},
                                      data={"layer": "land_use", "county": COUNTY, "commit": "1"})
        assert token_try.status_code == 200 and token_try.json()["status"] == "dry-run"
        checked = post(clerk, commit="0")
        assert checked.status_code == 200 and checked.json()["status"] == "dry-run"
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM land_use WHERE bsm LIKE 'T000%'")).scalar() == 0
        done = post(clerk)
        body = done.json()
        assert done.status_code == 200 and body["status"] == "imported" and body["rows_inserted"] == 3, body
        with engine.connect() as conn:
            batch = conn.execute(text("SELECT imported_by, county_code, rows_inserted, file_name FROM import_batch "
                                      "WHERE id = :i"), {"i": body["batch"]}).one()
            assert tuple(batch) == ("测试 up.clerk (up.clerk, clerk)", COUNTY, 3, "图斑.zip")
            assert conn.execute(text("SELECT count(*) FROM land_use WHERE bsm LIKE 'T000%' AND county_code = :c"),
                                {"c": COUNTY}).scalar() == 3
        again = post(clerk)
        assert again.json()["status"] == "unchanged" and again.json()["batch"] == body["batch"]
