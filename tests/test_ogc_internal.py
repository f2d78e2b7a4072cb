"""The internal OGC API at /internal/ogc: every layer and field, for department tokens only."""
from __future__ import annotations

import re

import pytest
import requests
from owslib.ogcapi.features import Features
from sqlalchemy import text

from app import create_app
from layers import REGISTRY
from tests.test_ogc_public import all_items, read_with_gdal


@pytest.fixture(scope="module")
def internal(live_server):
    return live_server.url + "/internal/ogc"


@pytest.fixture(scope="module")
def cli(test_settings):
    return create_app(test_settings).test_cli_runner()


def issue(cli, department: str, collections: str) -> str:
    result = cli.invoke(args=["tokens", "create", "--department", department, "--collections", collections])
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def farmland_token(cli, demo):
    return issue(cli, "耕地保护处", "land_use,hazard_point")


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_missing_or_wrong_tokens_get_401_json(internal):
    for headers in ({}, {"Authorization": "Bearer omt_not-a-real-token"}, {"Authorization": "Basic dXNlcjpwdw=="},
                    {"Authorization": "Bearer "}):
        for path in ("", "/collections", "/collections/land_use/items", "/conformance"):
            response = requests.get(internal + path, headers=headers, timeout=30)
            assert response.status_code == 401, (headers, path)
            assert response.headers["Content-Type"].startswith("application/json")
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            assert response.json()["description"]


def test_a_token_reads_all_fields_of_its_collections_and_nothing_else(internal, farmland_token, engine):
    headers = bearer(farmland_token)
    ids = [c["id"] for c in requests.get(f"{internal}/collections", headers=headers, timeout=30).json()["collections"]]
    assert ids == ["land_use", "hazard_point"]
    hazards = all_items(f"{internal}/collections/hazard_point/items", headers=headers)
    with engine.connect() as conn:
        assert len(hazards) == conn.execute(text("SELECT count(*) FROM hazard_point")).scalar_one()
    assert "monitor_phone" in hazards[0]["properties"]  # internal fields are served here
    refused = requests.get(f"{internal}/collections/enforcement_case/items", headers=headers, timeout=30)
    assert refused.status_code == 403 and "enforcement_case" in refused.json()["description"]
    assert requests.get(f"{internal}/collections/nope/items", headers=headers, timeout=30).status_code == 404
    party = requests.get(f"{internal}/collections/hazard_point/items", headers=headers,
                         params={"filter": "monitor_phone IS NOT NULL", "limit": 1}, timeout=30)
    assert party.status_code == 200


def test_owslib_and_gdal_read_an_unpublished_layer_with_a_token(internal, farmland_token, engine):
    with engine.connect() as conn:
        expected = conn.execute(text("SELECT count(*) FROM land_use")).scalar_one()
    api = Features(internal, headers=bearer(farmland_token))
    assert [c["id"] for c in api.collections()["collections"]] == ["land_use", "hazard_point"]
    first = api.collection_items("land_use", limit=10, filter="class_code LIKE '01%'")
    assert first["numberReturned"] <= 10 and all(f["properties"]["class_code"].startswith("01")
                                                 for f in first["features"])
    read = read_with_gdal(internal, ["land_use"], farmland_token)
    assert read["land_use"]["count"] == expected
    assert "county_code" in read["land_use"]["fields"]  # not public, served internally


def test_tokens_are_stored_hashed_listed_without_secret_and_revocable(cli, internal, engine, demo):
    token = issue(cli, "执法监察局", "*")
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT token_hash, token_hint FROM department_token "
                                   "WHERE department = '执法监察局'")).one()
    assert token not in stored and re.fullmatch(r"[0-9a-f]{64}", stored.token_hash)
    listing = cli.invoke(args=["tokens", "list"]).output
    assert "执法监察局" in listing and token not in listing and stored.token_hint in listing
    every = requests.get(f"{internal}/collections", headers=bearer(token), timeout=30).json()["collections"]
    assert [c["id"] for c in every] == [layer.name for layer in REGISTRY]
    token_id = re.search(r"^\s*(\d+)\s+\S+…\s+执法监察局", listing, re.M).group(1)
    assert cli.invoke(args=["tokens", "revoke", token_id]).exit_code == 0
    assert requests.get(f"{internal}/collections", headers=bearer(token), timeout=30).status_code == 401
    bad = cli.invoke(args=["tokens", "create", "--department", "x", "--collections", "parcels"])
    assert bad.exit_code != 0 and "unknown collection" in bad.output
