"""The GeoJSON items fast path: features built by PostgreSQL are spliced into pygeoapi's envelope
without being parsed and re-serialised; what clients get is the same document."""
from __future__ import annotations

import json
from http import HTTPStatus

import requests
from sqlalchemy import text

from app.ogc.service import _splice_features


def test_spliced_pages_are_the_features_of_the_page(live_server, engine):
    url = f"{live_server.url}/ogc/collections/hazard_point/items"
    fast = requests.get(url, params={"limit": 7, "f": "json"}, timeout=30)
    assert fast.status_code == 200
    body = fast.json()
    assert body["numberReturned"] == len(body["features"]) == 7
    with engine.connect() as conn:
        first = conn.execute(text("SELECT id, name FROM pub.hazard_point ORDER BY id LIMIT 7")).all()
    assert [(f["id"], f["properties"]["name"]) for f in body["features"]] == [tuple(r) for r in first]
    assert body["features"][0]["type"] == "Feature" and body["features"][0]["geometry"]["type"] == "Point"
    assert any(link["rel"] == "next" for link in body["links"])
    empty = requests.get(url, params={"filter": "name = '不存在'"}, timeout=30).json()
    assert empty["features"] == [] and empty["numberReturned"] == 0


def test_splice_falls_back_to_parsing_when_the_envelope_is_unexpected():
    features = '{"type" : "Feature", "id" : 1, "geometry" : null, "properties" : {"name" : "泥石流"}}'
    envelope = json.dumps({"type": "FeatureCollection", "features": [None], "numberReturned": 1,
                           "links": []}, separators=(",", ":"))
    _, _, spliced = _splice_features(({}, HTTPStatus.OK, envelope), 1, features)
    assert json.loads(spliced)["features"][0]["properties"]["name"] == "泥石流"
    odd = json.dumps({"features": [None], "type": "FeatureCollection"}, indent=2)
    _, _, fixed = _splice_features(({}, HTTPStatus.OK, odd), 1, features)
    assert json.loads(fixed)["features"][0]["id"] == 1
    error = ({}, HTTPStatus.BAD_REQUEST, '{"code":"x"}')
    assert _splice_features(error, 1, features) is error
