"""Deterministic random streams and a smooth noise field.

Every generator is derived from the load's seed and a stable stream name (crc32, not
Python's salted `hash`), so adding a stream never shifts the numbers of another, and the
landscape streams do not depend on the scale.
"""
from __future__ import annotations

import zlib

import numpy as np


def stream(seed: int, name: str) -> np.random.Generator:
    """A numpy Generator for one named purpose of one load."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, zlib.crc32(name.encode())])))


def _smooth(t: np.ndarray) -> np.ndarray:
    return t * t * (3.0 - 2.0 * t)


class NoiseField:
    """Smooth value noise over a lon/lat box: octaves of random lattices, smoothstep-interpolated.

    Values lie roughly in [-1, 1] with mean ~0. `octaves` are (lattice spacing in degrees,
    amplitude); the spacing is in latitude degrees and stretched in longitude so patches come
    out about round on the ground at Jilin's latitude.
    """

    def __init__(self, rng: np.random.Generator, bounds: tuple[float, float, float, float],
                 octaves: tuple[tuple[float, float], ...] = ((0.6, 0.55), (0.2, 0.3), (0.07, 0.15)),
                 lon_stretch: float = 1.38):
        self.x0, self.y0, x1, y1 = bounds
        self.lon_stretch = lon_stretch
        self.layers = []
        total = sum(a for _, a in octaves)
        for spacing, amplitude in octaves:
            nx = int(np.ceil((x1 - self.x0) / (spacing * lon_stretch))) + 2
            ny = int(np.ceil((y1 - self.y0) / spacing)) + 2
            lattice = rng.uniform(-1.0, 1.0, size=(ny, nx))
            self.layers.append((spacing, amplitude / total, lattice))

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        out = np.zeros(np.broadcast(x, y).shape)
        for spacing, amplitude, lattice in self.layers:
            gx = np.clip((x - self.x0) / (spacing * self.lon_stretch), 0, lattice.shape[1] - 1.001)
            gy = np.clip((y - self.y0) / spacing, 0, lattice.shape[0] - 1.001)
            ix, iy = gx.astype(int), gy.astype(int)
            tx, ty = _smooth(gx - ix), _smooth(gy - iy)
            v00 = lattice[iy, ix]
            v10 = lattice[iy, ix + 1]
            v01 = lattice[iy + 1, ix]
            v11 = lattice[iy + 1, ix + 1]
            out += amplitude * ((v00 * (1 - tx) + v10 * tx) * (1 - ty) + (v01 * (1 - tx) + v11 * tx) * ty)
        # Value noise sums concentrate around 0; stretch so ±1 is reached in places.
        return np.clip(out * 1.8, -1.0, 1.0)
