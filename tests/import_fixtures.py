"""Real-format submissions written on the fly for the import tests (pyogrio/GDAL, zipfile, csv)."""
from __future__ import annotations

import warnings
import zipfile

import numpy as np
import pyogrio.raw
import shapely
from pyproj import Transformer
from shapely.geometry import Polygon, box

COUNTY = "229901"                      # a made-up county code: never collides with the demo's
COUNTY_BOX = (125.0, 43.5, 125.5, 44.0)   # near Changchun, 3-degree zone 42 (CM 126°E)
OTHER_COUNTY = "229902"
OTHER_BOX = (125.5, 43.5, 126.0, 44.0)

LAND_USE_ROWS = [
    # BSM, TBBH, DLBM, DLMC, QSDWDM, ZLDWDM
    ("T0001", "1", "0101", "水田", "2299011010010000000", "2299011010010000000"),
    ("T0002", "2", "0103", "旱地", "2299011010020000000", "2299011010020000000"),
    ("T0003", "3", "0702", "农村宅基地", "2299011010030000000", "2299011010030000000"),
]


def add_counties(conn) -> None:
    from sqlalchemy import text
    for code, name, bounds in ((COUNTY, "测试县", COUNTY_BOX), (OTHER_COUNTY, "邻县", OTHER_BOX)):
        conn.execute(text("INSERT INTO admin_division (code, name, level, parent_code, geom) VALUES "
                          "(:c, :n, 'county', '229900', ST_Multi(ST_MakeEnvelope(:a, :b, :x, :y, 4490)))"),
                     dict(c=code, n=name, a=bounds[0], b=bounds[1], x=bounds[2], y=bounds[3]))


def parcels(n: int = 3, origin=(125.1, 43.6), size=0.002) -> list[Polygon]:
    return [box(origin[0] + i * size * 1.5, origin[1], origin[0] + i * size * 1.5 + size, origin[1] + size)
            for i in range(n)]


def to_gk(geoms, epsg: int):
    tr = Transformer.from_crs(4490, epsg, always_xy=True)
    return [shapely.transform(g, lambda c: np.column_stack(tr.transform(c[:, 0], c[:, 1]))) for g in geoms]


def write_land_use_shp(path, geoms=None, rows=LAND_USE_ROWS, crs="EPSG:4490", encoding="GBK", keep_cpg=False,
                       geometry_type="Polygon", extra=None):
    """A land-use shapefile with the customary 三调 field names; without .cpg unless asked."""
    geoms = geoms if geoms is not None else parcels(len(rows))
    cols = list(zip(*rows)) or [()] * 6
    names = ["BSM", "TBBH", "DLBM", "DLMC", "QSDWDM", "ZLDWDM"]
    data = [np.array(c, dtype=object) for c in cols]
    for name, values in (extra or {}).items():
        names.append(name)
        data.append(np.asarray(values))
    wkb = np.array([shapely.to_wkb(g) for g in geoms], dtype=object)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "'crs' was not provided")   # a file without .prj, on purpose
        pyogrio.raw.write(str(path), wkb, data, fields=names, geometry_type=geometry_type, crs=crs,
                          encoding=encoding, driver="ESRI Shapefile")
    cpg = path.with_suffix(".cpg")
    if not keep_cpg and cpg.exists():
        cpg.unlink()
    return path


def write_vector(path, geoms, fields: dict, driver: str, crs="EPSG:4490", geometry_type="Unknown"):
    wkb = np.array([shapely.to_wkb(g) for g in geoms], dtype=object)
    pyogrio.raw.write(str(path), wkb, [np.asarray(v, dtype=object) for v in fields.values()],
                      fields=list(fields), geometry_type=geometry_type, crs=crs, driver=driver)
    return path


def write_xlsx(path, sheets: dict, merged: dict | None = None, number_formats: dict | None = None):
    """A workbook written by openpyxl: sheet name -> rows (lists of cell values, '=…' a formula);
    `merged`: sheet -> ranges ('A1:F1'); `number_formats`: sheet -> {cell: format}."""
    import openpyxl
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(row)
        for ref in (merged or {}).get(name, []):
            ws.merge_cells(ref)
        for cell, fmt in (number_formats or {}).get(name, {}).items():
            ws[cell].number_format = fmt
    wb.save(path)
    return path


def save_formula_values(path, sheet_no: int, values: dict):
    """What Excel does on saving: the computed value beside each formula ({cell: number})."""
    import re
    import zipfile
    member = f"xl/worksheets/sheet{sheet_no}.xml"
    with zipfile.ZipFile(path) as zf:
        contents = {m.filename: zf.read(m) for m in zf.infolist()}
    xml = contents[member].decode()
    for cell, value in values.items():
        xml, n = re.subn(rf'(<c r="{cell}"[^>]*><f>[^<]*</f>)<v\s*/?>(</v>)?', rf"\1<v>{value}</v>", xml)
        assert n == 1, cell
    contents[member] = xml.encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in contents.items():
            zf.writestr(name, data)
    return path


def outline_zip(folder, geom, epsg: int):
    """A zipped one-polygon Shapefile outline (范围.zip, as a county would send it) in EPSG:`epsg`."""
    shp = folder / "范围.shp"
    pyogrio.raw.write(str(shp), np.array([shapely.to_wkb(geom)], dtype=object), [np.array(["q"], dtype=object)],
                      fields=["NAME"], geometry_type="Polygon", crs=f"EPSG:{epsg}", driver="ESRI Shapefile")
    archive = folder / "范围.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in folder.glob("范围.*"):
            if p.suffix != ".zip":
                zf.write(p, p.name)
    return archive
