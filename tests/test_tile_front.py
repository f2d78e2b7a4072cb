"""The static front (tiles/front.py): a real nginx, configured by `flask --app wsgi tiles nginx`, serving
public vector tile hits from the cache files and passing everything else to the application."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest
import requests
from sqlalchemy import text

from layers import REGISTRY
from tests.test_vector_tiles import caught_up, features_by_id, sample, tile_of

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"   # bin/bootstrap installs nginx-light


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def front(tiles_app, tiles_server, tmp_path_factory):
    work = tmp_path_factory.mktemp("nginx")
    port = free_port()
    result = tiles_app.test_cli_runner().invoke(args=[
        "tiles", "nginx", "--listen", f"127.0.0.1:{port}", "--upstream", tiles_server.url.removeprefix("http://")])
    assert result.exit_code == 0, result.output
    temp = "\n".join(f"  {kind}_temp_path {work}/tmp;" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    # `user root`: the test's tile directory lives under pytest's private (0700) temporary directory
    (work / "nginx.conf").write_text(
        f"user root;\nworker_processes 1;\npid {work}/nginx.pid;\nerror_log {work}/error.log;\n"
        f"events {{ worker_connections 256; }}\nhttp {{\n  access_log off;\n{temp}\n{result.output}}}\n")
    (work / "tmp").mkdir()
    subprocess.run([NGINX, "-c", str(work / "nginx.conf"), "-p", str(work)], check=True, capture_output=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            requests.get(url + "/healthz", timeout=2)
            break
        except requests.ConnectionError:
            time.sleep(0.05)
    yield url
    os.kill(int((work / "nginx.pid").read_text()), signal.SIGQUIT)


def get(url: str, path: str, **kwargs) -> requests.Response:
    return requests.get(url + path, timeout=30, **kwargs)


def from_file(r: requests.Response) -> bool:
    """nginx's own ETag ("<mtime>-<size>" in hex) marks a response nginx read from the cache file;
    the application's is a 24-digit hash of the bytes."""
    return r.headers["X-Tile-Cache"] == "hit" and "-" in r.headers["ETag"]


def test_the_front_serves_public_hits_from_the_cache_files(front, tiles_server, engine):
    row = sample(engine, REGISTRY["plan_zone"])
    path = "/tiles/vector/plan_zone/14/{}/{}.pbf".format(*tile_of(row["lon"], row["lat"], 14))
    first = get(front, path)
    if first.headers["X-Tile-Cache"] == "miss":      # (another test may have cached it already)
        assert not from_file(first)
    second = get(front, path)
    assert second.status_code == 200 and from_file(second)
    assert second.content == first.content == tiles_server.get(path).content
    assert second.headers["Content-Type"] == "application/vnd.mapbox-vector-tile"
    assert second.headers["Cache-Control"] == "public, max-age=60"
    assert row["id"] in features_by_id(second.content, "plan_zone")
    assert get(front, path, headers={"If-None-Match": second.headers["ETag"]}).status_code == 304


def test_everything_else_goes_to_the_application(front, tiles_server):
    assert get(front, "/healthz").json()["status"] == "ok"
    r = get(front, "/tiles/internal/vector/plan_zone/12/3448/1498.pbf")    # internal: never from a file
    assert r.status_code == 401 and "Bearer" in r.headers["WWW-Authenticate"]
    assert get(front, "/tiles/vector/land_use/12/3448/1498.pbf").status_code == 404     # not published
    assert get(front, "/tiles/vector/admin_division/3/1/9.pbf").status_code == 404     # outside the grid
    tj = get(front, "/tiles/vector/plan_zone/tilejson.json")
    assert tj.status_code == 200 and tj.json()["tilejson"] == "3.0.0"


def test_after_a_change_the_front_serves_the_new_tile_and_keeps_the_others(front, tiles_app, engine):
    z = 14
    lon, lat = 125.3401, 43.8801
    here = "/tiles/vector/hazard_point/{}/{}/{}.pbf".format(z, *tile_of(lon, lat, z))
    other = sample(engine, REGISTRY["hazard_point"],
                   "ST_Distance(geom, ST_SetSRID(ST_MakePoint(125.3401, 43.8801), 4490)) > 1")
    far = "/tiles/vector/hazard_point/{}/{}/{}.pbf".format(z, *tile_of(other["lon"], other["lat"], z))
    for p in (here, far):
        get(front, p)
    before = {p: get(front, p) for p in (here, far)}
    assert all(from_file(r) for r in before.values())
    hazard = REGISTRY["hazard_point"]
    with engine.begin() as conn:
        new_id = conn.execute(text(
            "INSERT INTO hazard_point (hazard_no, name, hazard_type, risk_level, county_code, geom) "
            "VALUES ('FRONT-TEST-1', '前置测试点', :t, :r, '220102', ST_SetSRID(ST_MakePoint(:lon, :lat), 4490)) "
            "RETURNING id"), {"t": next(iter(hazard.field("hazard_type").codes.codes)),
                              "r": next(iter(hazard.field("risk_level").codes.codes)), "lon": lon, "lat": lat}).scalar()
    try:
        caught_up(tiles_app, engine, "hazard_point")
        deadline = time.monotonic() + 5        # nginx re-checks an open file after 1 s (open_file_cache_valid)
        while new_id not in features_by_id((r := get(front, here)).content, "hazard_point"):
            assert time.monotonic() < deadline, "the front still served the old tile 5 s after the change"
            time.sleep(0.1)
        assert features_by_id(r.content, "hazard_point")[new_id]["properties"]["name"] == "前置测试点"
        again = get(front, here)
        assert from_file(again) and again.content == r.content
        kept = get(front, far)
        assert from_file(kept) and kept.content == before[far].content and kept.headers["ETag"] == before[far].headers["ETag"]
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM hazard_point WHERE id = :i"), {"i": new_id})
        caught_up(tiles_app, engine, "hazard_point")


def test_the_front_serves_imagery_tiles_from_the_files_seed_writes(front, tiles_app, tiles_server, engine):
    from tiles import imagery
    result = tiles_app.test_cli_runner().invoke(args=["tiles", "seed", "--if-missing"])
    assert result.exit_code == 0, result.output
    with engine.connect() as conn:
        epoch = imagery.epochs(conn)[0]
    tile_dir = tiles_app.config["TILE_DIR"]
    z = imagery.native_zoom(epoch, tile_dir)
    x, y = tile_of((epoch.bounds[0] + epoch.bounds[2]) / 2, (epoch.bounds[1] + epoch.bounds[3]) / 2, z)
    path = f"/tiles/tiles/{epoch.layer}/webmercator/{z}/{x}/{y}.png"
    direct = tiles_server.get(path)                     # MapProxy, through the application
    assert direct.status_code == 200 and "-" not in direct.headers["ETag"]
    r = get(front, path)
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/png"
    assert "-" in r.headers["ETag"] and r.content == direct.content      # nginx, from the file: the same bytes
    assert (epoch.files(tile_dir)["xyz"] / str(z) / str(x) / f"{y}.png").read_bytes() == r.content
    x2, y2 = tile_of((epoch.bounds[0] + epoch.bounds[2]) / 2, (epoch.bounds[1] + epoch.bounds[3]) / 2, z + 2)
    beyond = get(front, f"/tiles/tiles/{epoch.layer}/webmercator/{z + 2}/{x2}/{y2}.png")   # no file: MapProxy
    assert beyond.status_code == 200 and beyond.headers["Content-Type"] == "image/png"
    assert "-" not in beyond.headers.get("ETag", "")
