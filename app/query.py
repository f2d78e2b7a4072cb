"""The inspector's area query (区域查询) over HTTP; the work is `services.area_query`.

- `POST /api/query` JSON `{"geometry": <GeoJSON Polygon/MultiPolygon, lon/lat EPSG:4490>,
  "layers": [names, optional]}` → the answer as JSON, or `?f=geojson` (the intersected parts as
  a FeatureCollection) or `?f=csv` (features, layer totals, land-use classes);
- `POST /api/query/upload` multipart: `file` (GeoJSON or zipped Shapefile outline), optional
  `layers` (comma-separated), same answer and formats;
- `POST /query/print` (form field `geometry` as GeoJSON text, optional `layers`, or the same
  JSON body) → a printable zh-CN page.

Staff with the inspector or supervisor role (admins too); the query is clipped to the user's
region. Every POST carries the session's CSRF token (`X-CSRFToken`, or the form's `csrf_token`).
"""
from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
from datetime import datetime
from pathlib import Path

from flask import Blueprint, Response, current_app, jsonify, render_template, request

from app.auth import current_user, login_required
from app.db import engine
from app.errors import Refused, answer_refusals
from etl.importer import ImportFailed
from etl.outline import OUTLINE_LIMITS, OUTLINE_SUFFIXES, read_outline
from services import area_query
from services.area_query import OutsideRegion, QueryError

bp = Blueprint("query", __name__)
QUERY_ROLES = ("inspector", "supervisor")
FORMATS = ("json", "geojson", "csv")
MAX_BODY = 20 << 20
answer_refusals(bp)


def _max_area() -> float:
    return float(current_app.config.get("QUERY_MAX_AREA_M2", area_query.MAX_AREA_M2))


def _answer(polygon, layer_names) -> dict:
    layers = area_query.choose_layers(layer_names)
    with engine().connect() as conn:
        return area_query.run(conn, polygon, layers, region_code=current_user.region_code)


def _layer_names(value: str | None) -> list[str] | None:
    return [n.strip() for n in value.split(",") if n.strip()] if value else None


def _json_body() -> dict:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise Refused(413, f"the request body is larger than {MAX_BODY >> 20} MB")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise QueryError('the body must be a JSON object: {"geometry": <GeoJSON Polygon>, "layers": [...]}')
    if "geometry" not in body:
        raise QueryError("geometry: missing (a GeoJSON Polygon or MultiPolygon in lon/lat EPSG:4490)")
    return body


def _respond(answer: dict, fmt: str) -> Response:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    if fmt == "geojson":
        body = json.dumps(area_query.feature_collection(answer), ensure_ascii=False)
        return Response(body, mimetype="application/geo+json",
                        headers={"Content-Disposition": f'attachment; filename="query-{stamp}.geojson"'})
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(area_query.CSV_HEADER)
        writer.writerows(area_query.csv_rows(answer))
        # with a BOM, so that Excel on a Chinese desktop reads the UTF-8 names right
        return Response("\ufeff" + out.getvalue(), mimetype="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="query-{stamp}.csv"'})
    return jsonify(answer)


def _format() -> str:
    fmt = request.args.get("f", "json")
    if fmt not in FORMATS:
        raise QueryError(f"f: {fmt!r} is not offered; use one of {', '.join(FORMATS)}")
    return fmt


@bp.errorhandler(QueryError)
def _query_error(exc: QueryError):
    return jsonify({"error": str(exc)}), 403 if isinstance(exc, OutsideRegion) else 400


@bp.post("/api/query")
@login_required(*QUERY_ROLES)
def query():
    fmt = _format()
    body = _json_body()
    polygon = area_query.check_geometry(body["geometry"], _max_area())
    return _respond(_answer(polygon, body.get("layers")), fmt)


@bp.post("/api/query/upload")
@login_required(*QUERY_ROLES)
def query_upload():
    fmt = _format()
    if request.content_length is not None and request.content_length > OUTLINE_LIMITS.max_file_bytes + (1 << 20):
        raise Refused(413, f"the outline is larger than {OUTLINE_LIMITS.max_file_bytes >> 20} MB")
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise QueryError(f"file: no outline was sent (a GeoJSON file or a zipped Shapefile: "
                         f"{', '.join(OUTLINE_SUFFIXES)})")
    display = Path(upload.filename.replace("\\", "/")).name[:200] or "outline"
    workdir = Path(tempfile.mkdtemp(prefix="onemap-query-"))
    try:
        path = workdir / f"outline{Path(display).suffix.lower()}"      # never the client's name on disk
        upload.save(path)
        outline = read_outline(path, display)
    except ImportFailed as exc:
        raise QueryError(str(exc)) from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    try:
        polygon = area_query.check_polygon(outline, _max_area())
    except QueryError as exc:
        raise QueryError(f"{display}: {exc}") from None
    return _respond(_answer(polygon, _layer_names(request.form.get("layers"))), fmt)


@bp.post("/query/print")
@login_required(*QUERY_ROLES)
def print_page():
    if request.is_json:
        body = _json_body()
        geometry, layer_names = body["geometry"], body.get("layers")
    else:
        try:
            geometry = json.loads(request.form.get("geometry") or "null")
        except ValueError:
            raise QueryError("geometry: the form field is not GeoJSON text") from None
        layer_names = _layer_names(request.form.get("layers"))
    polygon = area_query.check_geometry(geometry, _max_area())
    answer = _answer(polygon, layer_names)
    return render_template("query_print.html", answer=answer, user=current_user,
                           printed_at=datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"))
