"""Geological hazard points in the mountains, and two disasters with their reports.

The reports follow the national natural disaster relief plan: 初报 within 2 hours at each
level; 续报 every day while the disaster is unstable (county by 09:00, city by 10:00,
province by 12:00, covering to 24:00 the day before); 核报 within 2 / 3 / 5 working days
(county / city / province) after it stabilises. One city 续报 of the flood is planted late.
Working days skip weekends only (public holidays are not modelled).
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import numpy as np
import shapely

from etl.demo import names
from etl.demo.boundaries import PREFECTURE_SEATS, PROVINCE_SEAT
from etl.demo.business import choose, random_date
from etl.demo.geo import to_lonlat_xy
from etl.demo.landscape import Landscape
from etl.demo.records import DemoRecords, DisasterEvent, DisasterReport, HazardPoint
from etl.demo.sites import World

CST = timezone(timedelta(hours=8))
HAZARD_ZH = {"landslide": "滑坡", "rockfall": "崩塌", "debris_flow": "泥石流", "collapse": "地面塌陷",
             "ground_fissure": "地裂缝"}
RISK_PEOPLE = {"small": (5, 99), "medium": (100, 499), "large": (500, 999), "extra_large": (1000, 3000)}
# Plan start (一级响应 thresholds of the national plan): deaths, relocated, houses collapsed.
PLAN_THRESHOLDS = {"deaths": 30, "relocated": 100_000, "houses_collapsed": 10_000}
QUAKE_THRESHOLDS = {"magnitude": 5.0, "deaths": 20, "relocated": 100_000, "houses_collapsed_or_badly_damaged": 10_000}


def hazard_points(world: World, records: DemoRecords, rng: np.random.Generator, scale: float) -> None:
    ls: Landscape = world.ls
    x0, y0, x1, y1 = world.local["province"].bounds
    wanted = max(10, int(round(300 * scale)))
    serial: dict[str, int] = {}
    tries = 0
    while len(records.hazards) < wanted and tries < 200 * wanted:
        tries += 1
        lon, lat = (float(v) for v in to_lonlat_xy(rng.uniform(x0, x1), rng.uniform(y0, y1)))
        steep = ls.mountain_index(np.array([lon]), np.array([lat]))[0] + 0.3 * ls.noise["terrain"](lon, lat)
        if steep < 0.5:
            continue
        county = world.county_at(lon, lat)
        if county is None:
            continue
        kind = choose(rng, [("landslide", .38), ("rockfall", .3), ("debris_flow", .2), ("collapse", .07),
                            ("ground_fissure", .05)])
        risk = choose(rng, [("small", .7), ("medium", .22), ("large", .07), ("extra_large", .01)])
        people = int(rng.integers(*RISK_PEOPLE[risk]))
        serial[county] = serial.get(county, 0) + 1
        records.hazards.append(HazardPoint(
            county=county, point=shapely.Point(round(lon, 6), round(lat, 6)),
            hazard_no=f"{county}{serial[county]:05d}",
            name=f"{names.short(world.county_names[county])}{names.place(rng)}村{HAZARD_ZH[kind]}",
            hazard_type=kind, risk_level=risk, threatened_people=people,
            threatened_property_10k_yuan=round(people * rng.uniform(2, 12), 1),
            monitor_name=names.person(rng), monitor_phone=names.phone(rng),
            surveyed_on=random_date(rng, date(2020, 5, 1), date(2026, 9, 30))))


def add_working_days(day: date, n: int) -> date:
    while n > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            n -= 1
    return day


def _at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=CST)


def disasters(world: World, records: DemoRecords) -> None:
    regions = {c.code: c for c in world.ls.counties}
    seats = {t.code: (t.lon, t.lat) for t in world.ls.towns}

    def seat(code: str) -> shapely.Point:
        if code == "220000":
            return shapely.Point(*PROVINCE_SEAT)
        if code.endswith("00"):
            return shapely.Point(*PREFECTURE_SEATS[code])
        lon, lat = seats.get(code) or regions[code].seat
        return shapely.Point(lon, lat)

    events = [
        dict(event_no="ZH2026073001", name="2026年7月30日舒兰市、蛟河市暴雨洪涝灾害", kind="flood", magnitude=None,
             started=_at(date(2026, 7, 30), 20), stabilised=_at(date(2026, 8, 4), 18), region="220283",
             point=shapely.Point(126.95, 44.38), city="220200", counties={"220283": 0.65, "220281": 0.35},
             final=dict(deaths=12, missing=3, relocated=108_000, houses_collapsed=2_300, houses_damaged=15_600,
                        direct_loss_10k_yuan=352_000.0),
             late=("daily", "city", 3)),
        dict(event_no="ZH2026051801", name="2026年5月18日松原市宁江区5.0级地震", kind="earthquake", magnitude=5.0,
             started=_at(date(2026, 5, 18), 13, 12), stabilised=_at(date(2026, 5, 20), 12), region="220702",
             point=shapely.Point(124.71, 45.27), city="220700", counties={"220702": 1.0},
             final=dict(deaths=0, missing=0, relocated=8_600, houses_collapsed=310, houses_damaged=6_800,
                        direct_loss_10k_yuan=41_000.0),
             late=None),
    ]
    for spec in events:
        f = spec["final"]
        if spec["kind"] == "earthquake":
            started = spec["magnitude"] >= QUAKE_THRESHOLDS["magnitude"] and (
                f["deaths"] >= QUAKE_THRESHOLDS["deaths"] or f["relocated"] >= QUAKE_THRESHOLDS["relocated"]
                or f["houses_collapsed"] + f["houses_damaged"] >= QUAKE_THRESHOLDS["houses_collapsed_or_badly_damaged"])
        else:
            started = any(f[k] >= v for k, v in PLAN_THRESHOLDS.items())
        event = DisasterEvent(event_no=spec["event_no"], name=spec["name"], kind=spec["kind"],
                              magnitude=spec["magnitude"], started_at=spec["started"],
                              stabilised_at=spec["stabilised"], region_code=spec["region"], point=spec["point"],
                              expected={"plan_started": started, "final_province_report": f, "late_reports": []})
        records.events.append(event)
        _reports(event, spec, seat, records)


def _reports(event: DisasterEvent, spec: dict, seat, records: DemoRecords) -> None:
    f = spec["final"]
    levels = [("county", code, share) for code, share in spec["counties"].items()]
    levels += [("city", spec["city"], 1.0), ("province", "220000", 1.0)]
    start, stable = event.started_at, event.stabilised_at
    days_unstable = (stable.date() - start.date()).days
    seq: dict[str, int] = {}

    def add(kind, level, region, reported_at, covers_until, fraction, share):
        seq[region] = seq.get(region, 0) + 1
        counts = {k: int(round(v * share * fraction)) for k, v in f.items() if k != "direct_loss_10k_yuan"}
        records.disaster_reports.append(DisasterReport(
            event=event, report_no=f"{event.event_no}-{region}-{seq[region]:02d}", kind=kind, level=level,
            region_code=region, reported_at=reported_at, covers_until=covers_until,
            direct_loss_10k_yuan=round(f["direct_loss_10k_yuan"] * share * fraction, 1), point=seat(region),
            **counts))
        return records.disaster_reports[-1]

    offsets = {"county": timedelta(hours=1, minutes=5), "city": timedelta(hours=2, minutes=40),
               "province": timedelta(hours=4, minutes=20)}
    for level, region, share in levels:
        add("initial", level, region, start + offsets[level], start + offsets[level] - timedelta(minutes=20), 0.25,
            share)
    deadline = {"county": (8, 30), "city": (9, 40), "province": (11, 30)}
    for d in range(1, days_unstable + 1):
        day = start.date() + timedelta(days=d)
        fraction = 0.25 + 0.65 * d / days_unstable
        for level, region, share in levels:
            hh, mm = deadline[level]
            report = add("daily", level, region, _at(day, hh, mm), _at(day, 0), fraction, share)
            if spec["late"] == ("daily", level, d):
                report.reported_at = _at(day, 10, 25)        # due by 10:00
                event.expected["late_reports"].append(report.report_no)
    working = {"county": 2, "city": 3, "province": 5}
    for level, region, share in levels:
        add("verified", level, region, _at(add_working_days(stable.date(), working[level]), 16), stable, 1.0, share)
