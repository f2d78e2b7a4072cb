"""/tiles: vector tiles and TileJSON from Flask, everything else (WMTS, TMS/XYZ, WMS) from MapProxy.

- `/tiles/vector/<layer>/<z>/<x>/<y>.pbf` public vector tiles (the `pub` views) and
  `/tiles/vector/<layer>/tilejson.json`;
- `/tiles/internal/vector/<layer>/…` the same for every layer and field, with
  `Authorization: Bearer <department token>` (the grant rules of /internal/ogc: 401 without a
  valid token, 403 for a layer not granted);
- `/tiles/imagery/<epoch>/tilejson.json` TileJSON of an imagery epoch (tiles from MapProxy);
- any other path under /tiles goes to MapProxy, built from the configuration `tiles seed`
  generates (503 until then); it reloads when that file changes.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request, url_for
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from app.auth import current_user
from app.db import engine
from config.settings import ROOT
from services import department_tokens
from tiles import imagery
from tiles.cache import VectorTileCache
from tiles.vector import INTERNAL, PUBLIC, TileError, layer_bounds, tilejson, vector_layer

MVT_TYPE = "application/vnd.mapbox-vector-tile"
CACHE_CONTROL = {PUBLIC: "public, max-age=60", INTERNAL: "private, max-age=60"}
FLASK_PATHS = ("/vector/", "/internal/", "/imagery/")

bp = Blueprint("tiles", __name__, url_prefix="/tiles")


def tile_dir() -> Path:
    return Path(current_app.config["TILE_DIR"])


def _error(status: int, message: str, headers: dict | None = None) -> Response:
    response = jsonify({"code": {401: "Unauthorized", 403: "Forbidden", 404: "NotFound"}.get(status, "Error"),
                        "description": message})
    response.status_code = status
    response.headers.update(headers or {})
    return response


def _authorise(layer: str) -> Response | None:
    """None when the bearer token grants `layer` (or a staff session, without a token, reads), else 401/403."""
    if not request.headers.get("Authorization") and current_user:
        return None
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _error(401, "internal tiles need a department token: Authorization: Bearer <token>",
                      {"WWW-Authenticate": 'Bearer realm="OneMap internal tiles"'})
    with engine().connect() as conn:
        grant = department_tokens.verify(conn, token.strip())
    if grant is None:
        return _error(401, "the token is unknown or revoked",
                      {"WWW-Authenticate": 'Bearer realm="OneMap internal tiles", error="invalid_token"'})
    if not grant.allows(layer):
        return _error(403, f"the token of {grant.department} does not grant layer {layer!r}")
    return None


def _tile(audience: str, layer: str, z: int, x: int, y: int) -> Response:
    try:
        vl = vector_layer(layer, audience)
        if audience == INTERNAL and (denied := _authorise(layer)) is not None:
            return denied
        with engine().connect() as conn:
            tile = VectorTileCache(tile_dir() / "vector").get(conn, vl, z, x, y)
    except TileError as e:
        return _error(e.status, str(e))
    response = Response(tile.data, mimetype=MVT_TYPE)
    response.set_etag(tile.etag)
    response.headers["Cache-Control"] = CACHE_CONTROL[audience]
    response.headers["X-Tile-Cache"] = "hit" if tile.hit else "miss"
    if audience == INTERNAL:
        response.vary.add("Authorization")
    return response.make_conditional(request)


def _tilejson(audience: str, layer: str) -> Response:
    try:
        vl = vector_layer(layer, audience)
        if audience == INTERNAL and (denied := _authorise(layer)) is not None:
            return denied
    except TileError as e:
        return _error(e.status, str(e))
    endpoint = "tiles.public_tile" if audience == PUBLIC else "tiles.internal_tile"
    url = url_for(endpoint, layer=layer, z=0, x=0, y=0, _external=True)
    url = url.replace("/0/0/0.pbf", "/{z}/{x}/{y}.pbf")
    with engine().connect() as conn:
        bounds = layer_bounds(conn, vl.layer)
    return jsonify(tilejson(vl, url, bounds))


@bp.get("/vector/<layer>/<int:z>/<int:x>/<int:y>.pbf")
def public_tile(layer, z, x, y):
    return _tile(PUBLIC, layer, z, x, y)


@bp.get("/internal/vector/<layer>/<int:z>/<int:x>/<int:y>.pbf")
def internal_tile(layer, z, x, y):
    return _tile(INTERNAL, layer, z, x, y)


@bp.get("/vector/<layer>/tilejson.json")
def public_tilejson(layer):
    return _tilejson(PUBLIC, layer)


@bp.get("/internal/vector/<layer>/tilejson.json")
def internal_tilejson(layer):
    return _tilejson(INTERNAL, layer)


@bp.get("/imagery/<epoch>/tilejson.json")
def imagery_tilejson(epoch):
    with engine().connect() as conn:
        epochs = {e.layer: e for e in imagery.epochs(conn)}
    if epoch not in epochs:
        return _error(404, f"no imagery epoch {epoch!r}")
    base = request.url_root.rstrip("/") + "/tiles"
    return jsonify(imagery.tilejson(epochs[epoch], base))


class MapProxyMount:
    """The WSGI app at /tiles: MapProxy, except the paths Flask answers (vector tiles, TileJSON)."""

    def __init__(self, flask_wsgi, config_path: Path):
        self.flask_wsgi = flask_wsgi
        self.config_path = config_path
        self._app = None
        self._lock = threading.Lock()

    def mapproxy(self):
        if self._app is None and self.config_path.exists():
            with self._lock:
                if self._app is None:
                    from mapproxy.wsgiapp import make_wsgi_app
                    self._app = make_wsgi_app(str(self.config_path), reloader=True)
        return self._app

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith(FLASK_PATHS):     # back to Flask, with the prefix restored
            script = environ.get("SCRIPT_NAME", "")
            environ["SCRIPT_NAME"] = script[:-len("/tiles")] if script.endswith("/tiles") else script
            environ["PATH_INFO"] = "/tiles" + path
            return self.flask_wsgi(environ, start_response)
        app = self.mapproxy()
        if app is None:
            body = b"no imagery tiles yet: run `flask --app wsgi tiles seed`\n"
            start_response("503 Service Unavailable", [("Content-Type", "text/plain"),
                                                       ("Content-Length", str(len(body)))])
            return [body]
        return app(environ, start_response)


def init_app(app: Flask) -> None:
    app.config.setdefault("TILE_DIR", Path(os.environ.get("ONEMAP_TILE_DIR", ROOT / "var" / "tiles")))
    app.register_blueprint(bp)
    mount = MapProxyMount(app.wsgi_app, Path(app.config["TILE_DIR"]) / imagery.MAPPROXY_YAML)
    app.extensions["onemap.mapproxy"] = mount
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/tiles": mount})


def set_tile_dir(app: Flask, path: Path) -> None:
    """Point the application's tile caches and MapProxy configuration at `path` (tests, CLI)."""
    app.config["TILE_DIR"] = Path(path)
    mount = app.extensions["onemap.mapproxy"]
    mount.config_path, mount._app = Path(path) / imagery.MAPPROXY_YAML, None
