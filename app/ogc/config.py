"""pygeoapi configuration generated from the layer registry, one per audience.

Nothing here is written per layer: every collection's titles (zh/en), description, keywords,
spatial and temporal extents, time field, label field and CRS list derive from its `Layer`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from pathlib import Path

from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url

from app.ogc.crs import CRS84, SUPPORTED_CRS
from layers import REGISTRY, Field, Layer
from services.publication import PUBLIC_SCHEMA

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
JILIN_BBOX = [121.6, 40.8, 131.4, 46.4]  # lon/lat, CGCS2000 ≈ CRS84
DEFAULT_ITEMS = 100
MAX_ITEMS = 2000
PROVIDER = "app.ogc.provider.OneMapProvider"


@dataclass(frozen=True)
class Audience:
    """Who a service is for, and so which layers, fields and rows it shows."""
    name: str
    prefix: str
    schema: str
    zh: str
    en: str
    needs_token: bool = False

    def layers(self) -> list[Layer]:
        return REGISTRY.published() if self.name == "public" else list(REGISTRY)

    def fields(self, layer: Layer) -> tuple[Field, ...]:
        return layer.public_fields if self.name == "public" else layer.fields

    def layer(self, collection_id: str) -> Layer | None:
        return next((layer for layer in self.layers() if layer.name == collection_id), None)


PUBLIC = Audience("public", "/ogc", PUBLIC_SCHEMA, "吉林省自然资源一张图 公开服务",
                  "Jilin natural resources one-map: public OGC API Features")
INTERNAL = Audience("internal", "/internal/ogc", "public", "吉林省自然资源一张图 内部服务",
                    "Jilin natural resources one-map: internal OGC API Features", needs_token=True)


@dataclass
class Extent:
    bbox: list[float] = field(default_factory=lambda: list(JILIN_BBOX))
    begin: datetime | None = None
    end: datetime | None = None


def layer_extents(conn: Connection, audience: Audience) -> dict[str, Extent]:
    """Spatial and temporal extent of every layer the audience sees, from its data.

    The bbox is PostGIS's estimate from the table statistics (no scan of a big table); a
    layer without statistics or rows gets Jilin's bbox. The time range is min/max of the
    time field over the rows the audience may see.
    """
    extents: dict[str, Extent] = {}
    for layer in audience.layers():
        extent = Extent()
        row = conn.execute(text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
            "(SELECT ST_EstimatedExtent('public', :t, 'geom') AS e) s"), {"t": layer.table}).first()
        if row is not None and row[0] is not None:
            extent.bbox = [round(v, 6) for v in row]
        visible = {f.name for f in audience.fields(layer)}
        if layer.time_field and layer.time_field in visible:
            lo, hi = conn.execute(text(
                f'SELECT min("{layer.time_field}"), max("{layer.time_field}") '
                f'FROM {audience.schema}."{layer.table}"')).one()
            extent.begin, extent.end = _as_datetime(lo), _as_datetime(hi)
        extents[layer.name] = extent
    return extents


def _as_datetime(value: date | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.combine(value, time(0, 0), tzinfo=timezone.utc)


def _collection(audience: Audience, layer: Layer, extent: Extent, data: dict) -> dict:
    visible = {f.name for f in audience.fields(layer)}
    provider = {
        "type": "feature",
        "name": PROVIDER,
        "data": data,
        "id_field": "id",
        "table": layer.table,
        "geom_field": "geom",
        "storage_crs": CRS84,  # stored lon,lat on CGCS2000; see app.ogc.provider
        "crs": list(SUPPORTED_CRS),
    }
    if layer.time_field in visible:
        provider["time_field"] = layer.time_field
    if layer.label_field in visible:
        provider["title_field"] = layer.label_field
    spatial = {"bbox": extent.bbox, "crs": CRS84}
    collection = {
        "type": "collection",
        "title": {"zh-CN": layer.zh, "en-US": layer.en},
        "description": {"zh-CN": f"{layer.zh}。{layer.description}", "en-US": layer.description or layer.en},
        "keywords": {"zh-CN": [layer.zh, layer.group], "en-US": [layer.en, layer.group]},
        "links": [],
        "extents": {"spatial": spatial},
        "limits": {"default_items": DEFAULT_ITEMS, "max_items": MAX_ITEMS, "on_exceed": "throttle"},
        "providers": [provider],
    }
    if extent.begin is not None:
        collection["extents"]["temporal"] = {"begin": extent.begin, "end": extent.end,
                                             "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"}
    return collection


def pygeoapi_config(audience: Audience, base_url: str, database_url: str, extents: dict[str, Extent],
                    collections: frozenset[str] | None = None) -> dict:
    """The pygeoapi configuration dict for `audience` served at `base_url` (absolute)."""
    url = make_url(database_url)
    data = {"host": url.host or "localhost", "port": url.port or 5432, "dbname": url.database,
            "user": url.username, "password": url.password, "search_path": [audience.schema]}
    layers = [layer for layer in audience.layers() if collections is None or layer.name in collections]
    return {
        "server": {
            "bind": {"host": "127.0.0.1", "port": 0},
            "url": base_url,
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "gzip": False,
            "languages": ["zh-CN", "en-US"],
            "pretty_print": False,
            "limits": {"default_items": DEFAULT_ITEMS, "max_items": MAX_ITEMS, "on_exceed": "throttle"},
            "templates": {"path": str(TEMPLATES), "static": str(TEMPLATES / "static")},
            "map": {"url": "", "attribution": ""},
        },
        "logging": {"level": "CRITICAL"},
        "metadata": {
            "identification": {
                "title": {"zh-CN": audience.zh, "en-US": audience.en},
                "description": {
                    "zh-CN": "吉林省国土空间与自然资源监管图层（OGC API Features）。",
                    "en-US": "Land supervision layers of Jilin province as OGC API Features.",
                },
                "keywords": {"zh-CN": ["一张图", "自然资源", "吉林"], "en-US": ["one-map", "land", "Jilin"]},
                "keywords_type": "theme",
                "terms_of_service": "https://creativecommons.org/licenses/by/4.0/",
                "url": base_url,
            },
            "license": {"name": "CC-BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/"},
            "provider": {"name": "吉林省自然资源厅 OneMap", "url": base_url},
            "contact": {"name": "OneMap", "position": "", "address": "", "city": "长春", "stateorprovince": "吉林",
                        "postalcode": "", "country": "China", "phone": "", "fax": "", "email": "",
                        "url": base_url, "hours": "", "instructions": "", "role": "pointOfContact"},
        },
        "resources": {layer.name: _collection(audience, layer, extents.get(layer.name, Extent()), data)
                      for layer in layers},
    }
