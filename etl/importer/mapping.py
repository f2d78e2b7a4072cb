"""How submitted columns map onto the registry's fields, declared as data.

Every field is found by its registry name and by its Chinese title (标识码, 地类编码 …);
`CUSTOMARY` adds the customary database field names of the national standards (第三次全国
国土调查 / 矿业权 / 建设用地审批 databases: DLBM, TBBH, XKZH …). Matching ignores case and
surrounding blanks. `DERIVED` fills a missing field from another one; `GEOMETRY_POLICY` says
whether an invalid geometry is repaired (and the repair reported) or the row rejected.
"""
from __future__ import annotations

from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc

from layers import REGISTRY
from layers.registry import Layer

CUSTOMARY: dict[str, dict[str, str]] = {
    "land_use": {
        "BSM": "bsm", "TBBH": "parcel_no", "DLBM": "class_code", "DLMC": "class_name",
        "QSDWDM": "owner_code", "QSXZ": "owner_kind", "ZLDWDM": "located_code",
        "XZQDM": "county_code", "TBMJ": "area_m2", "DCRQ": "survey_date",
    },
    "basic_farmland": {
        "BHTBBH": "patch_no", "TBBH": "patch_no", "DLBM": "class_code", "ZLDJ": "grade", "GDDB": "grade",
        "XZQDM": "county_code", "TBMJ": "area_m2", "MJ": "area_m2", "HDRQ": "designated_on",
    },
    "plan_zone": {"GZQLXDM": "zone_code", "GZQBH": "zone_no", "XZQDM": "county_code", "MJ": "area_m2"},
    "approval": {
        "JGH": "supervision_no", "PZWH": "document_no", "PCMC": "batch_name", "SPLX": "kind",
        "PZJG": "authority", "PZRQ": "approved_on", "GHYT": "planned_use", "ZMJ": "area_m2",
        "GDMJ": "farmland_m2", "JBNTMJ": "basic_farmland_m2", "XZQDM": "county_code",
    },
    "mining_right": {
        "JGH": "supervision_no", "XKZH": "licence_no", "KQLX": "right_type", "KYQR": "holder",
        "KSMC": "mine_name", "ZKZ": "mineral", "SCGM": "scale", "QDFS": "acquisition",
        "YXQQ": "valid_from", "YXQZ": "valid_to", "XZQDM": "county_code", "MJ": "area_m2",
        "采矿权人": "holder", "探矿权人": "holder", "矿山名称": "mine_name", "有效期起始": "valid_from",
        "有效期截止": "valid_to",
    },
    "hazard_point": {
        "YHDBH": "hazard_no", "YHDMC": "name", "ZHLX": "hazard_type", "XQDJ": "risk_level",
        "WXRS": "threatened_people", "WXCC": "threatened_property_10k_yuan", "JCR": "monitor_name",
        "JCRDH": "monitor_phone", "XZQDM": "county_code",
    },
}

# field -> (source field, SQL expression on the staged text column named by the source field)
DERIVED: dict[str, dict[str, tuple[str, Callable[[pa.Array], pa.Array]]]] = {
    # 坐落单位代码 is 12 or 19 digits whose first six are the county (GB/T 2260)
    "land_use": {"county_code": ("located_code", lambda located: pc.utf8_slice_codeunits(located, 0, 6))},
}

# "repair" (ST_MakeValid, change reported as a warning) or "reject" (the row is an error)
GEOMETRY_POLICY: dict[str, str] = {"mining_right": "reject", "admin_division": "reject"}


def _key(name: str) -> str:
    return name.strip().upper()


def column_map(layer: Layer) -> dict[str, str]:
    """Normalised source column name -> registry field name."""
    names: dict[str, str] = {}
    for f in layer.fields:
        if f.computed:          # the platform's own (a check's result): a file's column is ignored
            continue
        names[_key(f.name)] = f.name
        names[_key(f.zh)] = f.name
    for alias, field in CUSTOMARY.get(layer.name, {}).items():
        names.setdefault(_key(alias), field)
    return names


def map_columns(layer: Layer, columns: list[str]) -> tuple[dict[str, str], list[str]]:
    """({source column: field}, [ignored source columns]); the first column naming a field wins."""
    known = column_map(layer)
    mapped: dict[str, str] = {}
    ignored: list[str] = []
    for col in columns:
        field = known.get(_key(col))
        if field is None or field in mapped.values():
            ignored.append(col)
        else:
            mapped[col] = field
    return mapped, ignored


def short_names(layer: Layer) -> dict[str, str]:
    """Field -> a DBF-safe name (<= 10 ASCII characters) for Shapefile export, customary where
    one exists so the file reads back through `map_columns`."""
    out: dict[str, str] = {}
    for alias, field in CUSTOMARY.get(layer.name, {}).items():
        if alias.isascii() and len(alias) <= 10 and field not in out:
            out[field] = alias
    used = set(out.values())
    for f in layer.fields:
        if f.name in out:
            continue
        base = f.name[:10]
        name, k = base, 1
        while name.upper() in {u.upper() for u in used}:
            suffix = f"_{k}"
            name, k = base[:10 - len(suffix)] + suffix, k + 1
        out[f.name] = name
        used.add(name)
    return out


def geometry_policy(layer_name: str) -> str:
    return GEOMETRY_POLICY.get(layer_name, "repair")


assert all(layer in REGISTRY for layer in CUSTOMARY), "CUSTOMARY names an unknown layer"
