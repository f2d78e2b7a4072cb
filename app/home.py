"""The landing page: what the platform holds, layer by layer, until the map replaces it."""
from __future__ import annotations

from flask import Blueprint, render_template

from app.auth import login_required
from app.db import engine
from layers import REGISTRY
from services.health import layer_counts

bp = Blueprint("home", __name__)


@bp.get("/")
@login_required()
def index():
    with engine().connect() as conn:
        counts = layer_counts(conn)
    return render_template("index.html", layers=list(REGISTRY), counts=counts)
