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
"""
from __future__ import annotations

from sqlalchemy import Connection, text

from services.areas import area_sql as A

RANK = {"green": 0, "yellow": 1, "red": 2}


def _overlap(table: str, where: str = "") -> str:
    return (f"(SELECT {A('ST_Union(ST_CollectionExtract(ST_Intersection(a.geom, z.geom), 3))')} FROM {table} z "
            f"WHERE z.geom && a.geom AND ST_Intersects(z.geom, a.geom){where})")


_CHECK_SQL = f"""
WITH a AS (
  SELECT id, document_no, supervision_no, authority, approved_on, county_code, geom, coalesce(area_m2, {A('geom')})
         AS area, coalesce(farmland_m2, 0) AS farmland
  FROM approval WHERE (CAST(:ids AS bigint[]) IS NULL OR id = ANY(:ids))
                  AND (CAST(:county AS text) IS NULL OR county_code = :county)),
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
                    sliver_m2: float = 1.0) -> list[dict]:
    """The compliance of the approvals `ids` (or of a county's, or all): colour, reasons, figures."""
    rows = conn.execute(text(_CHECK_SQL), {"ids": ids, "county": county}).mappings().all()
    out = []
    for r in rows:
        reasons = _reasons(r, sliver_m2)
        colour = max((x["colour"] for x in reasons), key=RANK.__getitem__, default="green")
        out.append({"id": r["id"], "document_no": r["document_no"], "supervision_no": r["supervision_no"],
                    "county_code": r["county_code"], "colour": colour, "reasons": reasons,
                    "area_m2": round(r["area"], 2), "farmland_m2": round(r["farmland"], 2),
                    "balanced_m2": round(r["balanced_m2"], 2), "basic_farmland_m2": round(r["basic_m2"], 2)})
    return out
