"""The land-use parcel grid: jittered shared corners, 4–8 vertices per cell.

Corners of a regular lon/lat lattice are jittered once and shared by the four cells that
meet there; some edges get one extra (jittered) vertex, shared by the two cells on either
side. Neighbouring cells therefore tile exactly, without gaps or overlaps, and each cell is
a simple polygon with 4 corners plus 0–4 edge vertices. Built with numpy and one
`shapely.from_ragged_array` call.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from shapely import GeometryType

# Every vertex lies on a 1e-9° grid (~0.1 mm), snapped exactly the way PostGIS overlays with
# a grid size round (GEOS: scale = 1 / gridSize, x' = round_half_up(x * scale) / scale; note
# ST_ReducePrecision rounds differently, as round(x / gridSize) * gridSize), so the
# snap-rounded overlays of the land-use build leave shared edges bit-identical on both sides.
GRID_SIZE = 1e-9
GRID_SCALE = 1.0 / GRID_SIZE


def snap(a: np.ndarray) -> np.ndarray:
    return np.floor(a * GRID_SCALE + 0.5) / GRID_SCALE


# Cells are about square on the ground at Jilin's latitude (cos 43.6° ≈ 0.724).
LON_STRETCH = 1.0 / np.cos(np.radians(43.6))
KM_PER_DEG_LAT = 111.13


@dataclass
class Grid:
    cell_deg: float          # cell height in degrees of latitude
    polygons: np.ndarray     # shapely Polygons, one per cell kept
    cx: np.ndarray           # centroid longitude (mean of the corners)
    cy: np.ndarray           # centroid latitude
    col: np.ndarray          # lattice column of each cell
    row: np.ndarray          # lattice row

    def __len__(self) -> int:
        return len(self.polygons)


def cell_size_for(area_km2: float, target_cells: float) -> float:
    """Cell height in degrees so that `target_cells` cells cover `area_km2`."""
    side_km = np.sqrt(area_km2 / target_cells)
    return side_km / KM_PER_DEG_LAT


def build_grid(rng: np.random.Generator, bounds: tuple[float, float, float, float], cell_deg: float,
               keep=None) -> Grid:
    """Cells over `bounds`; `keep(polygons) -> bool array` filters them (e.g. intersects the province)."""
    dy = cell_deg
    dx = cell_deg * LON_STRETCH
    x0, y0, x1, y1 = bounds
    nx = int(np.ceil((x1 - x0) / dx))
    ny = int(np.ceil((y1 - y0) / dy))
    # Lattice corners (ny+1, nx+1), jittered by up to a quarter cell.
    gx = x0 + dx * np.arange(nx + 1)
    gy = y0 + dy * np.arange(ny + 1)
    cx, cy = np.meshgrid(gx, gy)
    cx = cx + rng.uniform(-0.25, 0.25, cx.shape) * dx
    cy = cy + rng.uniform(-0.25, 0.25, cy.shape) * dy
    # Horizontal edges (ny+1, nx) and vertical edges (ny, nx+1): an extra vertex on about
    # half of them, near the edge's middle and pushed off the straight line.
    h_has = rng.random((ny + 1, nx)) < 0.5
    h_t = rng.uniform(0.35, 0.65, (ny + 1, nx))
    h_off = rng.uniform(-0.12, 0.12, (ny + 1, nx)) * dy
    hx = cx[:, :-1] + (cx[:, 1:] - cx[:, :-1]) * h_t
    hy = cy[:, :-1] + (cy[:, 1:] - cy[:, :-1]) * h_t + h_off
    v_has = rng.random((ny, nx + 1)) < 0.5
    v_t = rng.uniform(0.35, 0.65, (ny, nx + 1))
    v_off = rng.uniform(-0.12, 0.12, (ny, nx + 1)) * dx
    vx = cx[:-1, :] + (cx[1:, :] - cx[:-1, :]) * v_t + v_off
    vy = cy[:-1, :] + (cy[1:, :] - cy[:-1, :]) * v_t
    cx, cy, hx, hy, vx, vy = (snap(a) for a in (cx, cy, hx, hy, vx, vy))

    rows, cols = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    rows, cols = rows.ravel(), cols.ravel()
    # 8 candidate vertices per cell, counter-clockwise from the lower-left corner.
    px = np.stack([cx[rows, cols], hx[rows, cols], cx[rows, cols + 1], vx[rows, cols + 1],
                   cx[rows + 1, cols + 1], hx[rows + 1, cols], cx[rows + 1, cols], vx[rows, cols]], axis=1)
    py = np.stack([cy[rows, cols], hy[rows, cols], cy[rows, cols + 1], vy[rows, cols + 1],
                   cy[rows + 1, cols + 1], hy[rows + 1, cols], cy[rows + 1, cols], vy[rows, cols]], axis=1)
    present = np.stack([np.ones_like(rows, bool), h_has[rows, cols], np.ones_like(rows, bool),
                        v_has[rows, cols + 1], np.ones_like(rows, bool), h_has[rows + 1, cols],
                        np.ones_like(rows, bool), v_has[rows, cols]], axis=1)
    centre_x = px[:, [0, 2, 4, 6]].mean(axis=1)
    centre_y = py[:, [0, 2, 4, 6]].mean(axis=1)

    if keep is not None:
        # A cheap first cut on the corner boxes, then the caller's exact test.
        boxes = shapely.box(px.min(axis=1), py.min(axis=1), px.max(axis=1), py.max(axis=1))
        sel = np.flatnonzero(keep(boxes))
        polys = _polygons(px[sel], py[sel], present[sel])
        exact = keep(polys)
        sel, polys = sel[exact], polys[exact]
    else:
        sel = np.arange(len(rows))
        polys = _polygons(px, py, present)
    return Grid(cell_deg, polys, centre_x[sel], centre_y[sel], cols[sel], rows[sel])


def _polygons(px: np.ndarray, py: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Closed rings from the present candidate vertices, as shapely Polygons."""
    closed_x = np.concatenate([px, px[:, :1]], axis=1)
    closed_y = np.concatenate([py, py[:, :1]], axis=1)
    closed_present = np.concatenate([present, present[:, :1]], axis=1)
    coords = np.column_stack([closed_x[closed_present], closed_y[closed_present]])
    counts = closed_present.sum(axis=1)
    ring_offsets = np.concatenate([[0], np.cumsum(counts)])
    geom_offsets = np.arange(len(counts) + 1)
    return shapely.from_ragged_array(GeometryType.POLYGON, coords, (ring_offsets, geom_offsets))
