"""The clerk's upload check page and its API over a real HTTP server: token required and checked
per layer, a zipped GBK shapefile validated, a rejected file answered with its report; the web
path writes nothing (a read token must not become a write right)."""
from __future__ import annotations

import zipfile

import pytest
from sqlalchemy import text

from services import department_tokens
from tests.import_fixtures import COUNTY, add_counties, parcels, write_land_use_shp


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
        conn.execute(text("DELETE FROM land_use WHERE id IN (SELECT row_id FROM import_batch_row)"))
        conn.execute(text("DELETE FROM import_batch_row"))
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
    assert page.status_code == 200 and "数据上传预检" in page.text and 'value="land_use"' in page.text
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
