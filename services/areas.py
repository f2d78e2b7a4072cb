"""Areas on the CGCS2000 ellipsoid, in m², hectares (公顷) and mu (亩): the one place they are computed.

Every area the platform reports is the area *on the ellipsoid* of a geometry stored in
EPSG:4490 (lon/lat): never the planar area of a Gauss-Krüger projection (its scale factor
grows away from the central meridian, so the same land measures differently in zones 41 and
42), never degrees², never a sphere. The CGCS2000 ellipsoid is GRS80 to the precision that
matters (a = 6378137 m, 1/f = 298.257222101; they differ only in GM and a sub-mm b).

Two paths compute the same number:

* Python: `geodesic_area_m2` / `areas_m2` use `pyproj.Geod(ellps="GRS80")` (GeographicLib,
  Karney 2013): the polygon's edges are geodesics; holes are subtracted whatever the ring
  orientation; points and lines have no area.
* SQL: `area_sql("t.geom")` gives ``ST_Area((t.geom)::geography, true)`` for set-based
  queries. Findings, checked by tests/test_areas.py on PostGIS 3.3.2 / PROJ 9.1:
  - casting a geometry with SRID 4490 to geography keeps SRID 4490 (no silent 4326), and
    geography functions take the ellipsoid of that SRID from spatial_ref_sys/PROJ (the same
    coordinates read as EPSG:4214 give the Krassowsky-ellipsoid area instead);
  - with use_spheroid = true PostGIS, like pyproj, uses GeographicLib's polygon area: SQL and
    Python differ by < 1e-4 m² (≤ 2e-8 relative on 0.14 ha parcels, ~1e-14 on 2000 km²), and
    both match the closed-form area of meridian/parallel quadrangles to ~3e-10 relative at
    0°, 44° and 70°N. So no ST_Transform and no correction is needed;
  - ST_Area(geography, false) (sphere) is 0.2 % off at Jilin's latitudes (+0.45 % at the
    equator, -0.74 % at 70°N) and numerically broken on small parcels (NaN, or ×137, for a
    0.4 ha quadrangle at 70°N); ST_Area(geometry) is degrees². The helper therefore spells
    out `true` rather than relying on the default.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
import shapely
from pyproj import Geod
from shapely.geometry.base import BaseGeometry

M2_PER_HA = 10_000.0
M2_PER_MU = 10_000.0 / 15.0  # 1 亩 = 666.67 m²; 15 亩 = 1 公顷 exactly

GEOD = Geod(ellps="GRS80")  # = the CGCS2000 ellipsoid


@dataclass(frozen=True)
class Area:
    """An area in square metres, read also in hectares and mu."""
    m2: float

    @property
    def ha(self) -> float:
        return self.m2 / M2_PER_HA

    @property
    def mu(self) -> float:
        return self.m2 * 15.0 / M2_PER_HA  # multiply first: Area(10000).mu == 15.0 exactly

    def as_dict(self) -> dict[str, float]:
        """For reports and JSON: m² and ha to 0.01 m², mu to 0.0001 亩 (~0.07 m²)."""
        return {"m2": round(self.m2, 2), "ha": round(self.ha, 6), "mu": round(self.mu, 4)}


def areas_m2(geoms: Iterable[BaseGeometry | None]) -> np.ndarray:
    """Ellipsoidal areas (m²) of lon/lat EPSG:4490 geometries; None gives NaN.

    Polygons and multipolygons (and polygons inside a geometry collection) are split into rings
    in one shapely call; each ring's area comes from GeographicLib and is added (exterior) or
    subtracted (hole) by absolute value, so ring orientation does not matter.
    Raises ValueError for coordinates that cannot be degrees (a projected CRS by mistake).
    """
    arr = np.asarray(list(geoms) if not isinstance(geoms, np.ndarray) else geoms, dtype=object)
    out = np.zeros(len(arr))
    missing = np.array([g is None for g in arr], dtype=bool)
    out[missing] = np.nan
    parts, part_of = shapely.get_parts(arr[~missing], return_index=True)
    owner = np.flatnonzero(~missing)[part_of]
    polygons = shapely.get_type_id(parts) == 3
    rings, ring_of = shapely.get_rings(parts[polygons], return_index=True)
    if len(rings) == 0:
        return out
    coords, coord_of = shapely.get_coordinates(rings, return_index=True)
    if np.abs(coords[:, 0]).max() > 180 or np.abs(coords[:, 1]).max() > 90:
        raise ValueError("coordinates are not lon/lat degrees: transform to EPSG:4490 before measuring "
                         "(a Gauss-Krüger zone CRS such as EPSG:4551 is northing-first)")
    exterior = np.r_[True, ring_of[1:] != ring_of[:-1]]
    per_ring = np.split(coords, np.flatnonzero(np.diff(coord_of)) + 1)
    signed = np.array([abs(GEOD.polygon_area_perimeter(xy[:, 0], xy[:, 1])[0]) for xy in per_ring])
    signed[~exterior] *= -1.0
    np.add.at(out, owner[polygons][ring_of], signed)
    return out


def geodesic_area_m2(geom: BaseGeometry) -> float:
    """Ellipsoidal area (m²) of one lon/lat EPSG:4490 geometry; 0 for points and lines."""
    return float(areas_m2([geom])[0])


def area(geom: BaseGeometry) -> Area:
    return Area(geodesic_area_m2(geom))


def area_sql(column: str = "geom") -> str:
    """SQL for the ellipsoidal area (m²) of an EPSG:4490 geometry column or expression.

    `column` is spliced into SQL: pass code-defined column names or expressions only,
    never user input.
    """
    return f"ST_Area(({column})::geography, true)"
