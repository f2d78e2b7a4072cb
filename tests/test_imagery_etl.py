"""Imagery epochs registered from GeoTIFFs, and change patches derived from two classified epochs."""
from __future__ import annotations

import warnings
from datetime import date

import numpy as np
import pytest
import rasterio
import shapely
from rasterio.transform import from_bounds
from sqlalchemy import text

from etl.imagery import ImageryError, class_code, derive_change_patches, register_epoch
from services.areas import geodesic_area_m2
from tests.import_fixtures import to_gk

# A made-up county in Liaoning, inside Jilin's bounding box (layer extents stay as they are) but
# outside its counties, so the demo province never overlaps it.
COUNTY, COUNTY_BOX = "229903", (122.0, 41.0, 122.5, 41.5)
BOUNDS = (122.1, 41.1, 122.2, 41.2)     # inside it; 3-degree zone 41 (CM 123°E)
PX = 100


def add_counties(conn) -> None:
    conn.execute(text("INSERT INTO admin_division (code, name, level, parent_code, geom) VALUES "
                      "(:c, '影像测试县', 'county', '229900', ST_Multi(ST_MakeEnvelope(:a, :b, :x, :y, 4490)))"),
                 dict(c=COUNTY, a=COUNTY_BOX[0], b=COUNTY_BOX[1], x=COUNTY_BOX[2], y=COUNTY_BOX[3]))


def write_tif(path, array, crs="EPSG:4490", bounds=BOUNDS):
    bands = array if array.ndim == 3 else array[None]
    with rasterio.open(path, "w", driver="GTiff", width=bands.shape[2], height=bands.shape[1], count=bands.shape[0],
                       dtype=bands.dtype, crs=crs, transform=from_bounds(*bounds, bands.shape[2], bands.shape[1])) as dst:
        dst.write(bands)
    return path


def cell_box(row0, row1, col0, col1):
    dx, dy = (BOUNDS[2] - BOUNDS[0]) / PX, (BOUNDS[3] - BOUNDS[1]) / PX
    return shapely.box(BOUNDS[0] + col0 * dx, BOUNDS[3] - row1 * dy, BOUNDS[0] + col1 * dx, BOUNDS[3] - row0 * dy)


def test_class_codes_of_pixel_values():
    assert [class_code(v) for v in (101, 602, 3, 1202, 0, 9999)] == ["0101", "0602", "03", "1202", None, None]


def test_register_an_epoch_from_a_gauss_kruger_geotiff(conn, tmp_path):
    gk = to_gk([shapely.box(*BOUNDS)], 4529)[0].bounds
    path = write_tif(tmp_path / "gf2.tif", np.zeros((3, 50, 40), dtype="uint8"), crs="EPSG:4529", bounds=gk)
    epoch_id = register_epoch(conn, path, "test_2026", date(2026, 6, 1), sensor="GF-2")
    row = conn.execute(text("SELECT name, resolution_m, ST_AsBinary(geom) AS wkb FROM imagery_epoch WHERE id = :i"),
                       dict(i=epoch_id)).one()
    footprint = shapely.from_wkb(bytes(row.wkb))
    assert footprint.contains(shapely.box(*BOUNDS).buffer(-1e-3))
    assert shapely.box(*BOUNDS).buffer(1e-2).contains(footprint)
    assert row.resolution_m == pytest.approx((gk[2] - gk[0]) / 40)
    with pytest.raises(ImageryError, match="registered already"):
        register_epoch(conn, path, "test_2026", date(2026, 6, 1))
    bare = tmp_path / "nocrs.tif"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)   # on purpose
        with rasterio.open(bare, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8") as dst:
            dst.write(np.zeros((1, 4, 4), dtype="uint8"))
    with pytest.raises(ImageryError, match="nocrs.tif: the raster has no CRS"):
        register_epoch(conn, bare, "x", date(2026, 6, 1))


def test_change_patches_from_two_classified_epochs(conn, tmp_path):
    add_counties(conn)
    before = np.full((PX, PX), 103, dtype="uint16")          # 旱地
    before[70:80, 70:80] = 301                                 # 乔木林地
    before[85:90, 0:10] = 702                                  # already built
    after = before.copy()
    after[10:20, 10:30] = 702                                  # 旱地 → 农村宅基地: construction
    after[50:60, 50:55] = 602                                  # 旱地 → 采矿用地: mining
    after[70:80, 70:80] = 404                                  # 林地 → 草地: not a construction change
    after[85:90, 0:10] = 701                                   # built → built: not a new change
    a = write_tif(tmp_path / "2024.tif", before)
    b = write_tif(tmp_path / "2025.tif", after)
    summary = derive_change_patches(conn, a, b, batch="T2025", epoch_before="e2024", epoch_after="e2025",
                                    detected_on=date(2025, 10, 1))
    assert (summary.patches, summary.outside_counties) == (2, 0)
    rows = conn.execute(text("SELECT patch_no, kind, class_before, class_after, county_code, area_m2, "
                             "ST_AsBinary(geom) AS wkb FROM change_patch WHERE batch = 'T2025' ORDER BY kind")).all()
    assert [(r.kind, r.class_before, r.class_after, r.county_code) for r in rows] == [
        ("construction", "0103", "0702", COUNTY), ("mining", "0103", "0602", COUNTY)]
    expected = {"construction": cell_box(10, 20, 10, 30), "mining": cell_box(50, 60, 50, 55)}
    for r in rows:
        geom = shapely.from_wkb(bytes(r.wkb))
        assert shapely.equals_exact(shapely.normalize(geom.geoms[0]), shapely.normalize(expected[r.kind]), 1e-9) or \
            geom.symmetric_difference(expected[r.kind]).area < 1e-12
        assert r.area_m2 == pytest.approx(geodesic_area_m2(expected[r.kind]), rel=1e-6)
    with pytest.raises(ImageryError, match="batch 'T2025' exists already"):
        derive_change_patches(conn, a, b, batch="T2025", epoch_before="e2024", epoch_after="e2025",
                              detected_on=date(2025, 10, 1))
    other = write_tif(tmp_path / "shifted.tif", after, bounds=(125.21, 43.7, 125.31, 43.8))
    with pytest.raises(ImageryError, match="not on the same grid"):
        derive_change_patches(conn, a, other, batch="T2", epoch_before="a", epoch_after="b", detected_on=date(2025, 1, 1))
    odd = write_tif(tmp_path / "odd.tif", np.full((PX, PX), 9999, dtype="uint16"))
    with pytest.raises(ImageryError, match=r"pixel values \[9999\] are no GB/T 21010 class codes"):
        derive_change_patches(conn, a, odd, batch="T3", epoch_before="a", epoch_after="b", detected_on=date(2025, 1, 1))


def test_cli_registers_an_epoch_and_derives_patches(test_settings, engine, tmp_path):
    from app import create_app
    runner = create_app(test_settings).test_cli_runner()
    before = np.full((PX, PX), 103, dtype="uint16")
    after = before.copy()
    after[0:10, 0:10] = 601
    a, b = write_tif(tmp_path / "c2024.tif", before), write_tif(tmp_path / "c2025.tif", after)
    with engine.begin() as conn:
        add_counties(conn)
    try:
        res = runner.invoke(args=["etl", "imagery-register", str(a), "--name", "cli_test_2024",
                                  "--acquired-on", "2024-09-01"])
        assert res.exit_code == 0 and "imagery epoch 'cli_test_2024' registered" in res.output, res.output
        res = runner.invoke(args=["etl", "changes", str(a), str(b), "--batch", "CLI2025", "--epoch-before",
                                  "cli_test_2024", "--epoch-after", "cli_test_2025", "--detected-on", "2025-10-01"])
        assert res.exit_code == 0 and "batch CLI2025: 1 change patches" in res.output, res.output
        res = runner.invoke(args=["etl", "changes", str(a), str(a.with_name("missing.tif")), "--batch", "X",
                                  "--epoch-before", "a", "--epoch-after", "b", "--detected-on", "2025-10-01"])
        assert res.exit_code == 2 and "missing.tif" in res.output
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM change_patch WHERE batch = 'CLI2025'"))
            conn.execute(text("DELETE FROM imagery_epoch WHERE name = 'cli_test_2024'"))
            conn.execute(text("DELETE FROM admin_division WHERE code LIKE '2299%'"))
