"""Every layer of the one-map platform, declared once.

Groups: `base` (一张图 base layers), `land_cycle` (批、供、用、补、查), `comparison`
(change patches and the leads they produce), `mining`, `hazard`, `imagery`.
Field names follow English domain words; the customary Chinese database field names
(DLBM, TBBH …) are mapped to them by the importers.
"""
from __future__ import annotations

from layers import codes as c
from layers.registry import Field, FieldType as T, Geometry as G, Layer, Link, Registry

SUPERVISION_REF = "supervision_number.number"


def _county(public: bool = True) -> Field:
    return Field("county_code", T.TEXT, "县级行政区代码", "County code (GB/T 2260)",
                 public=public, required=True, indexed=True)


def _supervision_no(public: bool = True) -> Field:
    return Field("supervision_no", T.TEXT, "统一监管号", "Unified supervision number",
                 public=public, required=True, indexed=True, references=SUPERVISION_REF)


def _area(public: bool = True, zh: str = "面积", en: str = "Area") -> Field:
    return Field("area_m2", T.FLOAT, zh, en, public=public, unit="m2")


ADMIN_DIVISION = Layer(
    "admin_division", "行政区划", "Administrative divisions", "base", G.MULTIPOLYGON,
    description="Province, prefecture-level and county-level boundaries (GB/T 2260 codes).",
    published=True, label_field="name",
    fields=(
        Field("code", T.TEXT, "行政区代码", "Region code", public=True, required=True, unique=True),
        Field("name", T.TEXT, "名称", "Name", public=True, required=True),
        Field("level", T.CODE, "级别", "Level", codes=c.REGION_LEVEL, public=True, required=True),
        Field("parent_code", T.TEXT, "上级代码", "Parent code", public=True, indexed=True),
        Field("seat_lon", T.FLOAT, "驻地经度", "Seat longitude", public=True),
        Field("seat_lat", T.FLOAT, "驻地纬度", "Seat latitude", public=True),
        _area(),
    ))

LAND_USE = Layer(
    "land_use", "土地利用现状", "Land-use status parcels", "base", G.MULTIPOLYGON,
    description="Survey parcels (调查图斑) classified by GB/T 21010-2017.",
    time_field="survey_date", label_field="parcel_no",
    fields=(
        Field("bsm", T.TEXT, "标识码", "Feature identifier", required=True, unique=True),
        Field("parcel_no", T.TEXT, "图斑编号", "Parcel number", required=True, indexed=True),
        Field("class_code", T.CODE, "地类编码", "Land-use class code", codes=c.LAND_USE_CLASS,
              required=True, indexed=True),
        Field("class_name", T.TEXT, "地类名称", "Land-use class name", required=True),
        Field("owner_code", T.TEXT, "权属单位代码", "Ownership unit code"),
        Field("owner_kind", T.TEXT, "权属性质", "Ownership (state/collective)"),
        Field("located_code", T.TEXT, "坐落单位代码", "Located unit code"),
        _county(public=False),
        _area(public=False, zh="图斑面积", en="Parcel area"),
        Field("survey_date", T.DATE, "调查日期", "Survey date"),
    ))

_ZONE_FIELDS = (
    Field("zone_no", T.TEXT, "区块编号", "Zone number", public=True, required=True, unique=True),
    _county(),
    _area(),
    Field("approved_on", T.DATE, "批准日期", "Date approved", public=True),
)

PLAN_ZONE = Layer(
    "plan_zone", "土地利用总体规划管制区", "Land-use plan control zones", "base", G.MULTIPOLYGON,
    description="Construction-control zones of the land-use master plan (建设用地管制区).",
    published=True, time_field="approved_on", label_field="zone_no",
    fields=(Field("zone_code", T.CODE, "管制区代码", "Zone code", codes=c.PLAN_ZONE, public=True,
                  required=True, indexed=True),) + _ZONE_FIELDS)

ECO_REDLINE = Layer(
    "eco_redline", "生态保护红线", "Ecological protection red line", "base", G.MULTIPOLYGON,
    description="三区三线: the ecological protection red line.",
    published=True, time_field="approved_on", label_field="zone_no",
    fields=(Field("kind", T.CODE, "红线类型", "Red-line kind", codes=c.ECO_REDLINE_KIND,
                  public=True, required=True),) + _ZONE_FIELDS)

URBAN_BOUNDARY = Layer(
    "urban_boundary", "城镇开发边界", "Urban development boundary", "base", G.MULTIPOLYGON,
    description="三区三线: the urban development boundary.",
    published=True, time_field="approved_on", label_field="zone_no",
    fields=(Field("town", T.TEXT, "城镇名称", "Town", public=True),) + _ZONE_FIELDS)

BASIC_FARMLAND = Layer(
    "basic_farmland", "永久基本农田", "Permanent basic farmland", "base", G.MULTIPOLYGON,
    description="Protection patches of permanent basic farmland (永久基本农田保护图斑).",
    time_field="designated_on", label_field="patch_no",
    fields=(
        Field("patch_no", T.TEXT, "保护图斑编号", "Protection patch number", required=True, unique=True),
        Field("class_code", T.CODE, "地类编码", "Land-use class code", codes=c.LAND_USE_CLASS, required=True),
        Field("grade", T.CODE, "质量等别", "Quality grade", codes=c.FARMLAND_GRADE, required=True),
        _county(public=False),
        _area(public=False),
        Field("designated_on", T.DATE, "划定日期", "Date designated"),
    ))

IMAGERY_EPOCH = Layer(
    "imagery_epoch", "遥感影像", "Remote-sensing imagery epochs", "imagery", G.MULTIPOLYGON,
    description="Footprints of the imagery epochs; the rasters are served as tiles.",
    published=True, time_field="acquired_on", label_field="name",
    fields=(
        Field("name", T.TEXT, "期次", "Epoch", public=True, required=True, unique=True),
        Field("acquired_on", T.DATE, "获取日期", "Acquisition date", public=True, required=True),
        Field("sensor", T.TEXT, "传感器", "Sensor", public=True),
        Field("resolution_m", T.FLOAT, "分辨率", "Resolution", public=True, unit="m"),
        Field("path", T.TEXT, "文件", "Raster file", required=True),
    ))

APPROVAL = Layer(
    "approval", "建设用地审批", "Construction-land approvals", "land_cycle", G.MULTIPOLYGON,
    description="批: farmland conversion and expropriation approvals (农转用/征收).",
    published=True, time_field="approved_on", label_field="document_no",
    fields=(
        _supervision_no(),
        Field("document_no", T.TEXT, "批准文号", "Approval document number", public=True, required=True,
              unique=True),
        Field("batch_name", T.TEXT, "批次名称", "Batch name", public=True),
        Field("kind", T.CODE, "审批类型", "Approval kind", codes=c.APPROVAL_KIND, public=True, required=True),
        Field("authority", T.CODE, "批准机关", "Approving authority", codes=c.APPROVAL_AUTHORITY,
              public=True, required=True),
        Field("approved_on", T.DATE, "批准日期", "Date approved", public=True, required=True),
        Field("planned_use", T.CODE, "规划用途", "Planned use", codes=c.LAND_USE_CLASS, public=True),
        _area(zh="批准总面积", en="Approved area"),
        Field("farmland_m2", T.FLOAT, "耕地面积", "Farmland area", public=True, unit="m2"),
        Field("basic_farmland_m2", T.FLOAT, "基本农田面积", "Basic farmland area", public=True, unit="m2"),
        _county(),
        # the colour of the latest stored check (table approval_check, services/compliance.py)
        Field("compliance", T.CODE, "合规性核查", "Compliance check", codes=c.COMPLIANCE_COLOUR, computed=True),
    ))

SUPPLY = Layer(
    "supply", "土地供应", "Land supply and contracts", "land_cycle", G.MULTIPOLYGON,
    description="供: supply decisions and transfer contracts (出让合同/划拨决定书).",
    published=True, time_field="signed_on", label_field="contract_no",
    fields=(
        _supervision_no(),
        Field("contract_no", T.TEXT, "合同/决定书编号", "Contract or decision number", public=True,
              required=True, unique=True),
        Field("approval_id", T.INTEGER, "来源批次", "Approval it was cut from",
              references="approval.id", indexed=True),
        Field("method", T.CODE, "供地方式", "Supply method", codes=c.SUPPLY_METHOD, public=True, required=True),
        Field("land_use", T.CODE, "土地用途", "Land use", codes=c.LAND_USE_CLASS, public=True, required=True),
        _area(zh="供地面积", en="Supplied area"),
        Field("price_10k_yuan", T.FLOAT, "成交价款", "Price", public=True, unit="10k CNY"),
        Field("plot_ratio_min", T.FLOAT, "容积率下限", "Plot ratio (min)", public=True),
        Field("plot_ratio_max", T.FLOAT, "容积率上限", "Plot ratio (max)", public=True),
        Field("land_user", T.TEXT, "受让人/用地单位", "Land user", public=True),
        Field("signed_on", T.DATE, "签订日期", "Date signed", public=True, required=True),
        Field("agreed_start", T.DATE, "约定开工日期", "Agreed start", public=True),
        Field("agreed_completion", T.DATE, "约定竣工日期", "Agreed completion", public=True),
        _county(),
    ))

DEVELOPMENT_REPORT = Layer(
    "development_report", "开发利用", "Development and use reports", "land_cycle", G.MULTIPOLYGON,
    description="用: development reports on supplied land (开工、竣工、开发进度).",
    time_field="reported_on", label_field="supervision_no",
    fields=(
        _supervision_no(),
        Field("supply_id", T.INTEGER, "供地记录", "Supply record", references="supply.id",
              required=True, indexed=True),
        Field("reported_on", T.DATE, "填报日期", "Date reported", required=True),
        Field("status", T.CODE, "开发状态", "Status", codes=c.DEVELOPMENT_STATUS, required=True),
        Field("actual_start", T.DATE, "实际开工日期", "Actual start"),
        Field("actual_completion", T.DATE, "实际竣工日期", "Actual completion"),
        Field("developed_share", T.FLOAT, "已开发面积比例", "Developed area share", unit="%"),
        Field("invested_share", T.FLOAT, "已投资额比例", "Invested share", unit="%"),
        Field("halted_since", T.DATE, "停工日期", "Halted since"),
        _county(public=False),
    ))

CONSOLIDATION = Layer(
    "consolidation_project", "土地整治/补充耕地项目", "Land consolidation projects", "land_cycle",
    G.MULTIPOLYGON,
    description="补: projects that create supplementary farmland (补充耕地) for 占补平衡.",
    published=True, time_field="accepted_on", label_field="project_no",
    fields=(
        _supervision_no(),
        Field("project_no", T.TEXT, "项目编号", "Project number", public=True, required=True, unique=True),
        Field("name", T.TEXT, "项目名称", "Project name", public=True, required=True),
        Field("new_farmland_m2", T.FLOAT, "新增耕地面积", "New farmland area", public=True, unit="m2"),
        Field("farmland_grade", T.CODE, "新增耕地等别", "New farmland grade", codes=c.FARMLAND_GRADE,
              public=True),
        Field("accepted_on", T.DATE, "验收日期", "Date accepted", public=True),
        _area(zh="项目面积", en="Project area"),
        _county(),
    ))

ENFORCEMENT_CASE = Layer(
    "enforcement_case", "执法案件", "Enforcement cases", "land_cycle", G.MULTIPOLYGON,
    description="查: land and mining enforcement cases.",
    published=True, public_where="status = 'closed'", time_field="filed_on", label_field="case_no",
    fields=(
        _supervision_no(),
        Field("case_no", T.TEXT, "案件编号", "Case number", public=True, required=True, unique=True),
        Field("source", T.CODE, "案件来源", "Source", codes=c.CASE_SOURCE, public=True, required=True),
        Field("violation_type", T.CODE, "违法类型", "Violation type", codes=c.VIOLATION_TYPE,
              public=True, required=True),
        Field("party", T.TEXT, "当事人", "Party"),
        _area(zh="违法面积", en="Illegal area"),
        Field("farmland_m2", T.FLOAT, "其中耕地", "Of which farmland", public=True, unit="m2"),
        Field("status", T.CODE, "案件状态", "Status", codes=c.CASE_STATUS, public=True, required=True),
        Field("filed_on", T.DATE, "立案日期", "Date filed", public=True, required=True),
        Field("closed_on", T.DATE, "结案日期", "Date closed", public=True),
        Field("penalty_10k_yuan", T.FLOAT, "罚没款", "Fine", public=True, unit="10k CNY"),
        _county(),
    ))

CHANGE_PATCH = Layer(
    "change_patch", "遥感监测变化图斑", "Change patches", "comparison", G.MULTIPOLYGON,
    description="Land that changed between two imagery epochs (to construction or mining).",
    time_field="detected_on", label_field="patch_no",
    fields=(
        Field("patch_no", T.TEXT, "图斑编号", "Patch number", required=True, unique=True),
        Field("batch", T.TEXT, "监测批次", "Monitoring batch", required=True, indexed=True),
        Field("kind", T.CODE, "变化类型", "Change kind", codes=c.CHANGE_KIND, required=True),
        Field("epoch_before", T.TEXT, "前时相", "Epoch before", required=True),
        Field("epoch_after", T.TEXT, "后时相", "Epoch after", required=True),
        Field("class_before", T.CODE, "前地类", "Class before", codes=c.LAND_USE_CLASS),
        Field("class_after", T.CODE, "后地类", "Class after", codes=c.LAND_USE_CLASS),
        Field("temporary", T.BOOLEAN, "临时用地", "Temporary use"),
        Field("false_change", T.BOOLEAN, "伪变化", "False change"),
        _area(public=False, zh="图斑面积", en="Patch area"),
        Field("detected_on", T.DATE, "监测日期", "Date detected", required=True),
        _county(public=False),
    ))

VIOLATION_LEAD = Layer(
    "violation_lead", "违法线索", "Violation leads", "comparison", G.MULTIPOLYGON,
    description="Leads from comparison runs, patrols and public reports (违法线索).",
    time_field="found_on", label_field="lead_no",
    fields=(
        Field("lead_no", T.TEXT, "线索编号", "Lead number", required=True, unique=True),
        Field("source", T.CODE, "线索来源", "Source", codes=c.CASE_SOURCE, required=True),
        Field("categories", T.CODES, "比对类别", "Categories", codes=c.COMPARISON_CATEGORY),
        Field("patch_id", T.INTEGER, "变化图斑", "Change patch", references="change_patch.id", indexed=True),
        Field("run_id", T.INTEGER, "比对批次", "Comparison run", references="comparison_run.id"),
        Field("case_id", T.INTEGER, "立案", "Case opened", references="enforcement_case.id"),
        _area(public=False, zh="线索面积", en="Lead area"),
        Field("farmland_m2", T.FLOAT, "占用耕地", "Farmland taken", unit="m2"),
        Field("basic_farmland_m2", T.FLOAT, "占用基本农田", "Basic farmland taken", unit="m2"),
        Field("status", T.CODE, "线索状态", "Status", codes=c.LEAD_STATUS, required=True),
        Field("found_on", T.DATE, "发现日期", "Date found", required=True),
        _county(public=False),
    ))

COMPARISON_RESULT = Layer(
    "comparison_result", "比对核查结果", "Comparison results", "comparison", G.MULTIPOLYGON,
    description="比对核查: each change patch's categories and overlap areas from its latest comparison run "
                "(services/comparison.py, rules in docs/comparison.md).",
    time_field="compared_at", label_field="patch_no",
    fields=(
        Field("patch_id", T.INTEGER, "变化图斑", "Change patch", references="change_patch.id", required=True,
              unique=True),
        Field("patch_no", T.TEXT, "图斑编号", "Patch number", required=True),
        Field("batch", T.TEXT, "监测批次", "Monitoring batch", required=True, indexed=True),
        Field("run_id", T.INTEGER, "比对批次", "Comparison run", references="comparison_run.id", required=True),
        Field("kind", T.CODE, "变化类型", "Change kind", codes=c.CHANGE_KIND, required=True),
        Field("category", T.CODE, "主要类别", "Leading category", codes=c.COMPARISON_CATEGORY, required=True,
              indexed=True),
        Field("categories", T.CODES, "比对类别", "Categories", codes=c.COMPARISON_CATEGORY, required=True),
        Field("violation", T.BOOLEAN, "疑似违法", "Violation", required=True),
        _area(public=False, zh="图斑面积", en="Patch area"),
        Field("approval_m2", T.FLOAT, "已批面积", "Covered by approvals", unit="m2"),
        Field("unapproved_m2", T.FLOAT, "未批面积", "Not covered by approvals", unit="m2"),
        Field("supply_m2", T.FLOAT, "已供面积", "Covered by supply", unit="m2"),
        Field("unsupplied_m2", T.FLOAT, "批而未供面积", "Approved but not supplied", unit="m2"),
        Field("basic_farmland_m2", T.FLOAT, "占用基本农田", "Basic farmland taken", unit="m2"),
        Field("farmland_m2", T.FLOAT, "占用耕地", "Farmland taken", unit="m2"),
        Field("illegal_farmland_m2", T.FLOAT, "违法占用耕地", "Farmland taken without approval", unit="m2"),
        Field("restricted_m2", T.FLOAT, "限制/禁止建设区面积", "In 030/040 zones", unit="m2"),
        Field("outside_boundary_m2", T.FLOAT, "城镇开发边界外面积", "Outside the urban development boundary",
              unit="m2"),
        Field("eco_redline_m2", T.FLOAT, "生态保护红线内面积", "In the ecological red line", unit="m2"),
        Field("zone_m2", T.JSON, "管制区面积", "Area per plan zone code (m2)"),
        Field("land_use_m2", T.JSON, "占用地类面积", "Area per land-use class taken (m2)"),
        Field("county_m2", T.JSON, "分县面积", "Area per county (m2)"),
        Field("licence_no", T.TEXT, "所属采矿权", "Own mining right (licence)"),
        Field("own_right_m2", T.FLOAT, "矿权内面积", "Inside its own right", unit="m2"),
        Field("outside_right_m2", T.FLOAT, "矿权外面积", "Outside its own right", unit="m2"),
        _county(public=False),
        Field("city_code", T.TEXT, "地级行政区代码", "City code (GB/T 2260)", required=True, indexed=True),
        Field("compared_at", T.DATETIME, "比对时间", "Compared at", required=True),
    ))

MINING_RIGHT = Layer(
    "mining_right", "矿业权", "Mining rights", "mining", G.MULTIPOLYGON,
    description="Exploration and mining rights; boundaries from corner coordinates (拐点坐标).",
    published=True, time_field="valid_from", label_field="licence_no",
    fields=(
        _supervision_no(),
        Field("licence_no", T.TEXT, "许可证号", "Licence number", public=True, required=True, unique=True),
        Field("right_type", T.CODE, "矿业权类型", "Right type", codes=c.MINING_RIGHT_TYPE, public=True,
              required=True),
        Field("holder", T.TEXT, "矿业权人", "Holder", public=True, required=True),
        Field("mine_name", T.TEXT, "矿山/项目名称", "Mine or project name", public=True),
        Field("mineral", T.CODE, "主矿种", "Main mineral", codes=c.MINERAL, public=True, required=True),
        Field("scale", T.CODE, "生产规模", "Scale", codes=c.MINE_SCALE, public=True),
        Field("acquisition", T.CODE, "取得方式", "Acquisition method", codes=c.ACQUISITION_METHOD, public=True),
        Field("valid_from", T.DATE, "有效期起", "Valid from", public=True, required=True),
        Field("valid_to", T.DATE, "有效期止", "Valid to", public=True, required=True),
        Field("corner_crs", T.INTEGER, "拐点坐标系", "Corner coordinate CRS (EPSG)"),
        Field("corners", T.TEXT, "拐点坐标", "Corner coordinates (point, X, Y per line)"),
        _area(),
        _county(),
    ))

MINE_REPORT = Layer(
    "mine_report", "矿山年度报告", "Mine annual reports", "mining", G.POINT,
    description="Grassroots annual reports of mines: inspection and the three rates (三率).",
    time_field="reported_on", label_field="licence_no",
    fields=(
        Field("licence_no", T.TEXT, "许可证号", "Licence number", required=True, indexed=True),
        Field("mining_right_id", T.INTEGER, "矿业权", "Mining right", references="mining_right.id",
              indexed=True),
        Field("year", T.INTEGER, "年度", "Year", required=True),
        Field("reported_on", T.DATE, "填报日期", "Date reported", required=True),
        Field("inspection", T.CODE, "年检结果", "Inspection result", codes=c.INSPECTION_RESULT, required=True),
        Field("mining_recovery", T.FLOAT, "开采回采率", "Mining recovery rate", unit="%"),
        Field("processing_recovery", T.FLOAT, "选矿回收率", "Processing recovery rate", unit="%"),
        Field("utilization", T.FLOAT, "综合利用率", "Comprehensive utilisation rate", unit="%"),
        Field("output_10k_t", T.FLOAT, "年产量", "Annual output", unit="10k t"),
        _county(public=False),
    ))

HAZARD_POINT = Layer(
    "hazard_point", "地质灾害隐患点", "Geological hazard points", "hazard", G.POINT,
    description="Geological hazard sites under mass monitoring (群测群防).",
    published=True, time_field="surveyed_on", label_field="name",
    fields=(
        Field("hazard_no", T.TEXT, "隐患点编号", "Hazard number", public=True, required=True, unique=True),
        Field("name", T.TEXT, "名称", "Name", public=True, required=True),
        Field("hazard_type", T.CODE, "灾害类型", "Hazard type", codes=c.HAZARD_TYPE, public=True, required=True),
        Field("risk_level", T.CODE, "险情等级", "Risk level", codes=c.RISK_LEVEL, public=True, required=True),
        Field("threatened_people", T.INTEGER, "威胁人数", "People threatened", public=True),
        Field("threatened_property_10k_yuan", T.FLOAT, "威胁财产", "Property threatened", public=True,
              unit="10k CNY"),
        Field("monitor_name", T.TEXT, "监测人", "Monitor"),
        Field("monitor_phone", T.TEXT, "监测人电话", "Monitor phone"),
        Field("surveyed_on", T.DATE, "调查日期", "Date surveyed", public=True),
        _county(),
    ))

DISASTER_EVENT = Layer(
    "disaster_event", "灾害事件", "Disaster events", "hazard", G.POINT,
    description="Natural disasters that report under the national relief plan.",
    published=True, time_field="started_at", label_field="name",
    fields=(
        Field("event_no", T.TEXT, "事件编号", "Event number", public=True, required=True, unique=True),
        Field("name", T.TEXT, "事件名称", "Event name", public=True, required=True),
        Field("kind", T.CODE, "灾害种类", "Disaster kind", codes=c.DISASTER_KIND, public=True, required=True),
        Field("magnitude", T.FLOAT, "震级", "Magnitude", public=True),
        Field("started_at", T.DATETIME, "发生时间", "Started at", public=True, required=True),
        Field("stabilised_at", T.DATETIME, "灾情稳定时间", "Stabilised at", public=True),
        Field("region_code", T.TEXT, "发生地区", "Region code", public=True, required=True, indexed=True),
    ))

DISASTER_REPORT = Layer(
    "disaster_report", "灾情报告", "Disaster reports", "hazard", G.POINT,
    description="初报/续报/核报 from county, city and province, located at the reporting seat.",
    time_field="reported_at", label_field="report_no",
    fields=(
        Field("report_no", T.TEXT, "报告编号", "Report number", required=True, unique=True),
        Field("event_id", T.INTEGER, "灾害事件", "Event", references="disaster_event.id",
              required=True, indexed=True),
        Field("kind", T.CODE, "报告类型", "Report kind", codes=c.REPORT_KIND, required=True),
        Field("level", T.CODE, "报告级别", "Reporting level", codes=c.REGION_LEVEL, required=True),
        Field("region_code", T.TEXT, "报告地区", "Reporting region", required=True, indexed=True),
        Field("reported_at", T.DATETIME, "报告时间", "Reported at", required=True),
        Field("covers_until", T.DATETIME, "统计截止", "Covers until"),
        Field("deaths", T.INTEGER, "死亡人数", "Deaths"),
        Field("missing", T.INTEGER, "失踪人数", "Missing"),
        Field("relocated", T.INTEGER, "紧急转移安置人数", "People relocated"),
        Field("houses_collapsed", T.INTEGER, "倒塌房屋", "Houses collapsed"),
        Field("houses_damaged", T.INTEGER, "损坏房屋", "Houses damaged"),
        Field("direct_loss_10k_yuan", T.FLOAT, "直接经济损失", "Direct economic loss", unit="10k CNY"),
    ))

FARMLAND_BALANCE = Link(
    "farmland_balance", "占补平衡", "Farmland balance",
    fields=(
        Field("project_id", T.INTEGER, "补充耕地项目", "Consolidation project",
              references="consolidation_project.id", required=True, indexed=True),
        Field("supervision_no", T.TEXT, "被平衡的审批监管号", "Supervision number of the approval balanced",
              references=SUPERVISION_REF, required=True, indexed=True),
        Field("area_m2", T.FLOAT, "挂钩面积", "Area balanced", required=True, unit="m2"),
    ))

REGISTRY = Registry(
    [ADMIN_DIVISION, LAND_USE, PLAN_ZONE, ECO_REDLINE, URBAN_BOUNDARY, BASIC_FARMLAND, IMAGERY_EPOCH,
     APPROVAL, SUPPLY, DEVELOPMENT_REPORT, CONSOLIDATION, ENFORCEMENT_CASE,
     CHANGE_PATCH, VIOLATION_LEAD, COMPARISON_RESULT,
     MINING_RIGHT, MINE_REPORT,
     HAZARD_POINT, DISASTER_EVENT, DISASTER_REPORT],
    links=[FARMLAND_BALANCE],
)
