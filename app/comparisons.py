"""/api/comparisons: start a comparison run as a background job, poll it, fetch its report.

Internal: a request needs `Authorization: Bearer <department token>` granting the layer
`comparison_result` (for /api/approvals/…/compliance: `approval`), or the session of a logged-in
supervisor or inspector (401/403 otherwise; a session's POST carries its CSRF token, app/auth.py). The work is in
services/comparison.py and services/comparison_report.py.
"""
from __future__ import annotations

from flask import Blueprint, Response, jsonify, request, url_for
from sqlalchemy import text

from app.auth import current_user, department_token_of_request
from app.db import engine
from services import department_tokens
from services.comparison import ComparisonError, Parameters, get_run, start_in_background, where_it_stopped
from services.comparison_report import report, to_csv, to_xlsx

bp = Blueprint("comparisons", __name__, url_prefix="/api/comparisons")
approvals_bp = Blueprint("approval_compliance", __name__, url_prefix="/api/approvals")
GRANT = {"comparisons": "comparison_result", "approval_compliance": "approval"}   # the layer a token must grant
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _error(status: int, message: str):
    return jsonify({"error": message}), status


@bp.before_request
@approvals_bp.before_request
def _authorise():
    """A department token granting the results layer (the approvals for the compliance check),
    or a supervisor's or inspector's session."""
    token = department_token_of_request()
    if token is None:
        if not current_user:
            return _error(401, "login or a department token is required (比对核查需要登录或部门令牌)")
        if not current_user.has_role("supervisor", "inspector"):
            return _error(403, f"role {current_user.role} may not run comparisons (权限不足)")
        request.environ["onemap.requester"] = current_user.username
        return None
    with engine().connect() as conn:
        grant = department_tokens.verify(conn, token)
    if grant is None:
        return _error(401, "the department token is unknown or revoked")
    layer = GRANT[request.blueprint]
    if not grant.allows(layer):
        return _error(403, f"the token of {grant.department} does not grant {layer}")
    request.environ["onemap.requester"] = grant.department
    return None


@bp.post("")
def start():
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("batch"), str) or not body["batch"].strip():
        return _error(400, 'send JSON {"batch": "<monitoring batch>", "parameters": {…}}')
    try:
        params = Parameters.from_dict(body.get("parameters"))
        run_id = start_in_background(engine(), body["batch"].strip(), params,
                                     requested_by=request.environ["onemap.requester"])
    except ComparisonError as exc:
        return _error(400, str(exc))
    location = url_for(".status", run_id=run_id)
    return jsonify({"id": run_id, "status": "queued", "href": location}), 202, {"Location": location}


@bp.get("/<int:run_id>")
def status(run_id: int):
    with engine().connect() as conn:
        run = get_run(conn, run_id)
    if run is None:
        return _error(404, f"no comparison run {run_id}")
    body = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in run.items()}
    if run["status"] != "finished":
        body["where_it_stopped"] = where_it_stopped(run)
    body["report"] = url_for(".run_report", run_id=run_id)
    return jsonify(body)


@bp.get("/<int:run_id>/report")
def run_report(run_id: int):
    fmt = request.args.get("f", "json")
    if fmt not in ("json", "csv", "xlsx"):
        return _error(400, f"parameter f: {fmt!r} is not one of json, csv, xlsx")
    with engine().connect() as conn:
        run = get_run(conn, run_id)
        if run is None:
            return _error(404, f"no comparison run {run_id}")
        try:
            rep = report(conn, run["batch"])
        except ComparisonError as exc:
            return _error(409, str(exc))
    if fmt == "json":
        return jsonify(rep)
    name = f"comparison-{run_id}.{fmt}"
    data, mime = (to_csv(rep), "text/csv; charset=utf-8") if fmt == "csv" else (to_xlsx(rep), XLSX)
    return Response(data, mimetype=mime, headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _stored(check: dict) -> dict:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in check.items()}


@approvals_bp.get("/<int:approval_id>/compliance")
def compliance(approval_id: int):
    """建设用地审批合规性核查 of one approval: its stored latest check (colour, reasons, when and
    what triggered it); services/compliance.py."""
    from services.compliance import latest
    with engine().connect() as conn:
        found = latest(conn, [approval_id])
        if not found:
            exists = conn.execute(text("SELECT 1 FROM approval WHERE id = :i"), {"i": approval_id}).first()
            return _error(404, f"approval {approval_id} has no stored check: POST to run one" if exists
                          else f"no approval {approval_id}")
    return jsonify(_stored(found[0]))


@approvals_bp.post("/<int:approval_id>/compliance")
def recheck(approval_id: int):
    """Check one approval again now (on demand, by the requester) and store the result."""
    from services.compliance import check_and_record
    with engine().begin() as conn:
        checked = check_and_record(conn, ids=[approval_id], triggered_by="on_demand",
                                   requested_by=request.environ["onemap.requester"])
    if not checked:
        return _error(404, f"no approval {approval_id}")
    return jsonify(_stored(checked[0]))
