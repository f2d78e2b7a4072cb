"""Vector tiles over a real HTTP server, decoded with mapbox-vector-tile and checked against PostGIS."""
from __future__ import annotations

import json
import math
import time

import mapbox_vector_tile
import pytest
from sqlalchemy import text

from layers import REGISTRY, FieldType
from services import department_tokens
from styles import style_for
from tiles import changes
from tiles.cache import VectorTileCache
from tiles.changes import trigger_names
from tiles.vector import DETAIL_ZOOM, MAX_ZOOM


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return x, y


def buffered_tile_meets(lon: float, lat: float, z: int, x: int, y: int) -> bool:
    """Whether the point lies in tile z/x/y grown by the tiles' buffer (64 of 4096 units a side)."""
    n, m = 2 ** z, 64 / 4096
    fx = (lon + 180.0) / 360.0 * n
    fy = (1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n
    return x - m <= fx <= x + 1 + m and y - m <= fy <= y + 1 + m


def decode(body: bytes) -> dict:
    return mapbox_vector_tile.decode(body)


def features_by_id(body: bytes, layer: str) -> dict[int, dict]:
    decoded = decode(body)
    return {f["id"]: f for f in decoded.get(layer, {}).get("features", [])}


@pytest.fixture(scope="module")
def token(engine, demo):
    with engine.begin() as conn:
        secret, _ = department_tokens.create(conn, "测绘院 tiles test", ["*"])
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture(scope="module")
def farmland_token(engine, demo):
    with engine.begin() as conn:
        secret, _ = department_tokens.create(conn, "耕保处 tiles test", ["basic_farmland"])
    return {"Authorization": f"Bearer {secret}"}


def sample(engine, layer, where: str = "TRUE"):
    """One row of the layer (as the DB holds it) and a point inside its geometry."""
    with engine.connect() as conn:
        row = conn.execute(text(
            f"SELECT *, ST_X(ST_PointOnSurface(geom)) AS lon, ST_Y(ST_PointOnSurface(geom)) AS lat "
            f"FROM {layer.table} WHERE {where} ORDER BY ST_Area(geom) DESC, id LIMIT 1")).mappings().first()
    return row


def caught_up(app, engine, layer: str, timeout: float = 20.0) -> None:
    """Wait until the server's listener has applied every change of `layer` to its tile cache (it is
    told by NOTIFY at commit; a cache hit does not ask the database)."""
    with engine.connect() as conn:
        version = changes.layer_versions(conn)[layer][0]
    cache = app.extensions["onemap.tiles"].cache
    deadline = time.monotonic() + timeout
    while cache.applied(layer) != version:
        assert time.monotonic() < deadline, f"the tile cache did not catch up with {layer} version {version}"
        time.sleep(0.02)


def expected_value(field, value):
    if value is None:
        return None
    if field.type in (FieldType.DATE, FieldType.DATETIME):
        return str(value) if field.type is FieldType.DATE else None   # datetimes: checked loosely
    if field.type is FieldType.CODES:
        return ",".join(value)
    return value


@pytest.mark.parametrize("layer", list(REGISTRY), ids=lambda l: l.name)
def test_internal_tile_holds_the_feature_with_every_field(tiles_server, engine, token, layer):
    row = sample(engine, layer)
    assert row is not None, f"the demo province has no {layer.name} rows"
    z = max(style_for(layer).min_zoom, 14)
    x, y = tile_of(row["lon"], row["lat"], z)
    r = tiles_server.get(f"/tiles/internal/vector/{layer.name}/{z}/{x}/{y}.pbf", headers=token)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/vnd.mapbox-vector-tile"
    feature = features_by_id(r.content, layer.name)[row["id"]]
    props = feature["properties"]
    for f in layer.fields:
        want = expected_value(f, row[f.name])
        if f.type is FieldType.DATETIME and row[f.name] is not None:
            assert props[f.name].startswith(str(row[f.name].date())), f.name
        elif want is None:
            assert f.name not in props, f.name
        elif f.type is FieldType.JSON:      # a document travels as its JSON text
            assert json.loads(props[f.name]) == pytest.approx(want), f.name
        elif isinstance(want, float):
            assert props[f.name] == pytest.approx(want), f.name
        else:
            assert props[f.name] == want, f.name


@pytest.mark.parametrize("layer", REGISTRY.published(), ids=lambda l: l.name)
def test_public_tile_has_public_fields_and_rows_only(tiles_server, engine, layer):
    row = sample(engine, layer, layer.public_where or "TRUE")
    assert row is not None, f"the demo province has no public {layer.name} rows"
    z = max(style_for(layer).min_zoom, 14)
    x, y = tile_of(row["lon"], row["lat"], z)
    r = tiles_server.get(f"/tiles/vector/{layer.name}/{z}/{x}/{y}.pbf")
    assert r.status_code == 200, r.text
    features = features_by_id(r.content, layer.name)
    public = {f.name for f in layer.public_fields}
    assert set(features[row["id"]]["properties"]) <= public
    for feature in features.values():
        assert set(feature["properties"]) <= public
    if layer.public_where:
        with engine.connect() as conn:
            hidden = conn.execute(text(
                f"SELECT id FROM {layer.table} WHERE NOT ({layer.public_where}) AND geom && "
                "ST_Transform(ST_TileEnvelope(:z, :x, :y), 4490)"), {"z": z, "x": x, "y": y}).scalars().all()
        assert not set(hidden) & set(features)


def test_unpublished_layers_and_unpublished_rows_stay_private(tiles_server, engine, token):
    assert tiles_server.get("/tiles/vector/land_use/12/3448/1498.pbf").status_code == 404
    case = sample(engine, REGISTRY["enforcement_case"], "status <> 'closed'")
    x, y = tile_of(case["lon"], case["lat"], 14)
    public = tiles_server.get(f"/tiles/vector/enforcement_case/14/{x}/{y}.pbf")
    internal = tiles_server.get(f"/tiles/internal/vector/enforcement_case/14/{x}/{y}.pbf", headers=token)
    assert case["id"] not in features_by_id(public.content, "enforcement_case")
    assert case["id"] in features_by_id(internal.content, "enforcement_case")


def test_internal_tiles_follow_the_token_grants(tiles_server, engine, farmland_token):
    path = "/tiles/internal/vector/{}/12/3448/1498.pbf"
    r = tiles_server.get(path.format("basic_farmland"))
    assert r.status_code == 401 and "Bearer" in r.headers["WWW-Authenticate"]
    r = tiles_server.get(path.format("basic_farmland"), headers={"Authorization": "Bearer omt_nope"})
    assert r.status_code == 401 and r.json()["description"] == "the token is unknown or revoked"
    assert tiles_server.get(path.format("basic_farmland"), headers=farmland_token).status_code == 200
    r = tiles_server.get(path.format("land_use"), headers=farmland_token)
    assert r.status_code == 403 and "land_use" in r.json()["description"]
    assert tiles_server.get("/tiles/internal/vector/basic_farmland/tilejson.json").status_code == 401


def test_zoom_ranges_and_attribute_subsets_follow_the_styles(tiles_server, engine, token):
    land_use = REGISTRY["land_use"]
    row = sample(engine, land_use)
    low = style_for(land_use).min_zoom
    x, y = tile_of(row["lon"], row["lat"], low - 1)
    r = tiles_server.get(f"/tiles/internal/vector/land_use/{low - 1}/{x}/{y}.pbf", headers=token)
    assert r.status_code == 404 and f"zoom {low}–{MAX_ZOOM}" in r.json()["description"]
    x, y = tile_of(row["lon"], row["lat"], low)
    r = tiles_server.get(f"/tiles/internal/vector/land_use/{low}/{x}/{y}.pbf", headers=token)
    props = features_by_id(r.content, "land_use")[row["id"]]["properties"]
    assert set(props) == {"parcel_no", "class_code"}          # label and style category only
    x, y = tile_of(row["lon"], row["lat"], DETAIL_ZOOM)
    r = tiles_server.get(f"/tiles/internal/vector/land_use/{DETAIL_ZOOM}/{x}/{y}.pbf", headers=token)
    assert {"bsm", "class_name", "area_m2"} <= set(features_by_id(r.content, "land_use")[row["id"]]["properties"])
    assert tiles_server.get("/tiles/vector/admin_division/3/1/9.pbf").status_code == 404   # outside the grid


def test_simplification_shrinks_low_zoom_geometry(tiles_server):
    # the province boundary at z5 has far fewer vertices than the source polygon
    x, y = tile_of(126.0, 43.5, 5)
    r = tiles_server.get(f"/tiles/vector/admin_division/5/{x}/{y}.pbf")
    assert r.status_code == 200 and len(r.content) < 200_000
    assert decode(r.content)["admin_division"]["features"]


def test_etag_cache_control_and_conditional_requests(tiles_server):
    x, y = tile_of(125.3, 43.9, 8)
    path = f"/tiles/vector/plan_zone/8/{x}/{y}.pbf"
    first = tiles_server.get(path)
    second = tiles_server.get(path)
    assert first.status_code == second.status_code == 200
    assert second.headers["X-Tile-Cache"] == "hit" and first.headers["ETag"] == second.headers["ETag"]
    assert "max-age" in first.headers["Cache-Control"] and first.headers["Cache-Control"].startswith("public")
    again = tiles_server.get(path, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and not again.content


def test_every_layer_table_records_its_changes(engine):
    with engine.connect() as conn:
        present = set(conn.execute(text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")).scalars())
    for layer in REGISTRY:
        assert set(trigger_names(layer.table)) <= present, layer.name


def test_a_new_feature_changes_the_tiles_covering_it_and_no_others(tiles_app, tiles_server, engine):
    z = 12
    lon, lat = 125.33, 43.87                                         # Changchun
    x, y = tile_of(lon, lat, z)
    here = f"/tiles/vector/hazard_point/{z}/{x}/{y}.pbf"
    other = sample(engine, REGISTRY["hazard_point"], "ST_Distance(geom, ST_SetSRID(ST_MakePoint(125.33, 43.87), 4490)) > 1")
    far = "/tiles/vector/hazard_point/{}/{}/{}.pbf".format(z, *tile_of(other["lon"], other["lat"], z))
    before = {p: tiles_server.get(p) for p in (here, far)}
    insert = text(
        "INSERT INTO hazard_point (hazard_no, name, hazard_type, risk_level, county_code, geom) "
        "VALUES ('TILE-TEST-1', '瓦片测试点', :t, :r, '220102', ST_SetSRID(ST_MakePoint(:lon, :lat), 4490)) "
        "RETURNING id")
    hazard = REGISTRY["hazard_point"]
    values = {"t": next(iter(hazard.field("hazard_type").codes.codes)),
              "r": next(iter(hazard.field("risk_level").codes.codes)),
              "lon": lon, "lat": lat}
    with engine.begin() as conn:
        new_id = conn.execute(insert, values).scalar()
    try:
        caught_up(tiles_app, engine, "hazard_point")
        after = {p: tiles_server.get(p) for p in (here, far)}
        assert after[here].headers["ETag"] != before[here].headers["ETag"]
        assert after[here].headers["X-Tile-Cache"] == "miss"
        assert features_by_id(after[here].content, "hazard_point")[new_id]["properties"]["name"] == "瓦片测试点"
        assert after[far].headers["ETag"] == before[far].headers["ETag"]
        assert after[far].headers["X-Tile-Cache"] == "hit"
        assert other["id"] in features_by_id(after[far].content, "hazard_point")
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM hazard_point WHERE id = :i"), {"i": new_id})
    caught_up(tiles_app, engine, "hazard_point")
    gone = tiles_server.get(here)
    assert new_id not in features_by_id(gone.content, "hazard_point")
    assert gone.headers["ETag"] == before[here].headers["ETag"]      # the same bytes as before the insert


def test_tilejson_per_vector_layer(tiles_server, token):
    tj = tiles_server.get("/tiles/vector/enforcement_case/tilejson.json").json()
    assert tj["tilejson"] == "3.0.0" and tj["minzoom"] == 0 and tj["maxzoom"] == MAX_ZOOM
    assert tj["tiles"] == [tiles_server.url + "/tiles/vector/enforcement_case/{z}/{x}/{y}.pbf"]
    assert set(tj["vector_layers"][0]["fields"]) == {f.name for f in REGISTRY["enforcement_case"].public_fields}
    assert "party" not in tj["vector_layers"][0]["fields"]
    west, south, east, north = tj["bounds"]
    assert 121 < west < east < 132 and 40 < south < north < 47
    internal = tiles_server.get("/tiles/internal/vector/land_use/tilejson.json", headers=token).json()
    assert internal["minzoom"] == style_for("land_use").min_zoom and "county_code" in internal["vector_layers"][0]["fields"]
    url = internal["tiles"][0].format(z=12, x=3448, y=1498)
    assert tiles_server.get(url.replace(tiles_server.url, ""), headers=token).status_code == 200


def test_an_import_changes_the_tiles_of_its_area_and_a_rollback_restores_them(tiles_app, tiles_server, engine,
                                                                               token, tmp_path):
    from etl.importer import import_file
    from etl.importer.batches import rollback_batch
    from tests.import_fixtures import parcels, write_land_use_shp

    land_use = REGISTRY["land_use"]
    z = 15
    with engine.connect() as conn:   # a spot inside a demo county, away from other land-use tiles' edges
        county, lon, lat = conn.execute(text(
            "SELECT code, ST_X(c), ST_Y(c) FROM (SELECT code, ST_PointOnSurface(geom) AS c FROM admin_division "
            "WHERE level = 'county' ORDER BY code LIMIT 1) s")).one()
    x, y = tile_of(lon, lat, z)
    west = -180 + x * 360 / 2 ** z                                   # the new parcels sit inside tile x, y
    north = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / 2 ** z))))
    geoms = parcels(2, origin=(west + 0.001, north - 0.005), size=0.0015)
    owner = f"{county}1010010000000"
    rows = [("TILE-T1", "T1", "0101", "水田", owner, owner), ("TILE-T2", "T2", "0702", "农村宅基地", owner, owner)]
    shp = write_land_use_shp(tmp_path / "tiles_import.shp", geoms=geoms, rows=rows, encoding="UTF-8", keep_cpg=True)
    here = f"/tiles/internal/vector/land_use/{z}/{x}/{y}.pbf"
    far_row = sample(engine, land_use, f"ST_Distance(geom, ST_SetSRID(ST_MakePoint({lon}, {lat}), 4490)) > 0.5")
    far = "/tiles/internal/vector/land_use/{}/{}/{}.pbf".format(z, *tile_of(far_row["lon"], far_row["lat"], z))
    before = {p: tiles_server.get(p, headers=token) for p in (here, far)}

    with engine.begin() as conn:
        result = import_file(conn, "land_use", shp, user="tiles-test")
    assert result.rows_inserted == 2, result.report
    try:
        caught_up(tiles_app, engine, "land_use")
        after = {p: tiles_server.get(p, headers=token) for p in (here, far)}
        imported = {f["properties"]["bsm"] for f in features_by_id(after[here].content, "land_use").values()}
        assert {"TILE-T1", "TILE-T2"} <= imported
        assert after[here].headers["ETag"] != before[here].headers["ETag"]
        assert after[far].headers["ETag"] == before[far].headers["ETag"] and after[far].headers["X-Tile-Cache"] == "hit"
    finally:
        with engine.begin() as conn:
            rollback_batch(conn, result.batch_id, user="tiles-test")
            conn.execute(text("DELETE FROM import_batch WHERE id = :b"), {"b": result.batch_id})
    caught_up(tiles_app, engine, "land_use")
    restored = tiles_server.get(here, headers=token)
    assert restored.headers["ETag"] == before[here].headers["ETag"]


def test_decoded_geometry_sits_where_postgis_has_it(tiles_server, engine):
    from pyproj import Transformer
    row = sample(engine, REGISTRY["hazard_point"])
    z = 14
    x, y = tile_of(row["lon"], row["lat"], z)
    body = tiles_server.get(f"/tiles/vector/hazard_point/{z}/{x}/{y}.pbf").content
    decoded = mapbox_vector_tile.decode(body, default_options={"y_coord_down": True})
    point = next(f for f in decoded["hazard_point"]["features"] if f["id"] == row["id"])["geometry"]
    assert point["type"] == "Point"
    mx, my = Transformer.from_crs(4490, 3857, always_xy=True).transform(row["lon"], row["lat"])
    size = 2 * 20037508.342789244 / 2 ** z
    px = (mx - (-20037508.342789244 + x * size)) / size * 4096
    py = ((20037508.342789244 - y * size) - my) / size * 4096
    assert point["coordinates"] == pytest.approx([px, py], abs=1.0)
    parcel = sample(engine, REGISTRY["plan_zone"])
    px_, py_ = tile_of(parcel["lon"], parcel["lat"], 12)
    body = tiles_server.get(f"/tiles/vector/plan_zone/12/{px_}/{py_}.pbf").content
    shape = next(f for f in decode(body)["plan_zone"]["features"] if f["id"] == parcel["id"])["geometry"]
    assert shape["type"] in ("Polygon", "MultiPolygon")


def test_a_cache_behind_pruned_change_boxes_is_emptied_and_renders_again(tiles_app, engine, tmp_path):
    """A cache that did not see some changes before their boxes were pruned (say, its server was
    stopped) cannot tell which tiles they touched: it is emptied, and its tiles render again."""
    from tiles.vector import PUBLIC, vector_layer
    stopped = VectorTileCache(tmp_path / "stopped")
    vl = vector_layer("hazard_point", PUBLIC)
    row = sample(engine, REGISTRY["hazard_point"])
    x, y = tile_of(row["lon"], row["lat"], 13)
    with engine.connect() as conn:
        stopped.catch_up(conn)
        before = stopped.get(conn, vl, 13, x, y)
        assert not before.hit and stopped.get(conn, vl, 13, x, y).hit
    with engine.begin() as conn:       # a change far away, which would leave the cached tile valid ...
        conn.execute(text("UPDATE hazard_point SET name = name WHERE id = (SELECT max(id) FROM hazard_point "
                          "WHERE ST_Distance(geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4490)) > 1)"),
                     {"lon": row["lon"], "lat": row["lat"]})
        conn.execute(text("UPDATE tile_state.change SET changed_at = now() - interval '30 days' "
                          "WHERE layer = 'hazard_point'"))
    result = tiles_app.test_cli_runner().invoke(args=["tiles", "prune", "--older-than-days", "7"])
    assert result.exit_code == 0 and "hazard_point:" in result.output, result.output
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM tile_state.change WHERE layer = 'hazard_point'")).scalar() == 0
        deleted = stopped.catch_up(conn)    # ... but with its boxes gone it cannot be judged
        assert deleted["hazard_point"] == 1
        after = stopped.get(conn, vl, 13, x, y)
    assert not after.hit and after.etag == before.etag


def test_invalidation_deletes_exactly_the_files_of_tiles_a_change_touches(engine, tmp_path):
    """The files on disk (what the static front serves) of the tiles around a changed feature are
    deleted, at every cached zoom and for both audiences, and no others."""
    from tiles.vector import INTERNAL, PUBLIC, vector_layer
    cache = VectorTileCache(tmp_path / "mvt")
    row = sample(engine, REGISTRY["hazard_point"])
    tiles = []
    for z in (8, 12, 16):
        x, y = tile_of(row["lon"], row["lat"], z)
        tiles += [(z, x + dx, y + dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]
    with engine.connect() as conn:
        cache.catch_up(conn)
        for audience in (PUBLIC, INTERNAL):
            for z, x, y in tiles:
                cache.get(conn, vector_layer("hazard_point", audience), z, x, y)
    files = lambda: {p.relative_to(cache.root).as_posix() for p in cache.root.rglob("*.mvt")}
    assert len(files()) == 2 * len(tiles)
    with engine.begin() as conn:       # move the point a metre: its tile at each zoom changes
        conn.execute(text("UPDATE hazard_point SET geom = ST_Translate(geom, 0.00001, 0) WHERE id = :i"),
                     {"i": row["id"]})
        conn.execute(text("UPDATE hazard_point SET geom = ST_Translate(geom, -0.00001, 0) WHERE id = :i"),
                     {"i": row["id"]})
    with engine.connect() as conn:
        deleted = cache.catch_up(conn)
    touched = [(z, x, y) for z, x, y in tiles if buffered_tile_meets(row["lon"], row["lat"], z, x, y)
               or buffered_tile_meets(row["lon"] + 0.00001, row["lat"], z, x, y)]
    assert len(touched) >= 3                   # at least the point's own tile at each zoom
    gone = {f"{a}/hazard_point/{z}/{x}/{y}.mvt" for a in (PUBLIC, INTERNAL) for z, x, y in touched}
    assert deleted == {"hazard_point": len(gone)}
    assert len(files()) == 2 * len(tiles) - len(gone) and not files() & gone
    with engine.connect() as conn:
        assert cache.catch_up(conn) == {}      # caught up: nothing more to do


def test_a_revoked_token_stops_getting_cached_tiles(tiles_server, engine):
    with engine.begin() as conn:
        secret, grant = department_tokens.create(conn, "撤销测试 tiles test", ["hazard_point"])
    headers = {"Authorization": f"Bearer {secret}"}
    row = sample(engine, REGISTRY["hazard_point"])
    path = "/tiles/internal/vector/hazard_point/14/{}/{}.pbf".format(*tile_of(row["lon"], row["lat"], 14))
    assert tiles_server.get(path, headers=headers).status_code == 200
    hit = tiles_server.get(path, headers=headers)     # from the file, with the token check in memory
    assert hit.status_code == 200 and hit.headers["X-Tile-Cache"] == "hit"
    with engine.begin() as conn:
        department_tokens.revoke(conn, grant.id)
    deadline = time.monotonic() + 20
    while (r := tiles_server.get(path, headers=headers)).status_code == 200:   # NOTIFY at commit
        assert time.monotonic() < deadline, "a revoked token still got tiles after 20 s"
        time.sleep(0.02)
    assert r.status_code == 401 and r.json()["description"] == "the token is unknown or revoked"


def test_a_server_brings_its_cache_up_to_date_before_its_first_hit(test_settings, demo_data_dir, engine, tmp_path):
    """A tile that changed while no server ran (no listener to delete its file) is not served from
    the old file: a server process catches its cache up before answering anything from it."""
    from dataclasses import replace

    from app import create_app
    from app.tiles import set_tile_dir
    from tiles.vector import PUBLIC, vector_layer
    app = create_app(replace(test_settings, data_dir=demo_data_dir))
    set_tile_dir(app, tmp_path)
    cache = app.extensions["onemap.tiles"].cache
    row = sample(engine, REGISTRY["hazard_point"])
    x, y = tile_of(row["lon"], row["lat"], 14)
    with engine.connect() as conn:        # the cache as a stopped server left it: current, then a change
        cache.catch_up(conn)
        old = cache.get(conn, vector_layer("hazard_point", PUBLIC), 14, x, y)
    with engine.begin() as conn:
        conn.execute(text("UPDATE hazard_point SET name = name || '（已更新）' WHERE id = :i"), {"i": row["id"]})
    try:
        assert cache.path(PUBLIC, "hazard_point", 14, x, y).exists()
        r = app.test_client().get(f"/tiles/vector/hazard_point/14/{x}/{y}.pbf")
        assert r.status_code == 200 and r.headers["X-Tile-Cache"] == "miss" and r.data != old.data
        assert features_by_id(r.data, "hazard_point")[row["id"]]["properties"]["name"].endswith("（已更新）")
    finally:
        with engine.begin() as conn:
            conn.execute(text("UPDATE hazard_point SET name = :n WHERE id = :i"), {"n": row["name"], "i": row["id"]})
