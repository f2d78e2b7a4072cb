"""One declared style per layer: the web map, the legend and SLD exports read it from here.

A style is a base symbol (fill, stroke, point marker) and, optionally, categories on one
field (land-use classes, zone codes, case status …) that override the fill colour. For the
land-use layer a second-level GB/T 21010 code without its own colour takes its first-level
class's colour. Colours follow the customary land-use map palette of the national land
surveys (yellow farmland, green forest, blue water, warm construction), approximately.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from layers import REGISTRY, Geometry, Layer


@dataclass(frozen=True)
class Style:
    layer: str
    fill: str | None = None
    fill_opacity: float = 0.6
    stroke: str = "#333333"
    stroke_width: float = 1.0
    stroke_dash: tuple[float, ...] | None = None
    radius: float = 6.0                     # point markers, pixels
    category_field: str | None = None
    categories: dict[str, str] = field(default_factory=dict)   # code -> fill colour
    min_zoom: int = 0                        # below this the layer is not drawn
    shown: bool = True                       # switched on when the map opens

    def colour_of(self, code: str | None) -> str | None:
        """The fill for a feature's category code, falling back to its parent code (0103 → 01)."""
        if code is not None and self.category_field:
            for key in (code, code[:2]):
                if key in self.categories:
                    return self.categories[key]
        return self.fill

    def legend(self) -> list[dict]:
        """Legend rows: the categories with their labels, or the single symbol."""
        layer = REGISTRY[self.layer]
        if not self.category_field:
            return [{"code": None, "zh": layer.zh, "en": layer.en, "fill": self.fill, "stroke": self.stroke}]
        codes = layer.field(self.category_field).codes
        return [{"code": code, "zh": codes.zh_label(code), "en": codes.en_label(code), "fill": colour,
                 "stroke": self.stroke} for code, colour in self.categories.items()]


LAND_USE_COLOURS = {
    "01": "#FFFF64", "0101": "#F2F08C", "0102": "#F5EB6E", "0103": "#FFFF64",
    "02": "#E6B450", "0201": "#E1AA3C",
    "03": "#3CA050", "0301": "#329646", "0305": "#78BE5A", "0307": "#96C878",
    "04": "#A0DC6E", "0402": "#8CC8A0",
    "05": "#E64B4B",
    "06": "#C89682", "0602": "#A0785A",
    "07": "#F08C78", "0702": "#FFBE96",
    "08": "#F0A0C8",
    "09": "#B4A0C8",
    "10": "#AAAAAA", "1003": "#969696", "1006": "#C8C8B4",
    "11": "#64B4F0", "1101": "#50A0E6", "1102": "#6EBEF5", "1103": "#5AAAEB", "1104": "#8CC8F0",
    "1107": "#78B4DC", "1108": "#82C8BE",
    "12": "#D2C8B4", "1202": "#DCDC96", "1204": "#E6DCC8", "1207": "#BEB4AA",
}

VIOLATION_RED = "#D7191C"

_STYLES = [
    Style("admin_division", fill=None, fill_opacity=0.0, stroke="#7B3294", stroke_width=2.0,
          stroke_dash=(8, 4)),
    Style("land_use", stroke="#8C8C8C", stroke_width=0.3, fill_opacity=0.7, category_field="class_code",
          categories=LAND_USE_COLOURS, min_zoom=10),
    Style("plan_zone", shown=False, stroke="#555555", stroke_width=0.5, fill_opacity=0.35, category_field="zone_code",
          categories={"010": "#F46D43", "020": "#FDAE61", "030": "#A6D96A", "040": "#1A9641"}),
    Style("eco_redline", shown=False, fill="#1A9641", fill_opacity=0.25, stroke="#00682F", stroke_width=2.0),
    Style("urban_boundary", fill=None, fill_opacity=0.0, stroke="#E6550D", stroke_width=2.0, stroke_dash=(6, 3),
          shown=False),
    Style("basic_farmland", fill="#F0E442", fill_opacity=0.45, stroke="#2E7D32", stroke_width=0.8, min_zoom=9,
          shown=False),
    Style("imagery_epoch", fill=None, fill_opacity=0.0, stroke="#2C7BB6", stroke_width=1.5, stroke_dash=(2, 2),
          shown=False),
    Style("approval", fill="#FDB863", fill_opacity=0.45, stroke="#E66101", stroke_width=1.2),
    Style("supply", shown=False,
          fill="#B2ABD2", fill_opacity=0.5, stroke="#5E3C99", stroke_width=1.0, category_field="method",
          categories={"allocation": "#B2ABD2", "agreement": "#E66101", "tender": "#80CDC1",
                      "auction": "#35978F", "listing": "#01665E", "lease": "#DFC27D"}),
    Style("development_report", shown=False,
          fill="#FEE08B", fill_opacity=0.5, stroke="#B35806", category_field="status",
          categories={"not_started": "#D73027", "started": "#FEE08B", "halted": "#FC8D59", "completed": "#1A9850"}),
    Style("consolidation_project", shown=False, fill="#A6DBA0", fill_opacity=0.5, stroke="#008837", stroke_width=1.2),
    Style("enforcement_case", fill=VIOLATION_RED, fill_opacity=0.45, stroke="#A50F15", category_field="status",
          categories={"filed": VIOLATION_RED, "investigating": "#F03B20", "decided": "#FD8D3C", "closed": "#969696"}),
    Style("change_patch", fill="#FF00FF", fill_opacity=0.35, stroke="#C51B7D", stroke_width=1.2,
          category_field="kind", categories={"construction": "#FF00FF", "mining": "#8C510A"}),
    Style("violation_lead", fill=VIOLATION_RED, fill_opacity=0.5, stroke="#67000D", stroke_width=1.5,
          category_field="status",
          categories={"new": VIOLATION_RED, "verifying": "#FC4E2A", "confirmed": "#800026", "dismissed": "#BDBDBD"}),
    Style("comparison_result", fill="#1A9641", fill_opacity=0.5, stroke="#333333", stroke_width=1.2,
          category_field="category",
          categories={"legal": "#1A9641", "unapproved": VIOLATION_RED, "unsupplied": "#FDAE61",
                      "beyond_extent": "#F46D43", "basic_farmland": "#67000D", "outside_plan": "#FEE08B",
                      "other": "#BDBDBD", "unlicensed_mining": "#8E0152", "beyond_boundary_mining": "#C51B7D",
                      "expired_mining": "#DE77AE"}),
    Style("mining_right", fill="#BF812D", fill_opacity=0.35, stroke="#543005", stroke_width=1.2,
          category_field="right_type", categories={"exploration": "#DFC27D", "mining": "#BF812D"}),
    Style("mine_report", shown=False, fill="#8C510A", stroke="#FFFFFF", radius=5),
    Style("hazard_point", fill="#FF7F00", stroke="#FFFFFF", radius=6, category_field="risk_level",
          categories={"extra_large": "#67000D", "large": "#D7301F", "medium": "#FC8D59", "small": "#FDCC8A"}),
    Style("disaster_event", shown=False, fill="#54278F", stroke="#FFFFFF", radius=9),
    Style("disaster_report", shown=False, fill="#807DBA", stroke="#FFFFFF", radius=5, category_field="kind",
          categories={"initial": "#DADAEB", "daily": "#9E9AC8", "verified": "#54278F"}),
]

STYLES: dict[str, Style] = {s.layer: s for s in _STYLES}


def style_for(layer: Layer | str) -> Style:
    name = layer if isinstance(layer, str) else layer.name
    return STYLES[REGISTRY[name].name]


def _check() -> None:
    if len(STYLES) != len(_STYLES):
        raise ValueError("a layer has two styles")
    missing = {layer.name for layer in REGISTRY} - set(STYLES)
    if missing:
        raise ValueError(f"layers without a style: {sorted(missing)}")
    for s in _STYLES:
        layer = REGISTRY[s.layer]
        if s.category_field:
            codes = layer.field(s.category_field).codes
            unknown = set(s.categories) - set(codes.codes)
            if unknown:
                raise ValueError(f"style {s.layer}: codes not in {codes.name}: {sorted(unknown)}")
        if layer.geometry is Geometry.POINT and s.fill is None:
            raise ValueError(f"style {s.layer}: a point layer needs a fill")


_check()
