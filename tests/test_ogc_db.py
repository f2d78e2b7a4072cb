"""The OGC services' read engines: session options set once, autocommit, dead connections replaced."""
from __future__ import annotations

import time

from sqlalchemy import text

from app.ogc.db import read_engine, run


def test_read_engine_sets_session_options_and_survives_a_dead_connection(engine):
    reads = read_engine(engine.url.render_as_string(hide_password=False))
    settings = run(reads, lambda c: c.exec_driver_sql(
        "SELECT current_setting('statement_timeout'), current_setting('max_parallel_workers_per_gather')").one())
    assert tuple(settings) == ("20s", "0")
    pid = run(reads, lambda c: c.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
    with engine.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar_one()
    time.sleep(0.2)
    assert run(reads, lambda c: c.exec_driver_sql("SELECT 41 + 1").scalar_one()) == 42
