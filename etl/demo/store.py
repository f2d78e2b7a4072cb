"""Rows of the zone and business layers, from the generated records, through the Loader."""
from __future__ import annotations

from datetime import date

import shapely

from etl.demo.business import allocate_balances
from etl.demo.landscape import Landscape
from etl.demo.load import FARMLAND_SQL, STAGE, Loader, ewkb
from etl.demo.records import DemoRecords

PLAN_APPROVED = date(2010, 12, 28)      # county land-use master plans (2006–2020), as revised
THREE_ZONES_APPROVED = date(2022, 9, 30)   # 三区三线 delimitation
EPOCHS = (("2025年度", date(2025, 10, 12)), ("2026年度", date(2026, 10, 8)))
BATCH = "2026年度卫片执法第1批"
DETECTED_ON = date(2026, 10, 20)


def _disjoint(geoms):
    """Each geometry minus all earlier ones."""
    out, taken = [], None
    for g in geoms:
        piece = g if taken is None else shapely.difference(g, taken)
        taken = g if taken is None else shapely.union(taken, g)
        out.append(piece)
    return out


def zones(loader: Loader, ls: Landscape) -> None:
    # plan zones: 010 and 020 by connected part, 040 by reserve; 030 is the rest of each
    # county, in the blocks of the county-piece tiles
    sources: list[tuple[str, shapely.Geometry]] = []
    sources += [("010", g) for g in shapely.get_parts(ls.zone010)]
    sources += [("020", g) for g in shapely.get_parts(ls.zone020)]
    sources += [("040", g) for g in _disjoint([g for _, g in ls.reserves])]
    rows = [(sources[src][0], county, geom) for src, county, geom in loader.clip_sources("plan", [g for _, g in sources])]
    taken = shapely.union_all([ls.zone010, ls.zone020, ls.reserve_union])
    rows += [("030", county, geom) for county, geom in loader.rest_of_counties(taken)]
    serial: dict = {}
    out = []
    for code, county, geom in rows:
        serial[(county, code)] = serial.get((county, code), 0) + 1
        out.append((code, f"{county}-{code}-{serial[(county, code)]:03d}", county, PLAN_APPROVED, geom))
    out.sort(key=lambda r: r[1])
    loader.copy("plan_zone", ["zone_code", "zone_no", "county_code", "approved_on", "geom"], out)
    loader.set_areas("plan_zone")

    red = _disjoint([g for _, _, g in ls.eco_redlines])
    rows = loader.clip_sources("redline", red)
    serial = {}
    out = []
    for src, county, geom in rows:
        serial[county] = serial.get(county, 0) + 1
        out.append((ls.eco_redlines[src][0], f"{county}-HX-{serial[county]:03d}", county, THREE_ZONES_APPROVED, geom))
    out.sort(key=lambda r: r[1])
    loader.copy("eco_redline", ["kind", "zone_no", "county_code", "approved_on", "geom"], out)
    loader.set_areas("eco_redline")

    rows = loader.clip_sources("urban", [g for _, g in ls.urban_boundaries])
    serial = {}
    out = []
    for src, county, geom in rows:
        serial[county] = serial.get(county, 0) + 1
        town = ls.urban_boundaries[src][0]
        out.append((f"{town.name}城区" if town.prefecture else f"{town.name}城关镇", f"{county}-UB-{serial[county]:02d}",
                    county, THREE_ZONES_APPROVED, geom))
    out.sort(key=lambda r: r[1])
    loader.copy("urban_boundary", ["town", "zone_no", "county_code", "approved_on", "geom"], out)
    loader.set_areas("urban_boundary")


def imagery_epochs(loader: Loader, epochs: list[dict]) -> None:
    loader.copy("imagery_epoch", ["name", "acquired_on", "sensor", "resolution_m", "path", "geom"],
                [(e["name"], e["acquired_on"], e["sensor"], e["resolution_m"], e["path"], g)
                 for e, g in zip(epochs, ewkb([shapely.MultiPolygon([e["footprint"]]) for e in epochs]))])


def business(loader: Loader, r: DemoRecords) -> dict[str, list[int]]:
    """Load every business layer; returns the development-report ids per contract number."""
    g = lambda items, attr="geom": ewkb([getattr(x, attr) for x in items])  # noqa: E731

    loader.copy("approval", ["supervision_no", "document_no", "batch_name", "kind", "authority", "approved_on",
                             "planned_use", "county_code", "geom"],
                [(a.supervision_no, a.document_no, a.batch_name, a.kind, a.authority, a.approved_on, a.planned_use,
                  a.county, w) for a, w in zip(r.approvals, g(r.approvals))])
    loader.set_areas("approval")
    loader.overlay_area("approval", "farmland_m2", "land_use", f"o.class_code IN {FARMLAND_SQL}")
    loader.overlay_area("approval", "basic_farmland_m2", "basic_farmland")
    approval_id = loader.ids("approval", "document_no")

    loader.copy("supply", ["supervision_no", "contract_no", "approval_id", "method", "land_use", "price_10k_yuan",
                           "plot_ratio_min", "plot_ratio_max", "land_user", "signed_on", "agreed_start",
                           "agreed_completion", "county_code", "geom"],
                [(s.supervision_no, s.contract_no, approval_id[s.approval.document_no] if s.approval else None,
                  s.method, s.land_use, s.price_10k_yuan, s.plot_ratio_min, s.plot_ratio_max, s.land_user,
                  s.signed_on, s.agreed_start, s.agreed_completion, s.county, w)
                 for s, w in zip(r.supplies, g(r.supplies))])
    loader.set_areas("supply")
    supply_id = loader.ids("supply", "contract_no")

    reports = sorted(r.reports, key=lambda d: (d.supply.contract_no, d.reported_on))
    loader.copy("development_report", ["supervision_no", "supply_id", "reported_on", "status", "actual_start",
                                       "actual_completion", "developed_share", "invested_share", "halted_since",
                                       "county_code", "geom"],
                [(d.supply.supervision_no, supply_id[d.supply.contract_no], d.reported_on, d.status, d.actual_start,
                  d.actual_completion, d.developed_share, d.invested_share, d.halted_since, d.supply.county, w)
                 for d, w in zip(reports, ewkb([d.supply.geom for d in reports]))])
    report_ids: dict[str, list[int]] = {}
    for rid, contract in loader.rows("""SELECT d.id, s.contract_no FROM development_report d
                                        JOIN supply s ON s.id = d.supply_id ORDER BY d.id"""):
        report_ids.setdefault(contract, []).append(rid)

    loader.copy("consolidation_project", ["supervision_no", "project_no", "name", "farmland_grade", "accepted_on",
                                          "county_code", "geom"],
                [(p.supervision_no, p.project_no, p.name, p.farmland_grade, p.accepted_on, p.county, w)
                 for p, w in zip(r.projects, g(r.projects))])
    loader.set_areas("consolidation_project")
    ratio = {p.project_no: p.new_farmland_ratio for p in r.projects}
    loader.sql(f"CREATE TABLE {STAGE}.project_ratio (project_no text, ratio float8)")
    loader.copy(f"{STAGE}.project_ratio", ["project_no", "ratio"], sorted(ratio.items()))
    loader.sql(f"""UPDATE consolidation_project p SET new_farmland_m2 = round((p.area_m2 * x.ratio)::numeric, 2)
                   FROM {STAGE}.project_ratio x WHERE x.project_no = p.project_no""")

    # 占补平衡 from the farmland each approval takes, as measured in the database
    farmland = {no: m2 for no, m2 in loader.rows("SELECT document_no, farmland_m2 FROM approval")}
    capacity = {no: m2 for no, m2 in loader.rows("SELECT project_no, new_farmland_m2 FROM consolidation_project")}
    allocate_balances(r, {a: farmland[a.document_no] for a in r.approvals},
                      {p: capacity[p.project_no] for p in r.projects})
    project_id = loader.ids("consolidation_project", "project_no")
    loader.copy("farmland_balance", ["project_id", "supervision_no", "area_m2"],
                [(project_id[b.project.project_no], b.approval.supervision_no, b.area_m2) for b in r.balances])

    loader.copy("mining_right", ["supervision_no", "licence_no", "right_type", "holder", "mine_name", "mineral",
                                 "scale", "acquisition", "valid_from", "valid_to", "corner_crs", "corners",
                                 "county_code", "geom"],
                [(m.supervision_no, m.licence_no, m.right_type, m.holder, m.mine_name, m.mineral, m.scale,
                  m.acquisition, m.valid_from, m.valid_to, m.corner_crs, m.corners, m.county, w)
                 for m, w in zip(r.rights, g(r.rights))])
    loader.set_areas("mining_right")
    right_id = loader.ids("mining_right", "licence_no")
    loader.copy("mine_report", ["licence_no", "mining_right_id", "year", "reported_on", "inspection",
                                "mining_recovery", "processing_recovery", "utilization", "output_10k_t",
                                "county_code", "geom"],
                [(m.right.licence_no, right_id[m.right.licence_no], m.year, m.reported_on, m.inspection,
                  m.mining_recovery, m.processing_recovery, m.utilization, m.output_10k_t, m.right.county, w)
                 for m, w in zip(r.mine_reports, g(r.mine_reports, "point"))])

    loader.copy("change_patch", ["patch_no", "batch", "kind", "epoch_before", "epoch_after", "class_after",
                                 "temporary", "false_change", "detected_on", "county_code", "geom"],
                [(p.patch_no, BATCH, p.kind, EPOCHS[0][0], EPOCHS[1][0], p.class_after, p.temporary,
                  p.false_change, DETECTED_ON, p.county, w) for p, w in zip(r.patches, g(r.patches))])
    loader.set_areas("change_patch")
    # the class before: the land-use class covering most of the patch
    loader.sql("""UPDATE change_patch p SET class_before = x.class_code FROM (
                    SELECT DISTINCT ON (p.id) p.id, l.class_code
                    FROM change_patch p JOIN land_use l ON ST_Intersects(p.geom, l.geom)
                    ORDER BY p.id, ST_Area(ST_Intersection(p.geom, l.geom)) DESC, l.class_code) x
                  WHERE x.id = p.id""")

    loader.copy("enforcement_case", ["supervision_no", "case_no", "source", "violation_type", "party", "status",
                                     "filed_on", "closed_on", "penalty_10k_yuan", "county_code", "geom"],
                [(c.supervision_no, c.case_no, c.source, c.violation_type, c.party, c.status, c.filed_on,
                  c.closed_on, c.penalty_10k_yuan, c.county, w) for c, w in zip(r.cases, g(r.cases))])
    loader.set_areas("enforcement_case")
    loader.overlay_area("enforcement_case", "farmland_m2", "land_use", f"o.class_code IN {FARMLAND_SQL}")
    case_id = loader.ids("enforcement_case", "case_no")

    loader.copy("violation_lead", ["lead_no", "source", "categories", "case_id", "status", "found_on", "county_code",
                                   "geom"],
                [(x.lead_no, x.source, x.categories, case_id[x.case.case_no] if x.case else None, x.status,
                  x.found_on, x.county, w) for x, w in zip(r.leads, g(r.leads))])
    loader.set_areas("violation_lead")
    loader.overlay_area("violation_lead", "farmland_m2", "land_use", f"o.class_code IN {FARMLAND_SQL}")
    loader.overlay_area("violation_lead", "basic_farmland_m2", "basic_farmland")

    loader.copy("hazard_point", ["hazard_no", "name", "hazard_type", "risk_level", "threatened_people",
                                 "threatened_property_10k_yuan", "monitor_name", "monitor_phone", "surveyed_on",
                                 "county_code", "geom"],
                [(h.hazard_no, h.name, h.hazard_type, h.risk_level, h.threatened_people,
                  h.threatened_property_10k_yuan, h.monitor_name, h.monitor_phone, h.surveyed_on, h.county, w)
                 for h, w in zip(r.hazards, g(r.hazards, "point"))])
    loader.copy("disaster_event", ["event_no", "name", "kind", "magnitude", "started_at", "stabilised_at",
                                   "region_code", "geom"],
                [(e.event_no, e.name, e.kind, e.magnitude, e.started_at, e.stabilised_at, e.region_code, w)
                 for e, w in zip(r.events, g(r.events, "point"))])
    event_id = loader.ids("disaster_event", "event_no")
    loader.copy("disaster_report", ["report_no", "event_id", "kind", "level", "region_code", "reported_at",
                                    "covers_until", "deaths", "missing", "relocated", "houses_collapsed",
                                    "houses_damaged", "direct_loss_10k_yuan", "geom"],
                [(d.report_no, event_id[d.event.event_no], d.kind, d.level, d.region_code, d.reported_at,
                  d.covers_until, d.deaths, d.missing, d.relocated, d.houses_collapsed, d.houses_damaged,
                  d.direct_loss_10k_yuan, w) for d, w in zip(r.disaster_reports, g(r.disaster_reports, "point"))])
    return report_ids
