"""The pygeoapi feature provider for OneMap's PostGIS layers and views.

It subclasses pygeoapi's PostgreSQL provider (connection, reflection, fields stay pygeoapi's)
and replaces the query path:

- storage is EPSG:4490 with lon,lat coordinates; the configured `storage_crs` stays CRS84 so
  pygeoapi transforms `bbox-crs` into lon,lat, and every envelope and filter geometry built
  here is tagged SRID 4490 (the stock provider mixes SRIDs 4490/4326, an HTTP 500);
- output CRS, axis order and GeoJSON are produced by PostGIS (`ST_Transform`,
  `ST_FlipCoordinates` for CRSs whose first axis is north, `ST_AsGeoJSON`), one JSON text
  per feature, never a Python loop over geometries;
- no `COUNT(*)` per page: `numberMatched` only when it is known for free (a first page that
  is not full) or asked for with `resulttype=hits`;
- CQL2 filters and `datetime` come from the request context set by the blueprint
  (`app.ogc.service`), since pygeoapi 0.21 can neither parse CQL2 text nor hand over a
  parsed filter; database errors caused by client values become 400s, not 500s.
"""
from __future__ import annotations

import json
import re
import time
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from itertools import chain
from types import SimpleNamespace
from typing import Iterator

from pygeoapi.provider.base import ProviderGenericError, ProviderItemNotFoundError, ProviderQueryError
from pygeoapi.provider.sql import PostgreSQLProvider
from sqlalchemy import Date, DateTime, Text, and_, asc, cast, desc, func, literal_column, select, true
from sqlalchemy.exc import DBAPIError

from app.ogc.cql2 import FilterError, compile_filter, parse_json, parse_text
from app.ogc.crs import STORAGE_SRID, UnsupportedCrs, output_crs
from app.ogc.db import read_engine, run

EXPORT_TIMEOUT_MS = 600_000  # a whole-layer export reads up to the full table
EXPORT_BATCH = 5_000


class BadQuery(ProviderGenericError):
    """A request the database cannot answer because of the client's values (HTTP 400)."""
    ogc_exception_code = "InvalidParameterValue"
    http_status_code = 400

    def __init__(self, message: str):
        super().__init__(message, user_msg=message)


@dataclass(frozen=True)
class QueryExtras:
    """The parts of an items request the blueprint keeps from pygeoapi and hands over here."""
    filter: str | bytes | dict | None = None
    filter_lang: str = "cql2-text"
    filter_crs: str | None = None
    datetime: str | None = None
    # When set (GeoJSON responses), the features' JSON text is put here, joined, and `query`
    # returns placeholders: the blueprint splices the text into pygeoapi's envelope, so the
    # features are never parsed and re-serialised in Python.
    raw: list[tuple[int, str]] | None = None


REQUEST_EXTRAS: ContextVar[QueryExtras] = ContextVar("onemap_ogc_request_extras", default=QueryExtras())

# Row count and extent estimates per (database, table), for the plan choice of bbox queries.
_TABLE_STATS: dict[tuple, tuple[float, tuple | None]] = {}
STATS_TTL_S = 300.0
GIST_FIRST_BELOW = 20_000

# Compiled feature expressions per (database, schema.table): providers are built anew per request.
_FEATURE_SQL: dict[tuple, dict[tuple, object]] = {}

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class OneMapProvider(PostgreSQLProvider):
    def __init__(self, provider_def: dict):
        super().__init__(provider_def)  # pygeoapi's engine: reflection only
        self._read = read_engine(self._engine.url.render_as_string(hide_password=False))
        self._table = self.table_model.__table__
        self._feature_sql: dict[tuple, object] = _FEATURE_SQL.setdefault(
            (str(self._read.url), self._table.fullname), {})
        self._id = self._table.c[self.id_field]
        self._geom = self._table.c[self.geom]
        self._columns = {c.name: c for c in self._table.c if c.name not in (self.geom,)}
        self._temporal = {c.name for c in self._table.c if isinstance(c.type, (Date, DateTime))}

    # --- pygeoapi's provider interface -------------------------------------------------------
    def query(self, offset=0, limit=10, resulttype="results", bbox=[], datetime_=None, properties=[],
              sortby=[], select_properties=[], skip_geometry=False, q=None, filterq=None,
              crs_transform_spec=None, **kwargs):
        extras = REQUEST_EXTRAS.get()
        where = and_(true(), *self._where(bbox, properties, extras))
        if resulttype == "hits":
            matched = self._run(lambda conn: conn.execute(
                select(func.count()).select_from(self._table).where(where)).scalar_one())
            return {"type": "FeatureCollection", "features": [], "numberMatched": matched, "numberReturned": 0}

        feature = self._feature_json(select_properties, skip_geometry, crs_transform_spec)
        order = [(asc if s["order"] == "+" else desc)(self._table.c[s["property"]]) for s in sortby]
        by_id = self._id
        if bbox and not sortby and self._few_hits(bbox):
            by_id = self._id + literal_column("0")  # not the pk order: the GiST index, then a top-N sort
        statement = (select(feature).select_from(self._table).where(where).order_by(*order, asc(by_id))
                     .offset(offset).limit(limit))
        rows = self._run(lambda conn: conn.execute(statement).scalars().all())
        if extras.raw is not None:
            extras.raw.append((len(rows), ",".join(rows)))
            features = [None] * len(rows)
        else:
            features = json.loads("[" + ",".join(rows) + "]")
        response = {"type": "FeatureCollection", "features": features, "numberReturned": len(features)}
        if offset == 0 and len(features) < limit:
            response["numberMatched"] = len(features)  # known without counting
        return response

    def get(self, identifier, crs_transform_spec=None, **kwargs):
        try:
            key = int(identifier)
        except (TypeError, ValueError):
            raise ProviderItemNotFoundError(user_msg=f"no feature {identifier!r} in this collection") from None
        feature = self._feature_json([], False, crs_transform_spec)
        row = self._run(lambda conn: conn.execute(
            select(feature).select_from(self._table).where(self._id == key)).scalar_one_or_none())
        if row is None:
            raise ProviderItemNotFoundError(user_msg=f"no feature {identifier!r} in this collection")
        return json.loads(row)

    # --- plan choice ---------------------------------------------------------------------------
    def _few_hits(self, bbox) -> bool:
        """Whether a bbox is expected to hit fewer than GIST_FIRST_BELOW features.

        Pages are ordered by id. For a box of some thousands of hits PostgreSQL's planner tends to
        walk the primary key in id order, assuming the hits are spread evenly over the ids; ids
        follow the order of loading (county by county), so that walk can read most of a big table
        (~300 ms at 1,000,000 parcels) where the GiST index and a sort take ~25 ms. Under this
        estimate (rows x the box's share of the layer's extent, from the table statistics) the
        query is written so that the pk order cannot be used; above it the planner chooses.
        """
        stats = self._table_stats()
        if stats is None:
            return False
        rows, (x0, y0, x1, y1) = stats
        minx, miny, maxx, maxy = (bbox[0], bbox[1], bbox[3], bbox[4]) if len(bbox) == 6 else bbox
        width, height = min(maxx, x1) - max(minx, x0), min(maxy, y1) - max(miny, y0)
        if width <= 0 or height <= 0:
            return True
        share = width * height / max((x1 - x0) * (y1 - y0), 1e-12)
        return rows * share < GIST_FIRST_BELOW

    def _table_stats(self) -> tuple[float, tuple] | None:
        key = (str(self._read.url), self.table)
        now = time.monotonic()
        cached = _TABLE_STATS.get(key)
        if cached is not None and now - cached[0] < STATS_TTL_S:
            return cached[1]

        def work(conn):
            rows = conn.exec_driver_sql("SELECT reltuples FROM pg_class WHERE oid = to_regclass(%(t)s)",
                                        {"t": f"public.{self.table}"}).scalar()
            extent = conn.exec_driver_sql(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
                "FROM (SELECT ST_EstimatedExtent('public', %(t)s, 'geom') AS e) s", {"t": self.table}).one()
            return rows, extent
        try:
            rows, extent = run(self._read, work)
        except DBAPIError:
            rows, extent = None, (None,)
        stats = (float(rows), tuple(extent)) if rows and rows > 0 and extent[0] is not None else None
        _TABLE_STATS[key] = (now, stats)
        return stats

    # --- SQL ------------------------------------------------------------------------------------
    def _where(self, bbox, properties, extras: QueryExtras) -> list:
        clauses = [self._columns[name] == value for name, value in properties]
        if bbox:
            minx, miny, maxx, maxy = (bbox[0], bbox[1], bbox[3], bbox[4]) if len(bbox) == 6 else bbox
            envelope = func.ST_MakeEnvelope(minx, miny, maxx, maxy, STORAGE_SRID)
            clauses.append(func.ST_Intersects(self._geom, envelope))
        if extras.datetime:
            clauses.append(self._datetime_clause(extras.datetime))
        if extras.filter is not None:
            clauses.append(self._filter_clause(extras))
        return clauses

    def _filter_clause(self, extras: QueryExtras):
        try:
            if extras.filter_lang == "cql2-json":
                tree = parse_json(extras.filter)
            else:
                tree = parse_text(extras.filter if isinstance(extras.filter, str) else extras.filter.decode())
            queryables = {k: v for k, v in self._columns.items()}
            return compile_filter(tree, queryables, self._geom, extras.filter_crs, self._temporal)
        except FilterError as exc:
            raise BadQuery(f"filter: {exc}") from None
        except UnicodeDecodeError:
            raise BadQuery("filter: not UTF-8 text") from None

    def _datetime_clause(self, value: str):
        if self.time_field is None:
            raise BadQuery("datetime: this collection has no time property")
        column = self._table.c[self.time_field]
        parts = value.split("/")
        if len(parts) == 1:
            return column == _instant(parts[0])
        if len(parts) != 2:
            raise BadQuery(f"datetime: {value!r} is neither an instant nor an interval a/b")
        start, end = (None if p in ("", "..") else _instant(p) for p in parts)
        if start is None and end is None:
            return true()
        if start is not None and end is not None and _as_datetime(start) > _as_datetime(end):
            raise BadQuery(f"datetime: the interval {value!r} ends before it starts")
        return and_(true() if start is None else column >= start, true() if end is None else column <= end)

    def _feature_json(self, select_properties, skip_geometry, crs_transform_spec):
        """One GeoJSON Feature as text, built by PostgreSQL by concatenation: the geometry's
        GeoJSON text is not re-parsed as json (a cast to json costs as much as the rest), and
        the fixed parts are SQL literals rather than bind parameters.

        The expression has no parameters, so it is compiled to SQL once per shape (properties,
        geometry or not, CRS) and reused as a literal column: building and compiling it was
        most of the Python time of a request."""
        target = crs_transform_spec.target_crs_uri if crs_transform_spec else None
        key = (tuple(select_properties or ()), bool(skip_geometry), target)
        cached = self._feature_sql.get(key)
        if cached is None:
            expression = self._build_feature_json(select_properties, skip_geometry, crs_transform_spec)
            sql = str(expression.compile(dialect=self._read.dialect, compile_kwargs={"literal_binds": True}))
            cached = literal_column(sql, Text)
            if len(self._feature_sql) < 256:
                self._feature_sql[key] = cached
        return cached

    def _build_feature_json(self, select_properties, skip_geometry, crs_transform_spec):
        names = [c for c in self._columns if c != self.id_field]
        if select_properties:
            names = [n for n in names if n in set(select_properties)]
        properties = func.json_build_object(*chain.from_iterable(
            (_sql_text(n), self._columns[n]) for n in names))
        if skip_geometry:
            geometry = _sql_text("null")
        else:
            geometry = func.coalesce(self._geometry_geojson(crs_transform_spec), _sql_text("null"))
        return (_sql_text('{"type":"Feature","id":') + cast(self._id, Text) + _sql_text(',"geometry":')
                + geometry + _sql_text(',"properties":') + cast(properties, Text) + _sql_text("}"))

    def _geometry_geojson(self, crs_transform_spec):
        try:
            out = output_crs(crs_transform_spec.target_crs_uri if crs_transform_spec else None)
        except UnsupportedCrs as exc:
            raise BadQuery(str(exc)) from None
        return func.ST_AsGeoJSON(self._geometry_in(out, flip=True), out.precision, 0)

    def _geometry_in(self, out, flip: bool):
        geom = self._geom
        if out.needs_transform:
            geom = func.ST_Transform(geom, out.srid)
        if flip and out.north_first:
            geom = func.ST_FlipCoordinates(geom)
        return geom

    # --- exports (app.ogc.downloads) ------------------------------------------------------------
    def export(self, shape: str, bbox, properties, extras: QueryExtras, select_properties=(), crs_uri=None,
               batch: int = EXPORT_BATCH) -> tuple[list[str], Iterator[list]]:
        """Every matching feature, in id order, as batches of rows read through a server-side cursor.

        `shape` is "geojson" (one Feature JSON text per row, as the items pages), "wkt" (id, the
        properties, WKT in the CRS's axis order as GeoJSON output uses) or "wkb" (id, the
        properties, WKB in x=east order, as GIS files store it). Returns the column names and
        the batches; the query runs (and a client error raises `BadQuery`) before this returns,
        and the connection is held until the batches are exhausted or closed.
        """
        where = and_(true(), *self._where(bbox or [], properties, extras))
        try:
            out = output_crs(crs_uri)
        except UnsupportedCrs as exc:
            raise BadQuery(str(exc)) from None
        names = [c for c in self._columns if c != self.id_field]
        if select_properties:
            names = [n for n in names if n in set(select_properties)]
        if shape == "geojson":
            spec = SimpleNamespace(target_crs_uri=crs_uri) if crs_uri else None
            columns = [self._feature_json(select_properties, False, spec)]
        elif shape == "wkt":
            columns = [self._id, *(self._columns[n] for n in names),
                       func.ST_AsText(self._geometry_in(out, flip=True), out.precision)]
        elif shape == "wkb":
            columns = [self._id, *(self._columns[n] for n in names),
                       func.ST_AsBinary(self._geometry_in(out, flip=False))]
        else:
            raise ValueError(shape)
        statement = select(*columns).select_from(self._table).where(where).order_by(asc(self._id))
        conn = self._read.connect().execution_options(isolation_level="REPEATABLE READ")
        try:
            conn.begin()  # a server-side cursor lives in a transaction (one snapshot for the export)
            conn.exec_driver_sql(f"SET LOCAL statement_timeout = {EXPORT_TIMEOUT_MS}")
            result = conn.execution_options(stream_results=True, max_row_buffer=batch).execute(statement)
            first = result.fetchmany(batch)
        except DBAPIError as exc:
            conn.close()
            raise _query_error(exc)  # noqa: B904 (the database error stays the context)
        except BaseException:
            conn.close()
            raise

        def batches() -> Iterator[list]:
            try:
                rows = first
                while rows:
                    yield rows
                    rows = result.fetchmany(batch)
            finally:
                conn.close()
        return [self.id_field, *names, "geometry"], batches()

    def _run(self, work):
        try:
            return run(self._read, work)  # autocommit; statement_timeout is a session option
        except DBAPIError as exc:
            raise _query_error(exc)  # noqa: B904 (the database error stays the context)


def _query_error(exc: DBAPIError) -> ProviderGenericError:
    """A database error as the provider error pygeoapi (and the downloads) turn into a response."""
    code = getattr(exc.orig, "pgcode", None) or ""
    detail = str(getattr(exc.orig, "diag", None) and exc.orig.diag.message_primary or "").strip()
    if code.startswith("22") or code in ("42883", "42804", "42725", "22P02"):
        return BadQuery(f"a value does not suit the property it is compared with: {detail}")
    if code == "57014":
        return BadQuery("the query took too long; narrow it with bbox, datetime or filter")
    return ProviderQueryError(user_msg="database error (logged)")


def _sql_text(value: str):
    """A constant string as an SQL literal (for the fixed parts of the GeoJSON and the property
    names, which are identifiers reflected from the table)."""
    assert "%" not in value, value  # psycopg2 would read it as a placeholder
    return literal_column("'" + value.replace("'", "''") + "'", Text)


def _instant(text: str) -> date | datetime:
    try:
        if _DATE_RE.match(text):
            return date.fromisoformat(text)
        return datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BadQuery(f"datetime: {text!r} is not an RFC 3339 date or date-time") from None


def _as_datetime(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None) if value.tzinfo else value
    return datetime(value.year, value.month, value.day)
