"""The web map's browser libraries, installed from npm (package.json, `bin/bootstrap assets`)
into node_modules and served from /vendor: no script, style or font comes from elsewhere.

folium's own defaults point at CDNs; `FOLIUM_JS`/`FOLIUM_CSS` replace them with these files.
"""
from __future__ import annotations

import json
from functools import lru_cache

from flask import Blueprint, abort, send_from_directory, url_for

from config.settings import ROOT

NODE_MODULES = ROOT / "node_modules"

# (folium's name for the asset, file under node_modules)
FOLIUM_JS = [
    ("leaflet", "leaflet/dist/leaflet.js"),
    ("jquery", "jquery/dist/jquery.min.js"),
    ("bootstrap", "bootstrap/dist/js/bootstrap.bundle.min.js"),
]
FOLIUM_CSS = [
    ("leaflet_css", "leaflet/dist/leaflet.css"),
    ("bootstrap_css", "bootstrap/dist/css/bootstrap.min.css"),
    ("awesome_markers_font_css", "@fortawesome/fontawesome-free/css/all.min.css"),
]
DRAW_JS = [("leaflet_draw_js", "leaflet-draw/dist/leaflet.draw.js")]
DRAW_CSS = [("leaflet_draw_css", "leaflet-draw/dist/leaflet.draw.css")]
VECTORGRID_JS = "leaflet.vectorgrid/dist/Leaflet.VectorGrid.bundled.min.js"

bp = Blueprint("vendor", __name__)


@lru_cache(maxsize=1)
def packages() -> tuple[str, ...]:
    """The npm packages the application serves: package.json's dependencies, nothing else."""
    manifest = json.loads((ROOT / "package.json").read_text(encoding="utf-8"))
    return tuple(manifest["dependencies"])


@bp.get("/vendor/<path:filename>")
def vendor(filename: str):
    if not any(filename.startswith(name + "/") for name in packages()):
        abort(404)
    response = send_from_directory(NODE_MODULES, filename, max_age=86400)
    return response


def vendor_url(path: str) -> str:
    return url_for("vendor.vendor", filename=path)


def local(assets: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(name, vendor_url(path)) for name, path in assets]
