"""The map page, built with folium: a Leaflet map filling the screen, every asset local, and the
OneMap client (app/static/map/) started with a configuration derived from the layer registry and
styles/ — groups, layers, styles, legends, which layers come as vector tiles and which as GeoJSON,
imagery epochs and the JSON endpoints of the audience.
"""
from __future__ import annotations

import json
from pathlib import Path

import folium
from branca.element import Element, MacroElement
from flask import current_app, request, url_for
from folium.plugins import Draw
from folium.template import Template
from sqlalchemy import Connection

from app.map.assets import DRAW_CSS, DRAW_JS, FOLIUM_CSS, FOLIUM_JS, VECTORGRID_JS, local, vendor_url
from app.map.messages import MESSAGES
from layers import Layer
from services.map_data import audience_layers, layer_sizes
from styles import style_for
from tiles import imagery

GROUPS = ("base", "imagery", "land_cycle", "comparison", "mining", "hazard")
CENTRE, ZOOM = (43.7, 126.2), 7        # Jilin province
IMAGERY_ZOOM_MAX = 20


class LocalDraw(Draw):
    """folium's Draw control with leaflet-draw served by the application."""


class OneMapClient(MacroElement):
    """Loads the OneMap client and starts it on the folium map with its configuration."""

    _template = Template("""
        {% macro header(this, kwargs) %}
            <title>{{ this.title }}</title>
            <link rel="icon" href="{{ this.icon }}">
            <link rel="stylesheet" href="{{ this.css }}">
            <script src="{{ this.vectorgrid }}"></script>
            <script src="{{ this.js }}"></script>
        {% endmacro %}
        {% macro script(this, kwargs) %}
            OneMap.start({{ this._parent.get_name() }}, {{ this.config }},
                         {{ this.drawn_items or 'null' }});
        {% endmacro %}
    """)

    def __init__(self, config: dict, drawn_items: str | None):
        super().__init__()
        self._name = "OneMapClient"
        self.title = config["messages"]["zh"]["title_public" if config["public"] else "title"]
        # JSON inside <script>: no '<' so no '</script>' can end it early
        self.config = json.dumps(config, ensure_ascii=False).replace("<", "\\u003c")
        self.drawn_items = drawn_items
        self.css = url_for("static", filename="map/onemap.css")
        self.js = url_for("static", filename="map/onemap.js")
        self.icon = url_for("static", filename="map/favicon.svg")
        self.vectorgrid = vendor_url(VECTORGRID_JS)


def _layer_config(layer: Layer, public: bool, small: bool, api_base: str) -> dict:
    """A layer for the client: detail layers (a style min_zoom) and big tables come as vector
    tiles, the others whole as GeoJSON."""
    style = style_for(layer)
    if small and style.min_zoom == 0:
        kind, url = "geojson", f"{api_base}/layers/{layer.name}.geojson"
    else:
        kind = "tiles"
        endpoint = "tiles.public_tile" if public else "tiles.internal_tile"
        url = url_for(endpoint, layer=layer.name, z=0, x=0, y=0).replace("/0/0/0.pbf", "/{z}/{x}/{y}.pbf")
    return {
        "name": layer.name, "zh": layer.zh, "en": layer.en, "group": layer.group,
        "geometry": layer.geometry.value, "kind": kind, "url": url, "time_field": layer.time_field,
        "label_field": layer.label_field, "shown": style.shown,
        "style": {"fill": style.fill, "fill_opacity": style.fill_opacity, "stroke": style.stroke,
                  "stroke_width": style.stroke_width, "stroke_dash": style.stroke_dash, "radius": style.radius,
                  "category_field": style.category_field, "categories": style.categories,
                  "min_zoom": style.min_zoom},
        "legend": style.legend(),
    }


def _imagery_config(conn: Connection) -> list[dict]:
    """The seeded imagery epochs (an unseeded one has no tiles to show)."""
    settings = current_app.config["ONEMAP"]
    tile_dir = Path(current_app.config["TILE_DIR"])
    out = []
    for epoch in imagery.epochs(conn):
        if not imagery.is_seeded(epoch, settings.data_dir, tile_dir):
            continue
        url = f"{request.script_root}/tiles/tiles/{epoch.layer}/webmercator/{{z}}/{{x}}/{{y}}.png"
        out.append({"layer": epoch.layer, "name": epoch.name, "acquired_on": epoch.acquired_on.isoformat(),
                    "bounds": list(epoch.bounds), "url": url, "max_zoom": IMAGERY_ZOOM_MAX})
    return out


def page_config(conn: Connection, public: bool, api_base: str, query_api: dict | None) -> dict:
    sizes = layer_sizes(conn)
    layers = audience_layers(public)
    groups = []
    for group in GROUPS:
        members = [_layer_config(layer, public, sizes[layer.table].small if layer.table in sizes else True,
                                 api_base)
                   for layer in layers if layer.group == group]
        if members:
            groups.append({"id": group, "layers": members})
    return {
        "public": public,
        "messages": MESSAGES,
        "groups": groups,
        "imagery": _imagery_config(conn),
        "centre": list(CENTRE), "zoom": ZOOM,
        "api": {"identify": f"{api_base}/identify", "search": f"{api_base}/search",
                "regions": url_for("map.public_regions"), **(query_api or {})},
        "public_map": url_for("map.public_map"),
        "staff_map": url_for("map.staff_map"),
        "login": url_for("auth.login", next=url_for("map.staff_map")),
    }


def render_map(config: dict) -> str:
    """The whole HTML page of the map."""
    m = folium.Map(location=config["centre"], zoom_start=config["zoom"], tiles=None, control_scale=False,
                   min_zoom=5, max_zoom=20, zoom_control=True, prefer_canvas=False,
                   no_touch=True)   # leaflet-draw ends a polygon after two clicks when Leaflet sees touch
    m.default_js, m.default_css = local(FOLIUM_JS), local(FOLIUM_CSS)
    drawn_items = None
    if "query" in config["api"]:      # the inspector's area query: draw or upload an outline
        draw = LocalDraw(position="topright", show_geometry_on_click=False,
                         draw_options={"polyline": False, "marker": False, "circlemarker": False,
                                       "polygon": {"allowIntersection": False, "showArea": False},
                                       "rectangle": {"showArea": False}, "circle": {"showRadius": False}},
                         edit_options={"edit": False, "remove": False})
        draw.default_js, draw.default_css = local(DRAW_JS), local(DRAW_CSS)
        draw.add_to(m)
        drawn_items = f"drawnItems_{draw.get_name()}"
    m.add_child(OneMapClient(config, drawn_items))
    root = m.get_root()
    root.html.add_child(Element('<div id="onemap-ui"></div>'))
    return root.render()

