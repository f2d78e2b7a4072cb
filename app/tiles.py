"""/tiles: vector tiles and TileJSON from Flask, everything else (WMTS, TMS/XYZ, WMS) from MapProxy.

- `/tiles/vector/<layer>/<z>/<x>/<y>.pbf` public vector tiles (the `pub` views) and
  `/tiles/vector/<layer>/tilejson.json`;
- `/tiles/internal/vector/<layer>/…` the same for every layer and field, with
  `Authorization: Bearer <department token>` (the grant rules of /internal/ogc: 401 without a
  valid token, 403 for a layer not granted);
- `/tiles/imagery/<epoch>/tilejson.json` TileJSON of an imagery epoch (tiles from MapProxy);
- any other path under /tiles goes to MapProxy, built from the configuration `tiles seed`
  generates (503 until then); it reloads when that file changes.

A cached vector tile is answered by `TileHits`, a small WSGI layer in front of Flask, from its
file alone: no database (the cache deletes changed tiles itself, see tiles.cache, and token checks
are cached in memory, see services.department_tokens.GrantCache), no Flask routing. Misses and
every error go on to the Flask routes below. `TileService` holds the cache, the token checks and
the listener (app/notify.py) that keeps both current.
"""
from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request, url_for
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from app.auth import current_user
from app.db import engine, make_engine
from app.notify import Listener
from config.settings import ROOT
from services import department_tokens
from tiles import changes, imagery
from tiles.cache import VectorTileCache, etag_of
from tiles.front import CACHE_CONTROL_PUBLIC
from tiles.vector import AUDIENCES, INTERNAL, PUBLIC, TileError, layer_bounds, tilejson, vector_layer, vector_layers

MVT_TYPE = "application/vnd.mapbox-vector-tile"
CACHE_CONTROL = {PUBLIC: CACHE_CONTROL_PUBLIC, INTERNAL: "private, max-age=60"}
FLASK_PATHS = ("/vector/", "/internal/", "/imagery/")

bp = Blueprint("tiles", __name__, url_prefix="/tiles")
log = logging.getLogger(__name__)


def tile_dir() -> Path:
    return Path(current_app.config["TILE_DIR"])


class TileService:
    """Per application: the vector tile cache, cached token checks, and the listener keeping both current."""

    def __init__(self, app: Flask):
        self.app = app
        self.grants = department_tokens.GrantCache(ttl=30.0)
        url = make_url(app.config["ONEMAP"].sqlalchemy_url).set(drivername="postgresql")
        self.listener = Listener(url.render_as_string(hide_password=False), {
            changes.CHANNEL: self._layers_changed,
            department_tokens.CHANNEL: lambda _: self.grants.clear(),
        })
        self.layers = {audience: frozenset(vl.name for vl in vector_layers(audience)) for audience in AUDIENCES}
        self._engine = None

    def engine(self):
        """The renders' own connections. Serial plans: a parallel plan of a tile query costs more in
        worker start-up than it gains (z10 tile of land_use: 115 ms parallel, 44 ms serial). Autocommit
        and no ping on checkout: a render is one statement, and BEGIN, ROLLBACK and the ping were three
        of a miss's five round trips (a connection found dead is replaced and the tile retried, `_tile`)."""
        if self._engine is None:
            self._engine = make_engine(self.app.config["ONEMAP"].sqlalchemy_url, isolation_level="AUTOCOMMIT",
                                       pool_pre_ping=False,
                                       connect_args={"options": "-c max_parallel_workers_per_gather=0"})
        return self._engine

    def ensure_current(self) -> None:
        """Start the listener in this process; the first time, bring the cache up to date before
        anything is served from it (tiles changed while no server ran must not be served)."""
        if self.listener.running_here():
            return
        try:
            self._layers_changed(set())
        except Exception:        # the database is away: the listener keeps trying, from a full pass
            log.exception("tile cache: catching up at start failed")
        self.listener.ensure_running()

    @property
    def cache(self) -> VectorTileCache:
        return VectorTileCache(Path(self.app.config["TILE_DIR"]) / "mvt")

    def _layers_changed(self, layers: set[str]) -> None:
        with self.engine().connect() as conn:
            self.cache.catch_up(conn, sorted(layers) or None)


def tiles_service() -> TileService:
    return current_app.extensions["onemap.tiles"]


def bearer(header: str) -> str | None:
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def tile_headers(audience: str, data: bytes, hit: bool) -> list[tuple[str, str]]:
    headers = [("Content-Type", MVT_TYPE), ("ETag", f'"{etag_of(data)}"'),
               ("Cache-Control", CACHE_CONTROL[audience]), ("X-Tile-Cache", "hit" if hit else "miss")]
    return headers + [("Vary", "Authorization")] if audience == INTERNAL else headers


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
    token = bearer(request.headers.get("Authorization", ""))
    if token is None:
        return _error(401, "internal tiles need a department token: Authorization: Bearer <token>",
                      {"WWW-Authenticate": 'Bearer realm="OneMap internal tiles"'})
    service = tiles_service()
    grant = service.grants.get(token)
    if grant is None:
        with service.engine().connect() as conn:
            grant = service.grants.verify(conn, token)
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
        service = tiles_service()
        service.ensure_current()
        for attempt in (1, 2):
            try:
                with service.engine().connect() as conn:
                    tile = service.cache.get(conn, vl, z, x, y)
                break
            except DBAPIError as e:      # a pooled connection the server closed (a restart): once more
                if attempt == 2 or not e.connection_invalidated:
                    raise
    except TileError as e:
        return _error(e.status, str(e))
    return Response(tile.data, headers=tile_headers(audience, tile.data, tile.hit)).make_conditional(request)


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


_TILE_PATH = re.compile(r"/tiles/(internal/)?vector/([a-z0-9_]+)/([0-9]{1,2})/([0-9]{1,7})/([0-9]{1,7})\.pbf")


class TileHits:
    """WSGI in front of the application: answers a vector tile request whose file is cached (and, for
    an internal tile, whose token's grant is cached) from that file; passes everything else on."""

    def __init__(self, service: TileService, next_app):
        self.service = service
        self.next_app = next_app

    def __call__(self, environ, start_response):
        match = _TILE_PATH.fullmatch(environ.get("PATH_INFO", ""))
        if match is None or environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return self.next_app(environ, start_response)
        internal, layer, z, x, y = match.groups()
        audience = INTERNAL if internal else PUBLIC
        service = self.service
        service.ensure_current()
        if layer not in service.layers[audience]:
            return self.next_app(environ, start_response)
        if internal:
            token = bearer(environ.get("HTTP_AUTHORIZATION", ""))
            grant = service.grants.get(token) if token else None
            if grant is None or not grant.allows(layer):
                return self.next_app(environ, start_response)
        data = service.cache.read(audience, layer, int(z), int(x), int(y))
        if data is None:
            return self.next_app(environ, start_response)
        headers = tile_headers(audience, data, True)
        if headers[1][1] in environ.get("HTTP_IF_NONE_MATCH", ""):
            start_response("304 Not Modified", headers[1:])
            return []
        start_response("200 OK", headers + [("Content-Length", str(len(data)))])
        return [b""] if environ["REQUEST_METHOD"] == "HEAD" else [data]


def init_app(app: Flask) -> None:
    app.config.setdefault("TILE_DIR", Path(os.environ.get("ONEMAP_TILE_DIR", ROOT / "var" / "tiles")))
    app.register_blueprint(bp)
    mount = MapProxyMount(app.wsgi_app, Path(app.config["TILE_DIR"]) / imagery.MAPPROXY_YAML)
    app.extensions["onemap.mapproxy"] = mount
    service = app.extensions["onemap.tiles"] = TileService(app)
    app.wsgi_app = TileHits(service, DispatcherMiddleware(app.wsgi_app, {"/tiles": mount}))


def set_tile_dir(app: Flask, path: Path) -> None:
    """Point the application's tile caches and MapProxy configuration at `path` (tests, CLI)."""
    app.config["TILE_DIR"] = Path(path)
    mount = app.extensions["onemap.mapproxy"]
    mount.config_path, mount._app = Path(path) / imagery.MAPPROXY_YAML, None
