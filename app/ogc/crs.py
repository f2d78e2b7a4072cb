"""The coordinate reference systems the OGC API offers (Features Part 2).

Storage is EPSG:4490 (CGCS2000, stored lon,lat). Output, bbox-crs and filter-crs accept
CRS84, EPSG:4490, EPSG:4326, Web Mercator and the CGCS2000 3-degree Gauss-Krüger zones that
cover Jilin (121.6°E–131.3°E: zones 41–44 with zone prefix, CM 123E–132E without). Axis
order follows each CRS's definition (EPSG:4490/4326 lat,lon; the GK zones northing,easting),
as Part 2 requires; only CRS84 and EPSG:3857 are x=east first.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import pyproj

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/{}"
STORAGE_SRID = 4490

JILIN_GK_ZONES = (4529, 4530, 4531, 4532, 4550, 4551, 4552, 4553)
OFFERED_EPSG = (4490, 4326, 3857, *JILIN_GK_ZONES)
SUPPORTED_CRS = [CRS84, *(EPSG_URI.format(code) for code in OFFERED_EPSG)]


class UnsupportedCrs(ValueError):
    def __init__(self, uri: str):
        super().__init__(f"CRS {uri!r} is not offered; use one of: {', '.join(SUPPORTED_CRS)}")


@dataclass(frozen=True)
class OutputCrs:
    uri: str
    srid: int
    north_first: bool  # the CRS's first axis points north: coordinates are written lat,lon / N,E
    precision: int     # decimal places that keep ~1 cm

    @property
    def needs_transform(self) -> bool:
        return self.srid != STORAGE_SRID


@lru_cache(maxsize=None)
def output_crs(uri: str | None) -> OutputCrs:
    """The SRID, axis order and precision of an offered CRS URI (None: CRS84)."""
    if uri is None or uri == CRS84:
        return OutputCrs(CRS84, STORAGE_SRID, False, 8)
    if uri not in SUPPORTED_CRS:
        raise UnsupportedCrs(uri)
    srid = int(uri.rsplit("/", 1)[1])
    crs = pyproj.CRS.from_epsg(srid)
    north_first = crs.axis_info[0].direction.lower() == "north"
    return OutputCrs(uri, srid, north_first, 8 if crs.is_geographic else 3)


@lru_cache(maxsize=None)
def to_storage_transformer(uri: str) -> pyproj.Transformer:
    """Coordinates in `uri`'s own axis order → lon,lat on CGCS2000 (how geom is stored)."""
    if uri != CRS84 and uri not in SUPPORTED_CRS:
        raise UnsupportedCrs(uri)
    source = pyproj.CRS.from_user_input("OGC:CRS84" if uri == CRS84 else f"EPSG:{uri.rsplit('/', 1)[1]}")
    return pyproj.Transformer.from_crs(source, pyproj.CRS.from_epsg(STORAGE_SRID), always_xy=False)


def to_storage_lonlat(uri: str, x: float, y: float) -> tuple[float, float]:
    """One coordinate pair in `uri` order → (lon, lat) on CGCS2000."""
    if uri == CRS84:
        return x, y
    a, b = to_storage_transformer(uri).transform(x, y)
    return b, a  # EPSG:4490 is lat,lon by definition
