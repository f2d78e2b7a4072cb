"""The layer registry: every layer of the platform is declared here once, as data.

A `Layer` names its table, titles, geometry, typed fields (with code lists), which fields
and rows are public, and its time field. Models, migrations, the OGC API collections, the
vector tiles, the map and the importers are all derived from these declarations, the way
pygeoapi derives its collections from resource definitions.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from layers.codes import CodeList

STORAGE_SRID = 4490  # CGCS2000 geographic (lon, lat)
# The staff roles (staff_user.role, layers/models.py; services/accounts.py). Here, not with the
# tables: the accounts need them with every app start, the GeoAlchemy2 tables (~0.3 s) they do not.
STAFF_ROLES = ("admin", "supervisor", "inspector", "clerk")


class FieldType(str, Enum):
    TEXT = "text"
    INTEGER = "integer"
    FLOAT = "float"
    DATE = "date"
    DATETIME = "datetime"
    BOOLEAN = "boolean"
    CODE = "code"        # one code of a code list
    CODES = "codes"      # several codes of a code list (text[])
    JSON = "json"


class Geometry(str, Enum):
    POINT = "POINT"
    MULTIPOLYGON = "MULTIPOLYGON"
    MULTILINESTRING = "MULTILINESTRING"


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType
    zh: str
    en: str
    codes: CodeList | None = None
    public: bool = False
    required: bool = False
    unique: bool = False
    indexed: bool = False
    unit: str | None = None
    # "table.column" this field refers to (a foreign key), e.g. "supervision_number.number".
    references: str | None = None
    # Filled by the platform (a check, an overlay), never read from a submitted file.
    computed: bool = False

    def __post_init__(self) -> None:
        if (self.type in (FieldType.CODE, FieldType.CODES)) != (self.codes is not None):
            raise ValueError(f"field {self.name}: a code field needs a code list, and only it")


@dataclass(frozen=True)
class Layer:
    name: str
    zh: str
    en: str
    group: str
    geometry: Geometry
    fields: tuple[Field, ...]
    description: str = ""
    time_field: str | None = None
    published: bool = False
    # SQL predicate on the layer's own columns that selects the rows the public may see;
    # None with published=True means every row.
    public_where: str | None = None
    # The field a person reads as the feature's name or number (search, popups, labels).
    label_field: str | None = None

    def __post_init__(self) -> None:
        names = [f.name for f in self.fields]
        if len(names) != len(set(names)):
            raise ValueError(f"layer {self.name}: duplicate field names")
        for reserved in ("id", "geom"):
            if reserved in names:
                raise ValueError(f"layer {self.name}: '{reserved}' is implicit")
        for ref in (self.time_field, self.label_field):
            if ref is not None and ref not in names:
                raise ValueError(f"layer {self.name}: unknown field {ref!r}")
        if self.time_field and self.field(self.time_field).type not in (FieldType.DATE, FieldType.DATETIME):
            raise ValueError(f"layer {self.name}: time field must be a date or datetime")

    @property
    def table(self) -> str:
        return self.name

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"layer {self.name} has no field {name!r}")

    @property
    def public_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.public)


@dataclass(frozen=True)
class Link:
    """A non-spatial relation between records of two layers (e.g. 占补平衡)."""
    name: str
    zh: str
    en: str
    fields: tuple[Field, ...]


class Registry:
    def __init__(self, layers: list[Layer], links: list[Link] = ()):
        self._layers = {layer.name: layer for layer in layers}
        if len(self._layers) != len(layers):
            raise ValueError("a layer is declared twice")
        self._links = {link.name: link for link in links}

    def __iter__(self):
        return iter(self._layers.values())

    def __len__(self) -> int:
        return len(self._layers)

    def __getitem__(self, name: str) -> Layer:
        try:
            return self._layers[name]
        except KeyError:
            raise UnknownLayer(name) from None

    def __contains__(self, name: object) -> bool:
        return name in self._layers

    @property
    def links(self) -> tuple[Link, ...]:
        return tuple(self._links.values())

    def published(self) -> list[Layer]:
        return [layer for layer in self if layer.published]


class UnknownLayer(KeyError):
    def __str__(self) -> str:
        return f"unknown layer {self.args[0]!r}"
