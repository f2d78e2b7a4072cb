"""Ellipsoidal areas: Python (pyproj.Geod) and SQL (PostGIS geography) against closed forms,
against pyproj directly, and across Gauss-Krüger zones. Real PostGIS, no mocks."""
from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from pyproj import Geod, Transformer
from shapely import LineString, MultiPoint, MultiPolygon, Point, Polygon
from shapely.geometry.polygon import orient
from sqlalchemy import text

from services.areas import M2_PER_HA, M2_PER_MU, Area, area, area_sql, areas_m2, geodesic_area_m2

A_GRS80 = 6378137.0
F_GRS80 = 1 / 298.257222101
E2 = F_GRS80 * (2 - F_GRS80)
B_GRS80 = A_GRS80 * (1 - F_GRS80)
REFERENCE = Geod(ellps="GRS80")


def _sql_areas(conn, geoms) -> np.ndarray:
    """ST_Area through area_sql() on a temporary table with an EPSG:4490 MultiPolygon column."""
    conn.execute(text("CREATE TEMP TABLE IF NOT EXISTS area_probe (i int, geom geometry(MultiPolygon, 4490)) "
                      "ON COMMIT DROP"))
    conn.execute(text("TRUNCATE area_probe"))
    wkbs = [shapely.to_wkb(shapely.multipolygons(shapely.get_parts(g)) if g.geom_type == "Polygon" else g)
            for g in geoms]
    conn.execute(text("INSERT INTO area_probe SELECT i, ST_GeomFromWKB(w, 4490) "
                      "FROM unnest(CAST(:w AS bytea[])) WITH ORDINALITY AS t(w, i)"), {"w": wkbs})
    return np.array(conn.execute(text(f"SELECT {area_sql()} FROM area_probe ORDER BY i")).scalars().all())


# --- shapes of known area --------------------------------------------------------------------

def _q(lat_deg: float) -> float:
    """q(φ) = sinφ/(1−e²sin²φ) + atanh(e sinφ)/e: the integral of the ellipsoid's area element,
    dA = b² cosφ/(1−e²sin²φ)² dφ dλ, is b²(λ2−λ1)[q(φ2)−q(φ1)]/2."""
    s, e = math.sin(math.radians(lat_deg)), math.sqrt(E2)
    return s / (1 - E2 * s * s) + math.atanh(e * s) / e


def quadrangle_area(lon1: float, lon2: float, lat1: float, lat2: float) -> float:
    return B_GRS80 ** 2 * math.radians(lon2 - lon1) * (_q(lat2) - _q(lat1)) / 2


def quadrangle(lon1: float, lon2: float, lat1: float, lat2: float, segments: int = 400) -> Polygon:
    """Bounded by two meridians (geodesics) and two parallels (not geodesics: densified, so the
    geodesic chords follow them; the residual shrinks as 1/segments², <1e-8 here)."""
    lons = np.linspace(lon1, lon2, segments + 1)
    return Polygon([(x, lat1) for x in lons] + [(x, lat2) for x in lons[::-1]])


QUADRANGLES = {
    "equator": (110.0, 110.5, -0.25, 0.25),
    "equator-parcel": (110.0, 110.01, 0.0, 0.01),
    "jilin-2x2deg": (124.0, 126.0, 43.0, 45.0),
    "jilin-parcel": (125.30, 125.31, 43.80, 43.81),
    "jilin-field": (126.50, 126.503, 44.100, 44.102),
    "far-north": (20.0, 21.0, 70.0, 70.5),
    "far-north-parcel": (20.0, 20.005, 70.0, 70.002),
}


@pytest.mark.parametrize("name", QUADRANGLES)
def test_quadrangle_matches_closed_form(conn, name):
    lon1, lon2, lat1, lat2 = QUADRANGLES[name]
    expected = quadrangle_area(lon1, lon2, lat1, lat2)
    shape = quadrangle(lon1, lon2, lat1, lat2)
    assert geodesic_area_m2(shape) == pytest.approx(expected, rel=1e-7)
    assert _sql_areas(conn, [shape])[0] == pytest.approx(expected, rel=1e-7)


def test_closed_form_sanity():
    # One degree of longitude between 43° and 44°N is about 111.3 km × 80.9 km.
    assert quadrangle_area(125, 126, 43, 44) == pytest.approx(111_100 * 80_900, rel=0.01)
    # Closed form over the whole ellipsoid: 4π·(authalic radius)² = 5.10066e14 m² for GRS80.
    assert quadrangle_area(-180, 180, -90, 90) == pytest.approx(5.10066e14, rel=1e-5)


# --- PostGIS uses the ellipsoid of the geometry's SRID --------------------------------------

def test_postgis_geography_keeps_srid_4490_and_its_grs80_spheroid(conn):
    srs = conn.execute(text("SELECT srtext, proj4text FROM spatial_ref_sys WHERE srid = 4490")).one()
    assert "298.257222101" in srs.srtext and "+ellps=GRS80" in srs.proj4text
    assert conn.execute(text("SELECT ST_SRID(ST_GeomFromText('POINT(125 43)', 4490)::geography)")).scalar() == 4490

    shape = quadrangle(125.0, 125.2, 43.5, 43.7)
    sql = text(f"SELECT {area_sql('ST_GeomFromWKB(:w, :srid)')}")
    on_4490 = conn.execute(sql, {"w": shapely.to_wkb(shape), "srid": 4490}).scalar()
    # Same coordinates read as Beijing 1954 (EPSG:4214, Krassowsky ellipsoid): PostGIS changes
    # ellipsoid with the SRID, and each result matches pyproj on that ellipsoid.
    on_4214 = conn.execute(sql, {"w": shapely.to_wkb(shape), "srid": 4214}).scalar()
    krass = abs(Geod(ellps="krass").geometry_area_perimeter(orient(shape))[0])
    assert on_4490 == pytest.approx(quadrangle_area(125.0, 125.2, 43.5, 43.7), rel=1e-9)
    assert on_4214 == pytest.approx(krass, rel=1e-9)
    assert abs(on_4214 - on_4490) / on_4490 > 1e-5


def test_sql_helper_is_the_spheroid_not_the_sphere_nor_degrees(conn):
    shape = quadrangle(125.0, 125.2, 43.5, 43.7)
    row = conn.execute(text(f"""SELECT {area_sql('g')} AS helper, ST_Area(g::geography) AS default_,
                                       ST_Area(g::geography, false) AS sphere, ST_Area(g) AS degrees
                                FROM (SELECT ST_GeomFromWKB(:w, 4490) AS g) s"""),
                       {"w": shapely.to_wkb(shape)}).one()
    assert row.helper == row.default_
    assert abs(row.sphere - row.helper) / row.helper > 1e-3   # a sphere is ~0.2 % off in Jilin
    assert row.degrees == pytest.approx(0.04)


# --- arbitrary polygons: both paths against pyproj directly ----------------------------------

def _star(rng: np.random.Generator, lon: float, lat: float, radius_m: float, n: int) -> Polygon:
    angles = (np.arange(n) + rng.uniform(0, 0.8, n)) * 2 * np.pi / n  # star-shaped, so simple
    radii = radius_m * rng.uniform(0.5, 1.0, n)
    dx, dy = radii * np.cos(angles), radii * np.sin(angles)
    ring = np.c_[lon + dx / (111_320 * math.cos(math.radians(lat))), lat + dy / 110_950]
    return Polygon(ring if rng.random() < 0.5 else ring[::-1])  # either orientation


def _random_shapes(seed: int = 2026, count: int = 60) -> list[Polygon | MultiPolygon]:
    rng = np.random.default_rng(seed)
    shapes: list[Polygon | MultiPolygon] = []
    for k in range(count):
        lon, lat = rng.uniform(121.6, 131.3), rng.uniform(40.9, 46.3)  # Jilin's extent
        radius = float(rng.choice([30.0, 300.0, 3_000.0, 30_000.0]))
        outer = _star(rng, lon, lat, radius, int(rng.integers(8, 60)))
        if k % 3 == 0:  # polygon with holes, well inside (outer radii are ≥ 0.5·radius)
            holes = [_star(rng, lon + sx * radius / 4 / 80_000, lat, radius / 10, 6).exterior
                     for sx in (-1, 1)]
            shapes.append(Polygon(outer.exterior, holes))
        elif k % 3 == 1:  # multipolygon of disjoint parts, one with a hole
            far = _star(rng, lon + 3 * radius / 80_000, lat, radius / 2, 12)
            hole = _star(rng, lon, lat, radius / 5, 5).exterior
            shapes.append(MultiPolygon([Polygon(outer.exterior, [hole]), far]))
        else:
            shapes.append(outer)
    assert all(s.is_valid for s in shapes)
    return shapes


def _pyproj_direct(shape: Polygon | MultiPolygon) -> float:
    parts = shape.geoms if isinstance(shape, MultiPolygon) else [shape]
    return sum(REFERENCE.geometry_area_perimeter(orient(p, sign=1.0))[0] for p in parts)


def test_random_polygons_python_and_sql_agree_with_pyproj(conn):
    shapes = _random_shapes()
    expected = np.array([_pyproj_direct(s) for s in shapes])
    assert (expected > 0).all()
    python = areas_m2(shapes)
    sql = _sql_areas(conn, shapes)
    assert np.abs(python - expected).max() < 0.01
    assert np.abs(sql - expected).max() < 0.01
    assert np.abs(sql - expected).max() / expected.min() < 1e-7
    # holes are subtracted: a polygon with holes is smaller than its exterior
    holed = shapes[0]
    assert geodesic_area_m2(holed) < geodesic_area_m2(Polygon(holed.exterior))


def test_vectorised_and_degenerate_inputs():
    square = quadrangle(125.0, 125.01, 44.0, 44.01, segments=50)
    got = areas_m2(np.array([square, Point(125, 44), LineString([(125, 44), (125.1, 44.1)]),
                             MultiPoint([(125, 44)]), Polygon(), None, MultiPolygon([square, square])],
                            dtype=object))
    assert isinstance(got, np.ndarray) and got.shape == (7,)
    assert got[0] == pytest.approx(quadrangle_area(125.0, 125.01, 44.0, 44.01), rel=1e-7)
    assert list(got[1:5]) == [0.0, 0.0, 0.0, 0.0] and math.isnan(got[5])
    assert got[6] == pytest.approx(2 * got[0], rel=1e-12)  # (invalid overlapping parts add up)
    assert areas_m2([]).shape == (0,)
    assert area(square) == Area(got[0])


def test_projected_coordinates_are_refused():
    gk_square = Polygon([(380_000, 4_850_000), (381_000, 4_850_000), (381_000, 4_851_000), (380_000, 4_851_000)])
    with pytest.raises(ValueError, match="EPSG:4490"):
        geodesic_area_m2(gk_square)


# --- Gauss-Krüger zones: the land has one area, the projections do not ----------------------

ZONE_41, ZONE_42 = "EPSG:4550", "EPSG:4551"  # CGCS2000 3-degree GK, CM 123°E and 126°E, no prefix


def _to_lonlat(poly: Polygon, crs: str) -> Polygon:
    return shapely.transform(poly, lambda xy: np.c_[Transformer.from_crs(crs, "EPSG:4490", always_xy=True)
                                                    .transform(xy[:, 0], xy[:, 1])])


def _from_lonlat(poly: Polygon, crs: str) -> Polygon:
    return shapely.transform(poly, lambda xy: np.c_[Transformer.from_crs("EPSG:4490", crs, always_xy=True)
                                                    .transform(xy[:, 0], xy[:, 1])])


def test_polygon_across_the_124_5_zone_border_has_one_ellipsoidal_area(conn):
    # Defined in lon/lat, densified so the GK polygons in both zones describe the same land.
    land = shapely.segmentize(Polygon([(124.30, 43.80), (124.75, 43.80), (124.75, 44.05), (124.30, 44.05)]),
                              0.001)
    in_41, in_42 = _from_lonlat(land, ZONE_41), _from_lonlat(land, ZONE_42)
    planar_41, planar_42 = in_41.area, in_42.area
    back_41, back_42 = _to_lonlat(in_41, ZONE_41), _to_lonlat(in_42, ZONE_42)
    ellipsoidal = geodesic_area_m2(land)
    assert geodesic_area_m2(back_41) == pytest.approx(ellipsoidal, rel=1e-7)
    assert geodesic_area_m2(back_42) == pytest.approx(ellipsoidal, rel=1e-7)
    # The planar areas differ between zones (scale factor k ≈ 1 + (Δλ·cosφ)²/2 grows away from
    # the central meridian; the land is mostly nearer 126°E than 123°E) and overstate the land.
    assert abs(planar_41 - planar_42) / ellipsoidal > 1e-5
    assert planar_41 > planar_42 > ellipsoidal
    assert _sql_areas(conn, [land])[0] == pytest.approx(ellipsoidal, rel=1e-9)


def test_square_defined_in_zone_42_coordinates(conn):
    # 拐点 as submitted: X = northing, Y = easting (EPSG:4551 is northing-first); a 20 km square
    # whose western part lies in zone 41 (west of 124.5°E).
    corners_xy = [(4_850_000, 365_000), (4_850_000, 385_000), (4_870_000, 385_000), (4_870_000, 365_000)]
    authority = Transformer.from_crs(ZONE_42, "EPSG:4490")  # (northing, easting) -> (lat, lon)
    lat, lon = authority.transform(*np.array(corners_xy).T)
    assert 43.7 < lat.min() < lat.max() < 44.0 and lon.min() < 124.5 < lon.max()

    square = shapely.segmentize(Polygon([(y, x) for x, y in corners_xy]), 10.0)  # easting, northing
    assert square.area == pytest.approx(4.0e8)
    land = _to_lonlat(square, ZONE_42)                       # always_xy: (easting, northing) -> (lon, lat)
    assert np.allclose(shapely.get_coordinates(land)[[0]], [[lon[0], lat[0]]], atol=1e-12)

    in_41 = _from_lonlat(land, ZONE_41)
    from_41 = _to_lonlat(in_41, ZONE_41)
    ellipsoidal = geodesic_area_m2(land)
    assert geodesic_area_m2(from_41) == pytest.approx(ellipsoidal, rel=1e-7)
    assert abs(in_41.area - square.area) / ellipsoidal > 1e-6
    # GK scale factor at ~1.5° from the central meridian is ~1.00018: ellipsoid ≈ planar / k².
    assert 1.0002 < square.area / ellipsoidal < 1.0005

    # PostGIS reads the same corners through ST_Transform from 4551 (it too takes easting first).
    sql = conn.execute(text(f"SELECT {area_sql('ST_Transform(ST_GeomFromWKB(:w, 4551), 4490)')}"),
                       {"w": shapely.to_wkb(square)}).scalar()
    assert sql == pytest.approx(ellipsoidal, rel=1e-7)


# --- units -----------------------------------------------------------------------------------

def test_units():
    assert M2_PER_MU == pytest.approx(666.6666666666666, rel=1e-15)
    assert Area(M2_PER_MU).mu == pytest.approx(1.0, rel=1e-15)
    assert Area(M2_PER_HA).ha == 1.0
    assert Area(M2_PER_HA).mu == 15.0                    # 1 ha = 15 mu exactly
    assert Area(1_000_000).as_dict() == {"m2": 1_000_000.0, "ha": 100.0, "mu": 1500.0}
    assert Area(1234.5678).as_dict() == {"m2": 1234.57, "ha": 0.123457, "mu": 1.8519}
    with pytest.raises(AttributeError):
        Area(1.0).m2 = 2.0  # type: ignore[misc]
