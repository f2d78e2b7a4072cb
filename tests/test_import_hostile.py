"""Hostile submissions: each gets a clear error naming the file (and row), and nothing is written."""
from __future__ import annotations

import struct
import zipfile

import numpy as np
import pytest
import shapely
from sqlalchemy import text

from etl.importer import BatchRejected, Limits, ReadFailed, UnsafeInput, import_file
from tests.import_fixtures import COUNTY, parcels, write_land_use_shp, write_vector


def test_zip_bomb_is_refused_before_extraction(guarded, tmp_path):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("parcels.shp", b"\0" * (50 << 20))
    assert bomb.stat().st_size < 200_000
    with pytest.raises(UnsafeInput, match=r"bomb.zip: member 'parcels.shp' expands \d+-fold .*zip bomb"):
        import_file(guarded, "land_use", bomb)


def test_zip_whose_headers_understate_the_size_is_stopped_while_extracting(guarded, tmp_path):
    bomb = tmp_path / "liar.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("a.csv", b"x" * 5000)
    with pytest.raises(UnsafeInput, match="liar.zip: unpacks to 5,000 bytes, more than the limit of 4,000"):
        import_file(guarded, "land_use", bomb, limits=Limits(max_unpacked_bytes=4000))


@pytest.mark.parametrize("member", ["../../evil.shp", "/etc/evil.shp", "..\\evil.shp"])
def test_path_traversal_inside_a_zip(guarded, tmp_path, member):
    archive = tmp_path / "trav.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(member, b"x")
    with pytest.raises(UnsafeInput, match=r"trav.zip: member .* points outside the archive \(path traversal\)"):
        import_file(guarded, "land_use", archive)
    assert not (tmp_path.parent / "evil.shp").exists()


def test_nan_and_huge_coordinates_are_named_by_row(guarded, tmp_path):
    ok = parcels(1)[0].wkt
    path = tmp_path / "nan.csv"
    path.write_text("BSM,TBBH,DLBM,DLMC,XZQDM,WKT\n"
                    f'N1,1,0103,旱地,{COUNTY},"{ok}"\n'
                    f'N2,2,0103,旱地,{COUNTY},"POLYGON ((125.1 43.6, nan 43.6, 125.11 43.61, 125.1 43.6))"\n'
                    f'N3,3,0103,旱地,{COUNTY},"POLYGON ((125.1 43.6, 1e300 43.6, 125.11 43.61, 125.1 43.6))"\n',
                    encoding="utf-8")
    with pytest.raises(BatchRejected) as info:
        import_file(guarded, "land_use", path)
    assert {r["row"] for r in info.value.report if "not finite" in r["problem"]} == {2, 3}
    assert "nan.csv: 2 error(s), nothing imported: row 2: coordinates are not finite" in str(info.value)
    geojson = tmp_path / "huge.geojson"
    geojson.write_text('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"BSM": "N4"}, '
                       '"geometry": {"type": "Polygon", "coordinates": [[[125.1, 43.6], [1e300, 43.6], '
                       '[125.11, 43.61], [125.1, 43.6]]]}}]}', encoding="utf-8")
    with pytest.raises(BatchRejected, match="huge.geojson: .*row 1: coordinates are not finite or beyond"):
        import_file(guarded, "land_use", geojson)


def test_corrupt_dbf(guarded, tmp_path):
    shp = write_land_use_shp(tmp_path / "bad.shp")
    dbf = shp.with_suffix(".dbf")
    data = bytearray(dbf.read_bytes())
    data[4:8] = struct.pack("<I", 10_000_000)        # announces ten million records
    dbf.write_bytes(bytes(data))
    with pytest.raises(ReadFailed, match=r"bad.shp: bad.dbf is corrupt \(its header announces 10000000 records"):
        import_file(guarded, "land_use", shp)
    dbf.write_bytes(b"\x03\x00")
    with pytest.raises(ReadFailed, match="bad.dbf is corrupt"):
        import_file(guarded, "land_use", shp)


def test_mixed_geometry_types(guarded, tmp_path):
    geoms = [parcels(1)[0], shapely.Point(125.2, 43.7), shapely.LineString([(125.2, 43.7), (125.3, 43.8)])]
    fields = {"BSM": ["M1", "M2", "M3"], "TBBH": ["1", "2", "3"], "DLBM": ["0103"] * 3, "DLMC": ["旱地"] * 3,
              "XZQDM": [COUNTY] * 3}
    path = write_vector(tmp_path / "mixed.geojson", geoms, fields, "GeoJSON")
    with pytest.raises(BatchRejected) as info:
        import_file(guarded, "land_use", path)
    wrong = {(r["row"], r["problem"]) for r in info.value.report if r["severity"] == "error"}
    assert wrong == {(2, "wrong geometry type Point: land_use takes (Multi)Polygon"),
                     (3, "wrong geometry type LineString: land_use takes (Multi)Polygon")}


def test_empty_files(guarded, tmp_path):
    empty = tmp_path / "empty.geojson"
    empty.write_bytes(b"")
    with pytest.raises(ReadFailed, match="empty.geojson: the file is empty"):
        import_file(guarded, "land_use", empty)
    no_rows = tmp_path / "header.csv"
    no_rows.write_text("BSM,WKT\n", encoding="utf-8")
    with pytest.raises(ReadFailed, match="header.csv: no data rows"):
        import_file(guarded, "land_use", no_rows)
    shp = write_land_use_shp(tmp_path / "none.shp", geoms=[], rows=[("",) * 6][:0])
    with pytest.raises(ReadFailed, match="none.shp: holds no features"):
        import_file(guarded, "land_use", shp)


def test_a_file_over_the_size_limit_is_not_read(guarded, tmp_path):
    big = tmp_path / "huge.gpkg"
    with open(big, "wb") as fh:                 # sparse: 1 GiB without using the disk
        fh.truncate(1 << 30)
    with pytest.raises(UnsafeInput, match=r"huge.gpkg: 1,073,741,824 bytes is more than the limit of 536,870,912"):
        import_file(guarded, "land_use", big)


def test_garbage_in_a_known_format(guarded, tmp_path):
    junk = tmp_path / "junk.gpkg"
    junk.write_bytes(b"this is not a geopackage" * 100)
    with pytest.raises(ReadFailed, match="junk.gpkg: cannot be read as GPKG"):
        import_file(guarded, "land_use", junk)
    other = tmp_path / "notes.docx"
    other.write_bytes(b"x")
    with pytest.raises(ReadFailed, match=r"notes.docx: unsupported format .docx"):
        import_file(guarded, "land_use", other)


def test_csv_cell_beyond_the_field_limit_and_ragged_rows(guarded, tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("BSM,WKT\nL1,\"" + "POINT (1 2)" + " " * 200_000 + "\"\n", encoding="utf-8")
    with pytest.raises(ReadFailed, match=r"long.csv: line \d+: field larger than field limit"):
        import_file(guarded, "land_use", path)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("BSM,WKT\nR1,POINT (1 2),extra\n", encoding="utf-8")
    with pytest.raises(ReadFailed, match="ragged.csv: row 1 has 3 cells, the header 2"):
        import_file(guarded, "land_use", ragged)


def test_nan_in_a_geopackage_is_found_after_the_optimistic_staging(guarded, tmp_path):
    """A GeoPackage's WKB is staged as it is while Shapely reads it in parallel; a NaN found there
    re-stages the batch from Shapely's geometries and names the row."""
    good = parcels(2)
    with np.errstate(invalid="ignore"):
        bad = shapely.polygons([[125.1, 43.6], [np.nan, 43.6], [125.11, 43.61], [125.1, 43.6]])
    fields = {"bsm": ["Q1", "Q2", "Q3"], "parcel_no": ["1", "2", "3"], "class_code": ["0101"] * 3,
              "class_name": ["水田"] * 3, "county_code": [COUNTY] * 3}
    path = write_vector(tmp_path / "nan.gpkg", [good[0], bad, good[1]], fields, "GPKG", geometry_type="Polygon")
    with pytest.raises(BatchRejected) as info:
        import_file(guarded, "land_use", path)
    errors = [(r["row"], r["problem"]) for r in info.value.report if r["severity"] == "error"]
    assert errors == [(2, "coordinates are not finite or beyond ±1e8 (NaN, inf or garbage)")]
