"""Spatial comparison (比对核查, services/comparison.py) against a real PostGIS.

* Hand-made geometries (outside Jilin, in two made-up counties) whose overlaps are computed
  here independently — shapely for the geometry, pyproj.Geod (GRS80) for the area — agree
  with the stored results to 0.01 m², and the edge cases of docs/comparison.md hold.
* Every planted case of the demo province comes out in the categories of its manifest.
* Re-runs update results and leads in place; an interrupted run resumes where it stopped.
* The CLI, and the API job with its polling and reports through a real HTTP server.
"""
from __future__ import annotations

import csv
import io
import json
import time
import zlib
from datetime import date
from pathlib import Path

import pytest
import shapely
from pyproj import Geod
from shapely.geometry import box as _box
from shapely.geometry.polygon import orient
from sqlalchemy import text

from services import department_tokens
from services.comparison import (ComparisonError, Parameters, get_run, run_comparison, run_in_transaction,
                                 where_it_stopped, zone_pieces)

GEOD = Geod(ellps="GRS80")
LON0, LAT0, D = 110.0, 35.0, 0.001        # hand-made world: units of 0.001° around (110°E, 35°N)
BATCH = "T-手工测试"
DEMO_BATCH = "2026年度卫片执法第1批"


def geod_area(geom) -> float:
    if geom is None or geom.is_empty:
        return 0.0
    # Geod subtracts a hole only when it runs opposite to the shell: orient shells counter-clockwise
    return sum(GEOD.geometry_area_perimeter(orient(p, 1.0))[0] for p in getattr(geom, "geoms", [geom])
               if p.geom_type == "Polygon")


def box(x0, y0, x1, y1):
    return _box(LON0 + x0 * D, LAT0 + y0 * D, LON0 + x1 * D, LAT0 + y1 * D)


def overlap(patch, refs) -> float:
    """Area of the patch's part inside the union of `refs`, computed here with shapely + Geod."""
    if not refs:
        return 0.0
    return geod_area(shapely.intersection(patch, shapely.union_all(refs)).buffer(0))


# --- the hand-made world --------------------------------------------------------------------

COUNTIES = {"990101": box(-50, -50, 0, 50), "990102": box(0, -50, 50, 50)}
CITY = ("990100", box(-50, -50, 50, 50))
ZONES = {"010": [box(-50, -50, 20, 50)], "030": [box(20, -50, 50, 50)]}
URBAN = [box(-50, -50, 20, 50)]
LAND_USE = {"0103": box(-50, -50, 0, 50), "0301": box(0, -50, 20, 50), "0601": box(20, -50, 50, 50)}
APPROVALS = {"A1": box(-40, -40, -20, -20), "A2": box(-10, 0, -2, 10),
             "A3": box(-46, -46, -44, -44), "A4": box(-30, 40, -20, 48),
             # two overlapping approvals: a patch meeting both takes the area of their union
             "A7": box(-20, -15, -14, -7), "A8": box(-17, -12, -11, -5)}
SUPPLIES = {"S1": ("A1", box(-40, -40, -30, -20)), "S2": ("A2", box(-10, 0, -2, 10)),
            "S4": ("A4", box(-30, 40, -20, 48))}
BASIC_FARMLAND = [box(-45, 10, -25, 30), box(-30, 25, -20, 35)]      # overlapping in (-30..-25, 25..30)
RIGHTS = {"R1": (box(30, 30, 45, 45), date(2020, 1, 1), date(2030, 12, 31), "mining"),
          "R2": (box(30, -45, 45, -30), date(2016, 1, 1), date(2025, 12, 31), "mining"),
          "E1": (box(25, -18, 29, -10), date(2020, 1, 1), date(2030, 12, 31), "exploration")}
DETECTED = date(2026, 6, 1)

# patch: (geometry, kind, class_after, expected categories)
PATCHES = {
    "legal": (box(-39, -39, -31, -21), "construction", "0701", ["legal"]),
    # approved on its left part, supplied nowhere there
    "straddle": (box(-25, -35, -15, -25), "construction", "0601", ["beyond_extent", "unsupplied"]),
    "touching": (box(-20, -40, -10, -30), "construction", "0601", ["unapproved"]),
    "sliver": (box(-10, 0, -2, 10.00001), "construction", "0601", ["legal"]),
    "multipolygon": (shapely.MultiPolygon([box(-44, 12, -40, 16), box(-10, 20, -6, 24)]), "construction", "0601",
                     ["basic_farmland", "unapproved"]),
    "hole": (shapely.Polygon(box(-48, -48, -42, -42).exterior.coords, [box(-46, -46, -44, -44).exterior.coords]),
             "construction", "0601", ["unapproved"]),
    "crossing": (box(-3, 30, 7, 40), "construction", "0701", ["unapproved"]),
    "outside_plan": (box(25, 0, 35, 10), "construction", "0601", ["outside_plan", "unapproved"]),
    "facility": (box(-35, 0, -30, 5), "construction", "1202", ["other"]),
    "late_approval": (box(-28, 41, -22, 47), "construction", "0601", ["unapproved"]),
    # several rows of one layer meet the patch (the union is taken, never the sum): partly
    # inside two overlapping approvals, wholly inside both, across two overlapping farmland patches
    "two_approvals": (box(-19, -14, -12, -6), "construction", "0601", ["beyond_extent", "unsupplied"]),
    "inside_two_approvals": (box(-16, -11, -15, -8), "construction", "0601", ["unsupplied"]),
    "two_farmlands": (box(-28, 26, -23, 32), "construction", "0601", ["basic_farmland", "unapproved"]),
    "mine_legal": (box(32, 32, 36, 36), "mining", "0602", ["legal"]),
    "mine_beyond": (box(42, 32, 48, 36), "mining", "0602", ["beyond_boundary_mining"]),
    "mine_expired": (box(32, -40, 36, -36), "mining", "0602", ["expired_mining"]),
    "mine_unlicensed": (box(26, -16, 28, -12), "mining", "0602", ["unlicensed_mining"]),
}
LATE = {"A4": date(2026, 9, 1)}      # approved (and supplied) after the patch was detected: no cover


def _multi(g):
    return g if g.geom_type == "MultiPolygon" else shapely.MultiPolygon([g])


def _insert(conn, table: str, rows: list[dict]) -> None:
    for row in rows:
        geom = row.pop("geom")
        cols = ", ".join(list(row) + ["geom"])
        vals = ", ".join([f":{c}" for c in row] + ["ST_GeomFromText(:wkt, 4490)"])
        conn.execute(text(f"INSERT INTO {table} ({cols}) VALUES ({vals})"), {**row, "wkt": _multi(geom).wkt})


def _number(conn, tag: str, kind: str = "P") -> str:
    number = f"990101-2025-{kind}-{zlib.crc32(tag.encode()) % 900000 + 100000:06d}"
    conn.execute(text("INSERT INTO supervision_number (number, region_code, year, kind, serial) "
                      "VALUES (:n, '990101', 2025, :k, :s) ON CONFLICT DO NOTHING"),
                 {"n": number, "k": kind, "s": int(number[-6:])})
    return number


def build_world(conn) -> None:
    _insert(conn, "admin_division", [dict(code=CITY[0], name="测试市", level="city", parent_code="990000",
                                          geom=CITY[1])]
            + [dict(code=c, name=f"测试县{c[-1]}", level="county", parent_code=CITY[0], geom=g)
               for c, g in COUNTIES.items()])
    _insert(conn, "plan_zone", [dict(zone_code=code, zone_no=f"T-Z{code}-{k}", county_code="990101", geom=g)
                                for code, gs in ZONES.items() for k, g in enumerate(gs)])
    _insert(conn, "urban_boundary", [dict(zone_no=f"T-U{k}", county_code="990101", geom=g)
                                     for k, g in enumerate(URBAN)])
    _insert(conn, "land_use", [dict(bsm=f"T-L{code}", parcel_no=f"T{code}", class_code=code, class_name=code,
                                    county_code="990101", geom=g) for code, g in LAND_USE.items()])
    _insert(conn, "basic_farmland", [dict(patch_no=f"T-B{k}", class_code="0103", grade="5", county_code="990101",
                                          geom=g) for k, g in enumerate(BASIC_FARMLAND)])
    for tag, g in APPROVALS.items():
        _insert(conn, "approval", [dict(supervision_no=_number(conn, tag), document_no=f"T-{tag}",
                                        kind="conversion_expropriation", authority="province",
                                        approved_on=LATE.get(tag, date(2025, 1, 1)), county_code="990101", geom=g)])
    for tag, (approval, g) in SUPPLIES.items():
        _insert(conn, "supply", [dict(supervision_no=_number(conn, approval), contract_no=f"T-{tag}",
                                      method="listing", land_use="0601",
                                      signed_on=LATE.get(approval, date(2025, 6, 1)), county_code="990101",
                                      geom=g)])
    for tag, (g, start, end, kind) in RIGHTS.items():
        _insert(conn, "mining_right", [dict(supervision_no=_number(conn, tag, "K"), licence_no=f"T-{tag}",
                                            right_type=kind, holder="测试矿业", mineral="limestone",
                                            valid_from=start, valid_to=end, county_code="990102", geom=g)])
    _insert(conn, "change_patch", [
        dict(patch_no=f"T-{tag}", batch=BATCH, kind=kind, epoch_before="e1", epoch_after="e2", class_after=cls,
             detected_on=DETECTED, county_code="990101", geom=g)
        for tag, (g, kind, cls, _) in PATCHES.items()])


@pytest.fixture()
def world(conn, demo):
    build_world(conn)
    return conn


def results(conn, batch: str = BATCH) -> dict[str, dict]:
    rows = conn.execute(text("SELECT * FROM comparison_result WHERE batch = :b"), {"b": batch}).mappings()
    return {r["patch_no"].removeprefix("T-"): dict(r) for r in rows}


def expected_areas(tag: str) -> dict:
    g, kind, _, _ = PATCHES[tag]
    approvals = [a for t, a in APPROVALS.items() if t not in LATE]
    supplies = [s for t, (a, s) in SUPPLIES.items() if a not in LATE]
    approved = shapely.intersection(g, shapely.union_all(approvals))
    farmland = [LAND_USE["0103"]]
    out = {
        "area_m2": geod_area(g),
        "approval_m2": overlap(g, approvals),
        "supply_m2": overlap(g, supplies),
        "unsupplied_m2": geod_area(approved) - overlap(approved, supplies),
        "basic_farmland_m2": overlap(g, BASIC_FARMLAND),
        "farmland_m2": overlap(g, farmland),
        "restricted_m2": overlap(g, ZONES["030"]),
        "outside_boundary_m2": geod_area(g) - overlap(g, URBAN),
        "land_use_m2": {c: a for c, p in LAND_USE.items() if (a := overlap(g, [p])) > 0},
        "zone_m2": {c: a for c, ps in ZONES.items() if (a := overlap(g, ps)) > 0},
        "county_m2": {c: a for c, p in COUNTIES.items() if (a := overlap(g, [p])) > 0},
    }
    out["unapproved_m2"] = out["area_m2"] - out["approval_m2"]
    out["illegal_farmland_m2"] = geod_area(shapely.difference(shapely.intersection(g, LAND_USE["0103"]),
                                                              shapely.union_all(approvals)))
    if kind == "mining":
        mining = [(t, r[0]) for t, r in RIGHTS.items() if r[3] == "mining"]
        own = max(mining, key=lambda tr: overlap(g, [tr[1]]))
        inside = overlap(g, [own[1]])
        out.update(licence_no=f"T-{own[0]}" if inside >= 1 else None, own_right_m2=inside if inside >= 1 else 0.0,
                   outside_right_m2=out["area_m2"] - (inside if inside >= 1 else 0.0), illegal_farmland_m2=0.0)
    return out


# --- hand-made geometries ----------------------------------------------------------------------

def test_overlap_areas_agree_with_pyproj_geod_to_a_hundredth_of_a_square_metre(world):
    run_in_transaction(world, BATCH)
    got = results(world)
    assert set(got) == set(PATCHES)
    for tag in PATCHES:
        want, r = expected_areas(tag), got[tag]
        if r["kind"] == "construction" and "other" in r["categories"]:
            want["illegal_farmland_m2"] = 0.0
        for key, value in want.items():
            if isinstance(value, dict):
                assert set(r[key]) == set(value), (tag, key, r[key])
                for k, v in value.items():
                    assert r[key][k] == pytest.approx(v, abs=0.01), (tag, key, k)
            elif isinstance(value, float):
                assert r[key] == pytest.approx(value, abs=0.01), (tag, key)
            else:
                assert r[key] == value, (tag, key)
    # the figures are real: a 10 x 10 unit box at 35°N is ~0.91 km x 1.11 km
    assert got["crossing"]["area_m2"] == pytest.approx(1_011_000, rel=0.01)


def test_categories_and_leading_category(world):
    run_in_transaction(world, BATCH)
    got = results(world)
    for tag, (_, _, _, categories) in PATCHES.items():
        assert sorted(got[tag]["categories"]) == sorted(categories), tag
        assert got[tag]["violation"] == bool(set(categories) - {"legal", "other"}), tag
    assert got["multipolygon"]["category"] == "basic_farmland"
    assert got["straddle"]["category"] == "beyond_extent"
    assert got["facility"]["category"] == "other"


def test_edge_cases_follow_docs(world):
    """docs/comparison.md: touching is no overlap; slivers < 1 m² raise no flag; multipolygons
    are one patch; holes are holes; a patch crossing a county border goes to the larger part."""
    run_in_transaction(world, BATCH)
    got = results(world)
    assert got["touching"]["approval_m2"] == 0.0                       # shares the edge x = -20 only
    sliver = got["sliver"]["unapproved_m2"]
    assert 0.1 < sliver < 1.0 and got["sliver"]["categories"] == ["legal"]   # stored, not flagged
    multi = got["multipolygon"]
    assert multi["basic_farmland_m2"] == pytest.approx(geod_area(box(-44, 12, -40, 16)), abs=0.01)
    assert world.execute(text("SELECT count(*) FROM violation_lead WHERE lead_no = 'WPT-multipolygon'")).scalar() == 1
    hole = got["hole"]                                                 # the approval fills the hole exactly
    assert hole["approval_m2"] == 0.0
    assert hole["area_m2"] == pytest.approx(geod_area(box(-48, -48, -42, -42)) - geod_area(box(-46, -46, -44, -44)),
                                            abs=0.01)
    crossing = got["crossing"]
    assert crossing["county_code"] == "990102" and crossing["city_code"] == "990100"
    assert crossing["county_m2"]["990101"] == pytest.approx(0.3 * crossing["area_m2"], rel=0.001)
    assert world.execute(text("SELECT county_code FROM violation_lead WHERE lead_no = 'WPT-crossing'")).scalar() \
        == "990102"
    # approvals and supply after the detection date give no cover
    assert got["late_approval"]["approval_m2"] == 0.0
    # an exploration right permits no mining
    assert got["mine_unlicensed"]["licence_no"] is None


def test_sliver_threshold_is_a_parameter(world):
    run_in_transaction(world, BATCH, Parameters(sliver_m2=0.01))
    assert sorted(results(world)["sliver"]["categories"]) == ["beyond_extent"]
    with pytest.raises(ComparisonError, match="sliver_m2"):
        Parameters.from_dict({"sliver_m2": 0})
    with pytest.raises(ComparisonError, match="unknown parameter"):
        Parameters.from_dict({"slivers": 1})
    with pytest.raises(ComparisonError, match="no change patches"):
        run_in_transaction(world, "no such batch")


def test_rerun_updates_results_and_leads_in_place(world):
    first = run_in_transaction(world, BATCH)
    ids = {t: r["id"] for t, r in results(world).items()}
    leads = world.execute(text("SELECT lead_no, id, status FROM violation_lead WHERE lead_no LIKE 'WPT-%'")).all()
    violations = sum(bool(set(c) - {"legal", "other"}) for *_, c in PATCHES.values())
    assert first.counts["leads_created"] == len(leads) == violations == first.counts["violations"]
    # the touching patch's land approved and supplied before detection (registered late), then a re-run
    world.execute(text("""INSERT INTO approval (supervision_no, document_no, kind, authority, approved_on, county_code,
                          geom) SELECT supervision_no, 'T-A5', kind, authority, approved_on, county_code,
                          ST_Multi(ST_GeomFromText(:wkt, 4490)) FROM approval WHERE document_no = 'T-A1'"""),
                  {"wkt": box(-20, -40, -10, -30).wkt})
    world.execute(text("""INSERT INTO supply (supervision_no, contract_no, method, land_use, signed_on, county_code,
                          geom) SELECT supervision_no, 'T-S5', method, land_use, signed_on, county_code,
                          ST_Multi(ST_GeomFromText(:wkt, 4490)) FROM supply WHERE contract_no = 'T-S1'"""),
                  {"wkt": box(-20, -40, -10, -30).wkt})
    second = run_in_transaction(world, BATCH)
    got = results(world)
    assert {t: r["id"] for t, r in got.items()} == ids and {r["run_id"] for r in got.values()} == {second.run_id}
    assert second.counts["leads_created"] == 0 and second.counts["leads_updated"] == len(leads)
    again = dict(world.execute(text("SELECT lead_no, status FROM violation_lead WHERE lead_no LIKE 'WPT-%'")).all())
    assert len(again) == len(leads)
    assert again["WPT-touching"] == "dismissed"                        # now approved and supplied
    assert got["touching"]["categories"] == ["legal"]
    assert world.execute(text("SELECT run_id FROM violation_lead WHERE lead_no = 'WPT-touching'")).scalar() \
        == second.run_id


def test_zone_pieces_are_kept_between_runs_and_cut_again_when_a_zone_changes(world):
    first = run_in_transaction(world, BATCH)              # the world's zones are new: cut
    assert zone_pieces(world, 256) is False               # nothing changed since: kept as they are
    pieces = world.execute(text("SELECT kind, code, city FROM comparison_zone_piece WHERE geom && "
                                "ST_MakeEnvelope(109.9, 34.9, 110.1, 35.1, 4490) ORDER BY 1, 2")).all()
    assert pieces == [("county", "990101", "990100"), ("county", "990102", "990100"), ("plan", "010", None),
                      ("plan", "030", None), ("urban", "urban", None)]
    assert results(world)["legal"]["zone_m2"].keys() == {"010"}
    # the zone under the "legal" patch becomes a restricted one (030): the next run cuts again
    world.execute(text("UPDATE plan_zone SET zone_code = '030' WHERE zone_no LIKE 'T-Z010-%'"))
    assert zone_pieces(world, 256) is True and zone_pieces(world, 256) is False
    assert zone_pieces(world, 64) is True                 # another subdivide_vertices: cut again
    second = run_in_transaction(world, BATCH)
    legal = results(world)["legal"]
    assert legal["run_id"] == second.run_id != first.run_id
    assert legal["zone_m2"].keys() == {"030"}
    assert legal["restricted_m2"] == pytest.approx(expected_areas("legal")["area_m2"], abs=0.01)
    assert "outside_plan" in legal["categories"]


# --- the demo province -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def manifest(demo) -> dict:
    return json.loads(Path(demo["manifest"]).read_text(encoding="utf-8"))


OVERLAP_COLUMNS = {"approval_m2": "approval_m2", "supply_m2": "supply_m2", "basic_farmland_m2": "basic_farmland_m2",
                   "uncovered_m2": "unapproved_m2", "own_right_m2": "own_right_m2",
                   "outside_right_m2": "outside_right_m2"}


def test_every_planted_case_comes_out_in_its_categories(demo, engine, manifest):
    planted = {p["patch_no"]: p for p in manifest["planted_patches"]}
    with engine.connect() as conn:
        got = {r["patch_no"]: dict(r) for r in conn.execute(text(
            "SELECT * FROM comparison_result WHERE patch_no = ANY(:nos)"), {"nos": list(planted)}).mappings()}
        leads = dict(conn.execute(text("SELECT lead_no, categories FROM violation_lead WHERE source = 'satellite' "
                                       "AND patch_id IS NOT NULL")).all())
    assert set(got) == set(planted)
    for no, p in planted.items():
        r = got[no]
        assert sorted(r["categories"]) == p["categories"], (p["case"], r["categories"])
        assert r["area_m2"] == pytest.approx(p["area_m2"], abs=0.01), p["case"]
        for key, column in OVERLAP_COLUMNS.items():
            if key in p["overlaps"]:
                assert r[column] == pytest.approx(p["overlaps"][key], abs=0.01), (p["case"], key)
        if p["kind"] == "mining" and "licence" in p:
            assert r["licence_no"] == p["licence"]["licence_no"], p["case"]
        violating = bool(set(p["categories"]) - {"legal", "other"})
        assert (f"WP{no}" in leads) == violating, p["case"]
        if violating:
            assert sorted(leads[f"WP{no}"]) == p["categories"]


def test_interrupted_run_says_where_it_stopped_and_resumes(demo, engine, manifest):
    with engine.connect() as conn:
        before = {r[0]: (sorted(r[1]), r[2]) for r in conn.execute(text(
            "SELECT patch_no, categories, area_m2 FROM comparison_result WHERE batch = :b"), {"b": DEMO_BATCH})}
        leads_before = conn.execute(text("SELECT count(*) FROM violation_lead")).scalar()

    def stop_after_two_chunks(done, total):
        if done >= 6:
            raise KeyboardInterrupt("simulated restart")
    with pytest.raises(KeyboardInterrupt):
        run_comparison(engine, DEMO_BATCH, Parameters(chunk_size=3, workers=1), requested_by="test", resume=False,
                       progress=stop_after_two_chunks)
    with engine.connect() as conn:
        run_id = conn.execute(text("SELECT max(id) FROM comparison_run")).scalar()
        stopped = get_run(conn, run_id)
    assert stopped["status"] == "interrupted" and stopped["patches_done"] == 6 and stopped["stage"] == "compare"
    assert stopped["last_patch_id"] is not None
    with engine.connect() as conn:      # the two committed chunks: the first 6 patches in spatial order
        first = [r[0] for r in conn.execute(text(
            "SELECT id FROM change_patch WHERE batch = :b ORDER BY geom, id LIMIT 6"), {"b": DEMO_BATCH})]
        assert sorted(first) == [r[0] for r in conn.execute(text(
            "SELECT patch_id FROM comparison_result WHERE run_id = :r ORDER BY patch_id"), {"r": run_id})]
    assert stopped["last_patch_id"] == first[-1]
    resumed = run_comparison(engine, DEMO_BATCH, requested_by="test")
    assert resumed.run_id == run_id and resumed.resumed_from == stopped["last_patch_id"]
    assert resumed.patches_done == resumed.patches_total == len(before)
    with engine.connect() as conn:
        after = {r[0]: (sorted(r[1]), r[2]) for r in conn.execute(text(
            "SELECT patch_no, categories, area_m2 FROM comparison_result WHERE batch = :b"), {"b": DEMO_BATCH})}
        assert conn.execute(text("SELECT count(*) FROM violation_lead")).scalar() == leads_before
        assert get_run(conn, run_id)["status"] == "finished"
    assert after.keys() == before.keys()
    for no, (cats, area) in before.items():
        assert after[no][0] == cats and after[no][1] == pytest.approx(area, abs=1e-6)


def test_parallel_workers_give_the_serial_results(demo, engine):
    def snapshot():
        with engine.connect() as conn:
            return {r[0]: tuple(r[1:]) for r in conn.execute(text(
                "SELECT patch_no, categories, area_m2, approval_m2, supply_m2, basic_farmland_m2, land_use_m2, "
                "zone_m2, county_m2, own_right_m2, county_code FROM comparison_result WHERE batch = :b"),
                {"b": DEMO_BATCH})}
    serial = run_comparison(engine, DEMO_BATCH, Parameters(chunk_size=2, workers=1), resume=False)
    before = snapshot()
    seen = []
    parallel = run_comparison(engine, DEMO_BATCH, Parameters(chunk_size=2, workers=3), resume=False,
                              progress=lambda done, total: seen.append(done))
    assert snapshot() == before
    assert parallel.counts["categories"] == serial.counts["categories"]
    assert parallel.counts["leads_created"] == 0 and parallel.counts["leads_updated"] == serial.counts["violations"]
    assert seen[-1] == parallel.patches_total == 15 and seen == sorted(seen)
    with engine.connect() as conn:
        run = get_run(conn, parallel.run_id)
    assert run["status"] == "finished" and run["patches_done"] == 15
    with engine.connect() as conn:       # chunks go in spatial order: the last patch is the last on the curve
        last = conn.execute(text("SELECT id FROM change_patch WHERE batch = :b ORDER BY geom DESC, id DESC LIMIT 1"),
                            {"b": DEMO_BATCH}).scalar_one()
    assert run["last_patch_id"] == last != max(conn_ids(engine))


def test_dask_county_partitions_give_the_single_node_results(demo, engine, test_settings):
    """The partitioned path (`compare run --engine dask`: one task per county on a Dask distributed
    LocalCluster of 2 processes) gives every result row and lead of the single-node path."""
    def snapshot():
        with engine.connect() as conn:
            rows = {r["patch_no"]: {k: v for k, v in r.items() if k not in ("id", "run_id", "compared_at")}
                    for r in conn.execute(text("SELECT *, ST_AsEWKB(geom) AS geom FROM comparison_result "
                                               "WHERE batch = :b"), {"b": DEMO_BATCH}).mappings()}
            leads = {r["lead_no"]: dict(r) for r in conn.execute(text(
                "SELECT v.lead_no, v.categories, v.patch_id, v.area_m2, v.farmland_m2, v.basic_farmland_m2, v.status, "
                "v.county_code, v.run_id FROM violation_lead v JOIN change_patch p ON p.id = v.patch_id "
                "WHERE v.source = 'satellite' AND p.batch = :b"), {"b": DEMO_BATCH}).mappings()}
        return rows, leads
    single = run_comparison(engine, DEMO_BATCH, Parameters(workers=1), resume=False)
    rows, leads = snapshot()
    assert len(rows) == 15 and len(leads) == 10 and {v["run_id"] for v in leads.values()} == {single.run_id}

    from app import create_app
    out = create_app(test_settings).test_cli_runner().invoke(
        args=["compare", "run", "--batch", DEMO_BATCH, "--restart", "--engine", "dask", "--workers", "2"])
    assert out.exit_code == 0, out.output
    assert "15 patches compared, 10 violations" in out.output and "leads 0 created, 10 updated" in out.output
    with engine.connect() as conn:
        run = get_run(conn, conn.execute(text("SELECT max(id) FROM comparison_run")).scalar())
    assert run["parameters"]["engine"] == "dask" and run["status"] == "finished" and run["patches_done"] == 15
    dask_rows, dask_leads = snapshot()
    assert dask_rows.keys() == rows.keys()
    for no, row in rows.items():
        assert dask_rows[no] == row, no                      # categories, every area, county, geometry
    assert {no: {**v, "run_id": None} for no, v in dask_leads.items()} == \
        {no: {**v, "run_id": None} for no, v in leads.items()}
    assert {v["run_id"] for v in dask_leads.values()} == {run["id"]}
    # one partition per county, by the engine's own rule (the result's county_code), all finished
    partitions = run["timings"]["partitions"]
    per_county = {}
    for row in rows.values():
        per_county[row["county_code"]] = per_county.get(row["county_code"], 0) + 1
    assert {c: p["patches"] for c, p in partitions.items()} == per_county
    assert run["counts"]["partitions_total"] == len(per_county) > 1 and run["counts"]["partitions_pending"] == []
    assert len({p["worker"] for p in partitions.values()}) <= 2
    assert all(p["worker"].startswith("tcp://127.0.0.1:") for p in partitions.values())
    assert run["counts"]["categories"] == single.counts["categories"]


def test_interrupted_dask_run_names_its_pending_counties_and_resumes_them(demo, engine):
    def results():
        with engine.connect() as conn:
            return {r[0]: tuple(r[1:]) for r in conn.execute(text(
                "SELECT patch_no, categories, area_m2, approval_m2, basic_farmland_m2, land_use_m2, county_m2, "
                "county_code FROM comparison_result WHERE batch = :b"), {"b": DEMO_BATCH})}
    before = results()

    def stop_after_a_partition(done, total):
        if done > 0:
            raise KeyboardInterrupt("simulated restart")
    with pytest.raises(KeyboardInterrupt):
        run_comparison(engine, DEMO_BATCH, Parameters(engine="dask", workers=2), resume=False,
                       progress=stop_after_a_partition)
    with engine.connect() as conn:
        stopped = get_run(conn, conn.execute(text("SELECT max(id) FROM comparison_run")).scalar())
    finished = stopped["timings"]["partitions"]
    pending = stopped["counts"]["partitions_pending"]
    assert stopped["status"] == "interrupted" and len(finished) == 1 and pending
    assert stopped["patches_done"] == sum(p["patches"] for p in finished.values()) > 0
    assert not set(finished) & set(pending) and len(finished) + len(pending) == stopped["counts"]["partitions_total"]
    assert f"county partitions not finished: {', '.join(pending)}" in where_it_stopped(stopped)

    resumed = run_comparison(engine, DEMO_BATCH)
    assert resumed.run_id == stopped["id"] and resumed.patches_done == resumed.patches_total == 15
    with engine.connect() as conn:
        run = get_run(conn, resumed.run_id)
    assert run["status"] == "finished" and run["counts"]["partitions_pending"] == []
    assert run["timings"]["partitions"].keys() == set(finished) | set(pending)
    for county, part in finished.items():          # the finished partition was not compared again
        assert run["timings"]["partitions"][county] == part
    assert results() == before


def test_a_runs_work_table_is_dropped_when_it_ends_or_by_the_next_run(demo, engine):
    """The zone areas of a run are an UNLOGGED table shared by its connections: dropped when the
    run finishes or stops; the one of a run whose process was killed is dropped by the next run
    of the batch."""
    def work_tables():
        with engine.connect() as conn:
            return {r[0] for r in conn.execute(text(
                "SELECT tablename FROM pg_tables WHERE tablename ~ '^cmp_zone_m2_r[0-9]+$'"))}
    with engine.begin() as conn:            # killed after its prepare: status running, table left
        from services.comparison import create_run
        killed = create_run(conn, DEMO_BATCH, status="running")
        conn.execute(text(f"CREATE UNLOGGED TABLE cmp_zone_m2_r{killed} (id bigint)"))
    assert work_tables() == {f"cmp_zone_m2_r{killed}"}

    def stop(done, total):
        if done > 0:
            assert len(work_tables()) == 1 and f"cmp_zone_m2_r{killed}" not in work_tables()   # its own, in use
            raise KeyboardInterrupt("simulated restart")
    with pytest.raises(KeyboardInterrupt):
        run_comparison(engine, DEMO_BATCH, Parameters(chunk_size=5, workers=2), resume=False, progress=stop)
    assert work_tables() == set()
    with engine.connect() as conn:
        assert get_run(conn, killed)["status"] == "interrupted"
    finished = run_comparison(engine, DEMO_BATCH)
    assert finished.patches_done == 15 and work_tables() == set()


def conn_ids(engine):
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT id FROM change_patch WHERE batch = :b"), {"b": DEMO_BATCH})]


# --- CLI, API, report ---------------------------------------------------------------------------

def test_cli_run_and_report(demo, test_settings, tmp_path):
    from app import create_app
    app = create_app(test_settings)
    runner = app.test_cli_runner()
    out = runner.invoke(args=["compare", "run", "--batch", DEMO_BATCH, "--restart"])
    assert out.exit_code == 0, out.output
    assert "15 patches compared, 10 violations" in out.output and "leads 0 created, 10 updated" in out.output
    bad = runner.invoke(args=["compare", "run", "--batch", "no such batch"])
    assert bad.exit_code != 0 and "no such batch" in bad.output
    xlsx = tmp_path / "report.xlsx"
    out = runner.invoke(args=["compare", "report", "--batch", DEMO_BATCH, "-o", str(xlsx)])
    assert out.exit_code == 0, out.output
    from openpyxl import load_workbook
    ws = load_workbook(xlsx).active
    assert ws["A2"].value == "级别" and ws["A4"].value == "batch" and ws["D4"].value == 15


@pytest.fixture(scope="module")
def comparison_token(engine, demo):
    with engine.begin() as conn:
        secret, _ = department_tokens.create(conn, "执法局 comparison test", ["comparison_result"])
        other, _ = department_tokens.create(conn, "耕保处 comparison test", ["basic_farmland"])
    return {"Authorization": f"Bearer {secret}"}, {"Authorization": f"Bearer {other}"}


def _poll(status_url: str, token: dict) -> dict:
    """Poll a run's status until it ends (or 120 s); its last answer."""
    import requests
    deadline = time.monotonic() + 120
    while True:
        run = requests.get(status_url, headers=token, timeout=10).json()
        if run["status"] in ("finished", "failed") or time.monotonic() > deadline:
            return run
        time.sleep(0.1)


def test_api_runs_the_dask_engine_as_a_job(live_server, comparison_token):
    import requests
    token, _ = comparison_token
    url = live_server.url + "/api/comparisons"
    bad = requests.post(url, json={"batch": DEMO_BATCH, "parameters": {"engine": "spark"}}, headers=token, timeout=10)
    assert bad.status_code == 400 and "parameter engine must be one of local, dask" in bad.json()["error"]
    r = requests.post(url, json={"batch": DEMO_BATCH, "parameters": {"engine": "dask", "workers": 2}}, headers=token,
                      timeout=10)
    assert r.status_code == 202, r.text
    run = _poll(live_server.url + r.headers["Location"], token)
    assert run["status"] == "finished", run
    assert run["patches_done"] == 15 and run["counts"]["violations"] == 10
    assert run["counts"]["partitions_pending"] == [] and run["parameters"]["engine"] == "dask"
    assert sum(p["patches"] for p in run["timings"]["partitions"].values()) == 15


def test_api_job_polling_and_reports(live_server, comparison_token, manifest):
    import requests
    token, other = comparison_token
    url = live_server.url + "/api/comparisons"
    anonymous = requests.post(url, json={"batch": DEMO_BATCH}, timeout=10)   # no token, no session
    assert anonymous.status_code == 401 and "login or a department token" in anonymous.json()["error"]
    assert requests.get(url + "/1", timeout=10).status_code == 401
    assert requests.post(url, json={"batch": DEMO_BATCH}, headers=other, timeout=10).status_code == 403
    bad = requests.post(url, json={"batch": "no such batch"}, headers=token, timeout=10)
    assert bad.status_code == 400 and "no such batch" in bad.json()["error"]
    assert requests.post(url, json={"batch": DEMO_BATCH, "parameters": {"chunk_size": 0}}, headers=token,
                         timeout=10).status_code == 400
    r = requests.post(url, json={"batch": DEMO_BATCH, "parameters": {"chunk_size": 4}}, headers=token, timeout=10)
    assert r.status_code == 202, r.text
    run = _poll(live_server.url + r.headers["Location"], token)
    assert run["status"] == "finished", run
    assert run["patches_done"] == run["patches_total"] == 15 and run["counts"]["violations"] == 10
    assert {"prepare_s", "compare_s", "leads_s", "total_s"} <= set(run["timings"])
    assert run["parameters"]["chunk_size"] == 4 and run["requested_by"] == "执法局 comparison test"
    assert requests.get(live_server.url + "/api/comparisons/999999", headers=token, timeout=10).status_code == 404

    rep = requests.get(live_server.url + run["report"], headers=token, timeout=10).json()
    total = rep["rows"][0]
    assert total["level"] == "batch" and total["patches"] == 15 and total["violations"] == 10
    planted = manifest["planted_patches"]
    for category, counts in total["categories"].items():
        assert counts["patches"] == sum(category in p["categories"] for p in planted), category
        area = sum(p["area_m2"] for p in planted if category in p["categories"])
        assert counts["m2"] == pytest.approx(area, abs=0.05) and counts["mu"] == pytest.approx(area * 15 / 1e4, abs=1e-3)
    cities = [row for row in rep["rows"] if row["level"] == "city"]
    counties = [row for row in rep["rows"] if row["level"] == "county"]
    assert sum(c["patches"] for c in cities) == sum(c["patches"] for c in counties) == 15
    assert all(c["name"] for c in cities + counties)
    share = total["illegal_farmland"]["m2"] / total["construction_farmland"]["m2"]
    assert total["illegal_farmland_share"] == pytest.approx(share, abs=1e-6) and 0 < share <= 1

    csv_r = requests.get(live_server.url + run["report"] + "?f=csv", headers=token, timeout=10)
    assert csv_r.status_code == 200 and csv_r.headers["Content-Type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(csv_r.content.decode("utf-8-sig"))))
    assert table[0][0] == "级别" and table[1][0] == "level" and table[2][:2] == ["batch", ""]
    assert len(table) == 2 + len(rep["rows"])
    xlsx = requests.get(live_server.url + run["report"] + "?f=xlsx", headers=token, timeout=10)
    from openpyxl import load_workbook
    ws = load_workbook(io.BytesIO(xlsx.content)).active
    assert ws.max_row == 3 + len(rep["rows"]) and ws["D4"].value == 15
    assert requests.get(live_server.url + run["report"] + "?f=pdf", headers=token, timeout=10).status_code == 400
