"""Corner-coordinate tables (拐点坐标) in CGCS2000 Gauss-Krüger zones, parsed and converted.

Mining rights, approvals and other submissions often give a boundary as a list of corner
points, one per line, ``点号,X,Y``:

* X is the northing (7 digits in Jilin, e.g. 4852345.12) and Y the easting — the surveyors'
  convention, which is also the axis order of the EPSG definitions (northing first);
* in a 3-degree zone CRS *with* the zone prefix (EPSG:4513–4533, zones 25–45) Y carries the
  2-digit zone number in front (8 digits, e.g. 42512345.68); *without* it (EPSG:4534–4554,
  named by central meridian) Y is the bare easting around 500000;
* a line holding only the marker ``*`` (optionally followed by commas or a label) closes the
  current ring and starts the next one. A ring lying inside an earlier ring of the same
  table is a hole of it; any other ring is another part (区块) of a multipolygon;
* blank lines and lines starting with ``#`` are ignored; the ring need not repeat its first
  point at the end.

`corners_to_geometry(text, epsg)` converts to an EPSG:4490 MultiPolygon with pyproj (the
vertices are the converted corners, nothing densified); `detect_gk_crs` tells the zone
from a prefixed easting, or from a longitude hint when the prefix is missing, and refuses
coordinates that cannot be a Gauss-Krüger zone of China (swapped X/Y, degrees, missing
digits).
"""
from __future__ import annotations

import re
from functools import lru_cache

import shapely
from pyproj import Transformer
from shapely.geometry import MultiPolygon, Polygon

RING_MARKER = "*"

# 3-degree Gauss-Krüger zones of CGCS2000: zone n (25..45) has central meridian 3n degrees.
_PREFIXED_BASE, _PLAIN_BASE, _FIRST_ZONE, _LAST_ZONE = 4513, 4534, 25, 45


class CornerError(ValueError):
    """A corner table that cannot be read or placed; the message names the line."""


Corner = tuple[str, float, float]          # point number, X (northing), Y (easting)


def zone_for_longitude(lon: float) -> int:
    """The 3-degree zone number whose central meridian is nearest to `lon`."""
    return int(round(lon / 3.0))


def gk_epsg(zone: int, prefixed: bool) -> int:
    """EPSG code of CGCS2000 3-degree GK zone `zone`, with or without the prefix on Y."""
    if not _FIRST_ZONE <= zone <= _LAST_ZONE:
        raise CornerError(f"3-degree zone {zone} is outside China's zones {_FIRST_ZONE}-{_LAST_ZONE}")
    return (_PREFIXED_BASE if prefixed else _PLAIN_BASE) + zone - _FIRST_ZONE


def gk_zone_of(epsg: int) -> tuple[int, bool]:
    """(zone, prefixed) of a CGCS2000 3-degree GK EPSG code."""
    if _PREFIXED_BASE <= epsg < _PREFIXED_BASE + 21:
        return epsg - _PREFIXED_BASE + _FIRST_ZONE, True
    if _PLAIN_BASE <= epsg < _PLAIN_BASE + 21:
        return epsg - _PLAIN_BASE + _FIRST_ZONE, False
    raise CornerError(f"EPSG:{epsg} is not a CGCS2000 3-degree Gauss-Krüger zone (EPSG:4513-4554)")


def parse_corners(text: str) -> list[list[Corner]]:
    """Rings of (点号, X, Y) from a corner table; raises CornerError naming the bad line."""
    rings: list[list[Corner]] = []
    current: list[Corner] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip().replace("，", ",")
        if not line or line.startswith("#"):
            continue
        if line.startswith(RING_MARKER):
            if current:
                rings.append(current)
            current = []
            continue
        parts = [p.strip() for p in re.split(r"[,\t ]+", line) if p.strip()]
        if len(parts) != 3:
            raise CornerError(f"line {lineno}: expected '点号,X,Y', got {raw!r}")
        try:
            x, y = float(parts[1]), float(parts[2])
        except ValueError:
            raise CornerError(f"line {lineno}: X and Y must be numbers, got {raw!r}") from None
        current.append((parts[0], x, y))
    if current:
        rings.append(current)
    if not rings:
        raise CornerError("no corner points")
    for k, ring in enumerate(rings, start=1):
        distinct = {(x, y) for _, x, y in ring}
        if len(distinct) < 3:
            raise CornerError(f"ring {k}: a boundary needs at least 3 distinct corners, got {len(distinct)}")
    return rings


def format_corners(rings: list[list[Corner]], decimals: int = 2) -> str:
    """The text form of `parse_corners`: one '点号,X,Y' line per corner, '*' between rings."""
    lines: list[str] = []
    for k, ring in enumerate(rings):
        if k:
            lines.append(RING_MARKER)
        lines.extend(f"{no},{x:.{decimals}f},{y:.{decimals}f}" for no, x, y in ring)
    return "\n".join(lines)


def detect_gk_crs(rings: list[list[Corner]], lon_hint: float | None = None) -> int:
    """The EPSG code the corners are in, from their digits (and a longitude hint if unprefixed)."""
    xs = [x for ring in rings for _, x, _ in ring]
    ys = [y for ring in rings for _, _, y in ring]
    if max(map(abs, xs + ys)) < 1000:
        raise CornerError("the corners look like degrees, not Gauss-Krüger metres")
    if all(1e7 <= y < 1e8 for y in ys) and all(1e6 <= x < 1e7 for x in xs):
        zones = {int(y // 1e6) for y in ys}
        if len(zones) != 1:
            raise CornerError(f"the Y values carry different zone prefixes {sorted(zones)}")
        return gk_epsg(zones.pop(), prefixed=True)
    if all(1e7 <= x < 1e8 for x in xs) and all(1e6 <= y < 1e7 for y in ys):
        raise CornerError("X looks like a zone-prefixed easting and Y like a northing: X and Y are swapped "
                          "(拐点 tables give X = northing first)")
    if all(1e5 <= y < 1e6 for y in ys) and all(1e6 <= x < 1e7 for x in xs):
        if lon_hint is None:
            raise CornerError("Y has no zone prefix: the zone (central meridian) must be given, "
                              "e.g. EPSG:4551 for CM 126°E")
        return gk_epsg(zone_for_longitude(lon_hint), prefixed=False)
    if all(1e5 <= x < 1e6 for x in xs) and all(1e6 <= y < 1e7 for y in ys):
        raise CornerError("X looks like an easting and Y like a northing: X and Y are swapped "
                          "(拐点 tables give X = northing first)")
    raise CornerError("the corner values fit no Gauss-Krüger zone layout (X 7 digits, Y 6 or 8 digits)")


@lru_cache(maxsize=64)
def _to_lonlat(epsg: int) -> Transformer:
    return Transformer.from_crs(f"EPSG:{epsg}", "EPSG:4490", always_xy=True)


@lru_cache(maxsize=64)
def _from_lonlat(epsg: int) -> Transformer:
    return Transformer.from_crs("EPSG:4490", f"EPSG:{epsg}", always_xy=True)


def _check_digits(rings: list[list[Corner]], epsg: int) -> None:
    zone, prefixed = gk_zone_of(epsg)
    for ring in rings:
        for no, x, y in ring:
            if not 1e6 <= x < 1e7:
                raise CornerError(f"point {no}: X={x} is not a 7-digit northing")
            if prefixed and int(y // 1e6) != zone:
                raise CornerError(f"point {no}: Y={y} does not carry the zone prefix {zone} of EPSG:{epsg}")
            if not prefixed and not 1e5 <= y < 1e6:
                raise CornerError(f"point {no}: Y={y} is not a bare 6-digit easting as EPSG:{epsg} expects")


def rings_to_lonlat(rings: list[list[Corner]], epsg: int) -> list[list[tuple[float, float]]]:
    """Each corner converted to (lon, lat) on CGCS2000 (EPSG:4490)."""
    _check_digits(rings, epsg)
    transformer = _to_lonlat(epsg)
    out = []
    for ring in rings:
        lon, lat = transformer.transform([y for _, _, y in ring], [x for _, x, _ in ring])
        out.append(list(zip(lon, lat)))
    return out


def corners_to_geometry(text: str, epsg: int | None = None, lon_hint: float | None = None) -> MultiPolygon:
    """The EPSG:4490 boundary of a corner table. Without `epsg` the CRS is detected."""
    rings = parse_corners(text)
    if epsg is None:
        epsg = detect_gk_crs(rings, lon_hint)
    polygons: list[list] = []   # [shell, holes...] per part
    for k, ring in enumerate(rings_to_lonlat(rings, epsg), start=1):
        candidate = Polygon(ring)
        if not candidate.is_valid:
            raise CornerError(f"ring {k}: the corners do not form a simple polygon "
                              f"({shapely.is_valid_reason(candidate)})")
        host = next((p for p in polygons if Polygon(p[0]).contains(candidate)), None)
        if host is not None:
            host.append(ring)
        else:
            polygons.append([ring])
    geom = MultiPolygon([Polygon(p[0], p[1:]) for p in polygons])
    if not geom.is_valid:
        raise CornerError(f"the rings overlap: {shapely.is_valid_reason(geom)}")
    return geom


def lonlat_to_corners(points: list[tuple[float, float]], epsg: int, decimals: int = 2,
                      first_no: int = 1) -> list[Corner]:
    """(lon, lat) points as rounded GK corners (X northing, Y easting) in `epsg`."""
    transformer = _from_lonlat(epsg)
    east, north = transformer.transform([p[0] for p in points], [p[1] for p in points])
    return [(str(first_no + i), round(float(n), decimals), round(float(e), decimals))
            for i, (e, n) in enumerate(zip(east, north))]


def gk_transformers(epsg: int) -> tuple[Transformer, Transformer]:
    """(lon/lat → GK, GK → lon/lat), both taking (easting, northing) / (lon, lat) order."""
    return _from_lonlat(epsg), _to_lonlat(epsg)
