"""CQL2 (OGC 21-065) text and JSON filters → SQLAlchemy expressions on a collection's columns.

pygeoapi 0.21 parses `filter` with pygeofilter's ECQL parser, rejects `filter-lang=cql2-text`,
and tags geometry literals with an SRID PostGIS does not know; pygeofilter 0.4's CQL2 text
grammar lacks the standard's function-style temporal predicates (`T_AFTER(a, b)`), one-letter
property names, `''` escapes and open intervals, and its CQL2 JSON reader takes a draft form
of BETWEEN and swaps BBOX coordinates. So filters are handled here, in two steps:

1. `parse_text` (a Lark grammar of CQL2 text) and `parse_json` both yield the CQL2 JSON form
   (`{"op": ..., "args": [...]}`, `{"property": ...}`, `{"date": ...}`, GeoJSON, ...);
2. `compile_filter` turns that into a SQLAlchemy expression, checking every property against
   the collection's queryables (an unknown or unpublished name is a `FilterError`, i.e. a 400)
   and putting geometry literals from `filter-crs` into storage lon,lat with SRID 4490.

Supported: basic CQL2, LIKE/BETWEEN/IN, CASEI, property-property comparisons, all S_* spatial
functions, all T_* temporal functions (instants and intervals, open ends with '..').
Not supported (a clear 400): ACCENTI, arithmetic, array functions, custom functions.
"""
from __future__ import annotations

import json
import re
from datetime import date, datetime
from typing import Any, Callable, Mapping

from lark import Lark, Transformer, v_args
from lark.exceptions import LarkError, VisitError
from sqlalchemy import and_, false, func, literal, not_, or_, true
from sqlalchemy.sql import ColumnElement

from app.ogc.crs import CRS84, STORAGE_SRID, UnsupportedCrs, to_storage_lonlat

MAX_FILTER_LENGTH = 20_000
MAX_DEPTH = 64


class FilterError(ValueError):
    """A filter that cannot be parsed or applied; the message is for the client."""


_GRAMMAR = r"""
?start: or_expr
?or_expr: and_expr | or_expr _OR and_expr -> or_
?and_expr: not_expr | and_expr _AND not_expr -> and_
?not_expr: primary | _NOT primary -> not_
?primary: predicate | "(" or_expr ")"
        | TRUE -> true_ | FALSE -> false_

?predicate: scalar COMP scalar -> compare
          | scalar _LIKE scalar -> like
          | scalar _NOT _LIKE scalar -> not_like
          | scalar _BETWEEN scalar _AND scalar -> between
          | scalar _NOT _BETWEEN scalar _AND scalar -> not_between
          | scalar _IN "(" scalar ("," scalar)* ")" -> in_
          | scalar _NOT _IN "(" scalar ("," scalar)* ")" -> not_in
          | scalar _IS _NULL -> is_null
          | scalar _IS _NOT _NULL -> is_not_null
          | FUNC_NAME "(" [scalar ("," scalar)*] ")" -> predicate_function

?scalar: STRING -> string
       | NUMBER -> number
       | "-" NUMBER -> negative
       | TRUE -> true_
       | FALSE -> false_
       | IDENT -> prop
       | QUOTED_IDENT -> quoted_prop
       | _DATE "(" STRING ")" -> date
       | _TIMESTAMP "(" STRING ")" -> timestamp
       | _INTERVAL "(" instant "," instant ")" -> interval
       | FUNC_NAME "(" [scalar ("," scalar)*] ")" -> function
       | geometry
       | _BBOX "(" signed "," signed "," signed "," signed ")" -> bbox
       | _BBOX "(" signed "," signed "," signed "," signed "," signed "," signed ")" -> bbox

?instant: STRING -> instant_string
        | _DATE "(" STRING ")" -> date
        | _TIMESTAMP "(" STRING ")" -> timestamp
        | IDENT -> prop
        | QUOTED_IDENT -> quoted_prop

?geometry: _POINT "(" coord ")" -> point
         | _LINESTRING "(" coords ")" -> linestring
         | _POLYGON "(" rings ")" -> polygon
         | _MULTIPOINT "(" mpoints ")" -> multipoint
         | _MULTILINESTRING "(" rings ")" -> multilinestring
         | _MULTIPOLYGON "(" polygons ")" -> multipolygon
         | _GEOMETRYCOLLECTION "(" geometry ("," geometry)* ")" -> collection

coord: signed signed signed?
coords: coord ("," coord)*
ring: "(" coords ")"
rings: ring ("," ring)*
mpoints: coords | "(" coord ")" ("," "(" coord ")")*
polygons: "(" rings ")" ("," "(" rings ")")*
?signed: NUMBER -> number | "-" NUMBER -> negative

COMP: "<>" | "<=" | ">=" | "=" | "<" | ">"
STRING: /'(?:[^']|'')*'/
NUMBER: /[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?/ | /\.[0-9]+([eE][+-]?[0-9]+)?/
QUOTED_IDENT: /"(?:[^"]|"")+"/
IDENT: /[a-z_][a-z0-9_.:]*/i
FUNC_NAME.2: /(?!(?:NOT|AND|OR|IN)\b)[a-z_][a-z0-9_]*(?=\s*\()/i
_OR.2: /OR\b/i
_AND.2: /AND\b/i
_NOT.2: /NOT\b/i
_LIKE.2: /LIKE\b/i
_BETWEEN.2: /BETWEEN\b/i
_IN.2: /IN\b/i
_IS.2: /IS\b/i
_NULL.2: /NULL\b/i
TRUE.2: /TRUE\b/i
FALSE.2: /FALSE\b/i
_DATE.3: /DATE(?=\s*\()/i
_TIMESTAMP.3: /TIMESTAMP(?=\s*\()/i
_INTERVAL.3: /INTERVAL(?=\s*\()/i
_BBOX.3: /BBOX(?=\s*\()/i
_POINT.3: /POINT(?=\s*\()/i
_LINESTRING.3: /LINESTRING(?=\s*\()/i
_POLYGON.3: /POLYGON(?=\s*\()/i
_MULTIPOINT.3: /MULTIPOINT(?=\s*\()/i
_MULTILINESTRING.3: /MULTILINESTRING(?=\s*\()/i
_MULTIPOLYGON.3: /MULTIPOLYGON(?=\s*\()/i
_GEOMETRYCOLLECTION.3: /GEOMETRYCOLLECTION(?=\s*\()/i
%import common.WS
%ignore WS
"""

_COMPARE_OPS = {"=": "=", "<>": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


@v_args(inline=True)
class _ToJson(Transformer):
    """CQL2 text parse tree → the CQL2 JSON form."""

    def or_(self, a, b): return {"op": "or", "args": [a, b]}
    def and_(self, a, b): return {"op": "and", "args": [a, b]}
    def not_(self, a): return {"op": "not", "args": [a]}
    def true_(self, _=None): return True
    def false_(self, _=None): return False
    def compare(self, a, op, b): return {"op": _COMPARE_OPS[str(op)], "args": [a, b]}
    def like(self, a, b): return {"op": "like", "args": [a, b]}
    def not_like(self, a, b): return {"op": "not", "args": [self.like(a, b)]}
    def between(self, a, lo, hi): return {"op": "between", "args": [a, lo, hi]}
    def not_between(self, a, lo, hi): return {"op": "not", "args": [self.between(a, lo, hi)]}
    def in_(self, a, *items): return {"op": "in", "args": [a, list(items)]}
    def not_in(self, a, *items): return {"op": "not", "args": [self.in_(a, *items)]}
    def is_null(self, a): return {"op": "isNull", "args": [a]}
    def is_not_null(self, a): return {"op": "not", "args": [self.is_null(a)]}
    def string(self, s): return str(s)[1:-1].replace("''", "'")
    def instant_string(self, s): return self.string(s)
    def number(self, n): return float(n) if any(c in n for c in ".eE") else int(n)
    def negative(self, n): return -self.number(n)
    def prop(self, name): return {"property": str(name)}
    def quoted_prop(self, name): return {"property": str(name)[1:-1].replace('""', '"')}
    def date(self, s): return {"date": self.string(s)}
    def timestamp(self, s): return {"timestamp": self.string(s)}
    def interval(self, a, b): return {"interval": [a, b]}
    def bbox(self, *n): return {"bbox": list(n)}

    def function(self, name, *args):
        return {"op": str(name).lower(), "args": [a for a in args if a is not None]}

    predicate_function = function

    def coord(self, *n): return list(n)
    def coords(self, *c): return list(c)
    def ring(self, c): return c
    def rings(self, *r): return list(r)
    def mpoints(self, *c): return c[0] if len(c) == 1 and isinstance(c[0][0], list) else list(c)
    def polygons(self, *p): return list(p)
    def point(self, c): return {"type": "Point", "coordinates": c}
    def linestring(self, c): return {"type": "LineString", "coordinates": c}
    def polygon(self, r): return {"type": "Polygon", "coordinates": r}
    def multipoint(self, c): return {"type": "MultiPoint", "coordinates": c}
    def multilinestring(self, r): return {"type": "MultiLineString", "coordinates": r}
    def multipolygon(self, p): return {"type": "MultiPolygon", "coordinates": p}
    def collection(self, *g): return {"type": "GeometryCollection", "geometries": list(g)}


_PARSER = Lark(_GRAMMAR, parser="lalr", maybe_placeholders=False)


def parse_text(text: str) -> Any:
    """CQL2 text → CQL2 JSON form, or FilterError naming where it failed."""
    _check_size(text)
    try:
        return _ToJson().transform(_PARSER.parse(text))
    except VisitError as exc:
        raise FilterError(f"invalid CQL2 text: {exc.orig_exc}") from None
    except LarkError as exc:
        raise FilterError(f"invalid CQL2 text: {_short(exc)}") from None
    except RecursionError:
        raise FilterError("filter nests too deeply") from None


def parse_json(text: str | bytes | Mapping) -> Any:
    """CQL2 JSON (text or already decoded) → the same form, checked when compiled."""
    if isinstance(text, (str, bytes)):
        _check_size(text)
        try:
            return json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise FilterError(f"invalid CQL2 JSON: {exc}") from None
    return text


def _check_size(text: str | bytes) -> None:
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterError(f"filter longer than {MAX_FILTER_LENGTH} characters")
    if not str(text).strip():
        raise FilterError("empty filter")


def _short(exc: Exception) -> str:
    return " ".join(str(exc).split())[:300]


# ---------------------------------------------------------------------------------------------
# compiling the CQL2 JSON form into SQL


class _Inf:
    """An open end of an interval ('..')."""

    def __init__(self, sign: int):
        self.sign = sign


_NEG, _POS = _Inf(-1), _Inf(1)


def _lt(a, b) -> ColumnElement:
    if isinstance(a, _Inf) or isinstance(b, _Inf):
        return true() if (a is _NEG or b is _POS) and not (a is b) else false()
    return a < b


def _gt(a, b) -> ColumnElement:
    if isinstance(a, _Inf) or isinstance(b, _Inf):
        return _lt(b, a)
    return a > b


def _eq(a, b) -> ColumnElement:
    if isinstance(a, _Inf) or isinstance(b, _Inf):
        return true() if a is b else false()
    return a == b


def _le(a, b) -> ColumnElement:
    if isinstance(a, _Inf) or isinstance(b, _Inf):
        return true() if a is _NEG or b is _POS else false()
    return a <= b


# Allen's relations between A=[a0,a1] and B=[b0,b1] (an instant t is [t,t]), as CQL2 defines them.
_TEMPORAL: dict[str, Callable] = {
    "t_after": lambda a0, a1, b0, b1: _gt(a0, b1),
    "t_before": lambda a0, a1, b0, b1: _lt(a1, b0),
    "t_contains": lambda a0, a1, b0, b1: and_(_lt(a0, b0), _gt(a1, b1)),
    "t_disjoint": lambda a0, a1, b0, b1: or_(_lt(a1, b0), _gt(a0, b1)),
    "t_during": lambda a0, a1, b0, b1: and_(_gt(a0, b0), _lt(a1, b1)),
    "t_equals": lambda a0, a1, b0, b1: and_(_eq(a0, b0), _eq(a1, b1)),
    "t_finishedby": lambda a0, a1, b0, b1: and_(_lt(a0, b0), _eq(a1, b1)),
    "t_finishes": lambda a0, a1, b0, b1: and_(_gt(a0, b0), _eq(a1, b1)),
    "t_intersects": lambda a0, a1, b0, b1: and_(_le(a0, b1), _le(b0, a1)),
    "t_meets": lambda a0, a1, b0, b1: _eq(a1, b0),
    "t_metby": lambda a0, a1, b0, b1: _eq(a0, b1),
    "t_overlappedby": lambda a0, a1, b0, b1: and_(_gt(a0, b0), _lt(a0, b1), _gt(a1, b1)),
    "t_overlaps": lambda a0, a1, b0, b1: and_(_lt(a0, b0), _gt(a1, b0), _lt(a1, b1)),
    "t_startedby": lambda a0, a1, b0, b1: and_(_eq(a0, b0), _gt(a1, b1)),
    "t_starts": lambda a0, a1, b0, b1: and_(_eq(a0, b0), _lt(a1, b1)),
}

_SPATIAL = {
    "s_intersects": func.ST_Intersects, "s_equals": func.ST_Equals, "s_disjoint": func.ST_Disjoint,
    "s_touches": func.ST_Touches, "s_within": func.ST_Within, "s_overlaps": func.ST_Overlaps,
    "s_crosses": func.ST_Crosses, "s_contains": func.ST_Contains,
}

_BINARY = {"=": lambda a, b: a == b, "<>": lambda a, b: a != b, "<": lambda a, b: a < b,
           "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}

_GEOJSON_TYPES = {"Point", "LineString", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon",
                  "GeometryCollection"}

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class _Compiler:
    def __init__(self, columns: Mapping[str, ColumnElement], geometry: ColumnElement | None,
                 filter_crs: str, temporal: set[str]):
        self.columns = columns
        self.geometry = geometry
        self.filter_crs = filter_crs
        self.temporal = temporal  # names of date/timestamp columns

    # --- boolean level -----------------------------------------------------------------------
    def predicate(self, node: Any, depth: int = 0) -> ColumnElement:
        if depth > MAX_DEPTH:
            raise FilterError("filter nests too deeply")
        if isinstance(node, bool):
            return true() if node else false()
        if not isinstance(node, dict) or "op" not in node:
            raise FilterError(f"expected a predicate, got {_show(node)}")
        op = str(node["op"]).lower() if node["op"] != "isNull" else "isnull"
        args = node.get("args")
        if not isinstance(args, list):
            raise FilterError(f"'{op}' needs an 'args' array")
        if op in ("and", "or"):
            if len(args) < 2:
                raise FilterError(f"'{op}' needs at least two arguments")
            parts = [self.predicate(a, depth + 1) for a in args]
            return and_(*parts) if op == "and" else or_(*parts)
        if op == "not":
            self._arity(op, args, 1)
            return not_(self.predicate(args[0], depth + 1))
        if op in _BINARY:
            self._arity(op, args, 2)
            return _BINARY[op](self.scalar(args[0], depth), self.scalar(args[1], depth))
        if op == "like":
            self._arity(op, args, 2)
            return self.scalar(args[0], depth).like(self.scalar(args[1], depth))
        if op == "between":
            if len(args) == 2 and isinstance(args[1], list):  # draft form [x, [lo, hi]]
                args = [args[0], *args[1]]
            self._arity(op, args, 3)
            value = self.scalar(args[0], depth)
            return value.between(self.scalar(args[1], depth), self.scalar(args[2], depth))
        if op == "in":
            self._arity(op, args, 2)
            if not isinstance(args[1], list) or not args[1]:
                raise FilterError("'in' needs a non-empty list as its second argument")
            return self.scalar(args[0], depth).in_([self.scalar(a, depth) for a in args[1]])
        if op == "isnull":
            self._arity(op, args, 1)
            return self.scalar(args[0], depth).is_(None)
        if op in _SPATIAL:
            self._arity(op, args, 2)
            return _SPATIAL[op](self.spatial(args[0]), self.spatial(args[1]))
        if op in _TEMPORAL:
            self._arity(op, args, 2)
            return _TEMPORAL[op](*self.temporal_bounds(args[0]), *self.temporal_bounds(args[1]))
        if op == "accenti":
            raise FilterError("ACCENTI is not supported (accent-insensitive comparison)")
        raise FilterError(f"unsupported operator or function {node['op']!r}")

    @staticmethod
    def _arity(op: str, args: list, n: int) -> None:
        if len(args) != n:
            raise FilterError(f"'{op}' takes {n} argument(s), got {len(args)}")

    # --- values --------------------------------------------------------------------------------
    def scalar(self, node: Any, depth: int = 0) -> ColumnElement:
        if isinstance(node, bool) or node is None:
            return literal(node)
        if isinstance(node, (int, float)):
            return literal(node)
        if isinstance(node, str):
            return literal(node)
        if isinstance(node, dict):
            if "property" in node:
                return self.column(node["property"])
            if "date" in node or "timestamp" in node:
                return literal(self.instant(node))
            if node.get("op") in ("casei", "lower"):
                self._arity("casei", node.get("args") or [], 1)
                return func.lower(self.scalar(node["args"][0], depth + 1))
            if node.get("op") == "accenti":
                raise FilterError("ACCENTI is not supported (accent-insensitive comparison)")
            if "op" in node and str(node["op"]).lower() in ("+", "-", "*", "/", "div", "%", "^"):
                raise FilterError("arithmetic is not supported in filters")
            if "op" in node:
                raise FilterError(f"unsupported function {node['op']!r}")
        raise FilterError(f"unsupported value {_show(node)}")

    def column(self, name: Any) -> ColumnElement:
        if not isinstance(name, str):
            raise FilterError(f"a property name must be a string, got {_show(name)}")
        if name in self.columns:
            return self.columns[name]
        if name in ("geometry", "geom") and self.geometry is not None:
            return self.geometry
        raise FilterError(f"unknown queryable {name!r}; queryables: {', '.join(sorted(self.columns))}")

    def instant(self, node: Any) -> date | datetime:
        try:
            if isinstance(node, dict) and "date" in node:
                return date.fromisoformat(str(node["date"]))
            if isinstance(node, dict) and "timestamp" in node:
                value = str(node["timestamp"]).replace("Z", "+00:00").replace("z", "+00:00")
                return datetime.fromisoformat(value)
            if isinstance(node, str):
                if _DATE_RE.match(node):
                    return date.fromisoformat(node)
                return datetime.fromisoformat(node.replace("Z", "+00:00"))
        except ValueError:
            pass
        raise FilterError(f"not a date or timestamp: {_show(node)}")

    def temporal_bounds(self, node: Any) -> tuple:
        if isinstance(node, dict) and "interval" in node:
            ends = node["interval"]
            if not isinstance(ends, list) or len(ends) != 2:
                raise FilterError("an interval has exactly two ends")
            start = _NEG if ends[0] == ".." else self.temporal_value(ends[0])
            end = _POS if ends[1] == ".." else self.temporal_value(ends[1])
            return start, end
        value = self.temporal_value(node)
        return value, value

    def temporal_value(self, node: Any):
        if isinstance(node, dict) and "property" in node:
            if node["property"] not in self.temporal:
                self.column(node["property"])  # unknown → its own message
                raise FilterError(f"{node['property']!r} is not a date or time property")
            return self.columns[node["property"]]
        return literal(self.instant(node))

    def spatial(self, node: Any) -> ColumnElement:
        if isinstance(node, dict) and "property" in node:
            column = self.column(node["property"])
            if column is not self.geometry:
                raise FilterError(f"{node['property']!r} is not a geometry")
            return column
        if isinstance(node, dict) and "bbox" in node:
            box = node["bbox"]
            if not isinstance(box, list) or len(box) not in (4, 6) or not all(_is_number(v) for v in box):
                raise FilterError("a BBOX has 4 (or 6) numbers")
            if len(box) == 6:
                box = [box[0], box[1], box[3], box[4]]
            corners = [self.lonlat(box[0], box[1]), self.lonlat(box[2], box[3])]
            (x0, y0), (x1, y1) = corners
            return func.ST_MakeEnvelope(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1), STORAGE_SRID)
        if isinstance(node, dict) and node.get("type") in _GEOJSON_TYPES:
            return func.ST_GeomFromText(self.wkt(node), STORAGE_SRID)
        raise FilterError(f"expected a geometry, got {_show(node)}")

    def lonlat(self, x: Any, y: Any) -> tuple[float, float]:
        if not (_is_number(x) and _is_number(y)):
            raise FilterError("coordinates must be numbers")
        lon, lat = to_storage_lonlat(self.filter_crs, float(x), float(y))
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise FilterError(f"coordinate ({x}, {y}) is outside the filter CRS's valid area")
        return lon, lat

    def wkt(self, geom: dict, depth: int = 0) -> str:
        if depth > 4:
            raise FilterError("geometry collections nest too deeply")
        kind = geom["type"]
        if kind == "GeometryCollection":
            parts = geom.get("geometries")
            if not isinstance(parts, list) or not parts:
                raise FilterError("a GeometryCollection needs geometries")
            return f"GEOMETRYCOLLECTION({','.join(self.wkt(g, depth + 1) for g in parts)})"
        coords = geom.get("coordinates")
        levels = {"Point": 0, "LineString": 1, "MultiPoint": 1, "Polygon": 2, "MultiLineString": 2,
                  "MultiPolygon": 3}[kind]
        body = self._coords(coords, levels)
        return f"{kind.upper()}{body}" if levels else f"POINT({body})"

    def _coords(self, coords: Any, level: int) -> str:
        if level == 0:
            if not isinstance(coords, list) or len(coords) not in (2, 3):
                raise FilterError(f"a position has 2 or 3 numbers, got {_show(coords)}")
            lon, lat = self.lonlat(coords[0], coords[1])
            return f"{lon!r} {lat!r}"
        if not isinstance(coords, list) or not coords:
            raise FilterError(f"bad coordinates {_show(coords)}")
        inner = ",".join(self._coords(c, level - 1) for c in coords)
        return f"({inner})"


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _show(node: Any) -> str:
    text = json.dumps(node, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def compile_filter(tree: Any, columns: Mapping[str, ColumnElement], geometry: ColumnElement | None,
                   filter_crs: str | None = None, temporal: set[str] = frozenset()) -> ColumnElement:
    """The CQL2 JSON form → a SQL boolean expression over `columns` (the queryables)."""
    try:
        compiler = _Compiler(columns, geometry, filter_crs or CRS84, set(temporal))
    except UnsupportedCrs as exc:
        raise FilterError(f"filter-crs: {exc}") from None
    if isinstance(tree, dict) and "filter" in tree and "op" not in tree:
        tree = tree["filter"]
    try:
        return compiler.predicate(tree)
    except UnsupportedCrs as exc:
        raise FilterError(f"filter-crs: {exc}") from None
    except RecursionError:
        raise FilterError("filter nests too deeply") from None
