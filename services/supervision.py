"""The unified supervision number (统一监管号).

Format: ``RRRRRR-YYYY-K-NNNNNN``
  RRRRRR  the 6-digit GB/T 2260 code of the registering region (county, city or province)
  YYYY    the year of registration
  K       the kind of record that opened the chain (layers.codes.SUPERVISION_KIND):
          P approval, G supply with no approval, B supplementary-farmland project,
          C enforcement case on no other record, K mining right
  NNNNNN  a serial per region, year and kind, from 000001

A number is issued when a record is registered and then *carried* through the land cycle:
the supply records cut from an approval carry the approval's number, their development
reports carry it too, a case opened on any of them carries it, and the consolidation
projects that balance the approval (占补平衡) are linked to it in `farmland_balance`.
Issued numbers are kept in `supervision_number` forever and the per-region counter only
grows, so a number is never issued twice, even after its record is deleted.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import Connection, text

from layers import REGISTRY
from layers.codes import SUPERVISION_KIND

_PATTERN = re.compile(r"^(\d{6})-(\d{4})-([A-Z])-(\d{6})$", re.ASCII)  # ASCII: not full-width ２０２６


class InvalidSupervisionNumber(ValueError):
    pass


@dataclass(frozen=True)
class SupervisionNumber:
    region_code: str
    year: int
    kind: str
    serial: int

    def __str__(self) -> str:
        return f"{self.region_code}-{self.year:04d}-{self.kind}-{self.serial:06d}"


def parse(number: str) -> SupervisionNumber:
    match = _PATTERN.match(number.strip())
    if not match:
        raise InvalidSupervisionNumber(
            f"{number!r} is not a supervision number (expected RRRRRR-YYYY-K-NNNNNN, e.g. 220104-2026-P-000017)")
    region, year, kind, serial = match.groups()
    if kind not in SUPERVISION_KIND:
        raise InvalidSupervisionNumber(f"{number!r}: unknown kind {kind!r} (one of {', '.join(SUPERVISION_KIND.codes)})")
    if int(serial) == 0:
        raise InvalidSupervisionNumber(f"{number!r}: serials start at 000001")
    if not 1949 <= int(year) <= 9999:
        raise InvalidSupervisionNumber(f"{number!r}: year {year} is out of range")
    return SupervisionNumber(region, int(year), kind, int(serial))


def _check(region_code: str, year: int, kind: str) -> None:
    if not re.fullmatch(r"\d{6}", region_code, re.ASCII):
        raise InvalidSupervisionNumber(f"region code {region_code!r} is not 6 digits (GB/T 2260)")
    if not 1949 <= year <= 9999:
        raise InvalidSupervisionNumber(f"year {year} is out of range")
    if kind not in SUPERVISION_KIND:
        raise InvalidSupervisionNumber(f"unknown kind {kind!r} (one of {', '.join(SUPERVISION_KIND.codes)})")


def issue(conn: Connection, region_code: str, year: int, kind: str, subject: str | None = None) -> str:
    """Issue one new number."""
    return issue_many(conn, [(region_code, year, kind)], subjects=[subject])[0]


def issue_many(conn: Connection, requests: list[tuple[str, int, str]],
               subjects: list[str | None] | None = None) -> list[str]:
    """Issue one new number per (region_code, year, kind) request, in request order.

    Each distinct counter is advanced once, under its row lock, by the number of requests
    for it, so concurrent registrations never receive the same serial.
    """
    if not requests:
        return []
    for region_code, year, kind in set(requests):
        _check(region_code, year, kind)
    wanted = Counter(requests)
    keys = sorted(wanted)  # a fixed order, so concurrent batches lock counters alike
    rows = conn.execute(text("""
        INSERT INTO supervision_counter AS c (region_code, year, kind, last_serial)
        SELECT * FROM unnest(CAST(:regions AS text[]), CAST(:years AS smallint[]),
                             CAST(:kinds AS text[]), CAST(:counts AS int[]))
        ON CONFLICT (region_code, year, kind) DO UPDATE SET last_serial = c.last_serial + EXCLUDED.last_serial
        RETURNING region_code, year, kind, last_serial
    """), dict(regions=[k[0] for k in keys], years=[k[1] for k in keys], kinds=[k[2] for k in keys],
               counts=[wanted[k] for k in keys])).all()
    next_serial = {(r.region_code, r.year, r.kind): r.last_serial - wanted[(r.region_code, r.year, r.kind)] + 1
                   for r in rows}
    numbers = []
    for key in requests:
        numbers.append(str(SupervisionNumber(key[0], key[1], key[2], next_serial[key])))
        next_serial[key] += 1
    subjects = subjects or [None] * len(requests)
    conn.execute(text("""
        INSERT INTO supervision_number (number, region_code, year, kind, serial, subject)
        SELECT n, split_part(n, '-', 1), split_part(n, '-', 2)::smallint, split_part(n, '-', 3),
               split_part(n, '-', 4)::int, s
        FROM unnest(CAST(:numbers AS text[]), CAST(:subjects AS text[])) AS t(n, s)
    """), dict(numbers=numbers, subjects=subjects))
    return numbers


def carrying_layers() -> list[str]:
    """The layers whose records carry a supervision number."""
    return [layer.name for layer in REGISTRY if "supervision_no" in {f.name for f in layer.fields}]


def trace(conn: Connection, number: str) -> dict[str, list[dict]]:
    """Every record linked by one number: the records that carry it, and the consolidation
    projects that balance it. Geometries are left out; ids and labels are returned."""
    number = str(parse(number))  # the canonical form: a pasted " 220104-…-000017 " finds its records
    chain: dict[str, list[dict]] = {}
    for name in carrying_layers():
        layer = REGISTRY[name]
        label = layer.label_field or "supervision_no"
        rows = conn.execute(text(f"SELECT id, {label} AS label FROM {layer.table} "
                                 "WHERE supervision_no = :n ORDER BY id"), {"n": number}).mappings().all()
        chain[name] = [dict(r) for r in rows]
    balancing = conn.execute(text("""
        SELECT p.id, p.project_no AS label, b.area_m2
        FROM farmland_balance b JOIN consolidation_project p ON p.id = b.project_id
        WHERE b.supervision_no = :n ORDER BY p.id
    """), {"n": number}).mappings().all()
    chain["balanced_by"] = [dict(r) for r in balancing]
    return chain
