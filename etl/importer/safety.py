"""Guards against hostile submissions: size limits, zip bombs, paths escaping the archive.

A zip is never extracted blindly: the entries are checked (names, count, declared sizes,
compression ratio) and then copied in chunks while the bytes actually written are counted,
so a lying header cannot blow past the limit either.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from etl.importer.errors import UnsafeInput

CHUNK = 1 << 20


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 512 << 20         # the submitted file (zip or loose)
    max_unpacked_bytes: int = 2 << 30       # all members of a zip together
    max_ratio: float = 100.0                # uncompressed / compressed, per member
    max_members: int = 1000
    max_features: int = 5_000_000
    max_columns: int = 1000                 # a spreadsheet's header row
    max_cells: int = 50_000_000             # a spreadsheet's rows x header columns


def check_size(path: Path, limits: Limits) -> int:
    size = path.stat().st_size
    if size > limits.max_file_bytes:
        raise UnsafeInput(f"{path.name}: {size:,d} bytes is more than the limit of {limits.max_file_bytes:,d} bytes")
    return size


def sha256_of(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for p in sorted(paths):
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(CHUNK), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _safe_member(name: str, archive: str) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise UnsafeInput(f"{archive}: member {name!r} points outside the archive (path traversal)")
    return path


def _checked_members(zf: zipfile.ZipFile, archive: str, limits: Limits) -> list[zipfile.ZipInfo]:
    """The archive's file members, after checking their count, names, declared sizes and ratios."""
    members = [m for m in zf.infolist() if not m.is_dir()]
    if len(members) > limits.max_members:
        raise UnsafeInput(f"{archive}: {len(members)} members, more than the limit of {limits.max_members}")
    declared = sum(m.file_size for m in members)
    if declared > limits.max_unpacked_bytes:
        raise UnsafeInput(f"{archive}: unpacks to {declared:,d} bytes, more than the limit of "
                          f"{limits.max_unpacked_bytes:,d} (zip bomb?)")
    for m in members:
        _safe_member(m.filename, archive)
        if m.file_size > 1 << 16 and m.file_size > limits.max_ratio * max(m.compress_size, 1):
            raise UnsafeInput(f"{archive}: member {m.filename!r} expands {m.file_size / max(m.compress_size, 1):.0f}"
                              f"-fold (limit {limits.max_ratio:.0f}): a zip bomb is refused")
    return members


def check_container(path: Path, display: str, limits: Limits) -> None:
    """A zip-based format read in place (XLSX): the same checks as a submitted zip, nothing extracted.

    Reading then stays within the declared sizes: Python's zipfile stops a member at its declared
    size and fails its CRC if the header understated it."""
    try:
        with zipfile.ZipFile(path) as zf:
            _checked_members(zf, display, limits)
    except zipfile.BadZipFile as exc:
        raise UnsafeInput(f"{display}: not a readable zip container ({exc})") from None


def unpack_zip(path: Path, dest: Path, limits: Limits) -> list[Path]:
    """Extract `path` into `dest` safely; returns the extracted files."""
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise UnsafeInput(f"{path.name}: not a readable zip archive ({exc})") from None
    out: list[Path] = []
    with zf:
        members = _checked_members(zf, path.name, limits)
        written = 0
        for m in members:
            target = dest / _safe_member(m.filename, path.name)
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(m) as src, open(target, "wb") as dst:
                while chunk := src.read(CHUNK):
                    written += len(chunk)
                    if written > limits.max_unpacked_bytes:
                        raise UnsafeInput(f"{path.name}: unpacks to more than {limits.max_unpacked_bytes:,d} bytes "
                                          "(the headers understate it: zip bomb?)")
                    dst.write(chunk)
            out.append(target)
    return out


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def is_within(child: Path, parent: Path) -> bool:
    return os.path.commonpath([child.resolve(), parent.resolve()]) == str(parent.resolve())
