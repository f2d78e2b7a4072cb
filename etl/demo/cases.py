"""Planted cases: records built so that the right answer is known, at every scale.

All change patches lie in the imagery footprint near Changchun. Construction cases sit in
Changchun's 010 ring (inside the urban development boundary, off basic farmland) or out in
the 030 farmland beyond it; the land use under each patch is fixed (farmland, basic or not;
forest in the forest park; grassland at the quarries) so the overlap with basic farmland is
exact. Idle-land and supply cases sit at other seats. Expected answers are computed here
from the construction geometry, on the GRS80 (CGCS2000) ellipsoid.
"""
from __future__ import annotations

from datetime import date

import numpy as np
import shapely

from etl.demo import names
from etl.corners import corners_to_geometry, format_corners, gk_epsg, gk_transformers, zone_for_longitude
from etl.demo.geo import blob, rotated_rect, to_local, to_lonlat
from etl.demo.landscape import Town
from etl.demo.records import (Approval, Case, DemoRecords, DevelopmentReport, Lead, MiningRight, Patch, Supply)
from etl.demo.sites import World
from services.areas import geodesic_area_m2

REFERENCE_DATE = date(2026, 11, 1)
MAX_TRIES = 20000


class PlantingError(RuntimeError):
    """No place satisfied a planted case's constraints (the landscape changed?)."""


def area(geom) -> float:
    return round(geodesic_area_m2(geom), 3)


def ring_point(rng: np.random.Generator, town: Town, d0: float, d1: float) -> tuple[float, float]:
    theta = rng.uniform(0, 2 * np.pi)
    d = rng.uniform(d0, d1)
    n = len(town.mult)
    m = town.mult[int(theta / (2 * np.pi) * n) % n]
    r = town.radius * m * d
    return town.x + r * np.cos(theta), town.y + r * np.sin(theta)


def split_rect(x, y, w, h, angle, fraction):
    """A w×h rectangle split across its width: (first fraction, rest), as two rectangles."""
    t = np.radians(angle)
    ux, uy = np.cos(t), np.sin(t)
    w1, w2 = w * fraction, w * (1 - fraction)
    c1 = (x - ux * (w - w1) / 2, y - uy * (w - w1) / 2)
    c2 = (x + ux * (w - w2) / 2, y + uy * (w - w2) / 2)
    return rotated_rect(*c1, w1, h, angle), rotated_rect(*c2, w2, h, angle), c1, c2


def multi(geom):
    return geom if geom.geom_type == "MultiPolygon" else shapely.MultiPolygon([geom])


class Planter:
    def __init__(self, world: World, records: DemoRecords, rng: np.random.Generator):
        self.w, self.r, self.rng = world, records, rng
        self.cc = world.town("长春")
        self.patches: dict[str, Patch] = {}
        self.approvals: dict[str, Approval] = {}
        self.supplies: dict[str, Supply] = {}
        self.rights: dict[str, MiningRight] = {}
        self.cases: dict[str, Case] = {}
        self.idle: list[tuple[Supply, str, str]] = []        # supply, colour, rule
        self.red_agreement: list[Supply] = []
        self.without_approval: list[Supply] = []

    # --- site search ----------------------------------------------------------------------
    def _search(self, propose, accept, what: str):
        for _ in range(MAX_TRIES):
            site = propose()
            result = accept(site)
            if result is not None:
                return result
        raise PlantingError(f"no place found for the planted case {what!r}")

    def _ring_ok(self, geom_l, town: Town | None = None, footprint: bool = True) -> bool:
        w = self.w
        if footprint and not w.within("footprint", geom_l, 200):
            return False
        return (w.within("zone010", geom_l, 60) and w.clear_of("linear", geom_l, 100)
                and w.clear_of("reserve", geom_l, 200) and w.occupied.free(geom_l.buffer(150)))

    def _outside_ok(self, geom_l, margin_urban: float = 400) -> bool:
        w = self.w
        return (w.within("footprint", geom_l, 200) and w.clear_of("urban", geom_l, margin_urban)
                and w.clear_of("reserve", geom_l, 300) and w.clear_of("linear", geom_l, 150)
                and w.occupied.free(geom_l.buffer(200)))

    def _force_ok(self, geoms_ll, cls: str, basic: bool) -> np.ndarray | None:
        cells = np.unique(np.concatenate([self.w.cells_under(g) for g in geoms_ll]))
        return cells if self.w.can_force(cells, cls, basic) else None

    def _take(self, geoms_l, cells, cls, basic, margin=150.0):
        for g in geoms_l:
            self.w.occupied.add(g.buffer(margin))
        if cells is not None:
            self.w.force(cells, cls, basic)

    def _outside_point(self):
        x0, y0, x1, y1 = self.w.local["footprint"].bounds
        return self.rng.uniform(x0, x1), self.rng.uniform(y0, y1), self.rng.uniform(0, 180)

    # --- records --------------------------------------------------------------------------
    def _approval(self, tag, geom_ll, county, authority, kind, approved_on, planned_use) -> Approval:
        a = Approval(county=county, geom=multi(geom_ll), authority=authority, kind=kind, approved_on=approved_on,
                     planned_use=planned_use, tag=tag)
        self.r.approvals.append(a)
        self.approvals[tag] = a
        return a

    def _supply(self, tag, geom_ll, county, approval, method, land_use, signed_on, agreed_start, agreed_completion,
                town: Town, price_per_m2: float, plot=(1.0, 2.5)) -> Supply:
        s = Supply(county=county, geom=multi(geom_ll), approval=approval, method=method, land_use=land_use,
                   signed_on=signed_on, agreed_start=agreed_start, agreed_completion=agreed_completion,
                   land_user=names.land_user(self.rng, town.name, land_use, method),
                   price_10k_yuan=round(geodesic_area_m2(geom_ll) * price_per_m2 / 1e4, 2),
                   plot_ratio_min=plot[0], plot_ratio_max=plot[1], tag=tag)
        self.r.supplies.append(s)
        self.supplies[tag] = s
        return s

    def _patch(self, tag, geom_ll, county, kind="construction", class_after="0601", categories=(), **flags) -> Patch:
        p = Patch(county=county, geom=multi(geom_ll), kind=kind, class_after=class_after, tag=tag,
                  temporary=flags.pop("temporary", False), false_change=flags.pop("false_change", False))
        p.expected = {"case": tag, "kind": kind, "categories": sorted(categories), "area_m2": area(geom_ll),
                      "overlaps": flags.pop("overlaps", {}), "note": flags.pop("note", "")}
        p.expected.update(flags)
        self.r.patches.append(p)
        self.patches[tag] = p
        return p

    def _report(self, supply, reported_on, status, **kw):
        self.r.reports.append(DevelopmentReport(supply=supply, reported_on=reported_on, status=status, **kw))

    # --- construction cases in Changchun's 010 ring ---------------------------------------
    def _ring_site(self, tag, w, h, patch_shape, d_range=(1.06, 1.2)):
        """An approval-sized w×h rectangle in the 010 ring and a patch placed by `patch_shape`
        (w None: a patch alone)."""
        rng = self.rng

        def propose():
            x, y = ring_point(rng, self.cc, *d_range)
            return x, y, rng.uniform(0, 180)

        def accept(site):
            x, y, ang = site
            patch_l = patch_shape(x, y, ang)
            rect_l = patch_l if w is None else rotated_rect(x, y, w, h, ang)
            both = shapely.union(rect_l, patch_l)
            if not self._ring_ok(both):
                return None
            rect_ll, patch_ll = to_lonlat(rect_l), to_lonlat(patch_l)
            county = self.w.county_of(to_lonlat(both), 60)
            if county is None:
                return None
            cells = self._force_ok([rect_ll, patch_ll], "0103", False)
            if cells is None:
                return None
            self._take([both], cells, "0103", False)
            return (x, y, ang), rect_l, rect_ll, patch_l, patch_ll, county
        return self._search(propose, accept, tag)

    def plant_construction(self) -> None:
        rng, cc = self.rng, self.cc
        centred = lambda a, b: (lambda x, y, ang: blob(rng, x, y, a, b, ang, 6))

        # legal: approved and supplied; the patch lies inside the first of two supplies
        (x, y, ang), _, a_ll, p_l, p_ll, county = self._ring_site(
            "legal", 440, 320, lambda x, y, ang: blob(rng, *split_rect(x, y, 440, 320, ang, 0.58)[2], 80, 60, ang, 6))
        s1_l, s2_l, _, _ = split_rect(x, y, 440, 320, ang, 0.58)
        a = self._approval("legal", a_ll, county, "province", "conversion_expropriation", date(2025, 4, 18), "0701")
        s1 = self._supply("legal", to_lonlat(s1_l), county, a, "listing", "0701", date(2025, 9, 10), date(2026, 3, 1),
                          date(2028, 9, 1), cc, 3200, (1.2, 2.5))
        s2 = self._supply("legal-school", to_lonlat(s2_l), county, a, "allocation", "0803", date(2025, 11, 5),
                          date(2026, 5, 1), date(2027, 11, 1), cc, 260, (0.6, 1.2))
        self._report(s1, date(2026, 6, 30), "started", actual_start=date(2026, 3, 20), developed_share=35.0,
                     invested_share=40.0)
        self._report(s2, date(2026, 9, 30), "not_started", developed_share=0.0, invested_share=5.0)
        self._patch("legal", p_ll, county, class_after="0701", categories=["legal"],
                    overlaps={"approval_m2": area(shapely.intersection(p_ll, a_ll)),
                              "supply_m2": area(shapely.intersection(p_ll, s1.geom)), "basic_farmland_m2": 0.0},
                    approval=a, supply=s1)

        # unsupplied: approved, no supply at all (批而未供), construction under way
        _, _, a_ll, _, p_ll, county = self._ring_site("unsupplied", 400, 300, centred(80, 60))
        a = self._approval("unsupplied", a_ll, county, "province", "conversion_expropriation", date(2025, 9, 22), "0601")
        self._patch("unsupplied", p_ll, county, class_after="0601", categories=["unsupplied"],
                    overlaps={"approval_m2": area(shapely.intersection(p_ll, a_ll)), "supply_m2": 0.0,
                              "basic_farmland_m2": 0.0}, approval=a)
        self.r.underbalanced[a] = 0.6

        # beyond_extent: the patch straddles the approval's edge; the inside part is supplied
        def straddle(x, y, ang):
            t = np.radians(ang)
            ex, ey = x + np.cos(t) * 190, y + np.sin(t) * 190      # middle of the right-hand edge
            return blob(rng, ex + np.cos(t) * 10, ey + np.sin(t) * 10, 85, 60, ang, 6)
        _, _, a_ll, p_l, p_ll, county = self._ring_site("beyond_extent", 380, 280, straddle)
        a = self._approval("beyond_extent", a_ll, county, "province", "conversion_expropriation", date(2024, 5, 16),
                           "0601")
        s = self._supply("beyond_extent", a_ll, county, a, "listing", "0601", date(2024, 11, 20), date(2025, 5, 1),
                         date(2027, 5, 1), cc, 380, (1.0, 2.0))
        self._report(s, date(2025, 9, 30), "started", actual_start=date(2025, 5, 10), developed_share=20.0,
                     invested_share=25.0)
        self._report(s, date(2026, 6, 30), "started", actual_start=date(2025, 5, 10), developed_share=55.0,
                     invested_share=60.0)
        outside = shapely.difference(p_ll, a_ll)
        inside = shapely.intersection(p_ll, a_ll)
        p = self._patch("beyond_extent", p_ll, county, class_after="0601", categories=["beyond_extent"],
                        overlaps={"approval_m2": area(inside), "uncovered_m2": area(outside),
                                  "supply_m2": area(inside), "basic_farmland_m2": 0.0}, approval=a, supply=s)
        self._case("beyond_extent", outside, county, "satellite", "beyond_extent", s.land_user, "investigating",
                   date(2026, 10, 27), carries=a)

        # unapproved in the allowed zone, plus temporary use and a false change there
        for tag, kw in (("unapproved", dict(class_after="0701", categories=["unapproved"])),
                        ("other_temporary", dict(class_after="1206", categories=["other"], temporary=True,
                                                 note="临时用地: temporary use, not a violation")),
                        ("other_false_change", dict(class_after="0103", categories=["other"], false_change=True,
                                                    note="伪变化: seasonal tone change of the same farmland"))):
            _, _, _, _, p_ll, county = self._ring_site(tag, None, None, centred(75, 55))
            self._patch(tag, p_ll, county, overlaps={"approval_m2": 0.0, "supply_m2": 0.0, "basic_farmland_m2": 0.0},
                        **kw)
        self.r.leads.append(Lead(county=self.patches["unapproved"].county, geom=self.patches["unapproved"].geom,
                                 source="report", categories=["unapproved"], status="verifying",
                                 found_on=date(2026, 9, 15)))

    # --- construction cases beyond the urban development boundary -------------------------
    def _outside_site(self, tag, make, cls, basic, margin_urban=400):
        def accept(site):
            x, y, ang = site
            geoms_l = make(x, y, ang)
            both = shapely.union_all(geoms_l)
            if not self._outside_ok(both, margin_urban):
                return None
            geoms_ll = [to_lonlat(g) for g in geoms_l]
            county = self.w.county_of(to_lonlat(both), 60)
            if county is None:
                return None
            cells = self._force_ok(geoms_ll, cls, basic)
            if cells is None:
                return None
            self._take([both], cells, cls, basic, 200)
            return geoms_l, geoms_ll, county
        return self._search(self._outside_point, accept, tag)

    def plant_outside(self) -> None:
        rng, cc = self.rng, self.cc
        one = lambda a, b: (lambda x, y, ang: [blob(rng, x, y, a, b, ang, 6)])

        # unapproved construction on permanent basic farmland in the 030 zone: three flags
        _, (p_ll,), county = self._outside_site("unapproved_basic_farmland", one(85, 60), "0103", True)
        p = self._patch("unapproved_basic_farmland", p_ll, county, class_after="0601",
                        categories=["basic_farmland", "outside_plan", "unapproved"],
                        overlaps={"approval_m2": 0.0, "basic_farmland_m2": area(p_ll)})
        self._case("unapproved_basic_farmland", p_ll, county, "satellite", "basic_farmland", names.person(rng),
                   "filed", date(2026, 10, 29))

        # a State Council approval (a substation) on basic farmland, supplied by allocation
        def approved(x, y, ang):
            return [rotated_rect(x, y, 360, 260, ang), blob(rng, x, y, 80, 60, ang, 6)]
        (_, _), (a_ll, p_ll), county = self._outside_site("approved_basic_farmland", approved, "0103", True)
        a = self._approval("approved_basic_farmland", a_ll, county, "state_council", "conversion_expropriation",
                           date(2025, 3, 12), "0809")
        s = self._supply("approved_basic_farmland", a_ll, county, a, "allocation", "0809", date(2025, 6, 18),
                         date(2025, 9, 1), date(2026, 12, 31), cc, 150, (0.3, 0.8))
        s.land_user = "国网吉林省电力有限公司"
        self._report(s, date(2026, 6, 30), "started", actual_start=date(2025, 9, 12), developed_share=70.0,
                     invested_share=75.0)
        self._patch("approved_basic_farmland", p_ll, county, class_after="0809",
                    categories=["basic_farmland", "outside_plan"],
                    overlaps={"approval_m2": area(p_ll), "supply_m2": area(p_ll), "basic_farmland_m2": area(p_ll)},
                    approval=a, supply=s, note="State Council approval on basic farmland, in the 030 zone")

        # an approved and supplied factory in the 030 zone, on farmland that is not basic farmland
        (_, _), (a_ll, p_ll), county = self._outside_site("outside_plan", approved, "0103", False)
        a = self._approval("outside_plan", a_ll, county, "province", "conversion_expropriation", date(2025, 1, 15),
                           "0601")
        s = self._supply("outside_plan", a_ll, county, a, "listing", "0601", date(2025, 5, 20), date(2025, 10, 1),
                         date(2027, 10, 1), cc, 320, (1.0, 2.0))
        self._report(s, date(2026, 6, 30), "started", actual_start=date(2025, 10, 8), developed_share=45.0,
                     invested_share=50.0)
        self._patch("outside_plan", p_ll, county, class_after="0601", categories=["outside_plan"],
                    overlaps={"approval_m2": area(p_ll), "supply_m2": area(p_ll), "basic_farmland_m2": 0.0},
                    approval=a, supply=s)

        # greenhouses: facility agricultural land (设施农用地) on ordinary farmland
        _, (p_ll,), county = self._outside_site("other_facility", one(80, 55), "0103", False)
        self._patch("other_facility", p_ll, county, class_after="1202", categories=["other"],
                    overlaps={"approval_m2": 0.0, "basic_farmland_m2": 0.0},
                    note="设施农用地: facility agriculture, not construction")

    def plant_prohibited_zone(self) -> None:
        """Unapproved construction inside the forest park (040 zone), planted first so the
        coarse cells of small scales can still be forest under it."""
        rng = self.rng
        reserve = self.w.local["reserve"]
        footprint = self.w.local["footprint"]
        box = shapely.intersection(reserve, footprint).bounds

        def in_park():
            return rng.uniform(box[0], box[2]), rng.uniform(box[1], box[3]), rng.uniform(0, 180)

        def accept(site):
            p_l = blob(rng, site[0], site[1], 75, 55, site[2], 6)
            if not (self.w.within("reserve", p_l, 200) and self.w.within("footprint", p_l, 200)
                    and self.w.clear_of("linear", p_l, 150) and self.w.occupied.free(p_l.buffer(200))):
                return None
            p_ll = to_lonlat(p_l)
            county = self.w.county_of(p_ll, 60)
            if county is None:
                return None
            # forest under it when the grid allows (reserve cells are never basic farmland anyway)
            cells = self._force_ok([p_ll], "0301", False)
            self._take([p_l], cells, "0301", False)
            return p_ll, county
        p_ll, county = self._search(in_park, accept, "unapproved_prohibited_zone")
        self._patch("unapproved_prohibited_zone", p_ll, county, class_after="0701",
                    categories=["outside_plan", "unapproved"],
                    overlaps={"approval_m2": 0.0, "basic_farmland_m2": 0.0},
                    note="inside the 040 zone (forest park) and outside the urban development boundary")

    # --- mining ---------------------------------------------------------------------------
    def _right_polygon(self, x, y, w, h, prefixed):
        """A GK-axis-aligned rectangle of corners around metric point (x, y); corners, EPSG, lon/lat."""
        lon, lat = to_lonlat(shapely.Point(x, y)).coords[0]
        epsg = gk_epsg(zone_for_longitude(lon), prefixed)
        to_gk, _ = gk_transformers(epsg)
        e, n = to_gk.transform(lon, lat)
        e, n = round(e, 0), round(n, 0)
        ring = [("1", n - h / 2, e - w / 2), ("2", n - h / 2, e + w / 2), ("3", n + h / 2, e + w / 2),
                ("4", n + h / 2, e - w / 2)]
        text = format_corners([ring])
        return text, epsg, corners_to_geometry(text, epsg)

    def plant_mining(self) -> None:
        rng = self.rng
        specs = [  # tag, mineral, valid_from, valid_to, prefixed
            ("mining_valid", "sand_gravel", date(2022, 3, 1), date(2027, 2, 28), False),
            ("mining_beyond_boundary", "limestone", date(2021, 6, 1), date(2031, 5, 31), True),
            ("mining_expired", "limestone", date(2016, 1, 1), date(2025, 12, 31), False),
        ]
        for tag, mineral, valid_from, valid_to, prefixed in specs:
            built = {}

            def make(x, y, ang, prefixed=prefixed, built=built):
                built["right"] = self._right_polygon(x, y, 700, 500, prefixed)
                # the cells around the right too: the beyond-boundary patch reaches out of it
                return [to_local(built["right"][2]).buffer(300)]
            (around_l,), _, county = self._outside_site(tag, make, "0404", False, margin_urban=800)
            self.w.occupied.add(around_l.buffer(1500))     # keep the unlicensed patch well away
            text, epsg, geom_ll = built["right"]
            right = MiningRight(county=county, geom=geom_ll, corners=text, corner_crs=epsg, right_type="mining",
                                holder=names.firm(rng, "长春", "mining"),
                                mine_name=f"长春市{names.place(rng)}{'建筑用砂石矿' if mineral == 'sand_gravel' else '水泥用灰岩矿'}",
                                mineral=mineral, scale="small", acquisition="listing", valid_from=valid_from,
                                valid_to=valid_to, tag=tag)
            self.r.rights.append(right)
            self.rights[tag] = right
        valid, beyond, expired = (self.rights[t] for t in ("mining_valid", "mining_beyond_boundary", "mining_expired"))

        def inside(right):
            r_l = to_local(right.geom)
            c = r_l.centroid
            return to_lonlat(blob(rng, c.x, c.y, 110, 80, 0, 6))
        p_ll = inside(valid)
        self._patch("mining_legal", p_ll, valid.county, kind="mining", class_after="0602", categories=["legal"],
                    overlaps={"own_right_m2": area(p_ll), "outside_right_m2": 0.0}, licence=valid)
        r_l = to_local(beyond.geom)
        x0, y0, x1, y1 = r_l.bounds
        p_l = blob(rng, x1, (y0 + y1) / 2, 120, 80, 0, 6)
        p_ll = to_lonlat(p_l)
        self._patch("mining_beyond_boundary", p_ll, beyond.county, kind="mining", class_after="0602",
                    categories=["beyond_boundary_mining"],
                    overlaps={"own_right_m2": area(shapely.intersection(p_ll, beyond.geom)),
                              "outside_right_m2": area(shapely.difference(p_ll, beyond.geom))}, licence=beyond)
        p_ll = inside(expired)
        self._patch("mining_expired", p_ll, expired.county, kind="mining", class_after="0602",
                    categories=["expired_mining"], overlaps={"own_right_m2": area(p_ll)}, licence=expired,
                    note="inside a right whose licence expired on 2025-12-31")
        self._case("mining_expired", p_ll, expired.county, "satellite", "expired_mining", expired.holder, "decided",
                   date(2026, 10, 25), penalty=35.0, carries=expired)

        def quarry(x, y, ang):
            return [blob(rng, x, y, 100, 75, ang, 6)]
        _, (p_ll,), county = self._outside_site("mining_unlicensed", quarry, "0404", False, margin_urban=800)
        self._patch("mining_unlicensed", p_ll, county, kind="mining", class_after="0602",
                    categories=["unlicensed_mining"], overlaps={"own_right_m2": 0.0, "outside_right_m2": area(p_ll)})
        case = self._case("mining_unlicensed", p_ll, county, "patrol", "unlicensed_mining", names.person(rng),
                          "closed", date(2026, 10, 22), closed_on=date(2026, 10, 30), penalty=12.5)
        self.r.leads.append(Lead(county=county, geom=multi(p_ll), source="patrol", categories=["unlicensed_mining"],
                                 status="confirmed", found_on=date(2026, 10, 21), case=case))

    def _case(self, tag, geom_ll, county, source, violation, party, status, filed_on, closed_on=None,
              penalty=None, carries=None) -> Case:
        c = Case(county=county, geom=multi(geom_ll), source=source, violation_type=violation, party=party,
                 status=status, filed_on=filed_on, closed_on=closed_on, penalty_10k_yuan=penalty, carries=carries,
                 tag=tag)
        self.r.cases.append(c)
        self.cases[tag] = c
        return c

    # --- supply cases at other seats: idle land, 协议出让 of commercial land, no approval ----
    def _town_site(self, town: Town, w, h, tag, d_range=(1.05, 1.28)):
        rng = self.rng

        def propose():
            x, y = ring_point(rng, town, *d_range)
            return x, y, rng.uniform(0, 180)

        def accept(site):
            rect_l = rotated_rect(site[0], site[1], w, h, site[2])
            if not self._ring_ok(rect_l, footprint=False) or not self.w.clear_of("footprint", rect_l, 500):
                return None
            rect_ll = to_lonlat(rect_l)
            county = self.w.county_of(rect_ll, 60)
            if county is None:
                return None
            self.w.occupied.add(rect_l.buffer(150))
            return rect_ll, county
        return self._search(propose, accept, tag)

    def plant_supply_cases(self) -> None:
        idle = [  # tag, town, colour, rule, approved, signed, agreed start, reports
            ("idle_yellow_not_started", "吉林", "yellow", "not_started", date(2023, 12, 8), date(2024, 3, 15),
             date(2025, 6, 15), [(date(2026, 9, 30), "not_started", {})]),
            ("idle_red_not_started", "四平", "red", "not_started", date(2022, 10, 10), date(2023, 2, 20),
             date(2024, 8, 1), [(date(2025, 9, 30), "not_started", {}), (date(2026, 9, 30), "not_started", {})]),
            ("idle_yellow_halted", "松原", "yellow", "halted", date(2023, 3, 1), date(2023, 7, 10), date(2024, 3, 1),
             [(date(2024, 6, 30), "started", dict(actual_start=date(2024, 4, 10), developed_share=10.0,
                                                  invested_share=12.0)),
              (date(2025, 12, 31), "halted", dict(actual_start=date(2024, 4, 10), developed_share=20.0,
                                                  invested_share=15.0, halted_since=date(2025, 8, 20)))]),
            ("idle_red_halted", "延吉", "red", "halted", date(2021, 9, 1), date(2022, 1, 15), date(2022, 9, 1),
             [(date(2023, 6, 30), "started", dict(actual_start=date(2022, 10, 15), developed_share=15.0,
                                                  invested_share=10.0)),
              (date(2024, 12, 31), "halted", dict(actual_start=date(2022, 10, 15), developed_share=25.0,
                                                  invested_share=18.0, halted_since=date(2024, 7, 1))),
              (date(2026, 6, 30), "halted", dict(actual_start=date(2022, 10, 15), developed_share=25.0,
                                                 invested_share=18.0, halted_since=date(2024, 7, 1)))]),
        ]
        for tag, town_name, colour, rule, approved, signed, start, reports in idle:
            town = self.w.town(town_name)
            a_ll, county = self._town_site(town, 360, 260, tag)
            use = "0701" if "not_started" in rule else "0601"
            a = self._approval(tag, a_ll, county, "province", "conversion_expropriation", approved, use)
            s = self._supply(tag, a_ll, county, a, "listing" if use == "0601" else "auction", use, signed, start,
                             date(start.year + 2, start.month, start.day), town, 1800 if use == "0701" else 300,
                             (1.5, 2.5) if use == "0701" else (1.0, 1.8))
            for reported_on, status, kw in reports:
                self._report(s, reported_on, status, **kw)
            self.idle.append((s, colour, rule))

        # commercial land sold by agreement (协议出让): must be 招拍挂, a red alert
        town = self.w.town("通化")
        a_ll, county = self._town_site(town, 300, 220, "agreement_commercial")
        a = self._approval("agreement_commercial", a_ll, county, "province", "conversion_expropriation",
                           date(2024, 8, 20), "0501")
        s = self._supply("agreement_commercial", a_ll, county, a, "agreement", "0501", date(2025, 1, 10),
                         date(2025, 7, 1), date(2027, 7, 1), town, 900, (1.5, 3.0))
        self._report(s, date(2026, 6, 30), "started", actual_start=date(2025, 7, 15), developed_share=40.0,
                     invested_share=45.0)
        self.red_agreement.append(s)

        # supply on existing construction land with no approval (未批先供 when it needed one)
        for k, (town_name, use, method) in enumerate((("吉林", "0505", "auction"), ("四平", "0601", "listing"),
                                                      ("白城", "0701", "auction"))):
            town = self.w.town(town_name)
            s_ll, county = self._town_site(town, 160, 120, f"without_approval_{k}", d_range=(0.3, 0.75))
            s = self._supply(f"without_approval_{k}", s_ll, county, None, method, use, date(2025, 8 + k, 12),
                             date(2026, 3 + k, 1), date(2028, 3 + k, 1), town, 1500 if use != "0601" else 300)
            self._report(s, date(2026, 9, 30), "started" if k else "not_started",
                         **(dict(actual_start=date(2026, 4, 2), developed_share=30.0, invested_share=35.0) if k
                            else dict(developed_share=0.0, invested_share=10.0)))
            self.without_approval.append(s)

    def plant_all(self) -> None:
        self.plant_prohibited_zone()
        self.plant_construction()
        self.plant_outside()
        self.plant_mining()
        self.plant_supply_cases()
