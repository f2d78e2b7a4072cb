"""The inspector's area query (区域查询): what of each layer lies inside a drawn polygon, and how much.

`check_geometry(geojson)` turns a GeoJSON Polygon/MultiPolygon (lon/lat EPSG:4490; CRS84 and
EPSG:4326 are read as the same) into a Shapely geometry or raises `QueryError` naming the
problem: not a polygon, another CRS, coordinates that are not degrees (or lat/lon swapped),
a self-intersecting or otherwise invalid ring, too many vertices, too large an area.

`run(conn, polygon, layers, region_code=)` answers, per layer, the features the polygon
intersects with the intersected part (geometry and area in m², ha and mu on the CGCS2000
ellipsoid, `services.areas`), the layer's total, and the land-use parcels' area by GB/T 21010
class. A layer's total is the area of the *union* of its intersected parts, so features
overlapping one another inside a layer are not counted twice (a total can be less than the
sum of its features). Point layers list the points inside, with area 0. The query is first
clipped to the user's region (GB/T 2260 code) when one is given; the answer carries the polygon
that was queried (`query_geometry`, GeoJSON lon/lat), so an uploaded outline can be drawn and printed.

Each layer is one set-based statement: the query polygon is cut with ST_Subdivide so each
piece's bounding box prefilters the layer's GiST index (&&), the candidates are intersected
with the whole polygon (features it covers are kept as they are), and PostgreSQL builds the
answer's JSON itself.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text

from layers import REGISTRY
from layers.codes import LAND_USE_CLASS
from layers.registry import Geometry, Layer
from services.areas import Area, area_sql, geodesic_area_m2

MAX_AREA_M2 = 200e6            # 200 km²: an inspector's site, not a county (a county is ~3,000 km²)
MAX_VERTICES = 50_000
SUBDIVIDE_VERTICES = 128
ACCEPTED_CRS = {
    "urn:ogc:def:crs:EPSG::4490", "EPSG:4490", "http://www.opengis.net/def/crs/EPSG/0/4490",
    "urn:ogc:def:crs:OGC:1.3:CRS84", "urn:ogc:def:crs:OGC::CRS84", "CRS84", "OGC:CRS84",
    "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
    "urn:ogc:def:crs:EPSG::4326", "EPSG:4326", "http://www.opengis.net/def/crs/EPSG/0/4326",
}
TOTALS_NOTE = ("total_* is the area of the union of the layer's intersected parts: features overlapping "
               "one another in a layer are counted once (合计按并集面积计算，图层内重叠部分不重复计算)")


class QueryError(ValueError):
    """A query the service refuses, with the reason in words a user can act on (HTTP 400)."""


class OutsideRegion(QueryError):
    """The query polygon does not reach into the user's region (HTTP 403)."""


@dataclass(frozen=True)
class _Sql:
    """The per-layer SQL pieces, from the registry (never from user input)."""
    table: str
    label: str
    class_code: str
    part: str


def queryable_layers() -> list[Layer]:
    """Every polygon and point layer of the registry, in registry order."""
    return [layer for layer in REGISTRY if layer.geometry in (Geometry.MULTIPOLYGON, Geometry.POINT)]


def choose_layers(names: list | None) -> list[Layer]:
    available = {layer.name: layer for layer in queryable_layers()}
    if names is None:
        return list(available.values())
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise QueryError("layers: a list of layer names, e.g. [\"land_use\", \"basic_farmland\"]")
    unknown = [n for n in names if n not in available]
    if unknown:
        raise QueryError(f"layers: unknown or not queryable: {', '.join(unknown)} "
                         f"(queryable: {', '.join(available)})")
    return [available[n] for n in dict.fromkeys(names)]


def _crs_name(obj: dict) -> str | None:
    crs = obj.get("crs")
    if crs is None:
        return None
    name = crs.get("properties", {}).get("name") if isinstance(crs, dict) else crs
    return str(name)


def check_geometry(obj, max_area_m2: float = MAX_AREA_M2) -> BaseGeometry:
    """The query polygon of a GeoJSON geometry (or Feature), validated; QueryError otherwise."""
    if not isinstance(obj, dict):
        raise QueryError("geometry: a GeoJSON Polygon or MultiPolygon object is required")
    crs = _crs_name(obj)
    if obj.get("type") == "Feature":
        obj = obj.get("geometry") or {}
        crs = crs or _crs_name(obj)
    if crs is not None and crs not in ACCEPTED_CRS:
        raise QueryError(f"geometry: CRS {crs!r} is not accepted: send lon/lat coordinates in EPSG:4490 "
                         "(CGCS2000; CRS84 is read as the same)")
    if obj.get("type") not in ("Polygon", "MultiPolygon"):
        raise QueryError(f"geometry: type {obj.get('type')!r} is not a Polygon or MultiPolygon")
    try:
        geom = shape(obj)
    except Exception as exc:  # shapely reports malformed coordinate arrays in many ways
        raise QueryError(f"geometry: malformed {obj['type']} coordinates ({exc})") from None
    return check_polygon(geom, max_area_m2)


def check_polygon(geom: BaseGeometry, max_area_m2: float = MAX_AREA_M2) -> BaseGeometry:
    """The same checks for a Shapely geometry in EPSG:4490 (an uploaded outline)."""
    if geom.is_empty:
        raise QueryError("geometry: the polygon is empty")
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        raise QueryError(f"geometry: a {geom.geom_type} is not a polygon")
    if geom.has_z:
        geom = shapely.force_2d(geom)
    coords = shapely.get_coordinates(geom)
    if len(coords) > MAX_VERTICES:
        raise QueryError(f"geometry: {len(coords):,d} vertices, more than the limit of {MAX_VERTICES:,d}; simplify it")
    if not all(math.isfinite(v) for v in coords.ravel()):
        raise QueryError("geometry: coordinates must be finite numbers")
    xs, ys = coords[:, 0], coords[:, 1]
    if abs(xs).max() > 180 or abs(ys).max() > 90:
        if abs(xs).max() <= 90 and abs(ys).max() <= 180:
            raise QueryError("geometry: coordinates are in lat,lon order; GeoJSON is lon,lat (x = longitude)")
        raise QueryError(f"geometry: coordinates such as ({xs[0]:.6g}, {ys[0]:.6g}) are not lon/lat degrees "
                         "(projected metres?): send EPSG:4490 longitude/latitude")
    reason = shapely.is_valid_reason(geom)
    if reason != "Valid Geometry":
        raise QueryError(f"geometry: the polygon is invalid: {reason} (边界自相交或环不闭合等；请重画)")
    area_m2 = geodesic_area_m2(geom)
    if area_m2 > max_area_m2:
        raise QueryError(f"geometry: the query area of {area_m2 / 1e6:,.2f} km² is larger than the limit of "
                         f"{max_area_m2 / 1e6:,.0f} km² (查询范围过大)")
    return geom


def _sql(layer: Layer) -> _Sql:
    label = f"t.{layer.label_field}::text" if layer.label_field else "NULL::text"
    class_code = "t.class_code" if layer.name == "land_use" else "NULL::text"
    if layer.geometry == Geometry.POINT:
        part = "t.geom"
    else:
        part = ("CASE WHEN ST_CoveredBy(t.geom, q.g) THEN t.geom "
                "ELSE ST_CollectionExtract(ST_Intersection(t.geom, q.g), 3) END")
    return _Sql(layer.table, label, class_code, part)


def _layer_statement(layer: Layer) -> str:
    s = _sql(layer)
    area = area_sql("g")
    return f"""
    WITH q AS (SELECT ST_GeomFromWKB(:wkb, 4490) AS g),
    pieces AS (SELECT ST_Subdivide(q.g, {SUBDIVIDE_VERTICES}) AS p FROM q),
    hits AS (SELECT DISTINCT t.id FROM {s.table} t JOIN pieces ON t.geom && pieces.p AND ST_Intersects(t.geom, pieces.p)),
    parts AS MATERIALIZED (
        SELECT t.id, {s.label} AS label, {s.class_code} AS class_code, {s.part} AS g
        FROM {s.table} t JOIN hits USING (id), q),
    measured AS (SELECT id, label, class_code, g, {area} AS m2 FROM parts WHERE NOT ST_IsEmpty(g))
    SELECT
      (SELECT coalesce(json_agg(json_build_object('id', id, 'label', label, 'm2', m2,
                                                  'geometry', ST_AsGeoJSON(g, 9)::json) ORDER BY id), '[]')
       FROM measured) AS features,
      (SELECT coalesce({area_sql('ST_Union(g)')}, 0) FROM measured) AS total_m2,
      (SELECT coalesce(json_agg(json_build_object('class_code', class_code, 'm2', m2) ORDER BY class_code), '[]')
       FROM (SELECT class_code, {area_sql('ST_Union(g)')} AS m2 FROM measured
             WHERE class_code IS NOT NULL GROUP BY class_code) c) AS by_class
    """


def _areas(m2: float) -> dict[str, float]:
    a = Area(float(m2)).as_dict()
    return {"area_m2": a["m2"], "area_ha": a["ha"], "area_mu": a["mu"]}


def _clip_to_region(conn: Connection, polygon: BaseGeometry, region_code: str | None) -> tuple[bytes, float, dict]:
    """The query polygon inside the user's region: as WKB, its area in m² and as GeoJSON (lon/lat)."""
    wkb = shapely.to_wkb(polygon)
    if region_code is None:
        row = conn.execute(text(f"SELECT ST_AsBinary(g) AS wkb, {area_sql('g')} AS m2, "
                                "ST_AsGeoJSON(g, 9)::json AS geojson FROM "
                                "(SELECT ST_GeomFromWKB(:wkb, 4490) AS g) q"), {"wkb": wkb}).one()
        return bytes(row.wkb), float(row.m2), row.geojson
    row = conn.execute(text(
        "SELECT ST_AsBinary(g) AS wkb, " + area_sql("g") + " AS m2, ST_IsEmpty(g) AS empty, "
        "ST_AsGeoJSON(g, 9)::json AS geojson FROM ("
        "SELECT ST_CollectionExtract(ST_Intersection(ST_GeomFromWKB(:wkb, 4490), d.geom), 3) AS g "
        "FROM admin_division d WHERE d.code = :code) c"), {"wkb": wkb, "code": region_code}).first()
    if row is None:
        raise OutsideRegion(f"region {region_code} is not in admin_division: the query cannot be scoped")
    if row.empty:
        raise OutsideRegion(f"the query polygon lies outside your region {region_code} (查询范围不在您的管辖区域内)")
    return bytes(row.wkb), float(row.m2), row.geojson


def run(conn: Connection, polygon: BaseGeometry, layers: list[Layer], region_code: str | None = None) -> dict:
    """The answer to one area query (see the module's docstring); `polygon` passed check_polygon."""
    wkb, query_m2, query_geometry = _clip_to_region(conn, polygon, region_code)
    answer_layers, by_class = [], []
    for layer in layers:
        row = conn.execute(text(_layer_statement(layer)), {"wkb": wkb}).one()
        features = [{"id": f["id"], "label": f["label"], **_areas(f["m2"]), "geometry": f["geometry"]}
                    for f in row.features]
        total = _areas(row.total_m2)
        answer_layers.append({"layer": layer.name, "title_zh": layer.zh, "title_en": layer.en,
                              "geometry_type": layer.geometry.value, "features": features,
                              "total_m2": total["area_m2"], "total_ha": total["area_ha"],
                              "total_mu": total["area_mu"]})
        by_class += [{"class_code": c["class_code"], "class_name": _class_name(c["class_code"]), **_areas(c["m2"])}
                     for c in row.by_class]
    query = _areas(query_m2)
    return {"layers": answer_layers, "land_use_by_class": by_class, "query_area_m2": query["area_m2"],
            "query_area_ha": query["area_ha"], "query_area_mu": query["area_mu"], "region_code": region_code,
            "query_geometry": query_geometry,
            "crs": "EPSG:4490", "area_method": "CGCS2000 ellipsoid (GRS80), geodesic polygon area",
            "totals_note": TOTALS_NOTE}


def _class_name(code: str) -> str:
    return LAND_USE_CLASS.zh_label(code) if code in LAND_USE_CLASS else code


def feature_collection(answer: dict) -> dict:
    """The answer's intersected parts as one GeoJSON FeatureCollection (export)."""
    features = [{"type": "Feature", "id": f"{layer['layer']}.{f['id']}", "geometry": f["geometry"],
                 "properties": {"layer": layer["layer"], "title_zh": layer["title_zh"], "feature_id": f["id"],
                                "label": f["label"], "area_m2": f["area_m2"], "area_ha": f["area_ha"],
                                "area_mu": f["area_mu"]}}
                for layer in answer["layers"] for f in layer["features"]]
    return {"type": "FeatureCollection", "features": features,
            "query_area_m2": answer["query_area_m2"], "totals_note": answer["totals_note"]}


CSV_HEADER = ("kind", "layer", "title_zh", "feature_id", "label", "class_code", "area_m2", "area_ha", "area_mu")


def csv_rows(answer: dict) -> list[tuple]:
    """The answer as rows: each intersected feature, each layer's total (union), each land-use class."""
    rows: list[tuple] = []
    for layer in answer["layers"]:
        rows += [("feature", layer["layer"], layer["title_zh"], f["id"], f["label"], "", f["area_m2"], f["area_ha"],
                  f["area_mu"]) for f in layer["features"]]
        rows.append(("layer_total", layer["layer"], layer["title_zh"], "", f"{len(layer['features'])} features", "",
                     layer["total_m2"], layer["total_ha"], layer["total_mu"]))
    rows += [("land_use_class", "land_use", c["class_name"], "", "", c["class_code"], c["area_m2"], c["area_ha"],
              c["area_mu"]) for c in answer["land_use_by_class"]]
    rows.append(("query", "", "查询范围 query polygon", "", "", "", answer["query_area_m2"], answer["query_area_ha"],
                 answer["query_area_mu"]))
    return rows
