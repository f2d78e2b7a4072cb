"""The disk cache of vector tiles: plain MVT files, deleted by area when a layer's data change.

A tile lives at `<root>/<audience>/<layer>/<z>/<x>/<y>.mvt` and holds exactly the bytes the
server sends, so a hit needs no database at all and a static web server (nginx `try_files`,
see tiles.front) can serve public hits itself. A file on disk is current, because:

- when a layer changes, its servers are told (NOTIFY, see tiles.changes) and `catch_up` deletes
  the files of every tile the change boxes touch (with the tiles' buffer); each cache directory
  remembers through which version of each layer it was caught up (`.versions/<layer>`), so changes
  made while no server ran are applied when one starts (or at the next poll);
- a render may race with a change: it renders what its statement sees (version V, read in the same
  statement), then, under a shared lock that `catch_up` takes exclusively, writes the file and reads
  the version the cache was caught up through. If that is V or less, every change after V is still
  to be applied, and `catch_up` will find the file; only if it is more (a change after V may have
  been applied before the file existed) does it ask the database whether such a change touched the
  tile, and delete the file if one did. A miss therefore costs one query, like a hit costs none.

The ETag is a hash of the tile's bytes, so a tile whose content did not change keeps its ETag
when it is rendered again.
"""
from __future__ import annotations

import fcntl
import hashlib
import math
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection

from tiles import changes
from tiles.vector import AUDIENCES, MARGIN, VectorLayer

SUFFIX = ".mvt"
WORLD = 2 * 20037508.342789244     # the EPSG:3857 extent of zoom 0


@dataclass(frozen=True)
class CachedTile:
    data: bytes
    etag: str
    hit: bool


def etag_of(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=12).hexdigest()


class VectorTileCache:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, audience: str, layer: str, z: int, x: int, y: int) -> Path:
        return self.root / audience / layer / str(z) / str(x) / f"{y}{SUFFIX}"

    def read(self, audience: str, layer: str, z: int, x: int, y: int) -> bytes | None:
        try:
            with open(self.path(audience, layer, z, x, y), "rb") as f:
                return f.read()
        except OSError:
            return None

    def get(self, conn: Connection, vl: VectorLayer, z: int, x: int, y: int) -> CachedTile:
        vl.check(z, x, y)
        data = self.read(vl.audience, vl.name, z, x, y)
        if data is not None:
            return CachedTile(data, etag_of(data), True)
        version, data = vl.render(conn, z, x, y)
        path = self.path(vl.audience, vl.name, z, x, y)
        with self._locked(shared=True):
            _write(path, data)
            applied = self.applied(vl.name)
        if (applied is None or applied > version) and changes.changed_since(conn, vl.name, version, z, x, y, MARGIN):
            path.unlink(missing_ok=True)     # a change raced with the render: see the module docstring
        return CachedTile(data, etag_of(data), False)

    # --- invalidation ---------------------------------------------------------------------------
    def catch_up(self, conn: Connection, layers: list[str] | None = None) -> dict[str, int]:
        """Delete the cached tiles that changes since the last catch-up touched; returns the files
        deleted per layer that changed. Safe to run in several processes at once (a file lock)."""
        deleted: dict[str, int] = {}
        with self._locked():
            for layer, (version, pruned) in changes.layer_versions(conn).items():
                if layers is not None and layer not in layers:
                    continue
                applied = self.applied(layer)
                if applied is None:     # never caught up (a new cache, or one of an older format)
                    deleted[layer] = self._wipe(layer)
                elif applied < version:
                    deleted[layer] = (self._wipe(layer) if pruned > applied else
                                      self._delete_boxes(layer, changes.changed_boxes(conn, layer, applied, version)))
                else:
                    continue
                self._set_applied(layer, version)
        return deleted

    def _delete_boxes(self, layer: str, boxes: list[tuple[float, float, float, float]]) -> int:
        if any(b[2] - b[0] >= WORLD * 0.999 for b in boxes):    # a TRUNCATE
            return self._wipe(layer)
        deleted = 0
        for audience in AUDIENCES:
            base = self.root / audience / layer
            for zdir in _subdirs(base):
                ranges = [_tile_range(b, int(zdir.name)) for b in boxes]
                for xdir in _subdirs(zdir):
                    x = int(xdir.name)
                    ys = [(y0, y1) for x0, x1, y0, y1 in ranges if x0 <= x <= x1]
                    if not ys:
                        continue
                    for entry in os.scandir(xdir):
                        stem = entry.name[:-len(SUFFIX)]
                        if entry.name.endswith(SUFFIX) and stem.isdigit() and \
                                any(y0 <= int(stem) <= y1 for y0, y1 in ys):
                            os.unlink(entry.path)
                            deleted += 1
        return deleted

    def _wipe(self, layer: str) -> int:
        deleted = 0
        for audience in AUDIENCES:
            base = self.root / audience / layer
            if base.exists():
                deleted += sum(1 for _ in base.rglob(f"*{SUFFIX}"))
                doomed = base.with_name(f".deleting-{layer}-{os.getpid()}")
                os.replace(base, doomed)     # at once for readers; the slow part after
                shutil.rmtree(doomed, ignore_errors=True)
        return deleted

    def applied(self, layer: str) -> int | None:
        try:
            return int((self.root / ".versions" / layer).read_text())
        except (OSError, ValueError):
            return None

    def _set_applied(self, layer: str, version: int) -> None:
        _write(self.root / ".versions" / layer, str(version).encode())

    @contextmanager
    def _locked(self, shared: bool = False):
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a") as f:      # an open file of its own: flock is per open file
            fcntl.flock(f, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)


def _tile_range(box: tuple[float, float, float, float], z: int) -> tuple[int, int, int, int]:
    """x0, x1, y0, y1 (inclusive) of the zoom z tiles whose buffered envelope meets the box."""
    size = WORLD / 2 ** z
    pad = MARGIN + 1e-6          # the buffer, and a hair for boxes lying on a tile edge
    xmin, ymin, xmax, ymax = box
    x0 = math.floor((xmin + WORLD / 2) / size - pad)
    x1 = math.floor((xmax + WORLD / 2) / size + pad)
    y0 = math.floor((WORLD / 2 - ymax) / size - pad)
    y1 = math.floor((WORLD / 2 - ymin) / size + pad)
    return x0, x1, y0, y1


def _subdirs(path: Path):
    try:
        return [Path(e.path) for e in os.scandir(path) if e.is_dir() and e.name.isdigit()]
    except FileNotFoundError:
        return []


def _write(path: Path, data: bytes) -> None:
    """Atomically (rename), so a reader sees the old or the new file, never half of one; readable by
    all (the static front's worker user)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o644)
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
