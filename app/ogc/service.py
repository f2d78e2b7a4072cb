"""Flask blueprints that route to pygeoapi's API functions, one per audience.

- `/ogc` public: published layers only, read through the `pub` views (public fields and rows);
- `/internal/ogc`: every layer and field; `Authorization: Bearer <department token>` required,
  and a token sees and reads only the collections it was granted (401 without a valid token,
  403 for a collection not granted). A logged-in staff session (no Authorization header) is
  the second way in, and sees every collection.

Each audience has its own `pygeoapi.api.API` built from the registry (`app.ogc.config`) for
the URL it is reached at and, internally, for the grant set of the token. Before handing an
items request to pygeoapi the blueprint checks the parameters (unknown ones are a 400), and
takes `filter`, `filter-lang`, `filter-crs` and `datetime` out of pygeoapi's sight: those are
applied by `app.ogc.provider` (CQL2 text and JSON, see `app.ogc.cql2`).

pygeoapi, the provider and the downloads are imported on the first OGC request, not with the
app: every CLI command loads the app (`flask --app wsgi ...`) and would pay ~0.7 s for them.
"""
from __future__ import annotations

import importlib.util
import json
import math
import threading
import time
from dataclasses import replace
from functools import cache
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING

from flask import Blueprint, Flask, current_app, g, make_response, request, send_from_directory
from werkzeug.datastructures import ImmutableMultiDict

from app.auth import current_user
from app.db import engine
from app.ogc.db import read_engine, run
from app.ogc.config import INTERNAL, PUBLIC, Audience, TEMPLATES, layer_extents, pygeoapi_config
from app.ogc.crs import CRS84, SUPPORTED_CRS
from layers import FieldType
from services import department_tokens

if TYPE_CHECKING:
    from pygeoapi.api import API
    from app.ogc.provider import QueryExtras

EXTENT_TTL_S = 300.0
# Assets of the HTML pages, all served here (the networks are isolated): ours, then pygeoapi's
# own (css, logo), then the Bootstrap, OpenLayers, Swagger UI and ReDoc files MapProxy ships.
STATIC_DIRS = (TEMPLATES / "static", Path(importlib.util.find_spec("pygeoapi").origin).parent / "static")
VENDOR_DIR = Path(importlib.util.find_spec("mapproxy").origin).parent / "service" / "templates" / "ogcapi" / "static"

ITEMS_PARAMETERS = {"f", "lang", "limit", "offset", "bbox", "bbox-crs", "crs", "datetime", "sortby",
                    "properties", "skipGeometry", "filter", "filter-lang", "filter-crs", "resulttype"}
KEPT_FROM_PYGEOAPI = ("filter", "filter-lang", "filter-crs", "datetime")
FILTER_LANGS = {"cql2-text", "cql2-json"}

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/temporal-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/property-property",
]

_JSON_TYPES = {
    FieldType.TEXT: {"type": "string"}, FieldType.CODE: {"type": "string"},
    FieldType.INTEGER: {"type": "integer"}, FieldType.FLOAT: {"type": "number"},
    FieldType.DATE: {"type": "string", "format": "date"},
    FieldType.DATETIME: {"type": "string", "format": "date-time"},
    FieldType.BOOLEAN: {"type": "boolean"}, FieldType.CODES: {"type": "array", "items": {"type": "string"}},
    FieldType.JSON: {"type": "object"},
}


@cache
def _request_class() -> type:
    """pygeoapi's request wrapper, with some parameters and the body kept back (made on first use)."""
    from pygeoapi.api import APIRequest

    class OgcRequest(APIRequest):
        @classmethod
        def wrap(cls, flask_request, locales, without: tuple[str, ...] = (), keep_body: bool = True):
            wrapped = cls(flask_request, locales)
            if without:
                wrapped._args = ImmutableMultiDict([(k, v) for k, v in flask_request.args.items(multi=True)
                                                    if k not in without])
            wrapped._data = flask_request.get_data() if keep_body else b""
            return wrapped
    return OgcRequest


class OgcService:
    """The pygeoapi API objects of one audience, built lazily and cached."""

    def __init__(self, audience: Audience):
        self.audience = audience
        self._lock = threading.Lock()
        self._apis: dict[tuple, API] = {}
        self._extents: tuple[float, dict] | None = None

    def extents(self) -> dict:
        now = time.monotonic()
        if self._extents is None or now - self._extents[0] > EXTENT_TTL_S:
            with engine().connect() as conn:
                self._extents = (now, layer_extents(conn, self.audience))
                self._apis.clear()
        return self._extents[1]

    def api(self, base_url: str, collections: frozenset[str] | None) -> API:
        extents = self.extents()
        key = (base_url, collections)
        with self._lock:
            api = self._apis.get(key)
            if api is None:
                from pygeoapi.api import API
                settings = current_app.config["ONEMAP"]
                config = pygeoapi_config(self.audience, base_url, settings.database_url, extents, collections)
                api = API(config, {})
                self._apis[key] = api
        return api

    def openapi(self, api: API) -> dict:
        if not api.openapi:
            from pygeoapi.openapi import get_oas
            document = get_oas(api.config)
            document.setdefault("components", {}).setdefault("securitySchemes", {})
            if self.audience.needs_token:
                document["components"]["securitySchemes"]["departmentToken"] = {"type": "http", "scheme": "bearer"}
                document["security"] = [{"departmentToken": []}]
            api.openapi = document
        return api.openapi


def _respond(result) -> object:
    headers, status, content = result
    response = make_response(content, status)
    if headers:
        response.headers = headers
    return response


def _error(api: API, status: HTTPStatus, code: str, message: str, fmt: str | None = None):
    from pygeoapi.api import F_HTML
    from pygeoapi.util import to_json
    headers = {"Content-Type": "application/json"}
    if fmt == F_HTML:
        return _respond(api.get_exception(status, headers, F_HTML, code, message))
    return _respond((headers, status, to_json({"code": code, "type": code, "description": message}, False)))


def _plain_error(status: int, code: str, message: str, extra_headers: dict | None = None):
    from pygeoapi.util import to_json
    response = make_response(to_json({"code": code, "type": code, "description": message}, False), status)
    response.headers["Content-Type"] = "application/json"
    for k, v in (extra_headers or {}).items():
        response.headers[k] = v
    return response


def make_blueprint(audience: Audience) -> Blueprint:
    bp = Blueprint(f"ogc_{audience.name}", __name__, url_prefix=audience.prefix)
    service = OgcService(audience)
    available = [layer.name for layer in audience.layers()]

    def base_url() -> str:
        return request.url_root.rstrip("/") + audience.prefix

    def current_api() -> API:
        return service.api(base_url(), g.get("ogc_collections"))

    def wrap(**kwargs):
        return _request_class().wrap(request, current_api().locales, **kwargs)

    @bp.before_request
    def authenticate():
        if not audience.needs_token or request.endpoint == f"{bp.name}.static_asset":
            return None
        header = request.headers.get("Authorization", "")
        if not header and current_user:     # a logged-in staff member sees every layer
            g.ogc_collections = None
            return None
        scheme, _, token = header.partition(" ")
        challenge = {"WWW-Authenticate": 'Bearer realm="OneMap internal OGC API"'}
        if scheme.lower() != "bearer" or not token.strip():
            return _plain_error(401, "Unauthorized", "this service needs a department token: "
                                "Authorization: Bearer <token>", challenge)
        database = read_engine(current_app.config["ONEMAP"].sqlalchemy_url)
        grant = run(database, lambda conn: department_tokens.verify(conn, token.strip()))
        if grant is None:
            return _plain_error(401, "Unauthorized", "the token is unknown or revoked",
                                {"WWW-Authenticate": 'Bearer realm="OneMap internal OGC API", error="invalid_token"'})
        g.ogc_grant = grant
        g.ogc_collections = grant.granted(available)
        return None

    def check_collection(collection_id: str):
        """None when the caller may read the collection, else the 404/403 response."""
        if collection_id not in available:
            return _plain_error(404, "NotFound", f"collection {collection_id!r} not found")
        collections = g.get("ogc_collections")
        if collections is not None and collection_id not in collections:
            return _plain_error(403, "Forbidden", f"the token of {g.ogc_grant.department} does not grant "
                                f"collection {collection_id!r}")
        return None

    @bp.get("", strict_slashes=False)
    @bp.get("/")
    def landing_page():
        import pygeoapi.api as core_api
        return _respond(core_api.landing_page(current_api(), wrap()))

    @bp.get("/openapi")
    def openapi():
        import pygeoapi.api as core_api
        api = current_api()
        service.openapi(api)
        return _respond(core_api.openapi_(api, wrap()))

    @bp.get("/conformance")
    def conformance():
        from pygeoapi.api import F_HTML
        from pygeoapi.util import render_j2_template, to_json
        api = current_api()
        req = wrap()
        body = {"conformsTo": CONFORMANCE}
        headers = req.get_response_headers(**api.api_headers)
        if req.format == F_HTML:
            return _respond((headers, 200, render_j2_template(api.tpl_config, api.config["server"]["templates"],
                                                             "conformance.html", body, req.locale)))
        return _respond((headers, 200, to_json(body, False)))

    @bp.get("/collections")
    def collections():
        import pygeoapi.api as core_api
        return _respond(core_api.describe_collections(current_api(), wrap()))

    @bp.get("/collections/<collection_id>")
    def collection(collection_id):
        import pygeoapi.api as core_api
        return check_collection(collection_id) or _respond(
            core_api.describe_collections(current_api(), wrap(), collection_id))

    @bp.get("/collections/<collection_id>/schema")
    def schema(collection_id):
        import pygeoapi.api as core_api
        return check_collection(collection_id) or _respond(
            core_api.get_collection_schema(current_api(), wrap(), collection_id))

    @bp.get("/collections/<collection_id>/queryables")
    def queryables(collection_id):
        from pygeoapi.api import F_HTML
        from pygeoapi.util import render_j2_template, to_json
        refusal = check_collection(collection_id)
        if refusal:
            return refusal
        api, req = current_api(), wrap()
        body = _queryables(audience, collection_id, f"{api.get_collections_url()}/{collection_id}",
                           str(req.locale))
        headers = req.get_response_headers(**api.api_headers)
        if req.format == F_HTML:
            body.update(collections_path=api.get_collections_url(),
                        dataset_path=f"{api.get_collections_url()}/{collection_id}")
            return _respond((headers, 200, render_j2_template(
                api.tpl_config, api.config["server"]["templates"], "collections/queryables.html", body, req.locale)))
        headers["Content-Type"] = "application/schema+json"
        return _respond((headers, 200, to_json(body, False)))

    @bp.route("/collections/<collection_id>/items", methods=["GET", "POST"])
    def items(collection_id):
        import pygeoapi.api.itemtypes as itemtypes_api
        from pygeoapi.api import F_HTML, F_JSONLD
        from app.ogc.provider import REQUEST_EXTRAS
        refusal = check_collection(collection_id)
        if refusal:
            return refusal
        api = current_api()
        fmt = request.args.get("f")
        problem, extras = _items_extras(audience, collection_id)
        if problem:
            return _error(api, HTTPStatus.BAD_REQUEST, "InvalidParameterValue", problem, fmt)
        req = wrap(without=KEPT_FROM_PYGEOAPI, keep_body=False)
        if req.format not in (F_HTML, F_JSONLD, "csv"):  # GeoJSON
            extras = replace(extras, raw=[])
        token = REQUEST_EXTRAS.set(extras)
        try:
            result = itemtypes_api.get_collection_items(api, req, collection_id)
        finally:
            REQUEST_EXTRAS.reset(token)
        if extras.raw:
            result = _splice_features(result, *extras.raw[0])
        return _respond(result)

    @bp.route("/collections/<collection_id>/download", methods=["GET", "POST"])
    def download(collection_id):
        from app.ogc import downloads
        from app.ogc.provider import BadQuery
        refusal = check_collection(collection_id)
        if refusal:
            return refusal
        api = current_api()
        problem, extras = _items_extras(audience, collection_id, downloads.DOWNLOAD_PARAMETERS)
        if problem:
            return _plain_error(400, "InvalidParameterValue", problem)
        try:
            return downloads.download(audience, api, collection_id, extras)
        except downloads.DownloadError as exc:
            return _plain_error(exc.status, exc.code, str(exc), exc.headers)
        except BadQuery as exc:
            return _plain_error(400, "InvalidParameterValue", exc.user_msg or str(exc))

    @bp.get("/collections/<collection_id>/items/<item_id>")
    def item(collection_id, item_id):
        import pygeoapi.api.itemtypes as itemtypes_api
        refusal = check_collection(collection_id)
        if refusal:
            return refusal
        unknown = set(request.args) - {"f", "lang", "crs"}
        if unknown:
            return _error(current_api(), HTTPStatus.BAD_REQUEST, "InvalidParameterValue",
                          f"unknown parameter(s): {', '.join(sorted(unknown))}", request.args.get("f"))
        return _respond(itemtypes_api.get_collection_item(current_api(), wrap(), collection_id, item_id))

    @bp.get("/static/<path:filename>")
    def static_asset(filename):
        if filename.startswith("vendor/"):
            return send_from_directory(VENDOR_DIR, filename[len("vendor/"):], max_age=86400)
        for folder in STATIC_DIRS:
            if (folder / filename).is_file():
                return send_from_directory(folder, filename, max_age=3600)
        return _plain_error(404, "NotFound", f"no static file {filename!r}")

    return bp


def _splice_features(result: tuple, count: int, features: str) -> tuple:
    """Put the features' JSON text (built by PostgreSQL) into pygeoapi's serialised envelope,
    in place of the `count` `null` placeholders the provider returned for them."""
    headers, status, content = result
    if status != HTTPStatus.OK or not isinstance(content, str):
        return result
    placeholder = '"features":[' + ",".join(["null"] * count) + "]"
    at = content.find(placeholder)
    if count and at >= 0:
        content = content[:at] + '"features":[' + features + "]" + content[at + len(placeholder):]
    else:  # not the expected envelope: do it the slow, certain way
        from pygeoapi.util import to_json
        body = json.loads(content)
        body["features"] = json.loads("[" + features + "]")
        content = to_json(body, False)
    return headers, status, content


def _items_extras(audience: Audience, collection_id: str,
                  allowed: set[str] = ITEMS_PARAMETERS) -> tuple[str | None, QueryExtras | None]:
    """Check an items (or download) request's parameters; the problem (for a 400) or what the
    provider needs."""
    from app.ogc.provider import QueryExtras
    layer = audience.layer(collection_id)
    queryables = {f.name for f in audience.fields(layer)} | {"id"}
    args = request.args
    unknown = sorted(set(args) - allowed - queryables)
    if unknown:
        return f"unknown parameter(s): {', '.join(unknown)} (queryables: {', '.join(sorted(queryables))})", None
    for name in args:
        if len(args.getlist(name)) > 1:
            return f"parameter {name!r} given more than once", None
    offset = args.get("offset")
    if offset is not None and not (offset.isdigit() and int(offset) <= 10**9):
        return f"offset: {offset!r} is not a whole number from 0 to 1000000000", None
    bbox = args.get("bbox")
    if bbox is not None:
        try:
            values = [float(v) for v in bbox.split(",")]
        except ValueError:
            return f"bbox: {bbox!r} is not a list of numbers", None
        if len(values) not in (4, 6) or not all(math.isfinite(v) for v in values):
            return "bbox: 4 (or 6) finite numbers: minx,miny,maxx,maxy", None
    for name in ("crs", "bbox-crs", "filter-crs"):
        if name in args and args[name] not in SUPPORTED_CRS:
            return f"{name}: {args[name]!r} is not offered; use one of {', '.join(SUPPORTED_CRS)}", None
    filter_text: str | bytes | None = args.get("filter")
    lang = args.get("filter-lang", "cql2-text")
    if request.method == "POST":
        if filter_text is not None:
            return "give the filter either as the filter parameter or as the request body, not both", None
        filter_text, lang = request.get_data(), "cql2-json"
        if not filter_text:
            return "POST needs a CQL2 JSON filter as its body", None
    if lang not in FILTER_LANGS:
        return f"filter-lang: {lang!r} is not supported; use cql2-text or cql2-json", None
    if args.get("filter-crs") and filter_text is None:
        return "filter-crs given without filter", None
    return None, QueryExtras(filter=filter_text, filter_lang=lang, filter_crs=args.get("filter-crs", CRS84),
                             datetime=args.get("datetime"))


def _queryables(audience: Audience, collection_id: str, collection_url: str, locale: str) -> dict:
    layer = audience.layer(collection_id)
    english = locale.startswith("en")
    properties: dict[str, dict] = {
        "geometry": {"title": "几何" if not english else "Geometry",
                     "format": f"geometry-{layer.geometry.value.lower()}", "x-ogc-role": "primary-geometry"},
        "id": {"title": "标识" if not english else "Identifier", "type": "integer", "x-ogc-role": "id"},
    }
    for f in audience.fields(layer):
        entry = {"title": f.en if english else f.zh, "description": f.zh if english else f.en, **_JSON_TYPES[f.type]}
        if f.codes is not None:
            codes = list(f.codes.codes)
            if f.type == FieldType.CODES:
                entry["items"] = {"type": "string", "enum": codes}
            else:
                entry["enum"] = codes
        if f.unit:
            entry["x-ogc-unit"] = f.unit
        if f.name == layer.time_field:
            entry["x-ogc-role"] = "primary-instant"
        properties[f.name] = entry
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{collection_url}/queryables",
        "type": "object",
        "title": layer.en if english else layer.zh,
        "description": layer.description,
        "properties": properties,
        "additionalProperties": False,
    }


def init_app(app: Flask) -> None:
    app.register_blueprint(make_blueprint(PUBLIC))
    app.register_blueprint(make_blueprint(INTERNAL))
