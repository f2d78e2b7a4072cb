"""Background mining and exploration rights (boundaries as Gauss-Krüger corner tables) and
the mines' annual reports with the three rates (三率)."""
from __future__ import annotations

from datetime import date

import numpy as np
import shapely

from etl.demo import names
from etl.demo.business import choose, random_date
from etl.demo.cases import REFERENCE_DATE
from etl.corners import corners_to_geometry, format_corners, gk_epsg, gk_transformers, zone_for_longitude
from etl.demo.geo import to_local, to_lonlat_xy
from etl.demo.records import DemoRecords, MineReport, MiningRight
from etl.demo.sites import World

# mineral, lon, lat, spread (km), weight: the real mining districts, roughly
HOTSPOTS = [
    ("gold", 127.55, 42.85, 25, 3), ("gold", 130.25, 42.95, 25, 2), ("gold", 129.0, 42.6, 20, 1),
    ("copper", 126.1, 43.0, 20, 1), ("copper", 126.4, 42.05, 20, 1), ("nickel", 126.35, 43.05, 12, 1),
    ("molybdenum", 126.65, 43.35, 20, 2), ("molybdenum", 127.9, 43.6, 20, 1),
    ("iron", 126.9, 41.9, 20, 2), ("iron", 125.9, 41.9, 20, 1),
    ("coal", 126.9, 44.35, 20, 2), ("coal", 127.3, 43.75, 15, 2), ("coal", 130.3, 42.9, 15, 2),
    ("coal", 125.15, 42.9, 12, 2), ("coal", 126.45, 41.98, 12, 1),
    ("oil_shale", 126.75, 42.95, 15, 2), ("oil_shale", 125.3, 44.35, 20, 2), ("oil_shale", 130.0, 43.35, 15, 1),
    ("limestone", 125.9, 43.2, 30, 2), ("limestone", 126.2, 41.8, 30, 2), ("limestone", 128.3, 43.3, 30, 1),
    ("sand_gravel", 124.8, 45.1, 30, 1), ("sand_gravel", 126.5, 44.0, 30, 1), ("sand_gravel", 122.9, 45.6, 25, 1),
    ("mineral_water", 127.6, 42.2, 30, 2), ("mineral_water", 126.8, 42.4, 15, 1),
]
MINE_WORD = {"gold": "金矿", "copper": "铜矿", "nickel": "镍矿", "molybdenum": "钼矿", "iron": "铁矿", "coal": "煤矿",
             "oil_shale": "油页岩矿", "limestone": "水泥用灰岩矿", "sand_gravel": "建筑用砂石矿", "mineral_water": "矿泉水"}
EXPLORABLE = {"gold", "copper", "nickel", "molybdenum", "iron", "oil_shale", "coal"}
# typical (mining recovery, processing recovery, utilisation) in %, and the mining-recovery standard
RATES = {"coal": (82, 90, 70, 75), "oil_shale": (85, 88, 55, 80), "iron": (90, 80, 30, 85), "gold": (90, 89, 20, 85),
         "copper": (88, 86, 25, 85), "nickel": (87, 84, 25, 85), "molybdenum": (89, 84, 22, 85),
         "limestone": (95, None, 80, 90), "sand_gravel": (95, None, 85, 90), "mineral_water": (90, None, 95, 80)}


def _rings(rng: np.random.Generator, e: float, n: float, w: float, h: float) -> list[list[tuple[float, float]]]:
    """GK rings (easting, northing) around (e, n): a rectangle, an L, two blocks or a holed rectangle."""
    e0, e1, n0, n1 = e - w / 2, e + w / 2, n - h / 2, n + h / 2
    shape = choose(rng, [("rect", .6), ("l", .25), ("two", .1), ("hole", .05)])
    if shape == "l":
        em, nm = e0 + w * rng.uniform(0.4, 0.7), n0 + h * rng.uniform(0.4, 0.7)
        return [[(e0, n0), (e1, n0), (e1, nm), (em, nm), (em, n1), (e0, n1)]]
    rect = [(e0, n0), (e1, n0), (e1, n1), (e0, n1)]
    if shape == "two":
        gap = w * rng.uniform(0.2, 0.5)
        w2, h2 = w * rng.uniform(0.4, 0.8), h * rng.uniform(0.4, 0.9)
        return [rect, [(e1 + gap, n0), (e1 + gap + w2, n0), (e1 + gap + w2, n0 + h2), (e1 + gap, n0 + h2)]]
    if shape == "hole":
        hw, hh = w * 0.2, h * 0.2
        return [rect, [(e - hw, n - hh), (e + hw, n - hh), (e + hw, n + hh), (e - hw, n + hh)]]
    return [rect]


def corner_table(rings_en: list[list[tuple[float, float]]]) -> str:
    """'点号,X,Y' lines (X = northing), numbered on across rings, rounded to the centimetre."""
    out, k = [], 1
    for ring in rings_en:
        out.append([(str(k + i), round(nn, 2), round(ee, 2)) for i, (ee, nn) in enumerate(ring)])
        k += len(ring)
    return format_corners(out)


def mining_rights(world: World, records: DemoRecords, rng: np.random.Generator, scale: float) -> None:
    weights = np.array([h[4] for h in HOTSPOTS], dtype=float)
    wanted = max(6, int(round(150 * scale)))
    in_footprint = max(1, int(round(3 * scale)))
    made = tries = 0
    serial = 0
    while made < wanted + in_footprint and tries < 40 * (wanted + in_footprint):
        tries += 1
        fp = made < in_footprint
        if fp:    # quarries near Changchun hosting ordinary mining patches
            mineral = "sand_gravel" if rng.random() < 0.6 else "limestone"
            x0, y0, x1, y1 = world.local["footprint"].bounds
            x, y = rng.uniform(x0 + 2000, x1 - 2000), rng.uniform(y0 + 2000, y1 - 2000)
            lon, lat = (float(v) for v in to_lonlat_xy(x, y))
        else:
            mineral, hlon, hlat, spread, _ = HOTSPOTS[int(rng.choice(len(HOTSPOTS), p=weights / weights.sum()))]
            lon = hlon + rng.normal(0, spread / 80.0)
            lat = hlat + rng.normal(0, spread / 111.0)
        exploration = not fp and mineral in EXPLORABLE and rng.random() < 0.35
        if exploration:
            w, h = rng.uniform(1500, 5000), rng.uniform(1000, 3000)
        elif mineral in ("sand_gravel", "limestone", "mineral_water"):
            w, h = rng.uniform(300, 900), rng.uniform(250, 700)
        else:
            w, h = rng.uniform(500, 2000), rng.uniform(400, 1300)
        prefixed = rng.random() < 0.25
        epsg = gk_epsg(zone_for_longitude(lon), prefixed)
        to_gk, _ = gk_transformers(epsg)
        e, n = to_gk.transform(lon, lat)
        text = corner_table(_rings(rng, e, n, w, h))
        try:
            geom = corners_to_geometry(text, epsg)
        except ValueError:
            continue
        geom_l = to_local(geom)
        if not world.clear_of("urban", geom_l, 1000) or not world.clear_of("reserve", geom_l, 200):
            continue
        if fp != world.within("footprint", geom_l, 500) or (not fp and not world.clear_of("footprint", geom_l, 2000)):
            continue
        if not world.occupied.free(geom_l.buffer(200)) or not world.clear_of("linear", geom_l, 50):
            continue
        county = world.county_of(geom, 50)
        if county is None:
            continue
        if fp and not world.can_force(world.cells_under(geom), "0404", False):
            continue
        world.occupied.add(geom_l.buffer(200))
        if fp:
            world.force(world.cells_under(geom), "0404", False)
        made += 1
        serial += 1
        km2 = geom_l.area / 1e6
        if exploration:
            valid_from = random_date(rng, date(2019, 1, 1), date(2025, 12, 31))
            valid_to = date(valid_from.year + 5, valid_from.month, min(valid_from.day, 28))
            acquisition = choose(rng, [("application", .6), ("listing", .25), ("tender", .15)])
            scale_code = "large" if km2 > 8 else "medium" if km2 > 3 else "small"
        else:
            scale_code = "large" if km2 > 1.5 else "medium" if km2 > 0.6 else "small"
            years = {"large": (20, 30), "medium": (10, 20), "small": (5, 10)}[scale_code]
            valid_from = random_date(rng, date(2010, 1, 1), date(2024, 12, 31))
            valid_to = date(valid_from.year + int(rng.integers(*years)), valid_from.month, min(valid_from.day, 28))
            if fp:
                valid_to = max(valid_to, date(2028, 12, 31))
            acquisition = choose(rng, [("listing", .4), ("auction", .15), ("agreement", .15), ("application", .2),
                                       ("tender", .1)])
        place = names.place(rng)
        short = names.short(world.county_names[county])
        records.rights.append(MiningRight(
            county=county, geom=geom, corners=text, corner_crs=epsg,
            right_type="exploration" if exploration else "mining",
            holder=names.firm(rng, short, "mining"),
            mine_name=f"吉林省{short}{place}{MINE_WORD[mineral]}{'勘探' if exploration else ''}",
            mineral=mineral, scale=scale_code, acquisition=acquisition, valid_from=valid_from, valid_to=valid_to))


def mine_reports(records: DemoRecords, rng: np.random.Generator) -> None:
    for right in records.rights:
        if right.right_type != "mining":
            continue
        point = shapely.point_on_surface(right.geom)
        mining, processing, utilisation, standard = RATES[right.mineral]
        for year in (2023, 2024, 2025):
            if right.valid_from > date(year, 12, 31) or right.valid_to < date(year, 1, 1):
                continue
            reported = min(date(year + 1, 3, int(rng.integers(1, 32))), REFERENCE_DATE)
            below = rng.random() < 0.1
            m = mining + rng.normal(0, 2.5) - (rng.uniform(8, 20) if below else 0)
            inspection = ("failed" if rng.random() < 0.3 else "rectify") if below or m < standard else \
                choose(rng, [("passed", .93), ("rectify", .07)])
            output = {"large": 120, "medium": 40, "small": 8}[right.scale] * rng.uniform(0.5, 1.3)
            records.mine_reports.append(MineReport(
                right=right, year=year, reported_on=reported, inspection=inspection,
                mining_recovery=round(float(np.clip(m, 40, 99.5)), 1),
                processing_recovery=None if processing is None else round(float(np.clip(
                    processing + rng.normal(0, 2.5), 50, 99.0)), 1),
                utilization=round(float(np.clip(utilisation + rng.normal(0, 5), 5, 99.0)), 1),
                output_10k_t=round(output, 2), point=point))
