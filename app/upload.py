"""The clerk's upload page (数据上传) on the one import engine.

`GET /upload/` is the page (zh-CN first); `POST /upload/api` takes a multipart form (file, layer,
county, crs, commit) and answers JSON with the report of the whole engine; for approvals also the
batch's compliance check (`compliance`: counts per colour, the red and yellow approvals with their
reasons), stored with a committed batch.

Two ways in, with different rights:
- a logged-in clerk (or admin) may commit (入库, `commit=1`) a batch for a county inside their
  region; the batch is recorded in `import_batch` with their name. The session's CSRF token
  comes with the form (`csrf_token`). Without `commit=1` it is a check only.
- a department token (部门令牌, `Authorization: Bearer …` or the form's `token`) only
  *validates* (预检): it is a read grant for the internal OGC API, and a read grant must not
  become a right to write.
Shapefiles come zipped (one request, one file).
"""
from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from flask import Blueprint, jsonify, render_template, request

from app.auth import current_user, department_token_of_request, staff_label
from app.db import engine
from app.errors import Refused, answer_refusals
from etl.importer import BatchRejected, ImportFailed, Limits, import_file
from etl.importer.readers import SUPPORTED
from layers import REGISTRY
from services import department_tokens

bp = Blueprint("upload", __name__, url_prefix="/upload")
LIMITS = Limits()
ACCEPTED = sorted((SUPPORTED - {".shp"}) | {".zip"})
answer_refusals(bp, report=[])


def _error(status: int, message: str, report: list | None = None):
    return jsonify({"error": message, "report": report or []}), status


def _uploader(layer: str, county: str | None) -> tuple[str, bool]:
    """(who, dry_run) for the request's credential; Refused (401/403) without a right to it."""
    token = department_token_of_request()
    if token is not None:
        with engine().connect() as conn:
            grant = department_tokens.verify(conn, token)
        if grant is None:
            raise Refused(401, "the department token is unknown or revoked")
        if not grant.allows(layer):
            raise Refused(403, f"the token of {grant.department} does not grant layer {layer}")
        return f"{grant.department} (token {grant.hint})", True
    if not current_user:
        raise Refused(401, "log in as a data clerk, or send a department token to check a file (上传需要登录或部门令牌)")
    if not current_user.has_role("clerk"):
        raise Refused(403, f"role {current_user.role} may not upload; a data clerk may (权限不足)")
    commit = request.form.get("commit") == "1"
    if commit and not current_user.covers(county):
        raise Refused(403, f"county {county or '(none)'} is not inside your region {current_user.region_code}: "
                           "give the county of the data (只能提交本辖区的数据)")
    return staff_label(current_user), not commit


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
    county = (request.form.get("county") or "").strip() or None
    if county is not None and not re.fullmatch(r"\d{6}", county):
        return _error(400, f"county {county!r} is not a 6-digit code")
    user, dry_run = _uploader(layer, county)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _error(400, "no file was sent")
    display = Path(upload.filename.replace("\\", "/")).name[:200] or "upload"
    suffix = Path(display).suffix.lower()
    if suffix not in ACCEPTED:
        return _error(400, f"{display}: unsupported format; send one of {', '.join(ACCEPTED)} (Shapefiles zipped)")
    crs_text = (request.form.get("crs") or "").strip().upper().removeprefix("EPSG:")
    if crs_text and not crs_text.isdigit():
        return _error(400, f"crs {crs_text!r} is not an EPSG code")
    workdir = Path(tempfile.mkdtemp(prefix="onemap-upload-"))
    try:
        path = workdir / f"upload{suffix}"          # never the client's name on disk
        upload.save(path)
        with engine().begin() as conn:
            result = import_file(conn, layer, path, county=county, crs=int(crs_text) if crs_text else None,
                                 dry_run=dry_run, user=user, limits=LIMITS,
                                 display_name=display)
    except BatchRejected as exc:
        return _error(422, str(exc), exc.report)
    except ImportFailed as exc:
        return _error(400, str(exc))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return jsonify({"status": result.status, "batch": result.batch_id, "layer": result.layer,
                    "file": result.file_name, "rows_read": result.rows_read, "rows_inserted": result.rows_inserted,
                    "source_crs": result.source_crs, "report": result.report,
                    "compliance": result.compliance_summary()})
