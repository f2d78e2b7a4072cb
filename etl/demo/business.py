"""Background records of the land cycle: approvals around the seats, the supply cut from
them, development reports, consolidation projects, cases, leads and ordinary change
patches. Placed clear of every planted case so the planted answers stay exact."""
from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import shapely

from etl.demo import names
from etl.demo.cases import REFERENCE_DATE, multi, ring_point
from etl.demo.geo import blob, rotated_rect, to_local, to_lonlat
from etl.demo.landscape import Town
from etl.demo.records import (Approval, Balance, Case, DemoRecords, DevelopmentReport, Lead, MiningRight, Patch,
                              Project, Supply)
from etl.demo.sites import Occupancy, World
from services.areas import geodesic_area_m2

PLANNED_USES = [("0701", .30), ("0601", .28), ("0501", .06), ("0505", .04), ("0504", .03), ("0803", .05),
                ("0805", .03), ("0809", .04), ("0810", .03), ("1004", .08), ("0604", .06)]
CASE_SOURCES = [("satellite", .45), ("patrol", .25), ("report", .2), ("petition", .1)]
CASE_STATUSES = [("filed", .2), ("investigating", .25), ("decided", .2), ("closed", .35)]


def choose(rng: np.random.Generator, table):
    p = np.array([w for _, w in table], dtype=float)
    return table[int(rng.choice(len(table), p=p / p.sum()))][0]


def days(rng: np.random.Generator, lo: int, hi: int) -> timedelta:
    return timedelta(days=int(rng.integers(lo, hi + 1)))


def random_date(rng: np.random.Generator, start: date, end: date) -> date:
    return start + timedelta(days=int(rng.integers(0, (end - start).days + 1)))


def supply_method(rng, use: str) -> str:
    if use[:2] in {"08", "10"}:
        return "allocation"
    if use[:2] in {"05", "07"}:
        return choose(rng, [("listing", .6), ("auction", .3), ("tender", .1)])
    return choose(rng, [("listing", .9), ("tender", .1)])


def price_per_m2(rng, use: str, town: Town) -> float:
    tier = 2.0 if town.prefecture else 1.0
    if use[:2] == "07":
        return rng.uniform(900, 2200) * tier
    if use[:2] == "05":
        return rng.uniform(1100, 2600) * tier
    if use[:2] in {"08", "10"}:
        return rng.uniform(80, 300)
    return rng.uniform(220, 460)


def plot_ratio(rng, use: str) -> tuple[float, float]:
    if use[:2] == "07":
        lo = round(rng.uniform(1.0, 1.8), 1)
        return lo, round(lo + rng.uniform(0.8, 1.5), 1)
    if use[:2] == "05":
        lo = round(rng.uniform(1.2, 2.5), 1)
        return lo, round(lo + rng.uniform(1.0, 2.0), 1)
    if use[:2] == "06":
        lo = round(rng.uniform(0.8, 1.2), 1)
        return lo, round(lo + rng.uniform(0.5, 1.0), 1)
    return round(rng.uniform(0.3, 0.8), 1), round(rng.uniform(1.0, 1.8), 1)


class Background:
    def __init__(self, world: World, records: DemoRecords, rng: np.random.Generator, scale: float):
        self.w, self.r, self.rng, self.scale = world, records, rng, scale
        self.cc = world.town("长春")
        self.others = [t for t in world.ls.towns if t.name != "长春"]
        weights = np.array([3.0 if t.prefecture else 1.0 for t in self.others])
        self.town_p = weights / weights.sum()
        self.town_of: dict[int, Town] = {}            # id(record) -> town
        self.patch_space = Occupancy()

    def n(self, per_scale_1: float, minimum: int) -> int:
        return max(minimum, int(round(per_scale_1 * self.scale)))

    # --- approvals and supply ---------------------------------------------------------------
    def _place_near(self, town: Town, w: float, h: float, d_range, in_footprint: bool, zone="zone010_020",
                    tries: int = 300):
        rng, world = self.rng, self.w
        for _ in range(tries):
            x, y = ring_point(rng, town, *d_range)
            ang = rng.uniform(0, 180)
            rect_l = rotated_rect(x, y, w, h, ang)
            if not world.within(zone, rect_l, 30) or not world.clear_of("reserve", rect_l, 100):
                continue
            if not world.clear_of("linear", rect_l, 60) or not world.occupied.free(rect_l.buffer(60)):
                continue
            if in_footprint and not world.within("footprint", rect_l, 300):
                continue
            if not in_footprint and not world.clear_of("footprint", rect_l, 300):
                continue
            rect_ll = to_lonlat(rect_l)
            county = world.county_of(rect_ll, 20)
            if county is None:
                continue
            world.occupied.add(rect_l.buffer(60))
            return (x, y, ang), rect_l, rect_ll, county
        return None

    def approvals(self) -> None:
        rng = self.rng
        jobs = [(self.cc, True)] * self.n(60, 2)
        jobs += [(self.others[int(i)], False) for i in rng.choice(len(self.others), self.n(240, 6), p=self.town_p)]
        for town, in_fp in jobs:
            big = 1.4 if town.prefecture else 1.0
            w, h = rng.uniform(180, 560) * big, rng.uniform(150, 420) * big
            placed = self._place_near(town, w, h, (0.95, 1.6), in_fp)
            if placed is None:
                continue
            (x, y, ang), rect_l, rect_ll, county = placed
            use = choose(rng, PLANNED_USES)
            authority = "state_council" if (town.prefecture and rng.random() < 0.4) or rng.random() < 0.1 \
                else "province"
            kind = choose(rng, [("conversion_expropriation", .7), ("conversion", .2), ("expropriation", .1)])
            a = Approval(county=county, geom=multi(rect_ll), authority=authority, kind=kind,
                         approved_on=random_date(rng, date(2019, 1, 1), date(2026, 8, 31)), planned_use=use)
            self.r.approvals.append(a)
            self.town_of[id(a)] = town
            self._supplies(a, town, x, y, w, h, ang)

    def _supplies(self, a: Approval, town: Town, x, y, w, h, ang) -> None:
        rng = self.rng
        signed = a.approved_on + days(rng, 60, 540)
        if signed > REFERENCE_DATE - timedelta(days=20) or rng.random() < 0.12:
            return                                        # approved, not (yet) supplied
        k = int(choose(rng, [(1, .55), (2, .3), (3, .15)]))
        cover = 1.0 if rng.random() < 0.6 else rng.uniform(0.6, 0.9)
        cuts = {1: [], 2: [rng.uniform(0.35, 0.65)], 3: [rng.uniform(0.25, 0.38), rng.uniform(0.6, 0.75)]}[k]
        edges = np.concatenate([[0.0], cuts, [1.0]]) * cover
        ux, uy = np.cos(np.radians(ang)), np.sin(np.radians(ang))
        pieces = []
        for lo, hi in zip(edges[:-1], edges[1:]):
            offset = -w / 2 + w * (lo + hi) / 2
            pieces.append(rotated_rect(x + ux * offset, y + uy * offset, w * (hi - lo), h, ang))
        for i, piece in enumerate(pieces):
            use = a.planned_use if i == 0 or rng.random() < 0.6 else choose(rng, PLANNED_USES)
            method = supply_method(rng, use)
            signed_i = min(signed + days(rng, 0, 200 * i), REFERENCE_DATE - timedelta(days=10))
            start = signed_i + days(rng, 90, 300)
            piece_ll = to_lonlat(piece)
            s = Supply(county=a.county, geom=multi(piece_ll), approval=a, method=method, land_use=use,
                       signed_on=signed_i, agreed_start=start, agreed_completion=start + days(rng, 540, 1095),
                       land_user=names.land_user(rng, town.name, use, method),
                       price_10k_yuan=round(geodesic_area_m2(piece_ll) * price_per_m2(rng, use, town) / 1e4, 2),
                       plot_ratio_min=0, plot_ratio_max=0)
            s.plot_ratio_min, s.plot_ratio_max = plot_ratio(rng, use)
            self.r.supplies.append(s)
            self.town_of[id(s)] = town
            self._reports(s)

    def _reports(self, s: Supply) -> None:
        """Reports that never make the supply idle: started near the agreed date and progressing."""
        rng = self.rng
        cutoff = REFERENCE_DATE - timedelta(days=15)
        actual = s.agreed_start + days(rng, -45, 100)
        if actual > cutoff:   # not started, but the agreed start is at most ~5 months past
            reported = min(cutoff, s.signed_on + days(rng, 60, 150))
            self.r.reports.append(DevelopmentReport(s, reported, "not_started", developed_share=0.0,
                                                    invested_share=round(rng.uniform(0, 15), 1)))
            return
        finish = s.agreed_completion + days(rng, -60, 120)
        duration = max(1, (finish - actual).days)
        dates = [min(actual + days(rng, 30, 90), cutoff)]
        while True:
            nxt = dates[-1] + days(rng, 300, 400)
            if nxt >= min(finish, cutoff):
                break
            dates.append(nxt)
        for i, reported in enumerate(dates):
            developed = min(99.0, 100.0 * (reported - actual).days / duration)
            developed = max(developed, 40.0 if i == len(dates) - 1 else 5.0)
            self.r.reports.append(DevelopmentReport(
                s, reported, "started", actual_start=actual, developed_share=round(developed, 1),
                invested_share=round(min(99.0, developed + rng.uniform(0, 10)), 1)))
        if finish <= cutoff:
            self.r.reports.append(DevelopmentReport(
                s, min(finish + days(rng, 5, 14), cutoff), "completed", actual_start=actual,
                actual_completion=finish, developed_share=100.0, invested_share=100.0))

    def supplies_without_approval(self) -> None:
        rng = self.rng
        for _ in range(int(round(4 * self.scale))):
            town = self.others[int(rng.choice(len(self.others), p=self.town_p))]
            placed = self._place_near(town, rng.uniform(100, 200), rng.uniform(80, 160), (0.3, 0.8), False,
                                      zone="zone010")
            if placed is None:
                continue
            _, _, rect_ll, county = placed
            use = choose(rng, [("0701", .4), ("0505", .3), ("0601", .3)])
            method = supply_method(rng, use)
            signed = random_date(rng, date(2024, 1, 1), date(2026, 6, 30))
            start = signed + days(rng, 90, 240)
            s = Supply(county=county, geom=multi(rect_ll), approval=None, method=method, land_use=use,
                       signed_on=signed, agreed_start=start, agreed_completion=start + days(rng, 540, 900),
                       land_user=names.land_user(rng, town.name, use, method),
                       price_10k_yuan=round(geodesic_area_m2(rect_ll) * price_per_m2(rng, use, town) / 1e4, 2),
                       plot_ratio_min=0, plot_ratio_max=0)
            s.plot_ratio_min, s.plot_ratio_max = plot_ratio(rng, use)
            self.r.supplies.append(s)
            self._reports(s)

    # --- 补: consolidation projects ---------------------------------------------------------
    def projects(self) -> None:
        rng, world = self.rng, self.w
        x0, y0, x1, y1 = world.local["province"].bounds
        wanted, tries = self.n(40, 4), 0
        while sum(1 for _ in self.r.projects) < wanted and tries < 20000:
            tries += 1
            x, y = rng.uniform(x0, x1), rng.uniform(y0, y1)
            lon, lat = to_lonlat(shapely.Point(x, y)).coords[0]
            if world.ls.mountain_index(np.array([lon]), np.array([lat]))[0] > 0.3:
                continue
            rect_l = rotated_rect(x, y, rng.uniform(1200, 3000), rng.uniform(800, 2000), rng.uniform(0, 180))
            if not (world.clear_of("urban", rect_l, 1000) and world.clear_of("reserve", rect_l, 300)
                    and world.clear_of("footprint", rect_l, 2000) and world.occupied.free(rect_l.buffer(300))):
                continue
            rect_ll = to_lonlat(rect_l)
            county = world.county_of(rect_ll, 100)
            if county is None:
                continue
            world.occupied.add(rect_l.buffer(300))
            west = world.ls.west_index(np.array([lon]), np.array([lat]))[0] > 0.4
            p = Project(county=county, geom=multi(rect_ll),
                        name=f"{names.short(world.county_names[county])}{names.place(rng)}"
                             f"{'盐碱地改良' if west else '土地整治'}补充耕地项目",
                        new_farmland_ratio=round(rng.uniform(0.55, 0.85), 3),
                        farmland_grade=str(int(rng.integers(10, 14) if west else rng.integers(6, 11))),
                        accepted_on=random_date(rng, date(2018, 3, 1), date(2025, 12, 31)))
            self.r.projects.append(p)

    # --- 查: background cases and leads -----------------------------------------------------
    def _fringe_blob(self, size=(60, 200)):
        rng, world = self.rng, self.w
        for _ in range(300):
            town = self.others[int(rng.choice(len(self.others), p=self.town_p))]
            x, y = ring_point(rng, town, 1.0, 2.4)
            a = rng.uniform(*size)
            geom_l = blob(rng, x, y, a, a * rng.uniform(0.5, 0.9), rng.uniform(0, 180), int(rng.integers(5, 8)))
            if not world.clear_of("footprint", geom_l, 500) or not world.occupied.free(geom_l):
                continue
            geom_ll = to_lonlat(geom_l)
            county = world.county_of(geom_ll)
            if county is not None:
                return geom_ll, county
        return None

    def cases_and_leads(self) -> None:
        rng = self.rng
        outside_fp = [a for a in self.r.approvals if a.tag is None and id(a) in self.town_of
                      and self.town_of[id(a)] is not self.cc]
        rights = [m for m in self.r.rights if m.tag is None]
        for _ in range(self.n(60, 5)):
            roll = rng.random()
            carries, violation = None, None
            if roll < 0.3 and outside_fp:
                carries = outside_fp[int(rng.integers(len(outside_fp)))]
                geom_l = to_local(carries.geom)
                c = geom_l.centroid
                x0, y0, x1, y1 = geom_l.bounds
                violation = choose(rng, [("unsupplied", .5), ("beyond_extent", .5)])
                r = min(x1 - x0, y1 - y0) * 0.3
                centre = (x1, c.y) if violation == "beyond_extent" else (c.x, c.y)
                geom_ll = to_lonlat(blob(rng, *centre, r, r * 0.7, 0, 6))
                if violation == "beyond_extent":
                    geom_ll = shapely.difference(geom_ll, carries.geom)
                county = carries.county
            elif roll < 0.4 and rights:
                carries = rights[int(rng.integers(len(rights)))]
                geom_l = to_local(carries.geom)
                x0, y0, x1, y1 = geom_l.bounds
                geom_ll = shapely.difference(to_lonlat(blob(rng, x1, (y0 + y1) / 2, 150, 100, 0, 6)), carries.geom)
                violation = "beyond_boundary_mining"
                county = carries.county
                if self.w.county_of(geom_ll) != county:
                    continue
            else:
                placed = self._fringe_blob()
                if placed is None:
                    continue
                geom_ll, county = placed
                violation = choose(rng, [("unapproved", .5), ("basic_farmland", .15), ("outside_plan", .15),
                                         ("other", .1), ("unsupplied", .1)])
            status = choose(rng, CASE_STATUSES)
            filed = random_date(rng, date(2021, 3, 1), date(2026, 10, 20))
            closed = None
            if status == "closed":
                closed = min(filed + days(rng, 60, 400), REFERENCE_DATE - timedelta(days=1))
            penalty = round(geodesic_area_m2(geom_ll) * rng.uniform(10, 30) / 1e4, 2) \
                if status in ("decided", "closed") else None
            party = names.person(rng) if rng.random() < 0.5 else names.firm(rng, "吉林", "0601")
            if isinstance(carries, Approval):
                party = next((s.land_user for s in self.r.supplies if s.approval is carries), party)
            elif isinstance(carries, MiningRight):
                party = carries.holder
            self.r.cases.append(Case(county=county, geom=multi(geom_ll), source=choose(rng, CASE_SOURCES),
                                     violation_type=violation, party=party, status=status, filed_on=filed,
                                     closed_on=closed, penalty_10k_yuan=penalty, carries=carries))
        background_cases = [c for c in self.r.cases if c.tag is None and c.violation_type in
                            ("unapproved", "basic_farmland", "outside_plan")]
        for _ in range(self.n(40, 4)):
            if background_cases and rng.random() < 0.3:
                case = background_cases[int(rng.integers(len(background_cases)))]
                self.r.leads.append(Lead(county=case.county, geom=case.geom, source=choose(
                    rng, [("patrol", .6), ("report", .4)]), categories=[case.violation_type], status="confirmed",
                    found_on=case.filed_on - days(rng, 5, 60), case=case))
                continue
            placed = self._fringe_blob((40, 150))
            if placed is None:
                continue
            geom_ll, county = placed
            categories = choose(rng, [(("unapproved",), .5), (("unapproved", "basic_farmland"), .2),
                                      (("outside_plan",), .15), (("other",), .15)])
            self.r.leads.append(Lead(county=county, geom=multi(geom_ll), source=choose(rng, [("patrol", .55),
                                                                                               ("report", .45)]),
                                     categories=sorted(categories),
                                     status=choose(rng, [("new", .35), ("verifying", .3), ("dismissed", .35)]),
                                     found_on=random_date(rng, date(2025, 1, 1), date(2026, 10, 30))))

    # --- ordinary change patches in the footprint --------------------------------------------
    def patches(self, planted: int) -> None:
        rng, world = self.rng, self.w
        total = max(0, int(round(200 * self.scale)) - planted)
        if total == 0:
            return
        hosts = [s for s in self.r.supplies if s.tag is None and s.approval is not None
                 and self.town_of.get(id(s)) is self.cc and s.signed_on <= date(2026, 9, 1)]
        quarries = [m for m in self.r.rights if m.tag is None and world.local["footprint"].contains(to_local(m.geom))]
        placed = attempts = 0
        while placed < total and attempts < 20 * total:
            attempts += 1
            k = int(rng.choice(4, p=[0.85, 0.08, 0.04, 0.03]))
            if k == 0 and hosts:
                s = hosts[int(rng.integers(len(hosts)))]
                placed += self._patch_inside(s.geom, s.county, "construction", s.land_use)
            elif k == 3 and quarries:
                m = quarries[int(rng.integers(len(quarries)))]
                placed += self._patch_inside(m.geom, m.county, "mining", "0602")
            elif k in (1, 2):
                placed += self._patch_free(k)

    def _patch_inside(self, host_ll, county, kind, class_after) -> bool:
        """A patch well inside the host (a supply, or a quarry's right), clear of other patches."""
        rng = self.rng
        inner = to_local(host_ll).buffer(-25)
        if inner.is_empty:
            return False
        x0, y0, x1, y1 = inner.bounds
        size = float(np.clip(np.sqrt(inner.area) / 3, 20, 90))
        for _ in range(40):
            x, y = rng.uniform(x0, x1), rng.uniform(y0, y1)
            if not inner.contains(shapely.Point(x, y)):
                continue
            geom_l = blob(rng, x, y, size, size * rng.uniform(0.6, 0.9), rng.uniform(0, 180), int(rng.integers(5, 8)))
            if inner.contains(geom_l) and self.patch_space.free(geom_l.buffer(10)):
                self.patch_space.add(geom_l)
                self.r.patches.append(Patch(county=county, geom=multi(to_lonlat(geom_l)), kind=kind,
                                            class_after=class_after))
                return True
            size = max(15.0, size * 0.85)
        return False

    def _patch_free(self, k: int) -> bool:
        rng, world = self.rng, self.w
        for _ in range(200):
            if k == 1:     # unapproved construction in the ring
                x, y = ring_point(rng, self.cc, 1.0, 1.6)
            else:          # greenhouses out in the farmland
                x0, y0, x1, y1 = world.local["footprint"].bounds
                x, y = rng.uniform(x0, x1), rng.uniform(y0, y1)
            geom_l = blob(rng, x, y, rng.uniform(40, 90), rng.uniform(30, 60), rng.uniform(0, 180), 6)
            if not world.within("footprint", geom_l, 50) or not world.occupied.free(geom_l.buffer(30)):
                continue
            if k == 1 and not world.within("zone010_020", geom_l, 30):
                continue
            if k != 1 and not world.clear_of("urban", geom_l, 200):
                continue
            if not world.clear_of("reserve", geom_l, 100):
                continue
            geom_ll = to_lonlat(geom_l)
            county = world.county_of(geom_ll)
            if county is None:
                continue
            world.occupied.add(geom_l.buffer(30))
            self.r.patches.append(Patch(county=county, geom=multi(geom_ll), kind="construction",
                                        class_after=choose(rng, [("0701", .4), ("0601", .4), ("0702", .2)])
                                        if k == 1 else "1202"))
            return True
        return False


def allocate_balances(records: DemoRecords, farmland: dict[Approval, float], capacity: dict[Project, float]) -> None:
    """占补平衡: each approval's farmland take is balanced by projects accepted before it
    (先补后占), from the same prefecture first; planted shortfalls stay short."""
    left = dict(capacity)
    for a in records.approvals:
        need = farmland.get(a, 0.0) * records.underbalanced.get(a, 1.0)
        if need <= 0:
            continue
        ranked = sorted((p for p in records.projects if p.accepted_on <= a.approved_on and left[p] > 1.0),
                        key=lambda p: (p.county[:4] != a.county[:4], p.accepted_on, p.project_no))
        for p in ranked[:3]:
            take = round(min(need, left[p]), 2)
            if take <= 0:
                break
            records.balances.append(Balance(project=p, approval=a, area_m2=take))
            left[p] -= take
            need -= take
            if need <= 0.01:
                break
