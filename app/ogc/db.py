"""Engines for the OGC services' reads: the hot path of every items request.

Each request used to pay, twice (token check, then the query), a pool pre-ping, a BEGIN and a
ROLLBACK around its one SELECT: six extra round trips to PostgreSQL, each a context switch on a
busy machine. These engines run in autocommit (no BEGIN/ROLLBACK for a lone SELECT), do not
pre-ping (a connection found dead is discarded and the work retried once on a fresh one), and
set the session options once per connection: the statement timeout of paging queries and no
parallel workers, whose start-up (~10-20 ms) dwarfs a LIMIT query's own time. Work that needs
a transaction (server-side cursors of the exports) asks for one on its connection.
"""
from __future__ import annotations

from functools import cache
from typing import Callable, TypeVar

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.exc import DBAPIError

STATEMENT_TIMEOUT_MS = 20_000
SESSION_OPTIONS = f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c max_parallel_workers_per_gather=0"

T = TypeVar("T")


@cache
def read_engine(url: str) -> Engine:
    """The read engine for a database URL (one per URL and process)."""
    return create_engine(url, pool_size=5, max_overflow=5, pool_pre_ping=False, pool_recycle=3600,
                         isolation_level="AUTOCOMMIT",
                         connect_args={"options": SESSION_OPTIONS, "application_name": "onemap-ogc"})


def run(engine: Engine, work: Callable[[Connection], T]) -> T:
    """`work(conn)` on a pooled connection; once more on a fresh one if the connection was dead."""
    try:
        with engine.connect() as conn:
            return work(conn)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
    with engine.connect() as conn:
        return work(conn)
