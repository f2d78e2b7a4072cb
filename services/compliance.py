"""建设用地审批合规性核查: the compliance check of construction-land approvals, red/yellow/green.

On demand for one approval, a county or all of them (set-based: one query whatever the
number). Checks, each with its colour and a reason a person can act on (rules in
docs/comparison.md, "Approval compliance"):

* plan conformity (规划符合性): land in 030/040 zones or the ecological red line → red; in
  020 (conditional) zones, outside the urban development boundary or outside every plan
  zone → yellow;
* basic farmland (占用永久基本农田): any overlap ≥ the sliver threshold → red (with a note when
  the State Council, the only authority that may approve it, did);
* the county's annual quota (年度计划指标, table `construction_quota`): the county's approvals
  of the year up to and including this one exceed the quota → red; no quota recorded → yellow;
* supplementary farmland balance (占补平衡): farmland taken (the approval's `farmland_m2`)
  minus the farmland balanced for its supervision number in `farmland_balance` ≥ the
  threshold → red; balanced by a project accepted after the approval (not 先补后占) → yellow.

The approval's colour is its worst check's.

Stored (`record`, table `approval_check`): every check run at an approval's registration (inside
the import batch's transaction, etl/importer/engine.py) or on demand (`compare approvals`, POST
/api/approvals/<id>/compliance), with when, why and by whom; the latest counts (`latest`) and
its colour is copied to `approval.compliance`, the field the layer registry shows. Deleting an
approval (a batch rollback) deletes its checks.
"""
from __future__ import annotations

import json

from sqlalchemy import Connection, text

from layers.codes import COMPLIANCE_COLOUR, COMPLIANCE_TRIGGER
from services.areas import area_sql as A

RANK = {c: i for i, c in enumerate(COMPLIANCE_COLOUR.codes)}     # green 0, yellow 1, red 2
COLOURS = tuple(reversed(COMPLIANCE_COLOUR.codes))                # red, yellow, green
TRIGGERS = tuple(COMPLIANCE_TRIGGER.codes)
FIGURES = ("area_m2", "farmland_m2", "balanced_m2", "basic_farmland_m2")


def _overlap(table: str, where: str = "") -> str:
    return (f"(SELECT {A('ST_Union(ST_CollectionExtract(ST_Intersection(a.geom, z.geom), 3))')} FROM {table} z "
            f"WHERE z.geom && a.geom AND ST_Intersects(z.geom, a.geom){where})")


_CHECK_SQL = f"""
WITH a AS (
  SELECT id, document_no, supervision_no, authority, approved_on, county_code, geom, coalesce(area_m2, {A('geom')})
         AS area, coalesce(farmland_m2, 0) AS farmland
  FROM approval WHERE (CAST(:ids AS bigint[]) IS NULL OR id = ANY(:ids))
                  AND (CAST(:county AS text) IS NULL OR county_code = :county)
                  AND (CAST(:batch AS bigint) IS NULL
                       OR id <@ (SELECT row_ids FROM import_batch WHERE id = :batch))),
m AS (
  SELECT a.*,
    coalesce({_overlap('plan_zone', " AND z.zone_code IN ('030', '040')")}, 0) AS restricted_m2,
    coalesce({_overlap('plan_zone', " AND z.zone_code = '020'")}, 0) AS conditional_m2,
    coalesce({_overlap('plan_zone')}, 0) AS zoned_m2,
    coalesce({_overlap('urban_boundary')}, 0) AS urban_m2,
    coalesce({_overlap('eco_redline')}, 0) AS eco_m2,
    coalesce({_overlap('basic_farmland')}, 0) AS basic_m2,
    (SELECT sum(x.area_m2) FROM approval x WHERE x.county_code = a.county_code
       AND extract(year FROM x.approved_on) = extract(year FROM a.approved_on)
       AND (x.approved_on, x.id) <= (a.approved_on, a.id)) AS county_year_m2,
    (SELECT q.quota_m2 FROM construction_quota q WHERE q.county_code = a.county_code
       AND q.year = extract(year FROM a.approved_on)) AS quota_m2,
    coalesce((SELECT sum(b.area_m2) FROM farmland_balance b WHERE b.supervision_no = a.supervision_no), 0)
      AS balanced_m2,
    (SELECT count(*) FROM farmland_balance b JOIN consolidation_project p ON p.id = b.project_id
     WHERE b.supervision_no = a.supervision_no AND (p.accepted_on IS NULL OR p.accepted_on > a.approved_on))
      AS late_projects
  FROM a)
SELECT * FROM m ORDER BY id
"""


def _reasons(r, s: float) -> list[dict]:
    out = []

    def add(check: str, colour: str, zh: str, en: str, m2: float | None = None) -> None:
        out.append({"check": check, "colour": colour, "zh": zh, "en": en,
                    **({"m2": round(m2, 2)} if m2 is not None else {})})

    if r["restricted_m2"] >= s:
        add("plan", "red", f"{r['restricted_m2']:.2f} m² 位于限制/禁止建设区(030/040)",
            f"{r['restricted_m2']:.2f} m² in restricted or prohibited zones (030/040)", r["restricted_m2"])
    if r["eco_m2"] >= s:
        add("plan", "red", f"{r['eco_m2']:.2f} m² 位于生态保护红线内", f"{r['eco_m2']:.2f} m² in the ecological red line",
            r["eco_m2"])
    if r["conditional_m2"] >= s:
        add("plan", "yellow", f"{r['conditional_m2']:.2f} m² 位于有条件建设区(020)，需核实条件",
            f"{r['conditional_m2']:.2f} m² in conditional zones (020): check the conditions", r["conditional_m2"])
    if r["area"] - r["urban_m2"] >= s:
        add("plan", "yellow", f"{r['area'] - r['urban_m2']:.2f} m² 位于城镇开发边界外",
            f"{r['area'] - r['urban_m2']:.2f} m² outside the urban development boundary", r["area"] - r["urban_m2"])
    if r["area"] - r["zoned_m2"] >= s:
        add("plan", "yellow", f"{r['area'] - r['zoned_m2']:.2f} m² 无规划管制区覆盖",
            f"{r['area'] - r['zoned_m2']:.2f} m² covered by no plan zone", r["area"] - r["zoned_m2"])
    if r["basic_m2"] >= s:
        note = ("（国务院批准）" if r["authority"] == "state_council" else "（非国务院批准，无权占用）",
                " (approved by the State Council)" if r["authority"] == "state_council"
                else " (not approved by the State Council, which alone may)")
        add("basic_farmland", "red", f"占用永久基本农田 {r['basic_m2']:.2f} m²{note[0]}",
            f"occupies {r['basic_m2']:.2f} m² of permanent basic farmland{note[1]}", r["basic_m2"])
    if r["quota_m2"] is None:
        add("quota", "yellow", f"{r['county_code']} 县 {r['approved_on'].year} 年无年度计划指标记录",
            f"no annual quota recorded for county {r['county_code']} in {r['approved_on'].year}")
    elif r["county_year_m2"] > r["quota_m2"] + s:
        add("quota", "red", f"本县当年批准 {r['county_year_m2']:.2f} m²，超出计划指标 {r['quota_m2']:.2f} m²",
            f"the county's approvals of the year reach {r['county_year_m2']:.2f} m², above its quota of "
            f"{r['quota_m2']:.2f} m²", r["county_year_m2"] - r["quota_m2"])
    shortfall = r["farmland"] - r["balanced_m2"]
    if shortfall >= s:
        add("balance", "red", f"占用耕地 {r['farmland']:.2f} m²，已补充 {r['balanced_m2']:.2f} m²，缺口 {shortfall:.2f} m²",
            f"takes {r['farmland']:.2f} m² of farmland, balanced {r['balanced_m2']:.2f} m²: {shortfall:.2f} m² short",
            shortfall)
    if r["late_projects"]:
        add("balance", "yellow", f"{r['late_projects']} 个补充耕地项目验收晚于批准（未先补后占）",
            f"{r['late_projects']} balancing project(s) accepted after the approval (not 先补后占)")
    return out


def check_approvals(conn: Connection, ids: list[int] | None = None, county: str | None = None,
                    sliver_m2: float = 1.0, batch: int | None = None) -> list[dict]:
    """The compliance of the approvals `ids` (or of a county's, or those import batch `batch`
    inserted, or all): colour, reasons, figures. Computes only; `record` stores."""
    rows = conn.execute(text(_CHECK_SQL), {"ids": ids, "county": county, "batch": batch}).mappings().all()
    out = []
    for r in rows:
        reasons = _reasons(r, sliver_m2)
        colour = max((x["colour"] for x in reasons), key=RANK.__getitem__, default="green")
        out.append({"id": r["id"], "document_no": r["document_no"], "supervision_no": r["supervision_no"],
                    "county_code": r["county_code"], "colour": colour, "reasons": reasons,
                    "area_m2": round(r["area"], 2), "farmland_m2": round(r["farmland"], 2),
                    "balanced_m2": round(r["balanced_m2"], 2), "basic_farmland_m2": round(r["basic_m2"], 2)})
    return out


_RECORD_SQL = """
WITH r AS (SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb))
           AS r(id bigint, colour text, reasons jsonb, figures jsonb)),
ins AS (INSERT INTO approval_check (approval_id, colour, reasons, figures, triggered_by, import_batch_id, requested_by)
        SELECT id, colour, reasons, figures, :trigger, :batch, :who FROM r ORDER BY id
        RETURNING id, approval_id, colour, checked_at),
upd AS (UPDATE approval a SET compliance = ins.colour FROM ins
        WHERE a.id = ins.approval_id AND a.compliance IS DISTINCT FROM ins.colour)
SELECT approval_id, id, checked_at FROM ins
"""


def record(conn: Connection, checked: list[dict], triggered_by: str, requested_by: str,
           import_batch_id: int | None = None) -> list[dict]:
    """Store the checks `checked` (check_approvals' output) in one statement, copy each colour to
    `approval.compliance` where it changed; returns them with their stored id, when and why."""
    if triggered_by not in TRIGGERS:
        raise ValueError(f"triggered_by {triggered_by!r}: one of {', '.join(TRIGGERS)}")
    if (triggered_by == "registration") != (import_batch_id is not None):
        raise ValueError("a check at registration names its import batch, and only it")
    if not checked:
        return []
    rows = [{"id": c["id"], "colour": c["colour"], "reasons": c["reasons"],
             "figures": {k: c[k] for k in FIGURES}} for c in checked]
    stored = {a: (i, at) for a, i, at in conn.execute(text(_RECORD_SQL), {
        "rows": json.dumps(rows, ensure_ascii=False), "trigger": triggered_by, "batch": import_batch_id,
        "who": requested_by}).all()}
    return [{**c, "check_id": stored[c["id"]][0], "checked_at": stored[c["id"]][1], "triggered_by": triggered_by,
             "import_batch_id": import_batch_id, "requested_by": requested_by} for c in checked]


def check_and_record(conn: Connection, *, triggered_by: str, requested_by: str, ids: list[int] | None = None,
                     county: str | None = None, import_batch_id: int | None = None,
                     sliver_m2: float = 1.0) -> list[dict]:
    """Check the approvals (as check_approvals; at registration those the batch inserted) and store it."""
    batch = import_batch_id if triggered_by == "registration" else None
    checked = check_approvals(conn, ids=ids, county=county, sliver_m2=sliver_m2, batch=batch)
    return record(conn, checked, triggered_by, requested_by, import_batch_id)


_LATEST_SQL = """
SELECT DISTINCT ON (c.approval_id) c.approval_id AS id, a.document_no, a.supervision_no, a.county_code, c.colour,
       c.reasons, c.figures, c.id AS check_id, c.checked_at, c.triggered_by, c.import_batch_id, c.requested_by
FROM approval_check c JOIN approval a ON a.id = c.approval_id
WHERE c.approval_id = ANY(:ids)
ORDER BY c.approval_id, c.id DESC
"""


def latest(conn: Connection, ids: list[int]) -> list[dict]:
    """The stored latest check of each of the approvals `ids` (those never checked are absent)."""
    out = []
    for r in conn.execute(text(_LATEST_SQL), {"ids": list(ids)}).mappings():
        d = dict(r)
        d.update(d.pop("figures"))
        out.append(d)
    return out


def colour_counts(checked: list[dict]) -> dict[str, int]:
    return {c: sum(a["colour"] == c for a in checked) for c in COLOURS}
