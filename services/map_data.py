"""What the web map reads of the layers (一张图浏览): whole small layers as GeoJSON, the features
under a click (identify), search by number or name, and the region tree for "jump to".

Every function takes the audience: `public=True` reads only the `pub` views (public fields and
rows, as /ogc and /tiles/vector do), `public=False` reads the tables with every field. All of it
is one set-based, parameterised statement per call; Python only shapes small results.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection, text

from layers import REGISTRY, Field, FieldType, Geometry, Layer, UnknownLayer
from services.publication import PUBLIC_SCHEMA

# A layer the browser may fetch whole: fewer rows and bytes than this (else vector tiles).
GEOJSON_MAX_ROWS = 5_000
GEOJSON_MAX_BYTES = 4 * 1024 * 1024
COORD_DECIMALS = 6          # ~0.1 m, as MapServer writes
IDENTIFY_PER_LAYER = 3
SEARCH_LIMIT = 20


class MapDataError(ValueError):
    """A request the map data cannot answer; `status` is its HTTP status."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class LayerSize:
    rows: int
    bytes: int

    @property
    def small(self) -> bool:
        return self.rows <= GEOJSON_MAX_ROWS and self.bytes <= GEOJSON_MAX_BYTES


def audience_layer(name: str, public: bool) -> Layer:
    """The layer as the audience sees it; MapDataError (404) when it does not exist for them."""
    try:
        layer = REGISTRY[name]
    except UnknownLayer:
        raise MapDataError(f"no layer {name!r}", 404) from None
    if public and not layer.published:
        raise MapDataError(f"no public layer {name!r}", 404)
    return layer


def audience_layers(public: bool) -> list[Layer]:
    return REGISTRY.published() if public else list(REGISTRY)


def visible_fields(layer: Layer, public: bool) -> tuple[Field, ...]:
    return layer.public_fields if public else layer.fields


def _relation(layer: Layer, public: bool) -> str:
    return f'{PUBLIC_SCHEMA if public else "public"}."{layer.table}"'


def _columns(layer: Layer, public: bool) -> str:
    return ", ".join(f'"{f.name}"' for f in visible_fields(layer, public))


def layer_sizes(conn: Connection) -> dict[str, LayerSize]:
    """Rows (planner estimate) and bytes on disk of every layer's table: which layers are small."""
    rows = conn.execute(text(
        "SELECT c.relname, greatest(c.reltuples, 0)::bigint, pg_total_relation_size(c.oid) "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname = ANY(:names)"),
        {"names": [layer.table for layer in REGISTRY]}).all()
    return {name: LayerSize(int(n), int(b)) for name, n, b in rows}


def _time_filter(layer: Layer, date_from: date | None, date_to: date | None) -> tuple[str, dict]:
    if layer.time_field is None or (date_from is None and date_to is None):
        return "", {}
    col = f'"{layer.time_field}"'
    clauses, params = [], {}
    if date_from is not None:
        clauses.append(f"{col} >= :date_from")
        params["date_from"] = date_from
    if date_to is not None:   # the whole last day, for date-times too
        clauses.append(f"{col} < CAST(:date_to AS date) + 1")
        params["date_to"] = date_to
    return " WHERE " + " AND ".join(clauses), params


def features_geojson(conn: Connection, name: str, public: bool, date_from: date | None = None,
                     date_to: date | None = None) -> str:
    """The whole layer as a GeoJSON FeatureCollection (text), built inside PostGIS.

    Only small layers: a big one is refused (use its vector tiles)."""
    layer = audience_layer(name, public)
    size = layer_sizes(conn).get(layer.table)
    if size is not None and not size.small:
        raise MapDataError(f"layer {name} has ~{size.rows} rows: read it as vector tiles, not GeoJSON", 400)
    where, params = _time_filter(layer, date_from, date_to)
    sql = (
        "SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg("
        "json_build_object('type', 'Feature', 'id', t.id, "
        f"'geometry', ST_AsGeoJSON(t.geom, {COORD_DECIMALS})::json, "
        "'properties', to_jsonb(t) - 'geom' - 'id') ORDER BY t.id), '[]'::json))::text "
        f"FROM (SELECT id, {_columns(layer, public)}, geom FROM {_relation(layer, public)}{where}) t")
    return conn.execute(text(sql), params).scalar_one()


def identify(conn: Connection, names: list[str], lon: float, lat: float, tolerance_deg: float,
             public: bool) -> list[dict]:
    """The features of `names` (top layer first) under the point — per layer the smallest polygon
    containing it (a county, not the province), or the points and lines within `tolerance_deg` —
    each described for a popup (zh/en titles, code labels, units)."""
    layers = [audience_layer(n, public) for n in dict.fromkeys(names)]
    if not layers:
        return []
    if not (0 < tolerance_deg <= 1):
        raise MapDataError("tolerance must be in (0, 1] degrees")
    parts = []
    for i, layer in enumerate(layers):
        if layer.geometry is Geometry.MULTIPOLYGON:   # the smallest polygon containing the point
            hit, order, limit = "ST_Intersects(geom, p.pt)", "ST_Area(geom)", 1
        else:                                         # the nearest points or lines
            hit = "geom && ST_Expand(p.pt, :tol) AND ST_DWithin(geom, p.pt, :tol)"
            order, limit = "ST_Distance(geom, p.pt)", IDENTIFY_PER_LAYER
        parts.append(
            f"(SELECT {i} AS k, t.id, to_jsonb(t) - 'geom' - 'id' AS props FROM "
            f"(SELECT id, {_columns(layer, public)}, geom FROM {_relation(layer, public)} WHERE {hit} "
            f"ORDER BY {order}, id LIMIT {limit}) t)")
    sql = ("SELECT u.k, u.id, u.props::text FROM (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4490) AS pt) p, "
           "LATERAL (" + " UNION ALL ".join(parts) + ") u ORDER BY u.k")
    rows = conn.execute(text(sql), {"lon": lon, "lat": lat, "tol": tolerance_deg}).all()
    return [describe(layers[k], fid, json.loads(props), public) for k, fid, props in rows]


def describe(layer: Layer, fid: int, props: dict, public: bool) -> dict:
    """A feature for a popup: its layer's titles and each visible field as title + value."""
    fields = []
    for f in visible_fields(layer, public):
        value = props.get(f.name)
        fields.append({"name": f.name, "zh": f.zh, "en": f.en, "unit": f.unit, "value": value,
                       "label_zh": _code_labels(f, value, "zh"), "label_en": _code_labels(f, value, "en")})
    label = props.get(layer.label_field) if layer.label_field else None
    return {"layer": layer.name, "layer_zh": layer.zh, "layer_en": layer.en, "id": fid,
            "label": label, "fields": fields}


def _code_labels(f: Field, value, lang: str) -> str | None:
    if f.codes is None or value is None:
        return None
    label = f.codes.zh_label if lang == "zh" else f.codes.en_label
    values = value if isinstance(value, list) else [value]
    return "、".join(label(v) if v in f.codes else str(v) for v in values)


def _search_fields(layer: Layer, public: bool) -> tuple[list[Field], list[Field]]:
    """(numbers matched exactly, names matched as substrings) of a layer for search: numbers are
    its unique or indexed text fields (supervision number, parcel id, licence number …), names its
    label when that is a plain name."""
    fields = [f for f in visible_fields(layer, public) if f.type is FieldType.TEXT]
    exact = [f for f in fields if f.unique or f.indexed]
    names = [f for f in fields if f.name == layer.label_field and f not in exact]
    return exact, names


def search(conn: Connection, q: str, public: bool, limit: int = SEARCH_LIMIT) -> list[dict]:
    """Features whose number equals `q` (supervision number, parcel id, licence, case or document
    number …) or whose name contains it, with their bounds, numbers first."""
    q = q.strip()
    if not q:
        raise MapDataError("parameter q: give a number or a name to search for")
    if len(q) > 100:
        raise MapDataError("parameter q: at most 100 characters")
    parts = []
    for i, layer in enumerate(audience_layers(public)):
        exact, names = _search_fields(layer, public)
        label = f'"{layer.label_field}"::text' if layer.label_field in {f.name for f in visible_fields(layer, public)} \
            else "NULL::text"
        for f in exact:
            parts.append(f"SELECT 0 AS rank, {i} AS k, id, {label} AS label, '{f.name}' AS matched, geom "
                         f'FROM {_relation(layer, public)} WHERE "{f.name}" = :q')
        for f in names:
            parts.append(f"SELECT 1 AS rank, {i} AS k, id, {label} AS label, '{f.name}' AS matched, geom "
                         f'FROM {_relation(layer, public)} WHERE "{f.name}" ILIKE :like')
    like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    sql = ("SELECT rank, k, id, label, matched, ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) "
           "FROM (" + " UNION ALL ".join(f"({p} LIMIT :limit)" for p in parts) + ") s "
           "ORDER BY rank, k, label, id LIMIT :limit")
    rows = conn.execute(text(sql), {"q": q, "like": like, "limit": limit}).all()
    layers = audience_layers(public)
    out = []
    for rank, k, fid, label, matched, *bbox in rows:
        layer = layers[k]
        f = layer.field(matched)
        out.append({"layer": layer.name, "layer_zh": layer.zh, "layer_en": layer.en, "id": fid,
                    "label": label, "matched": matched, "matched_zh": f.zh, "matched_en": f.en,
                    "exact": rank == 0, "bbox": [round(v, 6) for v in bbox]})
    return out


def regions(conn: Connection) -> list[dict]:
    """The administrative divisions (province, cities, counties) with their bounds, for 'jump to'."""
    rows = conn.execute(text(
        "SELECT code, name, level, parent_code, ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) "
        "FROM admin_division ORDER BY code")).all()
    return [{"code": code, "name": name, "level": level, "parent_code": parent,
             "bbox": [round(v, 6) for v in bbox]} for code, name, level, parent, *bbox in rows]
