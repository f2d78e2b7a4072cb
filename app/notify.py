"""A thread per server process that LISTENs to PostgreSQL notifications and calls a handler per channel.

The tile cache (app/tiles.py) uses it to delete the tiles of changed areas and to forget cached
token checks the moment a change or revocation commits. Every `poll` seconds without a notification,
and after every reconnection (notifications sent while disconnected are lost), every handler is
called anyway, so a lost notification delays its effect by at most `poll` seconds.
"""
from __future__ import annotations

import logging
import os
import select
import threading
import time
from typing import Callable

import psycopg2
import psycopg2.extensions

log = logging.getLogger(__name__)


class Listener:
    def __init__(self, dsn: str, handlers: dict[str, Callable[[set[str]], None]], poll: float = 5.0):
        """`handlers`: channel -> function of the set of payloads received (empty on a poll)."""
        self.dsn = dsn
        self.handlers = handlers
        self.poll = poll
        self._pid: int | None = None
        self._lock = threading.Lock()

    def running_here(self) -> bool:
        return self._pid == os.getpid()

    def ensure_running(self) -> None:
        """Start the thread in this process if it does not run yet (after a fork, in the child too)."""
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():
                threading.Thread(target=self._run, name="onemap-listener", daemon=True).start()
                self._pid = os.getpid()

    def _run(self) -> None:
        while True:
            try:
                self._listen()
            except Exception:        # the database went away or a handler failed: retry, from a full pass
                log.exception("notification listener: reconnecting in 1 s")
                time.sleep(1.0)

    def _listen(self) -> None:
        conn = psycopg2.connect(self.dsn, application_name="onemap-listener")
        try:
            conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
            with conn.cursor() as cur:
                for channel in self.handlers:
                    cur.execute(f'LISTEN "{channel}"')
            self._dispatch({channel: set() for channel in self.handlers})   # what happened before
            while True:
                if select.select([conn], [], [], self.poll) == ([], [], []):
                    self._dispatch({channel: set() for channel in self.handlers})
                    continue
                conn.poll()
                received: dict[str, set[str]] = {}
                while conn.notifies:
                    n = conn.notifies.pop(0)
                    received.setdefault(n.channel, set()).add(n.payload)
                self._dispatch(received)
        finally:
            conn.close()

    def _dispatch(self, received: dict[str, set[str]]) -> None:
        for channel, payloads in received.items():
            if channel in self.handlers:
                self.handlers[channel](payloads)
