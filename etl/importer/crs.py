"""The CRS of a submission: declared (option, .prj, GeoPackage) and told by the coordinates.

Coordinates in CGCS2000 lon/lat lie within China's extent; Gauss-Krüger eastings carry a
2-digit zone in front (8 digits: 3-degree zones 25–45 → EPSG:4513–4533, 6-degree zones 13–23
→ EPSG:4491–4501) or are bare (6 digits, around 500 000: EPSG:4534–4554 / 4502–4512, the zone
then comes from the declared county's longitude). In files, x is the easting (GIS order),
unlike the surveyors' 拐点 tables. A declared CRS that the coordinates contradict is an error.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pyproj import CRS, Transformer

from etl import corners
from etl.importer.errors import CrsProblem

GEOGRAPHIC = {4490, 4326, 4610, 4214}
CHINA = (73.0, 3.0, 136.0, 54.0)   # lon/lat extent with margin


@dataclass(frozen=True)
class Resolved:
    epsg: int
    how: str                  # "declared", "detected", "declared, confirmed"
    swapped: bool = False     # surveyors' X/Y (northing first) read from a CSV


def six_degree_epsg(zone: int, prefixed: bool) -> int:
    if not 13 <= zone <= 23:
        raise CrsProblem(f"6-degree zone {zone} is outside China's zones 13-23")
    return (4491 if prefixed else 4502) + zone - 13


def gk_kind(epsg: int) -> tuple[int, int, bool] | None:
    """(zone width 3|6, zone, prefixed) of a CGCS2000 GK EPSG code, else None."""
    if 4513 <= epsg <= 4554:
        zone, prefixed = corners.gk_zone_of(epsg)
        return 3, zone, prefixed
    if 4491 <= epsg <= 4512:
        return 6, (epsg - 4491 if epsg <= 4501 else epsg - 4502) + 13, epsg <= 4501
    return None


def _layout(minx, miny, maxx, maxy) -> str:
    if CHINA[0] <= minx and maxx <= CHINA[2] and CHINA[1] <= miny and maxy <= CHINA[3]:
        return "lonlat"
    if 1e7 <= minx and maxx < 1e8 and 1e6 <= miny and maxy < 1e7:
        return "prefixed"
    if 1e5 <= minx and maxx < 1e6 and 1e6 <= miny and maxy < 1e7:
        return "bare"
    if 1e6 <= minx and maxx < 1e7 and (1e7 <= miny and maxy < 1e8 or 1e5 <= miny and maxy < 1e6):
        return "swapped"
    return "unknown"


def _prefixed_epsg(xs: np.ndarray, name: str) -> int:
    zones = np.unique((xs // 1e6).astype(int))
    if len(zones) != 1:
        raise CrsProblem(f"{name}: the eastings carry different zone prefixes {zones.tolist()}")
    zone = int(zones[0])
    if 25 <= zone <= 45:
        return corners.gk_epsg(zone, prefixed=True)
    if 13 <= zone <= 23:
        return six_degree_epsg(zone, prefixed=True)
    raise CrsProblem(f"{name}: easting prefix {zone} is no Gauss-Krüger zone of China (3-degree 25-45, 6-degree 13-23)")


def resolve(name: str, xs: np.ndarray, ys: np.ndarray, declared: int | None, declared_text: str | None,
            lon_hint: float | None, surveyor_axes: bool = False) -> Resolved:
    """The EPSG code of coordinates `xs`, `ys` (finite, non-empty), or CrsProblem naming `name`."""
    bounds = (xs.min(), ys.min(), xs.max(), ys.max())
    layout = _layout(*bounds)
    swapped = False
    if layout == "swapped" and surveyor_axes:
        xs, ys, swapped = ys, xs, True
        bounds = (xs.min(), ys.min(), xs.max(), ys.max())
        layout = _layout(*bounds)
    if layout == "swapped":
        raise CrsProblem(f"{name}: x looks like a northing and y like an easting: the axes are swapped")
    if layout == "unknown":
        raise CrsProblem(f"{name}: coordinates from ({bounds[0]:.6g}, {bounds[1]:.6g}) to ({bounds[2]:.6g}, "
                         f"{bounds[3]:.6g}) fit neither CGCS2000 lon/lat in China nor a Gauss-Krüger zone")
    detected: int | None = None
    if layout == "lonlat":
        detected = 4490
    elif layout == "prefixed":
        detected = _prefixed_epsg(xs, name)
    if declared is None:
        if declared_text:
            raise CrsProblem(f"{name}: the declared CRS is not one we can identify ({declared_text[:80]}); "
                             "give --crs EPSG")
        if detected is not None:
            return Resolved(detected, "detected", swapped)
        if lon_hint is None:
            raise CrsProblem(f"{name}: no CRS given and the eastings have no zone prefix: give --crs "
                             "(e.g. EPSG:4551 for CM 126°E) or --county")
        return Resolved(corners.gk_epsg(corners.zone_for_longitude(lon_hint), prefixed=False),
                        "detected from the county's longitude (no zone prefix)", swapped)
    _check_declared(name, declared, layout, detected, xs, ys)
    return Resolved(declared, "declared, consistent with the coordinates", swapped)


def _check_declared(name, declared, layout, detected, xs, ys) -> None:
    try:
        crs = CRS.from_epsg(declared)
    except Exception:
        raise CrsProblem(f"{name}: EPSG:{declared} is not a known CRS") from None
    says = f"{name}: the CRS is declared as EPSG:{declared} ({crs.name})"
    kind = gk_kind(declared)
    if declared in GEOGRAPHIC or crs.is_geographic:
        if layout != "lonlat":
            hint = f" — they look like EPSG:{detected}" if detected else ""
            raise CrsProblem(f"{says} but the coordinates are not degrees{hint}")
        return
    if kind is not None:
        _, zone, prefixed = kind
        if layout == "lonlat":
            raise CrsProblem(f"{says} but the coordinates are degrees (EPSG:4490?)")
        if prefixed and layout == "bare":
            raise CrsProblem(f"{says} (zone prefix {zone} on the easting) but the eastings carry no prefix")
        if not prefixed and layout == "prefixed":
            raise CrsProblem(f"{says} (no zone prefix) but the eastings carry prefix {int(xs.min() // 1e6)} "
                             f"— they look like EPSG:{detected}")
        if prefixed and detected != declared:
            raise CrsProblem(f"{says} (zone {zone}) but the eastings carry zone prefix {int(xs.min() // 1e6)} "
                             f"— they look like EPSG:{detected}")
    lon, lat = Transformer.from_crs(crs, 4490, always_xy=True).transform(
        [xs.min(), xs.max()], [ys.min(), ys.max()])
    lon, lat = np.asarray(lon), np.asarray(lat)
    if not (np.isfinite(lon).all() and np.isfinite(lat).all()
            and CHINA[0] <= lon.min() and lon.max() <= CHINA[2] and CHINA[1] <= lat.min() and lat.max() <= CHINA[3]):
        raise CrsProblem(f"{says} but the coordinates then fall outside China")
