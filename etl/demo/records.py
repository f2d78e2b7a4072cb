"""The demo's business records as plain Python objects, before they are loaded.

Geometries are EPSG:4490 lon/lat shapely geometries. Links between records are object
references (a supply holds its approval); the loader turns them into ids and supervision
numbers. `tag` names a planted case (it appears in the manifest); background records
have none.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import shapely


@dataclass(eq=False)
class Approval:
    county: str
    geom: shapely.Geometry
    authority: str
    kind: str
    approved_on: date
    planned_use: str
    document_no: str = ""
    batch_name: str = ""
    tag: str | None = None
    supervision_no: str | None = None


@dataclass(eq=False)
class Supply:
    county: str
    geom: shapely.Geometry
    approval: Approval | None
    method: str
    land_use: str
    signed_on: date
    agreed_start: date
    agreed_completion: date
    land_user: str
    price_10k_yuan: float
    plot_ratio_min: float
    plot_ratio_max: float
    contract_no: str = ""
    tag: str | None = None
    supervision_no: str | None = None


@dataclass(eq=False)
class DevelopmentReport:
    supply: Supply
    reported_on: date
    status: str
    actual_start: date | None = None
    actual_completion: date | None = None
    developed_share: float | None = None
    invested_share: float | None = None
    halted_since: date | None = None


@dataclass(eq=False)
class Project:
    county: str
    geom: shapely.Geometry
    name: str
    new_farmland_ratio: float
    farmland_grade: str
    accepted_on: date
    project_no: str = ""
    supervision_no: str | None = None


@dataclass(eq=False)
class Balance:
    project: Project
    approval: Approval
    area_m2: float


@dataclass(eq=False)
class MiningRight:
    county: str
    geom: shapely.Geometry
    corners: str
    corner_crs: int
    right_type: str
    holder: str
    mine_name: str
    mineral: str
    scale: str
    acquisition: str
    valid_from: date
    valid_to: date
    licence_no: str = ""
    tag: str | None = None
    supervision_no: str | None = None


@dataclass(eq=False)
class MineReport:
    right: MiningRight
    year: int
    reported_on: date
    inspection: str
    mining_recovery: float
    processing_recovery: float
    utilization: float
    output_10k_t: float
    point: shapely.Point


@dataclass(eq=False)
class Patch:
    county: str
    geom: shapely.Geometry
    kind: str                       # construction / mining
    class_after: str
    temporary: bool = False
    false_change: bool = False
    patch_no: str = ""
    tag: str | None = None
    expected: dict | None = None    # planted: categories and overlap areas


@dataclass(eq=False)
class Case:
    county: str
    geom: shapely.Geometry
    source: str
    violation_type: str
    party: str
    status: str
    filed_on: date
    closed_on: date | None = None
    penalty_10k_yuan: float | None = None
    carries: Approval | Supply | MiningRight | None = None   # the record it was opened on
    case_no: str = ""
    tag: str | None = None
    supervision_no: str | None = None


@dataclass(eq=False)
class Lead:
    county: str
    geom: shapely.Geometry
    source: str
    categories: list[str]
    status: str
    found_on: date
    case: Case | None = None
    lead_no: str = ""


@dataclass(eq=False)
class HazardPoint:
    county: str
    point: shapely.Point
    hazard_no: str
    name: str
    hazard_type: str
    risk_level: str
    threatened_people: int
    threatened_property_10k_yuan: float
    monitor_name: str
    monitor_phone: str
    surveyed_on: date


@dataclass(eq=False)
class DisasterEvent:
    event_no: str
    name: str
    kind: str
    magnitude: float | None
    started_at: datetime
    stabilised_at: datetime
    region_code: str
    point: shapely.Point
    expected: dict = field(default_factory=dict)


@dataclass(eq=False)
class DisasterReport:
    event: DisasterEvent
    report_no: str
    kind: str
    level: str
    region_code: str
    reported_at: datetime
    covers_until: datetime | None
    deaths: int
    missing: int
    relocated: int
    houses_collapsed: int
    houses_damaged: int
    direct_loss_10k_yuan: float
    point: shapely.Point


@dataclass
class DemoRecords:
    approvals: list[Approval] = field(default_factory=list)
    supplies: list[Supply] = field(default_factory=list)
    reports: list[DevelopmentReport] = field(default_factory=list)
    projects: list[Project] = field(default_factory=list)
    balances: list[Balance] = field(default_factory=list)
    rights: list[MiningRight] = field(default_factory=list)
    mine_reports: list[MineReport] = field(default_factory=list)
    patches: list[Patch] = field(default_factory=list)
    cases: list[Case] = field(default_factory=list)
    leads: list[Lead] = field(default_factory=list)
    hazards: list[HazardPoint] = field(default_factory=list)
    events: list[DisasterEvent] = field(default_factory=list)
    disaster_reports: list[DisasterReport] = field(default_factory=list)
    # approvals whose supplementary farmland is deliberately short (share of farmland balanced)
    underbalanced: dict[Approval, float] = field(default_factory=dict)
