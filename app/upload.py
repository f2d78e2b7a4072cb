"""The clerk's upload page (数据上传) on the one import engine.

`GET /upload/` is the page (zh-CN first); `POST /upload/api` takes a multipart form (file, layer,
county, crs) and answers JSON with the validation report of the whole engine (a dry run).

The web path only *validates* (预检) for now: the only credential the platform has is the
department token (部门令牌, `flask tokens`), a read grant for the internal OGC API, and a read
grant must not become a right to write. Committing stays with `flask etl import` until staff
accounts with region-scoped roles exist; then `dry_run` below becomes the clerk's choice.
Shapefiles come zipped (one request, one file).
"""
from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from flask import Blueprint, jsonify, render_template, request

from app.db import engine
from etl.importer import BatchRejected, ImportFailed, Limits, import_file
from etl.importer.readers import SUPPORTED
from layers import REGISTRY
from services import department_tokens

bp = Blueprint("upload", __name__, url_prefix="/upload")
LIMITS = Limits()
ACCEPTED = sorted((SUPPORTED - {".shp"}) | {".zip"})


def _error(status: int, message: str, report: list | None = None):
    return jsonify({"error": message, "report": report or []}), status


def _token() -> str:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return (request.form.get("token") or "").strip()


@bp.get("/")
def page():
    return render_template("upload.html", layers=list(REGISTRY), accepted=ACCEPTED,
                           max_mb=LIMITS.max_file_bytes >> 20)


@bp.post("/api")
def upload():
    if request.content_length is not None and request.content_length > LIMITS.max_file_bytes + (1 << 20):
        return _error(413, f"the upload is larger than the limit of {LIMITS.max_file_bytes:,d} bytes")
    layer = request.form.get("layer", "")
    if layer not in REGISTRY:
        return _error(400, f"unknown layer {layer!r}")
    with engine().connect() as conn:
        grant = department_tokens.verify(conn, _token())
    if grant is None:
        return _error(401, "a valid department token is required (上传需要部门令牌)")
    if not grant.allows(layer):
        return _error(403, f"the token of {grant.department} does not grant layer {layer}")
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _error(400, "no file was sent")
    display = Path(upload.filename.replace("\\", "/")).name[:200] or "upload"
    suffix = Path(display).suffix.lower()
    if suffix not in ACCEPTED:
        return _error(400, f"{display}: unsupported format; send one of {', '.join(ACCEPTED)} (Shapefiles zipped)")
    county = (request.form.get("county") or "").strip() or None
    if county is not None and not re.fullmatch(r"\d{6}", county):
        return _error(400, f"county {county!r} is not a 6-digit code")
    crs_text = (request.form.get("crs") or "").strip().upper().removeprefix("EPSG:")
    if crs_text and not crs_text.isdigit():
        return _error(400, f"crs {crs_text!r} is not an EPSG code")
    workdir = Path(tempfile.mkdtemp(prefix="onemap-upload-"))
    try:
        path = workdir / f"upload{suffix}"          # never the client's name on disk
        upload.save(path)
        with engine().begin() as conn:
            result = import_file(conn, layer, path, county=county, crs=int(crs_text) if crs_text else None,
                                 dry_run=True,
                                 user=f"{grant.department} (token {grant.hint})", limits=LIMITS,
                                 display_name=display)
    except BatchRejected as exc:
        return _error(422, str(exc), exc.report)
    except ImportFailed as exc:
        return _error(400, str(exc))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return jsonify({"status": result.status, "batch": result.batch_id, "layer": result.layer,
                    "file": result.file_name, "rows_read": result.rows_read, "rows_inserted": result.rows_inserted,
                    "source_crs": result.source_crs, "report": result.report})
