"""Downloads of a whole collection, or of the part a filter selects: GeoJSON, CSV, GeoPackage and
zipped Shapefile (`/collections/{id}/download?f=…`, on both services).

The request takes the same selection parameters as `/items` (`bbox`, `bbox-crs`, `datetime`,
`filter`, `filter-lang`, `filter-crs`, `property=value`, `properties`, `crs`) and returns every
matching feature, in id order, not a page. Rows come from the collection's provider
(`OneMapProvider.export`), so the public service reads its `pub` views exactly as `/items` does,
through a server-side cursor in batches: memory stays bounded whatever the layer's size.

- GeoJSON and CSV are streamed as they are read (the query runs, and a bad filter is a 400,
  before the first byte is sent).
- GeoPackage and Shapefile are written batch by batch by `etl.exporter` (pyogrio/GDAL, the
  same writer and DBF names as `flask etl export`) into a temporary directory, then streamed
  and deleted. The Shapefile comes zipped with its `.cpg` (UTF-8) and a `fields.csv` naming
  the full attribute name, zh and en titles of each DBF column (DBF names are at most 10
  characters: the customary database names DLBM, WXRS … where declared). Only a few file exports run at once per process
  (503 with Retry-After beyond that).
"""
from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
import threading
import zipfile
from datetime import date, datetime
from pathlib import Path
from typing import Iterator

from flask import Response, request
from pygeoapi.plugin import load_plugin
from pygeoapi.util import get_provider_by_type, transform_bbox

from app.ogc.config import Audience
from app.ogc.crs import CRS84, output_crs
from app.ogc.provider import BadQuery, QueryExtras
from etl.exporter import write_layer, write_shapefile
from layers import Field, Layer

DOWNLOAD_PARAMETERS = {"f", "lang", "bbox", "bbox-crs", "crs", "datetime", "properties",
                       "filter", "filter-lang", "filter-crs"}
FORMATS = {
    "geojson": ("application/geo+json", "geojson"),
    "csv": ("text/csv; charset=utf-8", "csv"),
    "gpkg": ("application/geopackage+sqlite3", "gpkg"),
    "shp": ("application/zip", "shp.zip"),
}
FILE_EXPORTS_AT_ONCE = 2
_file_exports = threading.BoundedSemaphore(FILE_EXPORTS_AT_ONCE)
CHUNK = 1 << 16


class DownloadError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.headers = status, code, headers or {}


def download(audience: Audience, api, collection_id: str, extras: QueryExtras) -> Response:
    """The response for a checked download request (parameters validated by the blueprint)."""
    args = request.args
    fmt = args.get("f", "geojson")
    if fmt not in FORMATS:
        raise DownloadError(400, "InvalidParameterValue", f"f: {fmt!r}; downloads are f={', f='.join(FORMATS)}")
    layer = audience.layer(collection_id)
    provider = load_plugin("provider", get_provider_by_type(api.config["resources"][collection_id]["providers"],
                                                            "feature"))
    visible = {f.name: f for f in audience.fields(layer)}
    bbox = []
    if args.get("bbox"):
        bbox = [float(v) for v in args["bbox"].split(",")]
        bbox_crs = args.get("bbox-crs", CRS84)
        if bbox_crs != CRS84:
            bbox = transform_bbox(bbox, bbox_crs, CRS84)  # as pygeoapi does for /items
    properties = [(name, value) for name, value in args.items() if name in visible or name == "id"]
    selected: list[str] = []
    if args.get("properties"):
        selected = [p.strip() for p in args["properties"].split(",") if p.strip()]
        unknown = [p for p in selected if p not in visible]
        if unknown:
            raise DownloadError(400, "InvalidParameterValue", f"properties: unknown {', '.join(unknown)}")
    crs_uri = args.get("crs") or None
    shape = {"geojson": "geojson", "csv": "wkt"}.get(fmt, "wkb")
    if fmt in ("gpkg", "shp") and not _file_exports.acquire(blocking=False):
        raise DownloadError(503, "ServiceUnavailable", "too many file exports at once; try again shortly",
                            {"Retry-After": "30"})
    try:
        names, batches = provider.export(shape, bbox, properties, extras, selected, crs_uri)
    except BaseException:
        if fmt in ("gpkg", "shp"):
            _file_exports.release()
        raise
    mimetype, suffix = FORMATS[fmt]
    headers = {"Content-Disposition": f'attachment; filename="{collection_id}.{suffix}"',
               "Content-Crs": f"<{output_crs(crs_uri).uri}>"}
    fields = [visible[n] for n in names[1:-1]]
    if fmt == "geojson":
        return Response(_geojson(batches), mimetype=mimetype, headers=headers)
    if fmt == "csv":
        return Response(_csv(names, fields, batches), mimetype=mimetype, headers=headers)
    try:
        srid = output_crs(crs_uri).srid
        workdir = Path(tempfile.mkdtemp(prefix="onemap-export-"))
        try:
            path = (_geopackage if fmt == "gpkg" else _shapefile)(workdir, layer, fields, batches, srid)
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise
    finally:
        batches.close()
        _file_exports.release()
    headers["Content-Length"] = str(path.stat().st_size)
    return Response(_file_chunks(path, workdir), mimetype=mimetype, headers=headers, direct_passthrough=True)


# --- streamed text formats ---------------------------------------------------------------------
def _geojson(batches: Iterator[list]) -> Iterator[bytes]:
    yield b'{"type":"FeatureCollection","features":['
    first = True
    for rows in batches:
        text = ",".join(row[0] for row in rows)
        yield ((text if first else "," + text)).encode("utf-8")
        first = False
    yield b"]}"


def _csv_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _csv(names: list[str], fields: list[Field], batches: Iterator[list]) -> Iterator[bytes]:
    """id, the properties, geometry as WKT; UTF-8 without BOM, RFC 4180 quoting."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(names[:-1] + ["wkt"])
    for rows in batches:
        for row in rows:
            writer.writerow([_csv_value(v) for v in row])
        yield out.getvalue().encode("utf-8")
        out.seek(0)
        out.truncate()
    if out.tell():
        yield out.getvalue().encode("utf-8")


# --- GIS files (written by etl.exporter, the one writer the CLI export uses too) ---------------
def _geopackage(workdir: Path, layer: Layer, fields: list[Field], batches, srid: int) -> Path:
    path = workdir / f"{layer.name}.gpkg"
    write_layer(path, "GPKG", layer, ["id", *(f.name for f in fields)], fields, batches, srid,
                layer_options={"FID": "fid", "IDENTIFIER": layer.zh, "DESCRIPTION": layer.en})
    return path


def _shapefile(workdir: Path, layer: Layer, fields: list[Field], batches, srid: int) -> Path:
    folder = workdir / layer.name
    folder.mkdir()
    write_shapefile(folder / f"{layer.name}.shp", layer, fields, batches, srid, table=folder / "fields.csv")
    archive = workdir / f"{layer.name}.shp.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for part in sorted(folder.iterdir()):
            zf.write(part, part.name)
    shutil.rmtree(folder)
    return archive


def _file_chunks(path: Path, workdir: Path) -> Iterator[bytes]:
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                yield chunk
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


__all__ = ["DOWNLOAD_PARAMETERS", "DownloadError", "FORMATS", "download", "BadQuery"]
