"""The checks of a batch, in report order, each giving (row, field, problem).

A per-row check looks at one row: it runs on the columns as Arrow arrays (required fields,
number and date formats, code lists, county codes) and on the geometries as a Shapely array
(missing, type, empty, validity, inside the row's county), in the engine's worker thread
while PostgreSQL takes the rows in (Arrow and Shapely's predicates release the GIL). A set
check needs the tables: a value already in the layer, a reference to another table; it is
SQL over the stage `s` (stage.py), where PostgreSQL turns it into a (parallel) join.
Duplicates within the file are counted on the Arrow column.

Validity is judged by the GEOS that Shapely links; the repair and its reason are PostGIS's
(`engine._repair`), which skips a row its own GEOS finds valid.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from layers.registry import FieldType, Geometry, Layer

REPORT_CAP = 100     # rows reported per check; the rest are counted

ALLOWED_TYPES = {    # Shapely's type ids: 0 Point, 1 LineString, 3 Polygon, 5 MultiLineString, 6 MultiPolygon
    Geometry.MULTIPOLYGON: (3, 6),
    Geometry.POINT: (0,),
    Geometry.MULTILINESTRING: (1, 5),
}
TYPE_WORDS = {Geometry.MULTIPOLYGON: "(Multi)Polygon", Geometry.POINT: "Point",
              Geometry.MULTILINESTRING: "(Multi)LineString"}

INT = r"^[+-]?\d{1,18}$"
_FLOAT = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d{1,3})?$"
_DATE = "|".join(rf"^\d{{4}}{sep}(0?[1-9]|1[0-2]){sep}(0?[1-9]|[12]\d|3[01])$" for sep in ("-", "/", r"\.")) + \
    r"|^\d{4}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$"
_DATETIME = _DATE + r"|^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?$"
TRUE_WORDS = ("t", "true", "1", "y", "yes", "是")
FALSE_WORDS = ("f", "false", "0", "n", "no", "否")

FORMATS = {
    FieldType.INTEGER: (INT, "not an integer"),
    FieldType.FLOAT: (_FLOAT, "not a number"),
    FieldType.DATE: (_DATE, "not a date (YYYY-MM-DD)"),
    FieldType.DATETIME: (_DATETIME, "not a date-time (YYYY-MM-DD hh:mm[:ss][±zz])"),
}


def quote_literal(value: str) -> str:
    """PostgreSQL's quote_literal() (a value as the report quotes it)."""
    quoted = "'" + value.replace("'", "''").replace("\\", "\\\\") + "'"
    return "E" + quoted if "\\" in value else quoted


def sql_list(words) -> str:
    """('a', 'b') for code-defined words (never user input)."""
    return "(" + ", ".join(f"'{w}'" for w in words) + ")"


def duplicates(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Positions of the values that occur more than once (nulls never do), in order."""
    if len(pc.unique(values)) == len(values) - max(values.null_count - 1, 0):    # (null: one value of unique)
        return np.zeros(0, dtype=np.int64)        # one hash of the values, the usual case (count_distinct: 5x slower)
    counts = pc.value_counts(values)
    repeated = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
    repeated = pc.drop_null(repeated)
    if len(repeated) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(pc.is_in(values, value_set=repeated).to_numpy(zero_copy_only=False))


@dataclass
class Rows:
    """One batch's rows as the per-row checks see them, in file order: the staged fields' text
    (Arrow), the geometries in the storage CRS (Shapely; None: missing or unreadable), the
    divisions' codes and the outlines of the counties the rows name."""
    layer: Layer
    values: dict[str, pa.Array]
    geoms: np.ndarray
    declared_county: str | None = None
    division_codes: frozenset[str] = frozenset()
    outlines: dict[str, shapely.Geometry] = field(default_factory=dict)
    valid: np.ndarray | None = None         # shapely.is_valid(geoms), if known already

    def __len__(self) -> int:
        return len(self.geoms)

    @cached_property
    def type_ids(self) -> np.ndarray:
        return shapely.get_type_id(self.geoms)            # -1 where missing

    @cached_property
    def usable(self) -> np.ndarray:
        """Of an allowed type and not empty: the rows whose validity and place are checked."""
        allowed = np.isin(self.type_ids, ALLOWED_TYPES[self.layer.geometry])
        allowed[allowed] = ~shapely.is_empty(self.geoms[allowed])
        return allowed

    @cached_property
    def invalid(self) -> np.ndarray:
        """Positions of the usable geometries that are not valid."""
        at = np.flatnonzero(self.usable)
        return at[~(self.valid[at] if self.valid is not None else shapely.is_valid(self.geoms[at]))]


@dataclass(frozen=True)
class Check:
    """Rows where the check fails get `problem` for `field`. Per-row: `failing(rows)` gives their
    positions (file order) and `problem(rows, i)` the words for one; a set check: `predicate` and
    `problem_sql` (SQL text expressions over the stage `s`)."""
    field: str | None
    failing: Callable[[Rows], np.ndarray] | None = None
    problem: Callable[[Rows, int], str] | None = None
    predicate: str | None = None
    problem_sql: str | None = None

    @property
    def per_row(self) -> bool:
        return self.failing is not None


def _where(mask) -> np.ndarray:
    if isinstance(mask, (pa.Array, pa.ChunkedArray)):
        mask = pc.fill_null(mask, False).to_numpy(zero_copy_only=False)
    return np.flatnonzero(mask)


def _not_in(values: pa.Array, known: pa.Array) -> np.ndarray:
    """Positions of the values (not null) that are not among `known`."""
    return _where(pc.and_(pc.is_valid(values), pc.invert(pc.is_in(values, value_set=known))))


def _value(rows: Rows, name: str, i: int) -> str:
    return quote_literal(rows.values[name][i].as_py())


def plan(layer: Layer, staged, county_rows: bool, policy: str, filled_later: set[str] = frozenset()) -> list[Check]:
    """The checks of a batch of `layer` whose `staged` fields are staged, in report order."""
    out: list[Check] = []
    allowed = ALLOWED_TYPES[layer.geometry]
    words = TYPE_WORDS[layer.geometry]
    out.append(Check(None, lambda r: np.flatnonzero(r.type_ids < 0), lambda r, i: "no geometry"))
    out.append(Check(None, lambda r: np.flatnonzero((r.type_ids >= 0) & ~np.isin(r.type_ids, allowed)),
                     lambda r, i: f"wrong geometry type {r.geoms[i].geom_type}: "
                                  f"{layer.name} takes {words}"))
    out.append(Check(None, lambda r: np.flatnonzero(np.isin(r.type_ids, allowed) & ~r.usable),
                     lambda r, i: "empty geometry"))
    if policy == "reject":
        out.append(Check(None, lambda r: r.invalid,
                         lambda r, i: f"invalid geometry ({shapely.is_valid_reason(r.geoms[i])}); "
                                      "this layer does not repair geometries"))
    for f in staged:
        out.extend(_field_checks(layer, f, filled_later))
    if county_rows:
        out.append(Check("county_code", lambda r: _not_in(r.values["county_code"],
                                                          pa.array(sorted(r.division_codes), pa.string())),
                         lambda r, i: f"unknown county code {_value(r, 'county_code', i)}"))
        out.append(Check("county_code", lambda r: np.zeros(0, dtype=np.int64) if r.declared_county is None else
                         _where(pc.not_equal(r.values["county_code"], r.declared_county)),
                         lambda r, i: f"county {r.values['county_code'][i].as_py()} is not the declared county "
                                      f"{r.declared_county}"))
        out.append(Check(None, _outside_county, lambda r, i: f"lies outside county {r.values['county_code'][i].as_py()}"))
    return out


def _field_checks(layer: Layer, f, filled_later: set[str]) -> list[Check]:
    name, col = f.name, f"s.{f.name}"
    out = []
    if f.required and name not in filled_later:
        out.append(Check(name, lambda r: _where(pc.is_null(r.values[name])),
                         lambda r, i: f"required {f.zh} ({name}) is missing"))
    if f.type in FORMATS:
        pattern, words = FORMATS[f.type]
        out.append(Check(name, lambda r: _where(pc.invert(pc.match_substring_regex(r.values[name], pattern))),
                         lambda r, i: f"{_value(r, name, i)} is {words}"))
    if f.type == FieldType.BOOLEAN:
        yes_no = pa.array(TRUE_WORDS + FALSE_WORDS, pa.string())
        out.append(Check(name, lambda r: _not_in(pc.utf8_lower(r.values[name]), yes_no),
                         lambda r, i: f"{_value(r, name, i)} is not yes/no"))
    if f.type == FieldType.CODE:
        codes = pa.array(list(f.codes.codes), pa.string())
        out.append(Check(name, lambda r: _not_in(r.values[name], codes),
                         lambda r, i: f"{_value(r, name, i)} is not in the code list {f.codes.zh} ({f.codes.name})"))
    if f.type == FieldType.CODES:
        codes = pa.array(list(f.codes.codes), pa.string())
        out.append(Check(name, lambda r: _not_all_codes(r.values[name], codes),
                         lambda r, i: f"{_value(r, name, i)} holds a code not in the code list "
                                      f"{f.codes.zh} ({f.codes.name})"))
    if f.unique:
        out.append(Check(name, lambda r: duplicates(r.values[name]),
                         lambda r, i: f"duplicate {_value(r, name, i)} within the file"))
        existing = f"t.{name}" if f.type in (FieldType.TEXT, FieldType.CODE) else f"t.{name}::text"
        out.append(Check(name, predicate=f"{col} IS NOT NULL AND EXISTS (SELECT 1 FROM {layer.table} t "
                                         f"WHERE {existing} = {col})",
                         problem_sql=f"'duplicate: ' || quote_literal({col}) || ' is already in {layer.table}'"))
    if f.references:
        table, column = f.references.split(".")
        if f.type == FieldType.INTEGER:
            target = f"CASE WHEN {col} ~ '{INT}' THEN NOT EXISTS (SELECT 1 FROM {table} r WHERE r.{column} = {col}::bigint) END"
        else:
            target = f"NOT EXISTS (SELECT 1 FROM {table} r WHERE r.{column} = {col})"
        out.append(Check(name, predicate=f"{col} IS NOT NULL AND {target}",
                         problem_sql=f"quote_literal({col}) || ' does not exist in {table}.{column}'"))
    return out


def _not_all_codes(values: pa.Array, codes: pa.Array) -> np.ndarray:
    """Positions of the codes fields holding a code not among `codes` (read as the insert reads
    them: whitespace dropped, split at commas)."""
    lists = pc.split_pattern(pc.replace_substring_regex(values, r"\s", ""), ",")
    flat = pc.list_flatten(lists)
    parents = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False)
    unknown = ~pc.is_in(flat, value_set=codes).to_numpy(zero_copy_only=False)
    return np.unique(parents[unknown])


def _outside_county(r: Rows) -> np.ndarray:
    """Usable geometries not meeting the outline of their row's county (an unknown code: not
    checked here). The rows grouped by county in one sort; each outline prepared once."""
    codes = list(r.outlines)
    at = pc.fill_null(pc.index_in(r.values["county_code"], value_set=pa.array(codes, pa.string())), -1)
    at = np.where(r.usable, at.to_numpy(zero_copy_only=False), -1)
    order = np.argsort(at, kind="stable")
    bounds = np.searchsorted(at[order], np.arange(len(codes) + 1))
    out = []
    for k, code in enumerate(codes):
        rows = order[bounds[k]:bounds[k + 1]]
        if len(rows):
            outline = r.outlines[code]
            shapely.prepare(outline)
            out.append(rows[~shapely.intersects(outline, r.geoms[rows])])
    return np.sort(np.concatenate(out)) if out else np.zeros(0, dtype=np.int64)


def entries(check: Check, found: list[tuple[int, str]], total: int) -> list[dict]:
    """The report entries of one check: the first REPORT_CAP rows and how many more."""
    out = [{"severity": "error", "row": row, "field": check.field, "problem": msg} for row, msg in found]
    if total > len(found):
        out.append({"severity": "error", "row": None, "field": check.field,
                    "problem": f"... and {total - len(found)} more rows with this problem"})
    return out


def run_per_row(checks: list[Check], rows: Rows, numbers: list[int]) -> dict[int, list[dict]]:
    """The per-row checks' report entries, by id() of the check; `numbers`: the row numbers."""
    out = {}
    for check in checks:
        if not check.per_row:
            continue
        at = check.failing(rows)
        first = sorted((numbers[i], int(i)) for i in at)[:REPORT_CAP]
        out[id(check)] = entries(check, [(row, check.problem(rows, i)) for row, i in first], len(at))
    return out
