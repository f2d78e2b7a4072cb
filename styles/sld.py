"""Export a layer's style as OGC SLD 1.0 (read by QGIS, GeoServer, MapServer).

Categories become one rule per code of the field's code list that has a colour (land-use
codes inherit their first-level colour), each with a PropertyIsEqualTo filter, then an
`ElseFilter` rule with the base symbol.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

from layers import REGISTRY, Geometry
from styles import Style, style_for

SLD = "http://www.opengis.net/sld"
OGC = "http://www.opengis.net/ogc"
SE_NS = {"": SLD, "ogc": OGC, "xlink": "http://www.w3.org/1999/xlink",
         "xsi": "http://www.w3.org/2001/XMLSchema-instance"}
for prefix, uri in SE_NS.items():
    ET.register_namespace(prefix, uri)


def _el(parent: ET.Element, tag: str, text: str | None = None, ns: str = SLD, **attrs) -> ET.Element:
    el = ET.SubElement(parent, f"{{{ns}}}{tag}", attrs)
    if text is not None:
        el.text = text
    return el


def _param(parent: ET.Element, kind: str, name: str, value) -> None:
    _el(parent, f"{kind}Parameter" if kind == "Css" else kind, str(value), name=name)


def _symbolizer(rule: ET.Element, style: Style, fill: str | None, point: bool) -> None:
    if point:
        graphic = _el(_el(rule, "PointSymbolizer"), "Graphic")
        mark = _el(graphic, "Mark")
        _el(mark, "WellKnownName", "circle")
        _param(_el(mark, "Fill"), "Css", "fill", fill)
        stroke = _el(mark, "Stroke")
        _param(stroke, "Css", "stroke", style.stroke)
        _param(stroke, "Css", "stroke-width", style.stroke_width)
        _el(graphic, "Size", f"{style.radius * 2:g}")
        return
    sym = _el(rule, "PolygonSymbolizer")
    if fill is not None:
        f = _el(sym, "Fill")
        _param(f, "Css", "fill", fill)
        _param(f, "Css", "fill-opacity", f"{style.fill_opacity:g}")
    stroke = _el(sym, "Stroke")
    _param(stroke, "Css", "stroke", style.stroke)
    _param(stroke, "Css", "stroke-width", f"{style.stroke_width:g}")
    if style.stroke_dash:
        _param(stroke, "Css", "stroke-dasharray", " ".join(f"{d:g}" for d in style.stroke_dash))


def to_sld(layer_name: str) -> str:
    layer = REGISTRY[layer_name]
    style = style_for(layer)
    point = layer.geometry is Geometry.POINT
    root = ET.Element(f"{{{SLD}}}StyledLayerDescriptor", {
        "version": "1.0.0",
        f"{{{SE_NS['xsi']}}}schemaLocation":
            "http://www.opengis.net/sld http://schemas.opengis.net/sld/1.0.0/StyledLayerDescriptor.xsd"})
    named = _el(root, "NamedLayer")
    _el(named, "Name", layer.name)
    user = _el(named, "UserStyle")
    _el(user, "Name", layer.name)
    _el(user, "Title", f"{layer.zh} {layer.en}")
    fts = _el(user, "FeatureTypeStyle")
    if style.category_field:
        codes = layer.field(style.category_field).codes
        for code in codes.codes:
            colour = style.colour_of(code)
            if code not in style.categories and colour == style.fill:
                continue  # drawn by the ElseFilter rule
            rule = _el(fts, "Rule")
            _el(rule, "Name", code)
            _el(rule, "Title", f"{codes.zh_label(code)} {codes.en_label(code)}")
            flt = _el(rule, "Filter", ns=OGC)
            eq = _el(flt, "PropertyIsEqualTo", ns=OGC)
            _el(eq, "PropertyName", style.category_field, ns=OGC)
            _el(eq, "Literal", code, ns=OGC)
            _symbolizer(rule, style, colour, point)
        rule = _el(fts, "Rule")
        _el(rule, "Name", "other")
        _el(rule, "Title", "其他 Other")
        _el(rule, "ElseFilter")
        _symbolizer(rule, style, style.fill, point)
    else:
        rule = _el(fts, "Rule")
        _el(rule, "Name", layer.name)
        _el(rule, "Title", f"{layer.zh} {layer.en}")
        _symbolizer(rule, style, style.fill, point)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)
