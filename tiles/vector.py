"""Vector tiles (MVT) of every layer, rendered by PostGIS (矢量瓦片).

Nothing here is written per layer. For each layer and audience:

- source: the public variant reads the layer's view in schema `pub` (public fields and rows
  only, the same views the public OGC API reads); the internal variant reads the table;
- zooms: from the layer's style `min_zoom` up to `MAX_ZOOM`;
- attributes: below `DETAIL_ZOOM` only the label and the style's category field (what the
  map draws and labels), from `DETAIL_ZOOM` every field the audience may see;
- geometry: a `&&` prefilter on the tile envelope (plus buffer) in EPSG:4490, cut to that
  envelope, simplified to half a pixel of the zoom, transformed to EPSG:3857 and clipped by
  ST_AsMVTGeom.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

from layers import REGISTRY, Field, FieldType, Geometry, Layer, UnknownLayer
from services.publication import PUBLIC_SCHEMA
from styles import style_for

EXTENT = 4096
BUFFER = 64
MARGIN = BUFFER / EXTENT
MAX_ZOOM = 20
DETAIL_ZOOM = 12
SIMPLIFY_PX = 0.5
PUBLIC, INTERNAL = "public", "internal"
JILIN_BBOX = [121.6, 40.8, 131.4, 46.4]  # lon/lat: the bounds of a layer without statistics
AUDIENCES = (PUBLIC, INTERNAL)


class TileError(ValueError):
    """A tile request that cannot be served; `status` is the HTTP status it maps to."""

    def __init__(self, message: str, status: int = 404):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class VectorLayer:
    layer: Layer
    audience: str

    @property
    def name(self) -> str:
        return self.layer.name

    @property
    def min_zoom(self) -> int:
        return style_for(self.layer).min_zoom

    @property
    def max_zoom(self) -> int:
        return MAX_ZOOM

    @property
    def relation(self) -> str:
        schema = PUBLIC_SCHEMA if self.audience == PUBLIC else "public"
        return f'{schema}."{self.layer.table}"'

    def fields(self, z: int) -> tuple[Field, ...]:
        visible = self.layer.public_fields if self.audience == PUBLIC else self.layer.fields
        if z >= DETAIL_ZOOM:
            return visible
        style = style_for(self.layer)
        wanted = {self.layer.label_field, style.category_field}
        return tuple(f for f in visible if f.name in wanted)

    def check(self, z: int, x: int, y: int) -> None:
        if not self.min_zoom <= z <= self.max_zoom:
            raise TileError(f"layer {self.name} has tiles at zoom {self.min_zoom}–{self.max_zoom}, not {z}")
        if not (0 <= x < 2 ** z and 0 <= y < 2 ** z):
            raise TileError(f"tile {z}/{x}/{y} is outside the zoom {z} grid")

    def sql(self, z: int) -> str:
        columns = "".join(f", {_attribute(f)}" for f in self.fields(z))
        # big polygons (provinces, counties) are cut to the buffered tile before anything else
        geom = "geom" if self.layer.geometry is Geometry.POINT else \
            "ST_Simplify(ST_ClipByBox2D(geom, env.e4490), :tol, true)"
        # The layer's version is read by the same statement, so it is the version of what it renders.
        # No `WHERE geom IS NOT NULL` outside: PostgreSQL would push it into the scan and compute
        # ST_AsMVTGeom twice per row (ST_AsMVT skips null geometries itself): 2.6x at z10.
        return (
            "WITH env AS (SELECT ST_TileEnvelope(:z, :x, :y) AS e3857, "
            "ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => :m), 4490) AS e4490) "
            "SELECT coalesce((SELECT version FROM tile_state.layer_version WHERE layer = :table), 0), "
            f"(SELECT ST_AsMVT(t, :name, {EXTENT}, 'geom', 'id') FROM ("
            f"SELECT id{columns}, ST_AsMVTGeom(ST_Transform({geom}, 3857), env.e3857, {EXTENT}, {BUFFER}, true) "
            f"AS geom FROM {self.relation}, env WHERE geom && env.e4490) t)")

    def render(self, conn: Connection, z: int, x: int, y: int) -> tuple[int, bytes]:
        """(the layer's data version the tile was rendered at, the MVT bytes)."""
        self.check(z, x, y)
        tol = SIMPLIFY_PX * 360.0 / (2 ** z * EXTENT)
        version, tile = conn.execute(text(self.sql(z)), {"z": z, "x": x, "y": y, "m": MARGIN, "tol": tol,
                                                         "name": self.name, "table": self.layer.table}).one()
        return version, bytes(tile or b"")


def _attribute(f: Field) -> str:
    """MVT values are strings, numbers and booleans: dates, arrays and documents become text."""
    col = f'"{f.name}"'
    if f.type in (FieldType.DATE, FieldType.DATETIME, FieldType.JSON):
        return f"{col}::text AS {col}"
    if f.type is FieldType.CODES:
        return f"array_to_string({col}, ',') AS {col}"
    return col


def vector_layer(name: str, audience: str) -> VectorLayer:
    """The layer as the audience sees it; TileError (404) when it does not exist for them."""
    if audience not in AUDIENCES:
        raise ValueError(f"unknown audience {audience!r}")
    try:
        layer = REGISTRY[name]
    except UnknownLayer:
        raise TileError(f"no vector layer {name!r}") from None
    if audience == PUBLIC and not layer.published:
        raise TileError(f"no public vector layer {name!r}")
    return VectorLayer(layer, audience)


def vector_layers(audience: str) -> list[VectorLayer]:
    layers = REGISTRY.published() if audience == PUBLIC else list(REGISTRY)
    return [VectorLayer(layer, audience) for layer in layers]


def layer_bounds(conn: Connection, layer: Layer) -> list[float]:
    """The layer's lon/lat bounds from PostGIS's table statistics (no scan of a big table)."""
    row = conn.execute(text("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                            "(SELECT ST_EstimatedExtent('public', :t, 'geom') AS e) s"), {"t": layer.table}).first()
    if row is None or row[0] is None:
        return list(JILIN_BBOX)
    return [round(v, 6) for v in row]


def tilejson(vl: VectorLayer, tiles_url: str, bounds: list[float]) -> dict:
    """TileJSON 3.0.0 of one vector layer; `tiles_url` has {z}/{x}/{y}."""
    layer = vl.layer
    return {
        "tilejson": "3.0.0",
        "name": f"{layer.zh} {layer.en}",
        "description": layer.description,
        "version": "1.0.0",
        "scheme": "xyz",
        "tiles": [tiles_url],
        "minzoom": vl.min_zoom,
        "maxzoom": vl.max_zoom,
        "bounds": bounds,
        "center": [round((bounds[0] + bounds[2]) / 2, 6), round((bounds[1] + bounds[3]) / 2, 6),
                   max(vl.min_zoom, 8)],
        "vector_layers": [{
            "id": layer.name,
            "description": f"{layer.zh} {layer.en}",
            "minzoom": vl.min_zoom,
            "maxzoom": vl.max_zoom,
            "fields": {f.name: _tilejson_type(f) for f in vl.fields(MAX_ZOOM)},
        }],
    }


def _tilejson_type(f: Field) -> str:
    if f.type in (FieldType.INTEGER, FieldType.FLOAT):
        return "Number"
    if f.type is FieldType.BOOLEAN:
        return "Boolean"
    return "String"
