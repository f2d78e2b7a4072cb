"""/healthz over a real HTTP server, against the demo province in the test database."""
from __future__ import annotations

import requests
from alembic.script import ScriptDirectory

from app import create_app
from etl.schema import alembic_config
from layers import REGISTRY
from tests.conftest import LiveServer


def test_healthz_reports_postgis_and_every_layer_count(live_server, engine):
    response = live_server.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["reachable"] is True
    assert body["database"]["postgis"].startswith("3.")
    assert body["database"]["schema_revision"] == ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert set(body["layers"]) == {layer.name for layer in REGISTRY}
    assert body["empty_layers"] == []
    with engine.connect() as conn:
        for name, count in body["layers"].items():
            assert count == conn.exec_driver_sql(f"SELECT count(*) FROM {name}").scalar_one() > 0


def test_healthz_says_503_when_the_database_is_unreachable(test_settings):
    from dataclasses import replace
    unreachable = replace(test_settings, database_url="postgresql://nobody:wrong@127.0.0.1:9/none")
    server = LiveServer(create_app(unreachable))
    try:
        response = requests.get(server.url + "/healthz", timeout=30)
    finally:
        server.stop()
    assert response.status_code == 503
    assert response.json()["database"]["reachable"] is False


def test_home_page_lists_the_layers_in_chinese(live_server, engine):
    from tests.staff import login, staff_users
    assert live_server.get("/", allow_redirects=False).status_code == 302     # staff only
    with staff_users(engine, ("home.viewer", "supervisor", "220000")):
        page = login(live_server.url, "home.viewer").get(live_server.url + "/", timeout=30)
    assert page.status_code == 200
    assert "一张图综合监管平台" in page.text
    for layer in REGISTRY:
        assert layer.zh in page.text
