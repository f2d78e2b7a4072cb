"""Imagery epochs (遥感影像期次) and change patches (变化图斑) from two classified epochs.

`register_epoch` records a GeoTIFF as a new `imagery_epoch` row: its footprint (the raster's
bounds, densified and converted to EPSG:4490), date, sensor and ground resolution.

`derive_change_patches` compares two *classified* rasters of the same grid. A classified
raster holds one GB/T 21010 class per pixel, stored as the integer of its code: 101 = 0101
水田, 602 = 0602 采矿用地, 3 = 03 林地 (two-digit first-level classes below 100); 0 is no data.
Pixels that became construction land (or mining, 0602) from a non-construction class are
vectorised with rasterio.features.shapes, one patch per connected region of equal
(before, after) classes, and inserted into `change_patch` with both classes, its county (by
the patch's point on surface) and its ellipsoidal area — all in one transaction.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import rasterio
import shapely
from rasterio import features
from rasterio.warp import transform_geom
from sqlalchemy import Connection, text

from etl.importer.errors import ImportFailed
from layers.codes import CONSTRUCTION_CLASSES, LAND_USE_CLASS
from layers.registry import STORAGE_SRID
from services.areas import area_sql

MINING_CLASS = "0602"
NODATA = 0


class ImageryError(ImportFailed):
    pass


def _open(path: Path):
    try:
        with warnings.catch_warnings():   # a raster without georeferencing is reported below, by name
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            return rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise ImageryError(f"{path.name}: not a readable raster ({exc})") from None


def register_epoch(conn: Connection, path: Path | str, name: str, acquired_on: date,
                   sensor: str | None = None) -> int:
    """Insert the epoch; returns its id. The raster must carry a CRS."""
    path = Path(path)
    with _open(path) as src:
        if src.crs is None:
            raise ImageryError(f"{path.name}: the raster has no CRS; assign one (e.g. gdal_edit.py -a_srs EPSG:4490)")
        outline = shapely.box(*src.bounds)
        outline = shapely.segmentize(outline, max(src.width * abs(src.res[0]), src.height * abs(src.res[1])) / 16)
        footprint = shapely.geometry.shape(transform_geom(src.crs, f"EPSG:{STORAGE_SRID}",
                                                          shapely.geometry.mapping(outline)))
        if src.crs.is_geographic:
            lat = (src.bounds.bottom + src.bounds.top) / 2
            resolution = abs(src.res[0]) * 111_320 * np.cos(np.radians(lat))
        else:
            resolution = abs(src.res[0])
    if conn.execute(text("SELECT 1 FROM imagery_epoch WHERE name = :n"), dict(n=name)).first():
        raise ImageryError(f"epoch {name!r} is registered already")
    return conn.execute(text(f"""
        INSERT INTO imagery_epoch (name, acquired_on, sensor, resolution_m, path, geom)
        VALUES (:name, :on, :sensor, :res, :path, ST_Multi(ST_GeomFromText(:wkt, {STORAGE_SRID}))) RETURNING id"""),
        dict(name=name, on=acquired_on, sensor=sensor, res=float(resolution), path=str(path.resolve()),
             wkt=footprint.wkt)).scalar_one()


def class_code(value: int) -> str | None:
    """The GB/T 21010 code a classified pixel value stands for (None for no data / unknown)."""
    if value == NODATA:
        return None
    code = f"{value:02d}" if value < 100 else f"{value:04d}"
    return code if code in LAND_USE_CLASS else None


@dataclass(frozen=True)
class ChangeSummary:
    patches: int
    outside_counties: int
    area_m2: float


def _read_classes(path: Path):
    with _open(path) as src:
        if src.count != 1 or src.dtypes[0] not in ("uint8", "uint16", "int16", "int32", "uint32"):
            raise ImageryError(f"{path.name}: a classified epoch is one integer band of class codes")
        if src.crs is None:
            raise ImageryError(f"{path.name}: the raster has no CRS")
        return src.read(1), src.transform, src.crs


def derive_change_patches(conn: Connection, before: Path | str, after: Path | str, *, batch: str,
                          epoch_before: str, epoch_after: str, detected_on: date,
                          min_pixels: int = 1) -> ChangeSummary:
    """Change patches between two classified epochs into `change_patch`; see the module doc."""
    before, after = Path(before), Path(after)
    a, transform, crs = _read_classes(before)
    b, transform_b, crs_b = _read_classes(after)
    if a.shape != b.shape or transform != transform_b or crs != crs_b:
        raise ImageryError(f"{before.name} and {after.name} are not on the same grid (shape, transform and CRS "
                           "must be equal; resample one onto the other first)")
    values = np.union1d(np.unique(a), np.unique(b))
    codes = {int(v): class_code(int(v)) for v in values}
    unknown = sorted(int(v) for v, c in codes.items() if c is None and v != NODATA)
    if unknown:
        raise ImageryError(f"pixel values {unknown[:10]} are no GB/T 21010 class codes")
    built = {v for v, c in codes.items() if c is not None and (c in CONSTRUCTION_CLASSES or c == MINING_CLASS)}
    changed = (a != b) & (a != NODATA) & (b != NODATA) & np.isin(b, list(built)) & ~np.isin(a, list(built))
    key = (a.astype(np.int64) * 10_000 + b.astype(np.int64)).astype(np.int32)
    rows = []
    for geom, value in features.shapes(key, mask=changed, transform=transform, connectivity=4):
        poly = shapely.geometry.shape(transform_geom(crs, f"EPSG:{STORAGE_SRID}", geom) if not crs.to_epsg() == STORAGE_SRID
                                      else geom)
        px = abs(shapely.area(shapely.geometry.shape(geom)) / (transform.a * transform.e))
        if px < min_pixels:
            continue
        v = int(value)
        rows.append((codes[v // 10_000], codes[v % 10_000], shapely.to_wkb(poly, hex=True)))
    if conn.execute(text("SELECT 1 FROM change_patch WHERE batch = :b LIMIT 1"), dict(b=batch)).first():
        raise ImageryError(f"monitoring batch {batch!r} exists already")
    result = conn.execute(text(f"""
        WITH p AS (
            SELECT ordinality AS k, c_before, c_after, ST_Multi(ST_SetSRID(ST_GeomFromWKB(decode(w, 'hex')), {STORAGE_SRID})) AS geom
            FROM unnest(CAST(:before AS text[]), CAST(:after AS text[]), CAST(:wkb AS text[]))
                 WITH ORDINALITY AS t(c_before, c_after, w)),
        placed AS (
            SELECT p.*, (SELECT a.code FROM admin_division a WHERE a.level = 'county'
                         AND ST_Intersects(a.geom, ST_PointOnSurface(p.geom)) ORDER BY a.code LIMIT 1) AS county
            FROM p),
        ins AS (
            INSERT INTO change_patch (patch_no, batch, kind, epoch_before, epoch_after, class_before, class_after,
                                      area_m2, detected_on, county_code, geom)
            SELECT :batch || '-' || lpad(k::text, 5, '0'), :batch,
                   CASE WHEN c_after = '{MINING_CLASS}' THEN 'mining' ELSE 'construction' END,
                   :eb, :ea, c_before, c_after, {area_sql('geom')}, :on, county, geom
            FROM placed WHERE county IS NOT NULL ORDER BY k
            RETURNING area_m2)
        SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM placed WHERE county IS NULL),
               (SELECT coalesce(sum(area_m2), 0) FROM ins)"""),
        dict(before=[r[0] for r in rows], after=[r[1] for r in rows], wkb=[r[2] for r in rows], batch=batch,
             eb=epoch_before, ea=epoch_after, on=detected_on)).one()
    return ChangeSummary(int(result[0]), int(result[1]), float(result[2]))
