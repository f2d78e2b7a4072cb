"""Imagery through MapProxy over a real HTTP server: `tiles seed`, XYZ/TMS/WMTS/WMS, OWSLib,
and pixels compared with a direct rasterio read of the same area of the epoch's GeoTIFF."""
from __future__ import annotations

import io
import math
import shutil

import numpy as np
import pytest
import rasterio
from owslib.wms import WebMapService
from owslib.wmts import WebMapTileService
from PIL import Image
from rasterio.enums import Resampling
from rasterio.warp import reproject, transform_bounds
from rasterio.transform import from_bounds
from sqlalchemy import text

from tiles import imagery
from tests.test_vector_tiles import tile_of

WEBMERCATOR_HALF = 20037508.342789244


@pytest.fixture(scope="module")
def seeded(tiles_app, engine, demo):
    result = tiles_app.test_cli_runner().invoke(args=["tiles", "seed"])
    assert result.exit_code == 0, result.output
    with engine.connect() as conn:
        epochs = imagery.epochs(conn)
    assert len(epochs) == 2 and all(f"({e.layer})" in result.output for e in epochs)
    return epochs


def png(body: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(body)).convert("RGBA"))


def read_direct(path, bounds, crs: str, size=256) -> np.ndarray:
    """The GeoTIFF resampled by rasterio onto `bounds` in `crs` (size × size, RGB)."""
    out = np.zeros((3, size, size), dtype=np.uint8)
    with rasterio.open(path) as src:
        reproject(rasterio.band(src, [1, 2, 3]), out, dst_transform=from_bounds(*bounds, size, size),
                  dst_crs=crs, resampling=Resampling.bilinear)
    return np.moveaxis(out, 0, 2)


def assert_same_picture(served: np.ndarray, direct: np.ndarray) -> None:
    assert served.shape[:2] == direct.shape[:2]
    assert (served[..., 3] == 255).all()                                  # inside the epoch: opaque
    diff = np.abs(served[..., :3].astype(int) - direct.astype(int))
    assert diff.mean() < 4, diff.mean()
    assert np.percentile(diff, 95) < 14
    # and not just any similar-looking image: the real one shifted by a few pixels differs more
    shifted = np.abs(served[4:, 4:, :3].astype(int) - direct[:-4, :-4].astype(int)).mean()
    assert shifted > diff.mean() * 1.5


def mercator_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    size = 2 * WEBMERCATOR_HALF / 2 ** z
    return (-WEBMERCATOR_HALF + x * size, WEBMERCATOR_HALF - (y + 1) * size,
            -WEBMERCATOR_HALF + (x + 1) * size, WEBMERCATOR_HALF - y * size)


def centre(epoch):
    w, s, e, n = epoch.bounds
    return (w + e) / 2, (s + n) / 2


def test_seed_writes_a_cog_and_a_png_pyramid(seeded, tiles_app):
    for epoch in seeded:
        files = epoch.files(tiles_app.config["TILE_DIR"])
        with rasterio.open(files["cog"]) as cog:
            assert cog.driver == "GTiff" and cog.overviews(1) and cog.profile["tiled"]
            assert cog.crs.to_epsg() == 4490
        with rasterio.open(files["gpkg"]) as gpkg:
            assert gpkg.driver == "GPKG" and gpkg.crs.to_epsg() == 3857 and gpkg.overviews(1)
    again = tiles_app.test_cli_runner().invoke(args=["tiles", "seed", "--if-missing"])
    assert again.exit_code == 0 and again.output.count("up to date") == len(seeded), again.output
    config = (tiles_app.config["TILE_DIR"] / imagery.MAPPROXY_YAML).read_text(encoding="utf-8")
    assert "demo" not in config and all(e.layer in config for e in seeded)


def test_xyz_tms_and_wmts_rest_tiles_match_the_geotiff(seeded, tiles_app, tiles_server, demo_data_dir):
    epoch = seeded[0]
    z = imagery.native_zoom(epoch, tiles_app.config["TILE_DIR"])
    x, y = tile_of(*centre(epoch), z)
    served = tiles_server.get(f"/tiles/tiles/{epoch.layer}/webmercator/{z}/{x}/{y}.png")
    assert served.status_code == 200 and served.headers["Content-Type"] == "image/png"
    assert_same_picture(png(served.content), read_direct(demo_data_dir / epoch.path, mercator_bounds(z, x, y),
                                                         "EPSG:3857"))
    wmts = tiles_server.get(f"/tiles/wmts/{epoch.layer}/webmercator/{z}/{x}/{y}.png")
    # TMS counts rows from the south, and its global-mercator profile starts at 2×2 tiles (order 0 = z1)
    tms = tiles_server.get(f"/tiles/tms/1.0.0/{epoch.layer}/webmercator/{z - 1}/{x}/{2 ** z - 1 - y}.png")
    assert (png(wmts.content) == png(served.content)).all() and (png(tms.content) == png(served.content)).all()


def test_beyond_the_pyramid_tiles_are_enlarged_from_its_finest_level(seeded, tiles_app, tiles_server):
    epoch = seeded[0]
    z = imagery.native_zoom(epoch, tiles_app.config["TILE_DIR"])
    x, y = tile_of(*centre(epoch), z + 2)
    served = png(tiles_server.get(f"/tiles/tiles/{epoch.layer}/webmercator/{z + 2}/{x}/{y}.png").content)
    parent = png(tiles_server.get(f"/tiles/tiles/{epoch.layer}/webmercator/{z}/{x // 4}/{y // 4}.png").content)
    quarter = parent[(y % 4) * 64:(y % 4 + 1) * 64, (x % 4) * 64:(x % 4 + 1) * 64]
    enlarged = np.asarray(Image.fromarray(quarter).resize((256, 256), Image.BILINEAR))
    assert (served[..., 3] == 255).all()
    assert np.abs(served.astype(int) - enlarged.astype(int))[..., :3].mean() < 6


def test_the_two_epochs_differ_where_the_change_patches_are(seeded, tiles_app, tiles_server, engine):
    with engine.connect() as conn:
        lon, lat = conn.execute(text(
            "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_PointOnSurface(geom) AS c FROM change_patch "
            "WHERE NOT false_change ORDER BY ST_Area(geom) DESC LIMIT 1) s")).one()
    z = imagery.native_zoom(seeded[0], tiles_app.config["TILE_DIR"])
    x, y = tile_of(lon, lat, z)
    a, b = (png(tiles_server.get(f"/tiles/tiles/{e.layer}/webmercator/{z}/{x}/{y}.png").content) for e in seeded)
    changed = np.any(a != b, axis=2)
    assert 0 < changed.sum() < changed.size / 2       # the patch, not the whole picture


def test_cgcs2000_grid_tile_matches_the_geotiff(seeded, tiles_app, tiles_server, demo_data_dir):
    epoch = seeded[1]
    # GlobalCRS84Quad layout: 2^(z+1) × 2^z tiles of 180/2^z degrees; one level coarser than the
    # pyramid's finest is about the same resolution
    z = imagery.native_zoom(epoch, tiles_app.config["TILE_DIR"]) - 1
    lon, lat = centre(epoch)
    size = 180 / 2 ** z
    col, row = math.floor((lon + 180) / size), math.floor((90 - lat) / size)
    bounds = (-180 + col * size, 90 - (row + 1) * size, -180 + (col + 1) * size, 90 - row * size)
    served = tiles_server.get(f"/tiles/wmts/{epoch.layer}/cgcs2000/{z}/{col}/{row}.png")
    assert served.status_code == 200, served.text
    assert_same_picture(png(served.content), read_direct(demo_data_dir / epoch.path, bounds, "EPSG:4490"))


def test_owslib_reads_wmts_capabilities_and_gets_a_tile(seeded, tiles_server):
    wmts = WebMapTileService(tiles_server.url + "/tiles/wmts/1.0.0/WMTSCapabilities.xml")
    assert {e.layer for e in seeded} <= set(wmts.contents)
    assert {"webmercator", "cgcs2000"} <= set(wmts.tilematrixsets)
    assert "4490" in wmts.tilematrixsets["cgcs2000"].crs
    epoch = seeded[0]
    x, y = tile_of(*centre(epoch), 12)
    tile = wmts.gettile(layer=epoch.layer, tilematrixset="webmercator", tilematrix="12", row=y, column=x,
                        format="image/png")
    direct = tiles_server.get(f"/tiles/tiles/{epoch.layer}/webmercator/12/{x}/{y}.png").content
    assert (png(tile.read()) == png(direct)).all()
    kvp = tiles_server.get("/tiles/service", params={
        "SERVICE": "WMTS", "REQUEST": "GetTile", "VERSION": "1.0.0", "LAYER": epoch.layer, "STYLE": "default",
        "TILEMATRIXSET": "webmercator", "TILEMATRIX": "12", "TILEROW": y, "TILECOL": x, "FORMAT": "image/png"})
    assert (png(kvp.content) == png(direct)).all()


def test_owslib_reads_wms_130_capabilities_and_gets_maps_in_4490_and_3857(seeded, tiles_server, demo_data_dir):
    wms = WebMapService(tiles_server.url + "/tiles/service", version="1.3.0")
    epoch = seeded[0]
    layer = wms[epoch.layer]
    assert {"EPSG:4490", "EPSG:3857"} <= set(layer.crsOptions)
    lon, lat = centre(epoch)
    bounds = (lon - 0.02, lat - 0.02, lon + 0.02, lat + 0.02)
    # WMS 1.3.0 in EPSG:4490 has axis order lat, lon: OWSLib takes lon, lat and swaps them
    image = wms.getmap(layers=[epoch.layer], styles=[""], srs="EPSG:4490", bbox=bounds, size=(256, 256),
                       format="image/png")
    raw = tiles_server.get("/tiles/service", params={
        "SERVICE": "WMS", "VERSION": "1.3.0", "REQUEST": "GetMap", "LAYERS": epoch.layer, "STYLES": "",
        "CRS": "EPSG:4490", "BBOX": ",".join(map(str, (bounds[1], bounds[0], bounds[3], bounds[2]))),
        "WIDTH": 256, "HEIGHT": 256, "FORMAT": "image/png"})
    body = image.read()
    assert (png(body) == png(raw.content)).all()
    assert_same_picture(png(body), read_direct(demo_data_dir / epoch.path, bounds, "EPSG:4490"))
    merc = transform_bounds("EPSG:4490", "EPSG:3857", *bounds)
    image = wms.getmap(layers=[epoch.layer], styles=[""], srs="EPSG:3857", bbox=merc, size=(256, 256),
                       format="image/png")
    assert_same_picture(png(image.read()), read_direct(demo_data_dir / epoch.path, merc, "EPSG:3857"))


def test_tilejson_per_epoch(seeded, tiles_server):
    for epoch in seeded:
        tj = tiles_server.get(f"/tiles/imagery/{epoch.layer}/tilejson.json").json()
        assert tj["tilejson"] == "3.0.0" and epoch.name in tj["name"]
        assert tj["bounds"] == [round(v, 6) for v in epoch.bounds]
        x, y = tile_of(*centre(epoch), 12)
        url = tj["tiles"][0].format(z=12, x=x, y=y).replace(tiles_server.url, "")
        r = tiles_server.get(url)
        assert r.status_code == 200 and r.headers["Content-Type"] == "image/png"
    assert tiles_server.get("/tiles/imagery/nope/tilejson.json").status_code == 404
    assert tiles_server.get("/tiles/demo/").status_code == 404             # MapProxy's demo service is off


def test_a_new_epoch_needs_only_a_row_and_a_seed(seeded, tiles_app, tiles_server, engine, demo_data_dir):
    source = seeded[1]
    shutil.copy(demo_data_dir / source.path, demo_data_dir / "imagery" / "tile_test_2027.tif")
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO imagery_epoch (name, acquired_on, sensor, resolution_m, path, geom) "
            "SELECT '2027年度测试', '2027-06-01', sensor, resolution_m, 'imagery/tile_test_2027.tif', geom "
            "FROM imagery_epoch WHERE name = :n"), {"n": source.name})
    try:
        result = tiles_app.test_cli_runner().invoke(args=["tiles", "seed", "--epoch", "tile_test_2027"])
        assert result.exit_code == 0, result.output
        caps = tiles_server.get("/tiles/wmts/1.0.0/WMTSCapabilities.xml").text
        assert "tile_test_2027" in caps
        x, y = tile_of(*centre(source), 12)
        new = tiles_server.get(f"/tiles/tiles/tile_test_2027/webmercator/12/{x}/{y}.png")
        old = tiles_server.get(f"/tiles/tiles/{source.layer}/webmercator/12/{x}/{y}.png")
        assert new.status_code == 200 and (png(new.content) == png(old.content)).all()
        bad = tiles_app.test_cli_runner().invoke(args=["tiles", "seed", "--epoch", "nope"])
        assert bad.exit_code != 0 and "unknown imagery epoch(s): nope" in bad.output
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM imagery_epoch WHERE name = '2027年度测试'"))
        (demo_data_dir / "imagery" / "tile_test_2027.tif").unlink()
        tiles_app.test_cli_runner().invoke(args=["tiles", "seed", "--epoch", seeded[0].layer])


def test_before_any_seed_mapproxy_paths_say_what_to_run(test_settings, tmp_path):
    from app import create_app
    from app.tiles import set_tile_dir
    app = create_app(test_settings)
    set_tile_dir(app, tmp_path)
    r = app.test_client().get("/tiles/wmts/1.0.0/WMTSCapabilities.xml")
    assert r.status_code == 503 and b"tiles seed" in r.data
