"""Imagery tiles (影像瓦片): each imagery epoch's GeoTIFF becomes a COG and a tile pyramid, and
MapProxy's configuration is generated from the `imagery_epoch` rows (a new epoch is a new row
and a new `tiles seed`, no code).

MapProxy cannot read GeoTIFF, so `seed` writes, per epoch, under `<tile_dir>/imagery/<name>/`:
- `<name>.cog.tif` a cloud-optimized GeoTIFF (EPSG:4490, deflate, internal overviews);
- `<name>.gpkg` a GeoPackage tile pyramid in GoogleMapsCompatible (EPSG:3857, PNG, with
  overviews down to the level where the epoch is one tile), read by MapProxy as a cache
  with no source;
- `xyz/{z}/{x}/{y}.png` the pyramid's stored tiles as files (the very bytes MapProxy sends for
  them), which the static front (tiles.front) serves without MapProxy.
MapProxy serves each epoch in the grid `webmercator` from that pyramid, and in the CGCS2000
geographic grid `cgcs2000` (EPSG:4490, the GlobalCRS84Quad layout) from a second cache whose
source is the first: MapProxy reprojects on demand and keeps the tiles in
`<tile_dir>/imagery/<name>/<name>_cgcs2000.gpkg`.
"""
from __future__ import annotations

import math
import os
import re
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml
from sqlalchemy import Connection, text

MAPPROXY_YAML = "mapproxy.yaml"
GRIDS = {"webmercator": "EPSG:3857", "cgcs2000": "EPSG:4490"}
WMS_SRS = ["EPSG:3857", "EPSG:4490", "EPSG:4326", "CRS:84"]
UPSCALE_LEVELS = 6
XYZ_DIR = "xyz"       # the pyramid's tiles as files, for the static front
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class ImageryError(RuntimeError):
    pass


@dataclass(frozen=True)
class Epoch:
    """One imagery epoch; `layer` is its tile layer name (the file's stem as an identifier:
    epoch names such as 2025年度 are for people, and MapProxy layer names must be plain)."""
    layer: str
    name: str
    acquired_on: date
    sensor: str | None
    resolution_m: float | None
    path: str                   # relative to the data directory
    bounds: tuple[float, float, float, float]   # lon/lat of the footprint

    @property
    def table_name(self) -> str:
        return self.layer.upper()   # rasterio upper-cases creation option values

    def files(self, tile_dir: Path) -> dict[str, Path]:
        d = Path(tile_dir) / "imagery" / self.layer
        return {"dir": d, "cog": d / f"{self.layer}.cog.tif", "gpkg": d / f"{self.layer}.gpkg",
                "cgcs2000": d / f"{self.layer}_cgcs2000.gpkg", "xyz": d / XYZ_DIR}


def epochs(conn: Connection) -> list[Epoch]:
    rows = conn.execute(text(
        "SELECT name, acquired_on, sensor, resolution_m, path, ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), "
        "ST_YMax(geom) FROM imagery_epoch ORDER BY acquired_on, name")).all()
    out, seen = [], {}
    for r in rows:
        layer = re.sub(r"[^A-Za-z0-9_]", "_", Path(r.path).stem)
        layer = layer if _NAME.match(layer) else f"epoch_{layer}"
        if layer in seen:
            raise ImageryError(f"imagery_epoch {r.name!r} and {seen[layer]!r}: files with the same name "
                               f"({Path(r.path).stem}) would share a tile layer")
        seen[layer] = r.name
        out.append(Epoch(layer, r.name, r.acquired_on, r.sensor, r.resolution_m, r.path, tuple(r[5:9])))
    return out


def is_seeded(epoch: Epoch, data_dir: Path, tile_dir: Path) -> bool:
    """Whether the epoch's COG and pyramid exist and are newer than its GeoTIFF."""
    src, files = Path(data_dir) / epoch.path, epoch.files(tile_dir)
    try:
        source_time = src.stat().st_mtime
        return all(files[k].stat().st_mtime >= source_time for k in ("cog", "gpkg"))
    except OSError:
        return False


def seed_epoch(epoch: Epoch, data_dir: Path, tile_dir: Path, say=print) -> dict[str, Path]:
    """Write the COG and the GoogleMapsCompatible PNG pyramid of one epoch (replacing old ones)."""
    import rasterio
    from rasterio.shutil import copy as rio_copy

    src = Path(data_dir) / epoch.path
    if not src.exists():
        raise ImageryError(f"imagery_epoch {epoch.name}: file {src} does not exist")
    files = epoch.files(tile_dir)
    files["dir"].mkdir(parents=True, exist_ok=True)
    for key in ("cog", "gpkg", "cgcs2000"):
        files[key].unlink(missing_ok=True)
    rio_copy(src, files["cog"], driver="COG", COMPRESS="DEFLATE", PREDICTOR="2", OVERVIEWS="AUTO")
    rio_copy(src, files["gpkg"], driver="GPKG", TILING_SCHEME="GoogleMapsCompatible", TILE_FORMAT="PNG",
             RASTER_TABLE=epoch.table_name, RESAMPLING="BILINEAR", ZOOM_LEVEL_STRATEGY="UPPER")
    with rasterio.open(files["gpkg"], "r+", TILE_FORMAT="PNG") as dst:   # or the overviews turn JPEG
        levels = max(0, math.ceil(math.log2(max(dst.width, dst.height) / 256)))
        if levels:
            dst.build_overviews([2 ** i for i in range(1, levels + 1)], rasterio.enums.Resampling.average)
    count = export_xyz(epoch, tile_dir)
    say(f"tiles: {epoch.name} ({epoch.layer}): {files['cog'].name}, {files['gpkg'].name}, {count} tile files")
    return files


def export_xyz(epoch: Epoch, tile_dir: Path) -> int:
    """Write the stored tiles of the EPSG:3857 pyramid as files `xyz/{z}/{x}/{y}.png` (the bytes MapProxy
    serves for `/tiles/tiles/{epoch}/webmercator/{z}/{x}/{y}.png`), for the static front (tiles.front);
    returns how many. The GeoPackage's GoogleMapsCompatible rows count from the top, as XYZ does."""
    import sqlite3
    files = epoch.files(tile_dir)
    fresh = files["xyz"].with_name(f".{XYZ_DIR}-new")
    shutil.rmtree(fresh, ignore_errors=True)
    count = 0
    with sqlite3.connect(f"file:{files['gpkg']}?mode=ro", uri=True) as db:
        rows = db.execute(f'SELECT zoom_level, tile_column, tile_row, tile_data FROM "{epoch.table_name}"')
        for z, x, y, data in rows:
            path = fresh / str(z) / str(x) / f"{y}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            count += 1
    old = files["xyz"].with_name(f".{XYZ_DIR}-old")
    if files["xyz"].exists():
        os.replace(files["xyz"], old)
    os.replace(fresh, files["xyz"])
    shutil.rmtree(old, ignore_errors=True)
    return count


def native_zoom(epoch: Epoch, tile_dir: Path) -> int:
    """The finest zoom level of the epoch's GoogleMapsCompatible pyramid."""
    import sqlite3
    with sqlite3.connect(f"file:{epoch.files(tile_dir)['gpkg']}?mode=ro", uri=True) as db:
        return db.execute("SELECT max(zoom_level) FROM gpkg_tile_matrix WHERE table_name = ?",
                          (epoch.table_name,)).fetchone()[0]


def mapproxy_config(epochs_: list[Epoch], tile_dir: Path) -> dict:
    """MapProxy's configuration for the epochs: WMTS, TMS/XYZ, WMS 1.3.0; no demo service."""
    layers, caches = [], {}
    for e in epochs_:
        files = e.files(tile_dir)
        caches[f"{e.layer}_webmercator"] = {
            "grids": ["webmercator"], "sources": [], "format": "image/png",
            # beyond the pyramid's finest level, tiles are enlarged from it (not stored)
            "upscale_tiles": UPSCALE_LEVELS, "cache_rescaled_tiles": False,
            "cache": {"type": "geopackage", "filename": str(files["gpkg"]), "table_name": e.table_name},
        }
        caches[f"{e.layer}_cgcs2000"] = {
            "grids": ["cgcs2000"], "sources": [f"{e.layer}_webmercator"], "format": "image/png",
            "cache": {"type": "geopackage", "filename": str(files["cgcs2000"]),
                      "table_name": f"{e.table_name}_CGCS2000"},
        }
        layers.append({"name": e.layer, "title": f"{e.name} ({e.acquired_on.isoformat()}, {e.sensor or ''})",
                       "sources": [f"{e.layer}_webmercator"],          # WMS: reprojected from the pyramid
                       "tile_sources": [f"{e.layer}_webmercator", f"{e.layer}_cgcs2000"]})
    return {
        "services": {
            "wmts": {"restful": True, "kvp": True,
                     "restful_template": "/{Layer}/{TileMatrixSet}/{TileMatrix}/{TileCol}/{TileRow}.{Format}"},
            "tms": {"use_grid_names": True},     # both grids have origin nw: /tiles/… is XYZ
            "wms": {"versions": ["1.3.0", "1.1.1"], "srs": WMS_SRS, "image_formats": ["image/png", "image/jpeg"],
                    "md": {"title": "吉林省自然资源一张图 影像 WMS", "abstract": "Imagery epochs of OneMap"}},
        },
        "layers": layers,
        "caches": caches,
        "sources": {},
        "grids": {
            "webmercator": {"base": "GLOBAL_WEBMERCATOR"},
            "cgcs2000": {"srs": "EPSG:4490", "bbox": [-180, -90, 180, 90], "bbox_srs": "EPSG:4490",
                         "origin": "nw", "tile_size": [256, 256],
                         "res": [180 / 256 / 2 ** z for z in range(21)]},
        },
        "globals": {"cache": {"base_dir": str(Path(tile_dir) / "mapproxy"), "lock_dir": str(Path(tile_dir) / "mapproxy" / "locks")},
                    "image": {"paletted": False}},
    }


def write_mapproxy_config(epochs_: list[Epoch], tile_dir: Path) -> Path:
    path = Path(tile_dir) / MAPPROXY_YAML
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("# generated by `flask --app wsgi tiles seed` from the imagery_epoch rows: do not edit\n"
                   + yaml.safe_dump(mapproxy_config(epochs_, tile_dir), allow_unicode=True, sort_keys=False),
                   encoding="utf-8")
    tmp.replace(path)
    return path


def tilejson(epoch: Epoch, tiles_base: str) -> dict:
    """TileJSON of one epoch; tiles from MapProxy's XYZ (TMS with origin nw) endpoint."""
    b = [round(v, 6) for v in epoch.bounds]
    return {
        "tilejson": "3.0.0",
        "name": f"{epoch.name} {epoch.layer}",
        "description": f"{epoch.sensor or ''} {epoch.acquired_on.isoformat()}".strip(),
        "version": "1.0.0",
        "scheme": "xyz",
        "tiles": [f"{tiles_base}/tiles/{epoch.layer}/webmercator/{{z}}/{{x}}/{{y}}.png"],
        "minzoom": 0,
        "maxzoom": 20,
        "bounds": b,
        "center": [round((b[0] + b[2]) / 2, 6), round((b[1] + b[3]) / 2, 6), 12],
    }
