"""Where generated records may go: county lookup, zone tests on the metric plane, the cells
under a site (whose land use a planted case may fix), and the space already taken."""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import shapely
from shapely import STRtree

from etl.demo.geo import to_local, to_lonlat
from etl.demo.grid import Grid
from etl.demo.landscape import Landscape, Town
from etl.demo.landuse import IDX, Cells

WATER = np.array([IDX[c] for c in ("1101", "1102", "1103", "1104", "1108")])


class Occupancy:
    """Taken space on the metric plane, bucketed on a coarse grid."""

    def __init__(self, bucket_m: float = 2000.0):
        self.bucket = bucket_m
        self.items: dict[tuple[int, int], list] = defaultdict(list)

    def _keys(self, geom):
        x0, y0, x1, y1 = geom.bounds
        b = self.bucket
        for i in range(int(np.floor(x0 / b)), int(np.floor(x1 / b)) + 1):
            for j in range(int(np.floor(y0 / b)), int(np.floor(y1 / b)) + 1):
                yield i, j

    def free(self, geom) -> bool:
        seen = set()
        for key in self._keys(geom):
            for other in self.items.get(key, ()):
                if id(other) not in seen:
                    seen.add(id(other))
                    if geom.intersects(other):
                        return False
        return True

    def add(self, geom) -> None:
        shapely.prepare(geom)
        for key in self._keys(geom):
            self.items[key].append(geom)


class World:
    """The landscape, the grid and its cells, with the tests generators need."""

    def __init__(self, ls: Landscape, grid: Grid, cells: Cells):
        self.ls, self.grid, self.cells = ls, grid, cells
        self.cell_tree = STRtree(grid.polygons)
        self.county_codes = [c.code for c in ls.counties]
        self.county_geoms = np.array([c.geom for c in ls.counties], dtype=object)
        self.county_names = {c.code: c.name for c in ls.counties}
        self.county_tree = STRtree(self.county_geoms)
        shapely.prepare(self.county_geoms)
        urban = shapely.union_all([ls.urban_union, ls.zone020, ls.zone010])
        self.local = {
            "zone010": to_local(ls.zone010),
            "zone010_020": to_local(shapely.union(ls.zone010, ls.zone020)),   # where construction may go
            "urban": to_local(urban),
            "reserve": to_local(ls.reserve_union),
            "footprint": to_local(ls.footprint),
            "linear": ls.linear_local,
            "province": to_local(ls.province),
        }
        for geom in self.local.values():
            shapely.prepare(geom)
        self.forced: dict[int, tuple[int, bool]] = {}
        self.occupied = Occupancy()
        self.seat_cells = set()
        for town in ls.towns:
            self.seat_cells.update(self.cell_tree.query(shapely.Point(town.lon, town.lat), predicate="intersects").tolist())
        self.clear = cells.clear
        self.towns = {t.name: t for t in ls.towns}

    # --- lookups -------------------------------------------------------------------------
    def county_of(self, geom_ll, margin_m: float = 0.0) -> str | None:
        """The county containing `geom_ll` (with `margin_m` to spare), else None."""
        probe = geom_ll if margin_m <= 0 else to_lonlat(to_local(geom_ll).buffer(margin_m))
        hits = self.county_tree.query(probe, predicate="within")
        return self.county_codes[int(hits[0])] if len(hits) else None

    def county_at(self, lon: float, lat: float) -> str | None:
        hits = self.county_tree.query(shapely.Point(lon, lat), predicate="intersects")
        return self.county_codes[int(hits[0])] if len(hits) else None

    def cells_under(self, geom_ll) -> np.ndarray:
        return np.sort(self.cell_tree.query(geom_ll, predicate="intersects"))

    def town(self, name: str) -> Town:
        return self.towns[name]

    # --- forcing the land use under planted sites ---------------------------------------
    def can_force(self, cells: np.ndarray, cls: str, basic: bool) -> bool:
        want = (IDX[cls], basic)
        for i in cells.tolist():
            if i in self.forced:
                if self.forced[i] != want:
                    return False
                continue
            if i in self.seat_cells or self.cells.cls[i] in WATER:
                return False
            if basic and not self.clear[i]:
                return False
        return True

    def force(self, cells: np.ndarray, cls: str, basic: bool) -> None:
        for i in cells.tolist():
            self.forced[i] = (IDX[cls], basic)
            self.cells.cls[i] = IDX[cls]
            self.cells.basic[i] = basic
            self.cells.state[i] = False

    # --- zone tests on the metric plane --------------------------------------------------
    def within(self, name: str, geom_l, margin: float = 0.0) -> bool:
        probe = geom_l.buffer(margin) if margin else geom_l
        return self.local[name].contains(probe)

    def clear_of(self, name: str, geom_l, margin: float = 0.0) -> bool:
        probe = geom_l.buffer(margin) if margin else geom_l
        return not self.local[name].intersects(probe)
