"""Code lists (代码表) used by the layer registry.

Each code list maps a stored code to its Chinese and English label. Where a national
standard exists its codes are used as they are (GB/T 21010-2017 land-use classes,
GB/T 2260 region codes, the 010–040 construction-control zones); elsewhere the codes are
short stable ASCII words, because departments filter on them through the OGC API.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CodeList:
    name: str
    zh: str
    en: str
    codes: dict[str, tuple[str, str]] = field(default_factory=dict)

    def __contains__(self, code: object) -> bool:
        return code in self.codes

    def zh_label(self, code: str) -> str:
        return self.codes[code][0]

    def en_label(self, code: str) -> str:
        return self.codes[code][1]


def _codes(name: str, zh: str, en: str, rows: str) -> CodeList:
    """Build a code list from lines of `code|中文|English`."""
    codes: dict[str, tuple[str, str]] = {}
    for line in rows.strip().splitlines():
        code, label_zh, label_en = (part.strip() for part in line.split("|"))
        codes[code] = (label_zh, label_en)
    return CodeList(name, zh, en, codes)


# GB/T 21010-2017 土地利用现状分类: first-level classes and second-level classes.
LAND_USE_CLASS = _codes("land_use_class", "土地利用现状分类", "Land-use class (GB/T 21010-2017)", """
01|耕地|Cultivated land
0101|水田|Paddy field
0102|水浇地|Irrigated land
0103|旱地|Dry land
02|园地|Garden land
0201|果园|Orchard
0202|茶园|Tea garden
0203|橡胶园|Rubber plantation
0204|其他园地|Other garden land
03|林地|Forest land
0301|乔木林地|Arbor forest land
0302|竹林地|Bamboo forest land
0303|红树林地|Mangrove land
0304|森林沼泽|Forest swamp
0305|灌木林地|Shrub land
0306|灌丛沼泽|Shrub swamp
0307|其他林地|Other forest land
04|草地|Grassland
0401|天然牧草地|Natural pasture
0402|沼泽草地|Swamp grassland
0403|人工牧草地|Artificial pasture
0404|其他草地|Other grassland
05|商服用地|Commercial land
0501|零售商业用地|Retail land
0502|批发市场用地|Wholesale market land
0503|餐饮用地|Catering land
0504|旅馆用地|Hotel land
0505|商务金融用地|Business and finance land
0506|娱乐用地|Entertainment land
0507|其他商服用地|Other commercial land
06|工矿仓储用地|Industrial, mining and storage land
0601|工业用地|Industrial land
0602|采矿用地|Mining land
0603|盐田|Salt pan
0604|仓储用地|Storage land
07|住宅用地|Residential land
0701|城镇住宅用地|Urban residential land
0702|农村宅基地|Rural homestead
08|公共管理与公共服务用地|Public administration and service land
0801|机关团体用地|Government and organisation land
0802|新闻出版用地|Press and publishing land
0803|教育用地|Education land
0804|科研用地|Research land
0805|医疗卫生用地|Health care land
0806|社会福利用地|Social welfare land
0807|文化设施用地|Cultural facility land
0808|体育用地|Sports land
0809|公用设施用地|Public utility land
0810|公园与绿地|Parks and green space
09|特殊用地|Special-use land
10|交通运输用地|Transport land
1001|铁路用地|Railway land
1002|轨道交通用地|Rail transit land
1003|公路用地|Highway land
1004|城镇村道路用地|Urban and village road land
1005|交通服务场站用地|Transport station land
1006|农村道路|Rural road
1007|机场用地|Airport land
1008|港口码头用地|Port and wharf land
1009|管道运输用地|Pipeline land
11|水域及水利设施用地|Water and water-conservancy land
1101|河流水面|River surface
1102|湖泊水面|Lake surface
1103|水库水面|Reservoir surface
1104|坑塘水面|Pond surface
1105|沿海滩涂|Coastal tidal flat
1106|内陆滩涂|Inland tidal flat
1107|沟渠|Ditch
1108|沼泽地|Swamp
1109|水工建筑用地|Hydraulic construction land
1110|冰川及永久积雪|Glacier and permanent snow
12|其他土地|Other land
1201|空闲地|Vacant land
1202|设施农用地|Facility agricultural land
1203|田坎|Field ridge
1204|盐碱地|Saline-alkali land
1205|沙地|Sandy land
1206|裸土地|Bare soil
1207|裸岩石砾地|Bare rock and gravel
""")

# 三大类: which land-use classes count as construction land (建设用地). Construction land is
# classes 05–09, transport except rural roads, reservoirs, hydraulic works and vacant land.
CONSTRUCTION_CLASSES = frozenset(
    code for code in LAND_USE_CLASS.codes
    if code[:2] in {"05", "06", "07", "08", "09"}
    or (code[:2] == "10" and code != "1006")
    or code in {"1103", "1109", "1201"}
)
FARMLAND_CLASSES = frozenset(code for code in LAND_USE_CLASS.codes if code[:2] == "01")

REGION_LEVEL = _codes("region_level", "行政级别", "Administrative level", """
province|省级|Province
city|地级|Prefecture-level city
county|县级|County-level division
""")

PLAN_ZONE = _codes("plan_zone", "建设用地管制区", "Construction-control zone", """
010|允许建设区|Construction allowed
020|有条件建设区|Conditional construction
030|限制建设区|Construction restricted
040|禁止建设区|Construction prohibited
""")

ECO_REDLINE_KIND = _codes("eco_redline_kind", "生态保护红线类型", "Ecological red-line kind", """
water|水源涵养|Water conservation
biodiversity|生物多样性维护|Biodiversity
soil|水土保持|Soil conservation
desertification|防风固沙|Wind and sand control
""")

FARMLAND_GRADE = _codes("farmland_grade", "耕地质量等别", "Farmland quality grade (农用地分等)", "\n".join(
    f"{g}|{g}等|Grade {g}" for g in range(1, 16)))

APPROVAL_AUTHORITY = _codes("approval_authority", "批准机关", "Approving authority", """
state_council|国务院|State Council
province|省政府|Provincial government
""")

# 建设用地审批合规性核查: the colour of an approval's latest compliance check (services/compliance.py)
COMPLIANCE_COLOUR = _codes("compliance_colour", "合规性核查结果", "Compliance check result", """
green|绿（合规）|Green (compliant)
yellow|黄（需核实）|Yellow (to verify)
red|红（不合规）|Red (non-compliant)
""")

# what ran an approval's stored compliance check (table approval_check, services/compliance.py)
COMPLIANCE_TRIGGER = _codes("compliance_trigger", "核查触发", "Check triggered by", """
registration|登记时|At registration (the import batch)
on_demand|按需|On demand
""")

APPROVAL_KIND = _codes("approval_kind", "审批类型", "Approval kind", """
conversion|农用地转用|Farmland conversion
expropriation|土地征收|Land expropriation
conversion_expropriation|农用地转用和土地征收|Conversion and expropriation
""")

SUPPLY_METHOD = _codes("supply_method", "供地方式", "Supply method", """
allocation|划拨|Allocation
agreement|协议出让|Transfer by agreement
tender|招标出让|Transfer by tender
auction|拍卖出让|Transfer by auction
listing|挂牌出让|Transfer by listing
lease|租赁|Lease
""")

DEVELOPMENT_STATUS = _codes("development_status", "开发利用状态", "Development status", """
not_started|未动工|Not started
started|已动工|Started
halted|停工|Halted
completed|已竣工|Completed
""")

CASE_SOURCE = _codes("case_source", "线索来源", "Source", """
satellite|卫片执法|Satellite monitoring
report|群众举报|Public report
patrol|动态巡查|Patrol
petition|信访|Petition
""")

VIOLATION_TYPE = _codes("violation_type", "违法类型", "Violation type", """
unapproved|未批先用|Used without approval
unsupplied|未供先用|Used before supply
beyond_extent|超范围用地|Beyond approved extent
basic_farmland|占用永久基本农田|Occupies permanent basic farmland
outside_plan|不符合规划|Outside the plan
unlicensed_mining|无证开采|Mining without a licence
beyond_boundary_mining|越界开采|Mining beyond the licence boundary
expired_mining|超期开采|Mining on an expired licence
other|其他|Other
""")

CASE_STATUS = _codes("case_status", "案件状态", "Case status", """
filed|立案|Filed
investigating|调查|Under investigation
decided|已处罚|Penalty decided
closed|结案|Closed
""")

LEAD_STATUS = _codes("lead_status", "线索状态", "Lead status", """
new|待核查|New
verifying|核查中|Being verified
confirmed|已确认违法|Confirmed violation
dismissed|排除|Dismissed
""")

COMPARISON_CATEGORY = _codes("comparison_category", "比对核查类别", "Comparison category", """
legal|合法|Legal
unapproved|未批先用|Used without approval
unsupplied|未供先用|Used before supply
beyond_extent|超范围/少批多用|Beyond approved extent
basic_farmland|占用永久基本农田|Occupies permanent basic farmland
outside_plan|不符合规划|Outside the plan
other|其他|Other
unlicensed_mining|无证开采|Mining without a licence
beyond_boundary_mining|越界开采|Mining beyond the licence boundary
expired_mining|超期开采|Mining on an expired licence
""")

CHANGE_KIND = _codes("change_kind", "变化类型", "Change kind", """
construction|建设用地变化|Construction change
mining|采矿活动变化|Mining activity
""")

MINING_RIGHT_TYPE = _codes("mining_right_type", "矿业权类型", "Mining-right type", """
exploration|探矿权|Exploration right
mining|采矿权|Mining right
""")

MINERAL = _codes("mineral", "矿种", "Mineral", """
coal|煤|Coal
oil_shale|油页岩|Oil shale
iron|铁矿|Iron
copper|铜矿|Copper
molybdenum|钼矿|Molybdenum
gold|金矿|Gold
nickel|镍矿|Nickel
limestone|水泥用灰岩|Cement limestone
sand_gravel|建筑用砂石|Construction sand and gravel
mineral_water|矿泉水|Mineral water
""")

MINE_SCALE = _codes("mine_scale", "矿山规模", "Mine scale", """
large|大型|Large
medium|中型|Medium
small|小型|Small
""")

ACQUISITION_METHOD = _codes("acquisition_method", "取得方式", "Acquisition method", """
application|申请在先|First application
tender|招标|Tender
auction|拍卖|Auction
listing|挂牌|Listing
agreement|协议|Agreement
""")

INSPECTION_RESULT = _codes("inspection_result", "年检结果", "Annual inspection result", """
passed|合格|Passed
rectify|责令整改|Rectification ordered
failed|不合格|Failed
""")

HAZARD_TYPE = _codes("hazard_type", "灾害类型", "Hazard type", """
landslide|滑坡|Landslide
rockfall|崩塌|Rockfall
debris_flow|泥石流|Debris flow
collapse|地面塌陷|Ground collapse
ground_fissure|地裂缝|Ground fissure
subsidence|地面沉降|Land subsidence
""")

RISK_LEVEL = _codes("risk_level", "险情等级", "Risk level", """
extra_large|特大型|Extra large
large|大型|Large
medium|中型|Medium
small|小型|Small
""")

DISASTER_KIND = _codes("disaster_kind", "灾害种类", "Disaster kind", """
earthquake|地震|Earthquake
flood|洪涝|Flood
landslide|滑坡|Landslide
debris_flow|泥石流|Debris flow
rockfall|崩塌|Rockfall
collapse|地面塌陷|Ground collapse
drought|干旱|Drought
snowstorm|雪灾|Snowstorm
""")

REPORT_KIND = _codes("report_kind", "报告类型", "Report kind", """
initial|初报|Initial report
daily|续报|Daily report
verified|核报|Verified report
""")

SUPERVISION_KIND = _codes("supervision_kind", "监管号类型", "Supervision number kind", """
P|建设用地审批|Construction-land approval
G|土地供应|Land supply without approval
B|补充耕地项目|Supplementary farmland project
C|执法案件|Enforcement case
K|矿业权|Mining right
""")
