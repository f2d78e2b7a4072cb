"""An uploaded outline (查询范围文件) for the area query: a GeoJSON file or a zipped Shapefile.

Read with the import engine's readers and safety checks (`etl.importer`: size limit, zip
bombs, path traversal, encodings) and its CRS rules (declared in the file, or told by the
coordinates: lon/lat, Gauss-Krüger with the zone prefix); Gauss-Krüger outlines are
transformed to EPSG:4490. All polygons of the file together make the outline.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import shapely
from pyproj import Transformer

from etl.importer import Limits, ReadFailed
from etl.importer import readers, safety
from etl.importer.crs import resolve
from layers.registry import STORAGE_SRID

OUTLINE_SUFFIXES = (".geojson", ".json", ".zip")
OUTLINE_LIMITS = Limits(max_file_bytes=20 << 20, max_unpacked_bytes=100 << 20, max_features=10_000)


def read_outline(path: Path, display: str, limits: Limits = OUTLINE_LIMITS) -> shapely.Geometry:
    """The outline in EPSG:4490 (one Polygon or MultiPolygon); ImportFailed naming the file otherwise."""
    suffix = path.suffix.lower()
    if suffix not in OUTLINE_SUFFIXES:
        raise ReadFailed(f"{display}: send a GeoJSON file or a zipped Shapefile ({', '.join(OUTLINE_SUFFIXES)})")
    safety.check_size(path, limits)
    with tempfile.TemporaryDirectory(prefix="onemap-outline-") as workdir:
        if suffix == ".zip":
            files = safety.unpack_zip(path, Path(workdir), limits)
            data = [p for p in files if p.suffix.lower() in (".shp", ".geojson", ".json") and not p.name.startswith("._")]
            if len(data) != 1:
                raise ReadFailed(f"{display}: the archive must hold exactly one .shp or .geojson file "
                                 f"(found {len(data)})")
            path, display = data[0], f"{display}!{data[0].name}"
        source = readers.read_source(path, display, limits)
    geoms = source.geometries[[g is not None and not g.is_empty for g in source.geometries]]
    if len(geoms) == 0:
        raise ReadFailed(f"{display}: no geometry in the file")
    others = sorted({g.geom_type for g in geoms} - {"Polygon", "MultiPolygon"})
    if others:
        raise ReadFailed(f"{display}: the outline must be polygons; the file holds {', '.join(others)}")
    invalid = np.flatnonzero(~shapely.is_valid(geoms))
    if len(invalid):
        raise ReadFailed(f"{display}: feature {invalid[0] + 1} is not a valid polygon: "
                         f"{shapely.is_valid_reason(geoms[invalid[0]])}")
    coords = shapely.get_coordinates(geoms)
    epsg = resolve(display, coords[:, 0], coords[:, 1], source.declared_epsg, source.declared_crs, None).epsg
    if epsg not in (STORAGE_SRID, 4326):
        to_storage = Transformer.from_crs(epsg, STORAGE_SRID, always_xy=True)
        geoms = shapely.transform(geoms, lambda c: np.column_stack(to_storage.transform(c[:, 0], c[:, 1])))
    return shapely.union_all(geoms)
