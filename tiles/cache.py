"""The disk cache of vector tiles, invalidated by area when a layer's data change.

A tile lives at `<root>/<audience>/<layer>/<z>/<x>/<y>.mvt`: an 8-byte header holding the layer
version it was checked at, then the MVT bytes, written atomically as one file (two files could
pair one render's bytes with another's version under concurrent renders). On a request the layer's current version is read; an entry of that version is served as is; an
older entry is served (and its version moved forward) when no change since then touched the
tile, and re-rendered otherwise (see tiles.changes). The ETag is a hash of the tile's bytes,
so a tile whose content did not change keeps its ETag even when it was re-rendered.
"""
from __future__ import annotations

import hashlib
import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection

from tiles import changes
from tiles.vector import MARGIN, VectorLayer

_HEADER = struct.Struct(">q")


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

    def path(self, vl: VectorLayer, z: int, x: int, y: int) -> Path:
        return self.root / vl.audience / vl.name / str(z) / str(x) / f"{y}.mvt"

    def get(self, conn: Connection, vl: VectorLayer, z: int, x: int, y: int) -> CachedTile:
        vl.check(z, x, y)
        path = self.path(vl, z, x, y)
        # read before rendering: see tiles.changes
        version, pruned_through = changes.layer_version(conn, vl.name)
        cached = self._read(path)
        if cached is not None:
            data, at = cached
            if at == version:
                return CachedTile(data, etag_of(data), True)
            if pruned_through <= at < version and not changes.changed_since(conn, vl.name, at, z, x, y, MARGIN):
                _write(path, _HEADER.pack(version) + data)
                return CachedTile(data, etag_of(data), True)
        data = vl.render(conn, z, x, y)
        _write(path, _HEADER.pack(version) + data)
        return CachedTile(data, etag_of(data), False)

    @staticmethod
    def _read(path: Path) -> tuple[bytes, int] | None:
        try:
            raw = path.read_bytes()
        except OSError:
            return None
        if len(raw) < _HEADER.size:
            return None
        return raw[_HEADER.size:], _HEADER.unpack_from(raw)[0]


def _write(path: Path, data: bytes) -> None:
    """Atomically (rename), so a reader sees the old or the new file, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
