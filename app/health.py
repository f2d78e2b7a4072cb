"""/healthz: is the database reachable, which PostGIS, how many rows in every layer."""
from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy.exc import SQLAlchemyError

from app.db import engine
from services import health

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    try:
        with engine().connect() as conn:
            body = health.report(conn)
    except SQLAlchemyError as exc:
        return jsonify(status="error", database={"reachable": False, "error": type(exc).__name__}), 503
    return jsonify(body), 200 if body["status"] == "ok" else 503
