"""styles/: one style per layer, category colours valid for the code lists, SLD that parses."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from layers import REGISTRY
from layers.codes import LAND_USE_CLASS
from styles import STYLES, style_for
from styles.sld import OGC, SLD, to_sld


def test_every_layer_has_exactly_one_style():
    assert set(STYLES) == {layer.name for layer in REGISTRY}


def test_land_use_colours_fall_back_to_the_first_level_class():
    style = style_for("land_use")
    assert style.colour_of("0103") == "#FFFF64"            # 旱地: its own colour
    assert style.colour_of("0203") == style.colour_of("02")  # 橡胶园: 园地's colour
    assert style.colour_of("0301") != style.colour_of("1101")
    assert all(style.colour_of(code) for code in LAND_USE_CLASS.codes)


def test_legend_rows_carry_both_languages():
    rows = style_for("plan_zone").legend()
    assert [(r["code"], r["zh"]) for r in rows] == [
        ("010", "允许建设区"), ("020", "有条件建设区"), ("030", "限制建设区"), ("040", "禁止建设区")]
    assert style_for("approval").legend()[0]["zh"] == "建设用地审批"


@pytest.mark.parametrize("layer", sorted(STYLES))
def test_sld_is_well_formed_and_matches_the_style(layer):
    root = ET.fromstring(to_sld(layer).encode())
    assert root.tag == f"{{{SLD}}}StyledLayerDescriptor"
    rules = root.findall(f".//{{{SLD}}}Rule")
    style = STYLES[layer]
    if style.category_field:
        literals = [r.find(f".//{{{OGC}}}Literal").text for r in rules[:-1]]
        for code in literals:
            fill = next(p for p in rules[literals.index(code)].iter(f"{{{SLD}}}CssParameter")
                        if p.get("name") == "fill")
            assert fill.text == style.colour_of(code)
        assert rules[-1].find(f"{{{SLD}}}ElseFilter") is not None
    else:
        assert len(rules) == 1


def test_land_use_sld_has_a_rule_for_every_coloured_class():
    root = ET.fromstring(to_sld("land_use").encode())
    literals = {el.text for el in root.iter(f"{{{OGC}}}Literal")}
    assert {"0101", "0102", "0103", "0301", "1202", "0203"} <= literals
