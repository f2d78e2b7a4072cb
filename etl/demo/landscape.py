"""The physical and planning geography of the demo province, independent of the scale.

Towns sit at the real seats; lakes, rivers, reserves and highways at approximately their
real places. From these come the planning shapes every layer agrees on:

* built-up area: a wobbly disk of radius r around each seat (prefecture seats larger);
* 010 允许建设区: the same outline at 1.35 r; 020 有条件建设区: the ring out to 1.7 r;
* urban development boundary: 1.7 r; 040 禁止建设区 and biodiversity red lines: the reserves,
  which also cut the other zones and the boundary;
* 030 限制建设区: everything else.

The landscape depends only on the seed, so parcels at any scale fall on the same map.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely
from rasterio import features
from rasterio.transform import from_origin
from shapely.geometry import shape as geojson_shape

from etl.demo.boundaries import COUNTY_SEATS, PREFECTURE_SEATS, Region
from etl.demo.geo import (densified_line, ellipse, star_polygon, to_local, to_local_xy, to_lonlat,
                          wobble)
from etl.demo.streams import NoiseField, stream

BUILT, ALLOWED, CONDITIONAL = 1.0, 1.35, 1.7   # radius factors: built-up, 010, 020 and the boundary

# Built-up radius (km) of the prefecture seats; county seats get COUNTY_RADIUS_KM unless listed.
PREFECTURE_RADIUS_KM = {"220100": 10.0, "220200": 7.0, "220300": 5.0, "220400": 4.0, "220500": 4.5,
                        "220600": 4.0, "220700": 5.0, "220800": 4.5, "222400": 5.5}
COUNTY_RADIUS_KM = 2.5
LARGER_COUNTY_RADIUS_KM = {"220184": 3.5, "220581": 3.5, "222403": 3.5, "222404": 3.0, "220113": 3.0}

# The imagery footprint (lon/lat) near Changchun, where every change patch lies.
FOOTPRINT = (125.12, 43.64, 125.72, 44.08)

# name, class, lon, lat, half-axes (km), angle (deg, counter-clockwise from east)
LAKES = [
    ("查干湖", "1102", 124.27, 45.25, 12.0, 8.0, 20),
    ("松花湖", "1103", 126.80, 43.55, 24.0, 3.0, -61),
    ("月亮泡", "1102", 123.85, 45.72, 5.0, 3.5, 0),
    ("向海水库", "1103", 122.35, 44.95, 3.0, 2.0, 30),
    ("大布苏湖", "1102", 123.68, 44.80, 3.5, 2.5, 10),
    ("石头口门水库", "1103", 125.77, 43.95, 4.0, 1.5, 60),
    ("新立城水库", "1103", 125.38, 43.63, 3.5, 1.3, 80),
    ("天池", "1102", 128.06, 42.005, 2.2, 1.8, 0),
]

# name, lon, lat, radius (km): nature reserves and a forest park (040 zones, biodiversity red line)
RESERVES = [
    ("长白山国家级自然保护区", 128.06, 42.00, 24.0),
    ("向海国家级自然保护区", 122.50, 44.90, 17.0),
    ("莫莫格国家级自然保护区", 123.90, 45.90, 19.0),
    ("查干湖国家级自然保护区", 124.27, 45.25, 15.0),
    ("净月潭国家森林公园", 125.46, 43.78, 5.0),
    ("龙湾国家级自然保护区", 126.40, 42.33, 7.0),
    ("珲春东北虎国家级自然保护区", 130.85, 43.05, 17.0),
    ("汪清国家级自然保护区", 130.25, 43.55, 14.0),
]
WETLAND_RESERVES = {"向海国家级自然保护区", "莫莫格国家级自然保护区", "查干湖国家级自然保护区"}

# name, half width (m), lon/lat course
RIVERS = [
    ("第二松花江上游", 80, [(127.50, 42.10), (127.10, 42.45), (126.95, 42.75), (126.98, 43.10), (127.02, 43.28)]),
    ("第二松花江", 150, [(126.68, 43.72), (126.55, 43.86), (126.45, 44.05), (126.30, 44.35), (126.10, 44.70),
                       (125.85, 44.98), (125.40, 45.10), (124.95, 45.16), (124.60, 45.30), (124.45, 45.42)]),
    ("松花江", 200, [(124.45, 45.42), (124.95, 45.52), (125.50, 45.45), (126.10, 45.25)]),
    ("嫩江", 150, [(123.95, 46.25), (124.10, 45.95), (124.30, 45.65), (124.45, 45.42)]),
    ("洮儿河", 60, [(121.90, 46.05), (122.40, 45.80), (122.85, 45.60), (123.30, 45.55), (123.70, 45.62), (123.85, 45.70)]),
    ("饮马河", 50, [(125.75, 43.15), (125.62, 43.50), (125.70, 43.90), (125.78, 44.30), (125.95, 44.65)]),
    ("伊通河", 40, [(125.30, 43.30), (125.36, 43.62), (125.34, 43.82), (125.42, 44.10), (125.58, 44.45), (125.90, 44.70)]),
    ("东辽河", 60, [(125.30, 42.60), (125.10, 42.90), (124.70, 43.10), (124.30, 43.45), (123.80, 43.55), (123.30, 43.45)]),
    ("图们江", 80, [(128.15, 42.02), (128.75, 42.15), (129.30, 42.40), (129.70, 42.90), (129.95, 42.98), (130.30, 42.75),
                   (130.60, 42.45)]),
    ("鸭绿江", 120, [(128.05, 41.60), (127.40, 41.48), (126.95, 41.75), (126.55, 41.55), (126.15, 41.10), (125.70, 40.90)]),
    ("牡丹江", 40, [(128.10, 43.05), (128.25, 43.40), (128.55, 43.75), (128.75, 44.05)]),
    ("辉发河", 50, [(125.40, 42.35), (125.75, 42.50), (126.10, 42.65), (126.45, 42.85), (126.75, 42.95)]),
    ("浑江", 50, [(126.25, 42.10), (126.35, 41.90), (125.95, 41.72), (125.55, 41.35)]),
]
HIGHWAY_HALF_WIDTH_M = 25.0
CHANGBAI_PEAK = (128.06, 42.0)


@dataclass
class Town:
    name: str
    code: str             # the county containing the seat
    lon: float
    lat: float
    x: float              # on the metric plane
    y: float
    radius: float         # built-up radius, m
    prefecture: bool
    mult: np.ndarray = field(repr=False)

    def shape(self, factor: float) -> shapely.Polygon:
        """The town's outline at factor × its built-up radius (metric plane)."""
        return star_polygon(self.x, self.y, self.radius * factor, self.mult)

    def norm_dist(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Distance from the seat in units of the (direction-dependent) built-up radius."""
        dx, dy = x - self.x, y - self.y
        theta = np.mod(np.arctan2(dy, dx), 2 * np.pi)
        n = len(self.mult)
        pos = theta / (2 * np.pi) * n
        i = pos.astype(int) % n
        t = pos - np.floor(pos)
        m = self.mult[i] * (1 - t) + self.mult[(i + 1) % n] * t
        return np.hypot(dx, dy) / (self.radius * m)


@dataclass
class Landscape:
    province: shapely.Geometry
    counties: list[Region]
    towns: list[Town]
    noise: dict[str, NoiseField]
    lakes: list[tuple[str, str, shapely.Geometry]]          # name, class, lon/lat polygon
    reserves: list[tuple[str, shapely.Geometry]]            # name, lon/lat polygon (040)
    rivers: list[tuple[str, shapely.Geometry, shapely.Geometry]]   # name, metric line, lon/lat strip
    roads: list[tuple[str, shapely.Geometry, shapely.Geometry]]    # name, metric line, lon/lat strip
    zone010: shapely.Geometry                               # lon/lat, minus 040
    zone020: shapely.Geometry                               # lon/lat ring, minus 010 and 040
    reserve_union: shapely.Geometry
    urban_boundaries: list[tuple[Town, shapely.Geometry]]   # lon/lat, disjoint, minus 040
    urban_union: shapely.Geometry
    eco_redlines: list[tuple[str, str, shapely.Geometry]]   # kind, name, lon/lat
    linear_local: shapely.Geometry                          # road and river strips, metric plane
    footprint: shapely.Geometry

    def mountain_index(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        east = np.clip((lon - 125.9) / 1.0, 0, 1)
        south_east = np.clip((43.1 - lat) / 0.7, 0, 1) * np.clip((lon - 124.9) / 0.7, 0, 1)
        return np.maximum(east, south_east)

    def west_index(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        return np.clip((124.3 - lon) / 0.9, 0, 1) * np.clip((lat - 43.3) / 0.5, 0, 1)

    def county_of(self, geom: shapely.Geometry) -> str | None:
        """The county whose polygon contains `geom` (lon/lat), or None when it straddles."""
        for region in self.counties:
            if region.geom.contains(geom):
                return region.code
        return None


def _towns(regions: list[Region], seed: int) -> list[Town]:
    counties = [r for r in regions if r.level == "county"]
    seats: dict[tuple[float, float], tuple[str, bool]] = {}
    names = {r.code: r.name for r in regions}
    for code, seat in PREFECTURE_SEATS.items():
        seats.setdefault(seat, (code, True))
    for code, seat in COUNTY_SEATS.items():
        seats.setdefault(seat, (code, False))
    rng = stream(seed, "towns")
    towns = []
    for (lon, lat), (code, prefecture) in seats.items():
        point = shapely.Point(lon, lat)
        county = next(c.code for c in counties if c.geom.contains(point))
        if prefecture:
            radius = PREFECTURE_RADIUS_KM[code]
            name = names[code].removesuffix("市").removesuffix("朝鲜族自治州")
            name = "延吉" if code == "222400" else name
        else:
            radius = LARGER_COUNTY_RADIUS_KM.get(code, COUNTY_RADIUS_KM)
            name = names[code]
        x, y = to_local_xy(lon, lat)
        towns.append(Town(name, county, lon, lat, float(x), float(y), radius * 1000.0, prefecture,
                          wobble(rng, 48, 0.14)))
    return towns


def _wiggle(rng: np.random.Generator, line: shapely.LineString, amplitude: float) -> shapely.LineString:
    """Offset a metric line sideways by a smooth random curve that is zero at its ends."""
    xy = shapely.get_coordinates(line)
    if len(xy) < 3:
        return line
    seg = np.diff(xy, axis=0)
    dist = np.concatenate([[0], np.cumsum(np.hypot(seg[:, 0], seg[:, 1]))])
    t = dist / dist[-1]
    normal = np.zeros_like(xy)
    d = np.gradient(xy, axis=0)
    norm = np.hypot(d[:, 0], d[:, 1])
    normal[:, 0], normal[:, 1] = -d[:, 1] / norm, d[:, 0] / norm
    offset = np.zeros(len(xy))
    for k in (1, 2, 3):
        offset += rng.uniform(-1, 1) / k * np.sin(np.pi * k * t + rng.uniform(0, 2 * np.pi)) * np.sin(np.pi * t)
    return shapely.LineString(xy + normal * (amplitude * offset)[:, None])


def _strip(line_local: shapely.LineString, half_width: float) -> shapely.Geometry:
    return to_lonlat(shapely.buffer(line_local, half_width, cap_style="flat", join_style="mitre", mitre_limit=3.0))


def _roads(towns: list[Town], province, seed: int):
    """Highways along the Delaunay edges between neighbouring seats (not too long, mostly inside)."""
    rng = stream(seed, "roads")
    points = shapely.MultiPoint([(t.x, t.y) for t in towns])
    edges = shapely.get_parts(shapely.delaunay_triangles(points, only_edges=True))
    province_local = to_local(province)
    shapely.prepare(province_local)
    lookup = {(round(t.x, 3), round(t.y, 3)): t for t in towns}
    roads = []
    for edge in sorted(edges, key=lambda e: tuple(np.round(shapely.get_coordinates(e).ravel(), 3))):
        if edge.length > 140_000:
            continue
        if shapely.intersection(edge, province_local).length < 0.8 * edge.length:
            continue
        (x0, y0), (x1, y1) = shapely.get_coordinates(edge)
        a, b = lookup[(round(x0, 3), round(y0, 3))], lookup[(round(x1, 3), round(y1, 3))]
        line = _wiggle(rng, shapely.segmentize(edge, 2000.0), min(2500.0, edge.length * 0.03))
        roads.append((f"{a.name}—{b.name}公路", line, _strip(line, HIGHWAY_HALF_WIDTH_M)))
    return roads


def _rivers(seed: int):
    rng = stream(seed, "rivers")
    rivers = []
    for name, half_width, course in RIVERS:
        line = _wiggle(rng, densified_line(course, 1500.0), 1500.0)
        rivers.append((name, line, _strip(line, half_width)))
    return rivers


def _noise_mask_polygons(mask: np.ndarray, transform) -> list[shapely.Geometry]:
    polys = [geojson_shape(g) for g, v in features.shapes(mask.astype(np.uint8), mask=mask, transform=transform)
             if v == 1]
    return [p.simplify(0.01) for p in polys if p.area > 0.01]


def _eco_redlines(ls_noise: dict[str, NoiseField], province, reserves, lakes, urban_union, mountain_index):
    """Red lines: reserves (biodiversity), mountain water conservation, hill soil conservation,
    western wind-and-sand control; never inside the urban development boundaries."""
    x0, y0, x1, y1 = province.bounds
    res = 0.02
    transform = from_origin(x0, y1, res, res)
    nx, ny = int(np.ceil((x1 - x0) / res)), int(np.ceil((y1 - y0) / res))
    lon, lat = np.meshgrid(x0 + res * (np.arange(nx) + 0.5), y1 - res * (np.arange(ny) + 0.5))
    m = mountain_index(lon, lat)
    water = (m > 0.75) & (ls_noise["redline"](lon, lat) > 0.15)
    soil = (m > 0.3) & (m < 0.75) & (ls_noise["soil"](lon, lat) > 0.3)
    sand = (lon < 123.8) & (lat < 45.2) & (lat > 43.6) & (ls_noise["sand"](lon, lat) > 0.2)
    out = [("biodiversity", name, geom) for name, geom in reserves]
    for name, cls, geom in lakes:
        if cls == "1103":
            out.append(("water", f"{name}水源涵养区", geom.buffer(0.02)))
    for kind, label, mask in (("water", "长白山区水源涵养", water), ("soil", "低山丘陵水土保持", soil),
                              ("desertification", "西部防风固沙", sand)):
        for k, poly in enumerate(_noise_mask_polygons(mask, transform), start=1):
            out.append((kind, f"{label}{k:02d}", poly))
    cleaned = []
    for kind, name, geom in out:
        geom = shapely.difference(geom, urban_union)
        if kind != "biodiversity":
            geom = shapely.difference(geom, shapely.union_all([g for _, g in reserves]))
        if not geom.is_empty:
            cleaned.append((kind, name, geom))
    return cleaned


def build_landscape(regions: list[Region], seed: int) -> Landscape:
    province = next(r for r in regions if r.level == "province").geom
    counties = [r for r in regions if r.level == "county"]
    bounds = tuple(np.array(province.bounds) + np.array([-0.5, -0.5, 0.5, 0.5]))
    noise = {name: NoiseField(stream(seed, f"noise-{name}"), bounds)
             for name in ("terrain", "valley", "wet", "orchard", "redline", "soil", "sand", "grade", "texture")}
    towns = _towns(regions, seed)

    shape_rng = stream(seed, "shapes")
    lakes = []
    for name, cls, lon, lat, a, b, angle in LAKES:
        x, y = to_local_xy(lon, lat)
        lakes.append((name, cls, to_lonlat(ellipse(float(x), float(y), a * 1000, b * 1000, angle,
                                                   wobble(shape_rng, 64, 0.12)))))
    reserves = []
    for name, lon, lat, r in RESERVES:
        x, y = to_local_xy(lon, lat)
        reserves.append((name, to_lonlat(star_polygon(float(x), float(y), r * 1000, wobble(shape_rng, 64, 0.18)))))
    reserve_union = shapely.union_all([g for _, g in reserves])

    built = [to_lonlat(t.shape(ALLOWED)) for t in towns]
    outer = [to_lonlat(t.shape(CONDITIONAL)) for t in towns]
    zone010 = shapely.difference(shapely.union_all(built), reserve_union)
    outer_union = shapely.union_all(outer)
    zone020 = shapely.difference(shapely.difference(outer_union, zone010), reserve_union)
    urban_boundaries, taken = [], None
    for town, geom in zip(towns, outer):
        piece = shapely.difference(geom, reserve_union)
        if taken is not None:
            piece = shapely.difference(piece, taken)
        taken = geom if taken is None else shapely.union(taken, geom)
        if not piece.is_empty:
            urban_boundaries.append((town, piece))
    urban_union = shapely.difference(outer_union, reserve_union)

    rivers = _rivers(seed)
    roads = _roads(towns, province, seed)
    linear_local = shapely.union_all([to_local(g) for _, _, g in rivers + roads])

    landscape = Landscape(
        province=province, counties=counties, towns=towns, noise=noise, lakes=lakes, reserves=reserves,
        rivers=rivers, roads=roads, zone010=zone010, zone020=zone020, reserve_union=reserve_union,
        urban_boundaries=urban_boundaries, urban_union=urban_union, eco_redlines=[],
        linear_local=linear_local, footprint=shapely.box(*FOOTPRINT))
    landscape.eco_redlines = _eco_redlines(noise, province, reserves, lakes, urban_union, landscape.mountain_index)
    return landscape
