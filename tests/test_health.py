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
