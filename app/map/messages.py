"""The map's message catalogue (界面文字): Chinese first, English switchable. Layer, field and
code titles are not here: they come from the layer registry's zh/en."""
from __future__ import annotations

LANGUAGES = ("zh", "en")

_MESSAGES = """
title              | 吉林省自然资源一张图综合监管平台 | Jilin Natural Resources One-Map Supervision Platform
title_public       | 吉林省自然资源信息公开地图       | Jilin Natural Resources Public Map
audience_staff     | 监管版                           | Supervision
audience_public    | 公众版                           | Public
tab_layers         | 图层                             | Layers
tab_results        | 查询结果                         | Query results
group_base         | 一张图 · 基础图层                | One map · base layers
group_imagery      | 遥感影像                         | Imagery
group_land_cycle   | 批供用补查                       | Land cycle (approve, supply, use, compensate, enforce)
group_comparison   | 比对核查                         | Comparison
group_mining       | 矿产资源                         | Mineral resources
group_hazard       | 地质灾害与灾情                   | Geological hazards and disasters
imagery_epoch      | 影像期次                         | Imagery epoch
imagery_none       | 不显示影像                       | No imagery
date_range         | 时间范围                         | Date range
date_from          | 起                               | From
date_to            | 止                               | To
date_clear         | 清除                             | Clear
search_placeholder | 监管号、图斑编号、许可证号或地名 | Supervision no., parcel id, licence no. or place
search             | 搜索                             | Search
search_none        | 没有找到                         | Nothing found
search_exact       | 编号匹配                         | number match
jump_to            | 定位到                           | Go to
region_province    | 全省                             | Whole province
region_city        | 市（州）                         | City
region_county      | 县（市、区）                     | County
language           | English                          | 中文
login              | 工作人员登录                     | Staff login
logout             | 退出                             | Log out
legend             | 图例                             | Legend
zoom_in_to_see     | 放大到 {z} 级显示                | Shown from zoom {z}
loading            | 正在加载…                        | Loading…
no_features        | 此处没有要素                     | No features here
features_here      | 此处要素                         | Features here
load_failed        | 加载失败                         | Failed to load
query_hint         | 在地图上绘制多边形、矩形或圆，或上传范围（GeoJSON），查询范围内各图层的要素与面积。 | Draw a polygon, rectangle or circle on the map, or upload an outline (GeoJSON), to list each layer's features and areas inside it.
query_upload       | 上传范围                         | Upload outline
query_running      | 正在查询…                        | Querying…
query_failed       | 查询失败                         | The query failed
query_area         | 查询范围面积                     | Query area
query_total        | 合计                             | Total
query_by_class     | 按地类汇总                       | By land-use class
query_export       | 导出                             | Export
query_print        | 打印                             | Print
query_clear        | 清除                             | Clear
query_nothing      | 范围内没有要素                   | Nothing inside the outline
area_m2            | 平方米                           | m²
area_ha            | 公顷                             | ha
area_mu            | 亩                               | mu
class_code         | 地类编码                         | Class
class_name         | 地类名称                         | Class name
features           | 个要素                           | features
panel_toggle       | 显示/隐藏面板                    | Show/hide panel
scale_note         | 坐标系 CGCS2000，面积按椭球计算  | CGCS2000; areas on the ellipsoid
draw_polygon       | 绘制多边形                       | Draw a polygon
draw_rectangle     | 绘制矩形                         | Draw a rectangle
draw_circle        | 绘制圆                           | Draw a circle
draw_cancel        | 取消                             | Cancel
draw_finish        | 完成                             | Finish
draw_undo          | 删除最后一点                     | Delete last point
draw_start         | 单击开始绘制                     | Click to start drawing
draw_continue      | 单击继续绘制                     | Click to continue drawing
draw_end           | 单击第一个点完成                 | Click the first point to finish
draw_drag          | 按住并拖动绘制                   | Click and drag to draw
"""


def _parse(rows: str) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {lang: {} for lang in LANGUAGES}
    for line in rows.strip().splitlines():
        key, zh, en = (part.strip() for part in line.split("|"))
        out["zh"][key], out["en"][key] = zh, en
    return out


MESSAGES = _parse(_MESSAGES)
