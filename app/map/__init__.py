"""The map pages and their JSON: the supervisor map at / (staff), the public map at /public/.

Each audience gets the same endpoints from one factory, reading what it may see
(services/map_data.py): staff the tables, the public the `pub` views.

| path | what |
|---|---|
| `/` · `/public/` | the map page (staff · public) |
| `…/layers/<layer>.geojson?from=&to=` | a small layer whole, optionally within a date range of its time field |
| `…/identify?lon=&lat=&z=&layers=a,b` | the features under a click, described for a popup |
| `…/search?q=` | features by number (supervision, parcel, licence, case …) or name |
| `/public/api/regions` | the administrative divisions with their bounds |

where `…` is `/api/map` (staff) or `/public/api` (public).
"""
from __future__ import annotations

from datetime import date

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from flask_wtf.csrf import generate_csrf

from app.db import engine
from app.map.assets import bp as vendor_bp
from app.query import QUERY_ROLES
from app.auth import current_user, login_required
from services import map_data
from services.map_data import MapDataError

bp = Blueprint("map", __name__)
STAFF_API, PUBLIC_API = "/api/map", "/public/api"
TILE_PX = 256
IDENTIFY_PX = 8       # click tolerance for points and lines, in screen pixels


def _error(status: int, message: str) -> Response:
    response = jsonify({"code": "NotFound" if status == 404 else "InvalidParameterValue" if status == 400
                        else "Unauthorized", "description": message})
    response.status_code = status
    return response


def _date(name: str) -> date | None:
    value = request.args.get(name, "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise MapDataError(f"parameter {name}: {value!r} is not a date (YYYY-MM-DD)") from None


def _number(name: str, low: float, high: float) -> float:
    value = request.args.get(name, "")
    try:
        number = float(value)
    except ValueError:
        raise MapDataError(f"parameter {name}: {value!r} is not a number") from None
    if not low <= number <= high:
        raise MapDataError(f"parameter {name}: {number} is outside [{low}, {high}]")
    return number


def _answer(public: bool, work):
    """Run `work(conn)` for an audience: staff endpoints need a logged-in staff user."""
    if not public and not current_user:
        return _error(401, "login required (请先登录): internal map data is for staff")
    try:
        with engine().connect() as conn:
            return work(conn)
    except MapDataError as e:
        return _error(e.status, str(e))


def _register_api(prefix: str, public: bool) -> None:
    """The map's JSON endpoints for one audience (one definition, two audiences)."""
    kind = "public" if public else "staff"

    def layer_geojson(layer: str):
        def work(conn):
            body = map_data.features_geojson(conn, layer, public, _date("from"), _date("to"))
            return Response(body, mimetype="application/geo+json",
                            headers={"Cache-Control": ("public" if public else "private") + ", max-age=30"})
        return _answer(public, work)

    def identify():
        def work(conn):
            z = _number("z", 0, 22)
            tolerance = IDENTIFY_PX * 360.0 / (TILE_PX * 2 ** z)
            names = [n for n in request.args.get("layers", "").split(",") if n]
            return jsonify({"features": map_data.identify(conn, names, _number("lon", -180, 180),
                                                          _number("lat", -90, 90), tolerance, public)})
        return _answer(public, work)

    def search():
        return _answer(public, lambda conn: jsonify({"results": map_data.search(conn, request.args.get("q", ""),
                                                                                public)}))

    bp.add_url_rule(f"{prefix}/layers/<layer>.geojson", f"{kind}_layer", layer_geojson)
    bp.add_url_rule(f"{prefix}/identify", f"{kind}_identify", identify)
    bp.add_url_rule(f"{prefix}/search", f"{kind}_search", search)


_register_api(STAFF_API, public=False)
_register_api(PUBLIC_API, public=True)


@bp.get(f"{PUBLIC_API}/regions")
def public_regions():
    return _answer(True, lambda conn: jsonify({"regions": map_data.regions(conn)}))


def _page(public: bool, query_api: dict | None = None) -> Response:
    # folium (and pandas under it) imported on the first page, not with the app: every CLI command
    # loads the app (`flask --app wsgi ...`) and would pay ~0.6 s for it
    from app.map.page import page_config, render_map
    with engine().connect() as conn:
        config = page_config(conn, public, request.script_root + (PUBLIC_API if public else STAFF_API),
                             query_api)
    if not public:
        config["user"] = current_user.public()
        config["csrf_token"] = generate_csrf()       # sent as X-CSRFToken with the area query
        config["logout"] = request.script_root + "/logout"
    response = Response(render_map(config), mimetype="text/html")
    response.headers["Cache-Control"] = "no-store" if not public else "public, max-age=60"
    return response


# the inspector's area query (app/query.py), offered to the roles that may run it
QUERY_API = {"query": "/api/query", "upload": "/api/query/upload", "print": "/query/print"}


@bp.get("/")
@login_required()
def staff_map():
    may_query = current_user.has_role(*QUERY_ROLES)
    return _page(False, {k: request.script_root + v for k, v in QUERY_API.items()} if may_query else None)


@bp.get("/public/")
def public_map():
    return _page(True)


@bp.get("/favicon.ico")
def favicon():
    return current_app.send_static_file("map/favicon.svg")


def init_app(app: Flask) -> None:
    app.register_blueprint(vendor_bp)
    app.register_blueprint(bp)
