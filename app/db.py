"""One SQLAlchemy engine per application, created lazily (no work at import time)."""
from __future__ import annotations

from flask import Flask, current_app
from sqlalchemy import Engine, create_engine


def make_engine(url: str, **kwargs) -> Engine:
    return create_engine(url, **{"pool_size": 5, "max_overflow": 5, "pool_pre_ping": True, **kwargs})


def init_app(app: Flask) -> None:
    app.extensions["onemap.engine"] = None


def engine() -> Engine:
    eng = current_app.extensions.get("onemap.engine")
    if eng is None:
        eng = make_engine(current_app.config["ONEMAP"].sqlalchemy_url)
        current_app.extensions["onemap.engine"] = eng
    return eng
