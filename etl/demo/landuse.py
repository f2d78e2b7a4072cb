"""Land-use classes of the grid cells (GB/T 21010-2017 second-level codes).

Vectorised rules on the cell centres, by region and then overridden in order of priority:
plains farmland (旱地 dominant, 水田 near the rivers of the central plain), western
grassland, saline land and wetlands, forest in the eastern and south-eastern mountains with
farmland in the valleys, orchards in patches, built-up land around the real seats (urban
residential, commercial, industrial, public, roads; larger around prefecture seats),
villages scattered everywhere, lakes and reserves. A smooth noise field keeps patches
coherent. Road and river strips are cut from the cells later, in PostGIS.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from etl.demo.geo import to_local_xy
from etl.demo.grid import Grid
from etl.demo.landscape import ALLOWED, BUILT, CHANGBAI_PEAK, WETLAND_RESERVES, Landscape

# Every class the generator uses; cells store an index into this tuple.
CLASSES = ("0101", "0102", "0103", "0201", "0301", "0305", "0307", "0401", "0402", "0404",
           "0501", "0503", "0504", "0505", "0601", "0602", "0604", "0701", "0702",
           "0801", "0803", "0805", "0807", "0808", "0809", "0810", "09",
           "1003", "1004", "1005", "1006", "1101", "1102", "1103", "1104", "1107", "1108",
           "1202", "1204", "1205", "1207")
IDX = {code: i for i, code in enumerate(CLASSES)}
FARMLAND = np.array([c[:2] == "01" for c in CLASSES])
# State-owned by nature: urban construction, highways, rivers, lakes and reservoirs.
STATE_CLASSES = np.array([c[:2] in {"05", "06", "08", "09"} or c in {"0701", "1003", "1004", "1005", "1101",
                                                                     "1102", "1103"} for c in CLASSES])

PLAINS = [("0103", .74), ("0102", .05), ("0702", .045), ("0301", .04), ("1202", .015), ("0201", .01),
          ("1006", .015), ("1104", .01), ("0404", .02), ("1107", .005), ("0101", .02), ("0601", .01),
          ("1204", .005), ("0602", .005), ("0604", .005), ("09", .002), ("0305", .008)]
WEST = [("0103", .42), ("0401", .12), ("0404", .10), ("1204", .14), ("0702", .03), ("0402", .05),
        ("1104", .02), ("1108", .03), ("0305", .03), ("0301", .02), ("1202", .01), ("1006", .01), ("0102", .02)]
MOUNTAIN = [("0301", .70), ("0305", .11), ("0307", .04), ("0404", .02), ("0103", .06), ("0702", .015),
            ("0201", .01), ("1207", .005), ("1006", .01), ("0602", .005), ("1104", .005), ("0401", .01),
            ("1202", .003), ("0601", .002), ("09", .005)]
HILLS = [("0301", .36), ("0305", .06), ("0103", .40), ("0702", .04), ("0201", .03), ("0404", .03),
         ("1006", .02), ("0102", .02), ("1104", .01), ("1202", .01), ("0101", .02)]
VALLEY = [("0103", .62), ("0101", .14), ("0702", .10), ("0201", .04), ("1202", .02), ("0404", .04),
          ("1006", .02), ("1104", .02)]
CORE = [("0701", .36), ("0501", .10), ("0505", .08), ("0504", .03), ("0503", .02), ("0801", .05),
        ("0803", .05), ("0805", .03), ("0807", .02), ("0808", .02), ("0810", .05), ("1004", .13),
        ("1005", .03), ("0809", .01), ("0601", .02)]
MIDDLE = [("0701", .44), ("0501", .05), ("0505", .02), ("0601", .10), ("0604", .03), ("0803", .04),
          ("0805", .02), ("0810", .04), ("0809", .02), ("1004", .11), ("0702", .03), ("0801", .02),
          ("1005", .02), ("0808", .01), ("0504", .01)]
OUTER = [("0601", .30), ("0604", .08), ("0701", .24), ("0702", .08), ("1004", .08), ("0809", .04),
         ("0103", .10), ("1005", .02), ("0803", .02), ("0810", .02), ("0501", .02)]
FRINGE = [("0103", .62), ("0702", .12), ("0601", .07), ("1202", .04), ("0301", .04), ("0604", .02),
          ("1006", .03), ("0201", .02), ("1104", .02), ("0102", .02)]
WETLAND = [("1108", .35), ("0402", .25), ("0401", .12), ("1102", .10), ("1204", .08), ("0404", .05),
           ("0103", .05)]
ALPINE = [("1207", .45), ("0404", .35), ("0305", .20)]


@dataclass
class Cells:
    """Per-cell attributes, aligned with the grid."""
    cls: np.ndarray        # index into CLASSES
    state: np.ndarray      # state-owned (else collective)
    grade: np.ndarray      # farmland quality grade 1..15
    basic: np.ndarray      # designated permanent basic farmland
    clear: np.ndarray      # clear of urban boundaries, 020 zones and reserves (may be basic farmland)
    town_dist: np.ndarray  # distance to the nearest seat in built-up radii
    x: np.ndarray          # centre on the metric plane
    y: np.ndarray

    def codes(self) -> np.ndarray:
        return np.asarray(CLASSES, dtype=object)[self.cls]


def _pick(rng: np.random.Generator, n: int, table) -> np.ndarray:
    codes = np.array([IDX[c] for c, _ in table])
    p = np.array([w for _, w in table], dtype=float)
    cum = np.cumsum(p / p.sum())
    return codes[np.minimum(np.searchsorted(cum, rng.random(n)), len(codes) - 1)]


def _assign(cls: np.ndarray, mask: np.ndarray, rng: np.random.Generator, table) -> None:
    idx = np.flatnonzero(mask)
    cls[idx] = _pick(rng, len(idx), table)


def classify(grid: Grid, ls: Landscape, rng: np.random.Generator) -> Cells:
    lon, lat = grid.cx, grid.cy
    n = len(lon)
    x, y = to_local_xy(lon, lat)
    terrain = ls.noise["terrain"](lon, lat)
    valley = ls.noise["valley"](lon, lat)
    wet = ls.noise["wet"](lon, lat)
    orchard = ls.noise["orchard"](lon, lat)

    mountain = ls.mountain_index(lon, lat) + 0.3 * terrain
    west = ls.west_index(lon, lat) + 0.25 * wet
    river_lines = shapely.MultiLineString([line for _, line, _ in ls.rivers])
    river_km = shapely.distance(river_lines, shapely.points(x, y)) / 1000.0

    cls = _pick(rng, n, PLAINS)
    central = (lon > 124.3) & (lon < 127.0) & (lat > 43.0)
    paddy = central & (river_km < 10) & (rng.random(n) < 0.45) & (cls == IDX["0103"])
    cls[paddy] = IDX["0101"]
    _assign(cls, west > 0.55, rng, WEST)
    saline = (west > 0.55) & (wet > 0.35) & (rng.random(n) < 0.6)
    cls[saline] = IDX["1204"]
    sandy = (lon < 123.5) & (lat < 44.6) & (west > 0.3) & (terrain > 0.35) & (rng.random(n) < 0.5)
    cls[sandy] = IDX["1205"]
    _assign(cls, (mountain > 0.35) & (mountain <= 0.6), rng, HILLS)
    _assign(cls, mountain > 0.6, rng, MOUNTAIN)
    low = (mountain > 0.35) & (valley < -0.4)
    _assign(cls, low, rng, VALLEY)
    near_river = low & (river_km < 3) & (cls == IDX["0103"]) & (rng.random(n) < 0.5)
    cls[near_river] = IDX["0101"]
    cls[(orchard > 0.7) & (mountain > 0.2) & (mountain < 0.9) & (rng.random(n) < 0.6)] = IDX["0201"]

    # reserves: wetlands in the west, forest elsewhere; alpine tundra and rock near the peak
    for name, geom in ls.reserves:
        inside = shapely.contains_xy(geom, lon, lat)
        if name in WETLAND_RESERVES:
            _assign(cls, inside, rng, WETLAND)
        else:
            _assign(cls, inside, rng, [("0301", .85), ("0305", .1), ("0307", .05)])
    px, py = to_local_xy(*CHANGBAI_PEAK)
    peak_km = np.hypot(x - px, y - py) / 1000.0
    _assign(cls, peak_km < 14, rng, ALPINE)

    # built-up land and the fringe around the seats
    town_dist = np.full(n, np.inf)
    for town in ls.towns:
        near = np.flatnonzero((np.abs(x - town.x) < town.radius * 2.2) & (np.abs(y - town.y) < town.radius * 2.2))
        if len(near):
            town_dist[near] = np.minimum(town_dist[near], town.norm_dist(x[near], y[near]))
    in_reserve = shapely.contains_xy(ls.reserve_union, lon, lat)
    urban = ~in_reserve
    _assign(cls, urban & (town_dist >= BUILT) & (town_dist < ALLOWED), rng, FRINGE)
    _assign(cls, urban & (town_dist >= 0.8) & (town_dist < BUILT), rng, OUTER)
    _assign(cls, urban & (town_dist >= 0.45) & (town_dist < 0.8), rng, MIDDLE)
    _assign(cls, urban & (town_dist < 0.45), rng, CORE)
    # the cell holding a seat is always built up, however coarse the grid
    for town in ls.towns:
        hit = np.flatnonzero(shapely.contains_xy(grid.polygons, town.lon, town.lat))
        cls[hit] = IDX["0701"]
    fringe_paddy = (cls == IDX["0103"]) & central & (river_km < 10) & (rng.random(n) < 0.4)
    cls[fringe_paddy] = IDX["0101"]

    for name, code, geom in ls.lakes:
        cls[shapely.contains_xy(geom, lon, lat)] = IDX[code]

    # ownership: state land by class, state forest farms in the mountains, reserves
    state = STATE_CLASSES[cls] | (np.isin(cls, [IDX["0301"], IDX["0305"], IDX["0307"]]) & (mountain > 0.7)
                                  & (rng.random(n) < 0.6)) | in_reserve

    # farmland quality (农用地分等, 1 best): best on the central black-soil plain
    centre = np.exp(-((lon - 125.3) / 1.3) ** 2 - ((lat - 44.1) / 1.1) ** 2)
    grade = np.rint(12.5 - 7.5 * centre + 2.0 * ls.noise["grade"](lon, lat) + 1.5 * np.clip(west, 0, 1)
                    + 1.5 * np.clip(mountain, 0, 1)).astype(int)
    grade = np.clip(grade, 1, 15)

    # permanent basic farmland: most farmland cells clear of every urban boundary and reserve
    urban_area = shapely.union(ls.urban_union, ls.zone020)
    shapely.prepare(urban_area)
    shapely.prepare(ls.reserve_union)
    clear = ~shapely.intersects(urban_area, grid.polygons) & ~shapely.intersects(ls.reserve_union, grid.polygons)
    basic = FARMLAND[cls] & clear & (rng.random(n) < 0.9)
    return Cells(cls=cls, state=state, grade=grade, basic=basic, clear=clear, town_dist=town_dist, x=x, y=y)
