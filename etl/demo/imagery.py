"""Two synthetic image epochs over the change-patch footprint near Changchun.

Epoch 1 is rendered from the land-use classes of the grid cells (with the road and river
strips on top), each parcel in its own tone, plus pixel texture; epoch 2 is epoch 1 with the
change patches painted in as new construction, mining, greenhouses or a tone change. Both
are RGB uint8 GeoTIFFs in EPSG:4490, tiled and deflate-compressed, written byte-for-byte
reproducibly (no timestamps; fixed noise).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
import shapely
from rasterio import features
from rasterio.transform import from_bounds

from etl.demo.geo import to_local
from etl.demo.landuse import CLASSES
from etl.demo.streams import stream

SENSOR = "GF-2 PMS (synthetic rendering)"
IMAGE_PX = 4000          # 0.6° × 0.44° at ~12 m
SMALL_IMAGE_PX = 1000    # below scale 0.5 (tests), ~48 m

_PALETTE_BY_PREFIX = {
    "01": (196, 186, 120), "02": (120, 150, 70), "03": (46, 92, 50), "04": (150, 170, 100),
    "05": (190, 170, 160), "06": (170, 160, 150), "07": (180, 150, 130), "08": (175, 165, 150),
    "09": (140, 140, 130), "10": (120, 120, 118), "11": (50, 80, 110), "12": (200, 195, 175),
}
_SPECIAL = {"0101": (110, 150, 90), "0102": (170, 175, 110), "0305": (80, 115, 65), "0402": (120, 150, 110),
            "0602": (185, 165, 130), "1108": (90, 120, 100), "1204": (215, 210, 200), "1205": (220, 200, 160),
            "1207": (160, 155, 150), "1202": (225, 225, 230), "1003": (105, 105, 110), "1101": (45, 75, 105)}
_AFTER = {"construction": (205, 205, 210), "mining": (190, 170, 135), "1202": (236, 238, 242), "1206": (175, 155, 125)}


def palette() -> np.ndarray:
    """RGB per class index (+1; 0 is no data)."""
    out = np.zeros((len(CLASSES) + 3, 3), dtype=np.int16)
    for i, code in enumerate(CLASSES):
        out[i + 1] = _SPECIAL.get(code, _PALETTE_BY_PREFIX[code[:2]])
    return out


def resolution_m(px: int, footprint) -> float:
    """Mean metres per pixel of a px × px image over the footprint."""
    x0, y0, x1, y1 = to_local(footprint).bounds
    return round(((x1 - x0) + (y1 - y0)) / 2 / px, 2)


def render(grid, cells, footprint, road_strips, river_strips, patches, out_dir: Path, seed: int, px: int,
           names: tuple[str, str]) -> list[Path]:
    """Write the two epochs into `out_dir` under temporary names (the caller renames them)."""
    bounds = footprint.bounds
    transform = from_bounds(*bounds, px, px)
    idx = np.flatnonzero(shapely.intersects(footprint, grid.polygons))
    codes = cells.cls
    shapes = [(grid.polygons[i], int(codes[i]) + 1) for i in idx]
    cls = features.rasterize(shapes, out_shape=(px, px), transform=transform, fill=0, dtype="uint8")
    parcel = features.rasterize([(grid.polygons[i], k + 1) for k, i in enumerate(idx)], out_shape=(px, px),
                                transform=transform, fill=0, dtype="int32")
    road = CLASSES.index("1003") + 1
    river = CLASSES.index("1101") + 1
    for strips, value in ((river_strips, river), (road_strips, road)):
        hit = [(g, value) for g in strips if g.intersects(footprint)]
        if hit:
            features.rasterize(hit, out=cls, transform=transform)

    rng = stream(seed, "imagery")
    # each parcel a little lighter or darker (all bands alike), with a slight tint
    tone = (rng.integers(-16, 17, size=(len(idx) + 1, 1)) + rng.integers(-4, 5, size=(len(idx) + 1, 3))).astype(np.int16)
    base = palette()[cls] + tone[parcel]
    base += rng.integers(-7, 8, size=(px, px, 1), dtype=np.int16)          # grain, shared by the bands
    base += rng.integers(-3, 4, size=(px, px, 3), dtype=np.int16)
    epoch1 = np.clip(base, 0, 255).astype(np.uint8)

    epoch2 = epoch1.copy()
    for p in patches:
        if p.false_change:
            mask = features.rasterize([(p.geom, 1)], out_shape=(px, px), transform=transform, dtype="uint8") == 1
            epoch2[mask] = np.clip(epoch2[mask].astype(np.int16) + np.array([-25, -10, -30]), 0, 255).astype(np.uint8)
            continue
        colour = _AFTER.get(p.class_after, _AFTER[p.kind])
        mask = features.rasterize([(p.geom, 1)], out_shape=(px, px), transform=transform, dtype="uint8") == 1
        noise = rng.integers(-10, 11, size=(int(mask.sum()), 1), dtype=np.int16)
        epoch2[mask] = np.clip(np.array(colour, dtype=np.int16) + noise, 0, 255).astype(np.uint8)

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, image in zip(names, (epoch1, epoch2)):
        path = out_dir / f".{name}.tmp.tif"
        with rasterio.open(path, "w", driver="GTiff", width=px, height=px, count=3, dtype="uint8", crs="EPSG:4490",
                           transform=transform, tiled=True, blockxsize=512, blockysize=512, compress="deflate",
                           predictor=2, zlevel=4, photometric="RGB", interleave="pixel") as dst:
            dst.write(np.moveaxis(image, 2, 0))
        paths.append(path)
    return paths
