"""Metric construction helpers: a Lambert azimuthal equal-area plane over Jilin.

Synthetic shapes (town disks, lakes, road strips, approvals, patches) are drawn in metres on
this plane and carried back to EPSG:4490. The plane is only a drawing board: every stored
area is measured afterwards on the CGCS2000 ellipsoid (services.areas).
"""
from __future__ import annotations

import numpy as np
import shapely
from pyproj import Transformer

LOCAL_CRS = "+proj=laea +lat_0=43.6 +lon_0=126.5 +ellps=GRS80 +units=m +no_defs"

_TO_LOCAL = Transformer.from_crs("EPSG:4490", LOCAL_CRS, always_xy=True)
_TO_LONLAT = Transformer.from_crs(LOCAL_CRS, "EPSG:4490", always_xy=True)


def to_local_xy(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    x, y = _TO_LOCAL.transform(np.asarray(lon, float), np.asarray(lat, float))
    return np.asarray(x), np.asarray(y)


def to_lonlat_xy(x, y) -> tuple[np.ndarray, np.ndarray]:
    lon, lat = _TO_LONLAT.transform(np.asarray(x, float), np.asarray(y, float))
    return np.asarray(lon), np.asarray(lat)


def _apply(transformer: Transformer, coords: np.ndarray) -> np.ndarray:
    if len(coords) == 0:
        return coords
    x, y = transformer.transform(coords[:, 0], coords[:, 1])
    return np.column_stack([x, y])


def to_local(geom):
    """A lon/lat geometry (or array of them) on the metric plane."""
    return shapely.transform(geom, lambda c: _apply(_TO_LOCAL, c))


def to_lonlat(geom):
    """A metric-plane geometry (or array of them) in EPSG:4490 lon/lat."""
    return shapely.transform(geom, lambda c: _apply(_TO_LONLAT, c))


def star_polygon(cx: float, cy: float, radius: float, multipliers: np.ndarray) -> shapely.Polygon:
    """A star-shaped polygon (metres) with radius*multipliers[k] at evenly spaced angles."""
    n = len(multipliers)
    theta = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    return shapely.Polygon(np.column_stack([cx + radius * multipliers * np.cos(theta),
                                            cy + radius * multipliers * np.sin(theta)]))


def wobble(rng: np.random.Generator, n: int = 48, amplitude: float = 0.12, harmonics: int = 4) -> np.ndarray:
    """Smooth radial multipliers around 1 for organic outlines."""
    theta = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    m = np.ones(n)
    for k in range(2, harmonics + 2):
        m += rng.uniform(0.2, 1.0) * amplitude / (k - 1) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    return m


def ellipse(cx: float, cy: float, a: float, b: float, angle_deg: float, multipliers: np.ndarray) -> shapely.Polygon:
    n = len(multipliers)
    theta = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    x = a * multipliers * np.cos(theta)
    y = b * multipliers * np.sin(theta)
    t = np.radians(angle_deg)
    return shapely.Polygon(np.column_stack([cx + x * np.cos(t) - y * np.sin(t), cy + x * np.sin(t) + y * np.cos(t)]))


def rotated_rect(cx: float, cy: float, w: float, h: float, angle_deg: float) -> shapely.Polygon:
    t = np.radians(angle_deg)
    dx = np.array([-w, w, w, -w]) / 2
    dy = np.array([-h, -h, h, h]) / 2
    return shapely.Polygon(np.column_stack([cx + dx * np.cos(t) - dy * np.sin(t), cy + dx * np.sin(t) + dy * np.cos(t)]))


def blob(rng: np.random.Generator, cx: float, cy: float, a: float, b: float, angle_deg: float,
         vertices: int = 6) -> shapely.Polygon:
    """An irregular convex-ish polygon of `vertices` corners inside an a×b ellipse (metres)."""
    # keep the corners spread round the centre so the polygon stays star-shaped and fat
    theta = (np.arange(vertices) + rng.uniform(0.15, 0.85, vertices)) * 2 * np.pi / vertices
    r = rng.uniform(0.75, 1.0, vertices)
    x, y = a * r * np.cos(theta), b * r * np.sin(theta)
    t = np.radians(angle_deg)
    return shapely.Polygon(np.column_stack([cx + x * np.cos(t) - y * np.sin(t), cy + x * np.sin(t) + y * np.cos(t)]))


def densified_line(points_lonlat: list[tuple[float, float]], step_m: float = 2000.0) -> shapely.LineString:
    """A metric-plane line through lon/lat points, densified."""
    x, y = to_local_xy([p[0] for p in points_lonlat], [p[1] for p in points_lonlat])
    line = shapely.LineString(np.column_stack([x, y]))
    return shapely.segmentize(line, step_m)
