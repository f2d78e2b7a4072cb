"""Fixtures: a real PostGIS test database, migrated from scratch once per session.

The test database is TEST_DATABASE_URL (written to var/onemap.env by bin/pg for the private
cluster). It is wiped at the start of the session: never point it at data you keep.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from config.settings import read_env_file

DEMO_TEST_SCALE = 0.03  # ~3,000 parcels: every planted case, small enough to load in seconds


def _test_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL") or read_env_file().get("TEST_DATABASE_URL")
    if not url:
        pytest.exit("TEST_DATABASE_URL is not set: run `make test` (it starts the private cluster)", 2)
    scheme, rest = url.split("://", 1)
    return f"postgresql+psycopg2://{rest}" if scheme == "postgresql" else url


@pytest.fixture(scope="session")
def engine():
    from etl.schema import upgrade
    eng = create_engine(_test_url())
    with eng.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    with eng.begin() as conn:
        upgrade(conn)
    yield eng
    eng.dispose()


@pytest.fixture()
def conn(engine):
    """A connection inside a transaction that is rolled back after the test."""
    with engine.connect() as connection:
        tx = connection.begin()
        try:
            yield connection
        finally:
            tx.rollback()


@pytest.fixture()
def guarded(conn):
    """`conn` with the test counties, for a submission that must be rejected: the test fails if it
    changed land_use, the import batches or the supervision numbers."""
    from tests.import_fixtures import add_counties
    from tests.test_import import snapshot
    add_counties(conn)
    before = snapshot(conn)
    yield conn
    assert snapshot(conn) == before, "a rejected file changed the database"


@pytest.fixture(scope="session")
def demo(engine, tmp_path_factory):
    """The demo province at test scale, loaded once; returns load_demo's summary."""
    from etl.demo import load_demo
    data_dir = tmp_path_factory.mktemp("demo-data")
    return load_demo(engine, data_dir=data_dir, scale=DEMO_TEST_SCALE, seed=2026)


@pytest.fixture(scope="session")
def test_settings(engine):
    from config.settings import Settings
    return Settings(database_url=engine.url.render_as_string(hide_password=False), secret_key="test-secret",
                    data_dir=Path("var/test-data"), port=0)


class LiveServer:
    """The WSGI application on a real HTTP server (werkzeug, threaded) on 127.0.0.1."""

    def __init__(self, wsgi_app):
        from werkzeug.serving import make_server
        self._server = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def get(self, path: str, **kwargs):
        import requests
        return requests.get(self.url + path, timeout=30, **kwargs)

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()


@pytest.fixture(scope="session")
def live_server(test_settings, demo):
    from app import create_app
    server = LiveServer(create_app(test_settings))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def demo_data_dir(demo) -> Path:
    """The data directory the demo province was loaded with (imagery under imagery/)."""
    return Path(demo["manifest"]).parent.parent


@pytest.fixture(scope="session")
def tiles_app(test_settings, demo_data_dir, tmp_path_factory):
    """The application with the demo's data directory and its own tile directory (caches, MapProxy)."""
    from dataclasses import replace

    from app import create_app
    from app.tiles import set_tile_dir
    app = create_app(replace(test_settings, data_dir=demo_data_dir))
    set_tile_dir(app, tmp_path_factory.mktemp("tiles"))
    return app


@pytest.fixture(scope="session")
def tiles_server(tiles_app):
    server = LiveServer(tiles_app)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def map_server(test_settings, demo, tmp_path_factory):
    """The application with data and tile directories of its own (no imagery seeded): the maps' tests."""
    from dataclasses import replace

    from app import create_app
    from app.tiles import set_tile_dir
    app = create_app(replace(test_settings, data_dir=tmp_path_factory.mktemp("map-data")))
    set_tile_dir(app, tmp_path_factory.mktemp("map-tiles"))
    server = LiveServer(app)
    yield server
    server.stop()
