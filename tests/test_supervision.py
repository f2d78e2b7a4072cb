"""The unified supervision number: format, parsing, issuing (also concurrently) and tracing
a number through approval → supply → development → case, and the projects that balance it.
Real PostGIS; everything except the concurrency test runs in the rolled-back `conn`."""
from __future__ import annotations

import threading
from datetime import date

import pytest
from sqlalchemy import Connection, text

from services.supervision import (InvalidSupervisionNumber, SupervisionNumber, carrying_layers, issue,
                                  issue_many, parse, trace)

# Region codes starting 99 are no GB/T 2260 province: no other test or demo data issues them,
# so their counters start empty.
R1, R2 = "990101", "990102"
SQUARE = "MULTIPOLYGON(((125.30 43.80, 125.31 43.80, 125.31 43.81, 125.30 43.81, 125.30 43.80)))"


# --- format and parse ------------------------------------------------------------------------

def test_format_and_parse_round_trip():
    number = SupervisionNumber("220104", 2026, "P", 17)
    assert str(number) == "220104-2026-P-000017"
    assert parse("220104-2026-P-000017") == number
    assert parse("  220104-2026-P-000017\n") == number
    assert str(parse("220100-1999-K-999999")) == "220100-1999-K-999999"


@pytest.mark.parametrize("bad, message", [
    ("", "expected RRRRRR-YYYY-K-NNNNNN"),
    ("220104-2026-P-17", "expected RRRRRR-YYYY-K-NNNNNN"),
    ("22010-2026-P-000017", "expected RRRRRR-YYYY-K-NNNNNN"),
    ("220104-26-P-000017", "expected RRRRRR-YYYY-K-NNNNNN"),
    ("220104-2026-p-000017", "expected RRRRRR-YYYY-K-NNNNNN"),
    ("220104/2026/P/000017", "expected RRRRRR-YYYY-K-NNNNNN"),
    ("220104-2026-P-000017-1", "expected RRRRRR-YYYY-K-NNNNNN"),
    ("２２０１０４-２０２６-P-００００１７", "expected RRRRRR-YYYY-K-NNNNNN"),  # full-width digits
    ("220104-2026-X-000017", "unknown kind 'X'"),
    ("220104-2026-P-000000", "serials start at 000001"),
    ("220104-0000-P-000017", "year 0000 is out of range"),
])
def test_parse_refuses_bad_numbers_with_a_clear_message(bad, message):
    with pytest.raises(InvalidSupervisionNumber, match=message):
        parse(bad)
    assert issubclass(InvalidSupervisionNumber, ValueError)


# --- issuing ---------------------------------------------------------------------------------

def _counter(conn: Connection, region: str, year: int, kind: str) -> int | None:
    return conn.execute(text("SELECT last_serial FROM supervision_counter "
                             "WHERE region_code = :r AND year = :y AND kind = :k"),
                        {"r": region, "y": year, "k": kind}).scalar()


def test_issue_counts_per_region_year_and_kind(conn):
    assert issue(conn, R1, 2026, "P", subject="批次一") == f"{R1}-2026-P-000001"
    assert issue(conn, R1, 2026, "P") == f"{R1}-2026-P-000002"
    assert issue(conn, R1, 2026, "G") == f"{R1}-2026-G-000001"
    assert issue(conn, R1, 2025, "P") == f"{R1}-2025-P-000001"
    assert issue(conn, R2, 2026, "P") == f"{R2}-2026-P-000001"
    assert issue(conn, R1, 2026, "P") == f"{R1}-2026-P-000003"
    assert _counter(conn, R1, 2026, "P") == 3
    row = conn.execute(text("SELECT region_code, year, kind, serial, subject, issued_at FROM supervision_number "
                            "WHERE number = :n"), {"n": f"{R1}-2026-P-000001"}).one()
    assert (row.region_code, row.year, row.kind, row.serial, row.subject) == (R1, 2026, "P", 1, "批次一")
    assert row.issued_at is not None


@pytest.mark.parametrize("region, year, kind, message", [
    ("2201", 2026, "P", "not 6 digits"),
    ("２２０１０４", 2026, "P", "not 6 digits"),
    (R1, 1900, "P", "out of range"),
    (R1, 2026, "Z", "unknown kind 'Z'"),
])
def test_issue_refuses_bad_requests_and_writes_nothing(conn, region, year, kind, message):
    with pytest.raises(InvalidSupervisionNumber, match=message):
        issue_many(conn, [(R1, 2026, "P"), (region, year, kind)])
    assert _counter(conn, R1, 2026, "P") is None
    assert conn.execute(text("SELECT count(*) FROM supervision_number WHERE region_code = :r"),
                        {"r": R1}).scalar() == 0


def test_issue_many_keeps_request_order_and_serials(conn):
    issue(conn, R1, 2026, "P")  # the P counter is at 1 already
    requests = [(R1, 2026, "P"), (R2, 2026, "P"), (R1, 2026, "P"), (R1, 2026, "G"), (R1, 2026, "P")]
    numbers = issue_many(conn, requests, subjects=["a", "b", "c", "d", "e"])
    assert numbers == [f"{R1}-2026-P-000002", f"{R2}-2026-P-000001", f"{R1}-2026-P-000003",
                       f"{R1}-2026-G-000001", f"{R1}-2026-P-000004"]
    subjects = dict(conn.execute(text("SELECT number, subject FROM supervision_number WHERE number = ANY(:n)"),
                                 {"n": numbers}).all())
    assert [subjects[n] for n in numbers] == ["a", "b", "c", "d", "e"]
    assert issue_many(conn, []) == []
    assert issue(conn, R1, 2026, "P") == f"{R1}-2026-P-000005"


def test_numbers_are_never_reused(conn):
    first = issue(conn, R1, 2026, "P")
    approval = _insert(conn, "approval", supervision_no=first, document_no="吉政土〔2026〕1号", kind="conversion",
                       authority="province", approved_on=date(2026, 3, 1), county_code="220104")
    conn.execute(text("DELETE FROM approval WHERE id = :id"), {"id": approval})
    second = issue(conn, R1, 2026, "P")
    assert parse(second).serial == parse(first).serial + 1
    # Even if the issued number's own row went (it must not), the counter only grows.
    conn.execute(text("DELETE FROM supervision_number WHERE number IN (:a, :b)"), {"a": first, "b": second})
    assert issue(conn, R1, 2026, "P") == f"{R1}-2026-P-000003"


def test_concurrent_issuers_never_get_the_same_number(engine):
    """Two connections, each in its own transaction, issue batches for the same counters in
    opposite orders; each holds its transaction open a moment so the other must wait on the
    counter row. No duplicates, no gaps, no deadlock."""
    region, rounds = "990199", 8
    k1, k2 = (region, 2026, "P"), (region, 2026, "G")
    batches = {"a": [k1, k1, k2, k1], "b": [k2, k1, k2]}
    issued: dict[str, list[str]] = {"a": [], "b": []}
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def worker(name: str) -> None:
        try:
            with engine.connect() as c:
                for _ in range(rounds):
                    barrier.wait(timeout=30)
                    with c.begin():
                        issued[name] += issue_many(c, batches[name])
                        c.execute(text("SELECT pg_sleep(0.02)"))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
            barrier.abort()

    def cleanup() -> None:
        with engine.begin() as c:
            c.execute(text("DELETE FROM supervision_number WHERE region_code = :r"), {"r": region})
            c.execute(text("DELETE FROM supervision_counter WHERE region_code = :r"), {"r": region})

    cleanup()
    threads = [threading.Thread(target=worker, args=(name,)) for name in issued]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
        everything = issued["a"] + issued["b"]
        assert len(everything) == rounds * 7 and len(set(everything)) == len(everything)
        for kind, total in (("P", rounds * 4), ("G", rounds * 3)):
            serials = sorted(parse(n).serial for n in everything if parse(n).kind == kind)
            assert serials == list(range(1, total + 1))
        with engine.connect() as c:
            assert c.execute(text("SELECT count(*) FROM supervision_number WHERE region_code = :r"),
                             {"r": region}).scalar() == rounds * 7
    finally:
        cleanup()


# --- trace -----------------------------------------------------------------------------------

def _insert(conn: Connection, table: str, **values) -> int:
    columns = ", ".join(values)
    params = ", ".join(f":{k}" for k in values)
    return conn.execute(text(f"INSERT INTO {table} ({columns}, geom) "
                             f"VALUES ({params}, ST_GeomFromText(:wkt, 4490)) RETURNING id"),
                        {**values, "wkt": SQUARE}).scalar_one()


def _approval_chain(conn: Connection, number: str, tag: str) -> dict[str, int]:
    ids = {"approval": _insert(conn, "approval", supervision_no=number, document_no=f"吉政土〔2026〕{tag}号",
                               kind="conversion_expropriation", authority="province",
                               approved_on=date(2026, 3, 1), county_code="220104")}
    ids["supply"] = _insert(conn, "supply", supervision_no=number, contract_no=f"2201042026B{tag}",
                            approval_id=ids["approval"], method="listing", land_use="0601",
                            signed_on=date(2026, 5, 10), county_code="220104")
    ids["development_report"] = _insert(conn, "development_report", supervision_no=number,
                                        supply_id=ids["supply"], reported_on=date(2026, 9, 1),
                                        status="started", county_code="220104")
    ids["enforcement_case"] = _insert(conn, "enforcement_case", supervision_no=number, case_no=f"吉长朝土罚{tag}",
                                      source="satellite", violation_type="beyond_extent", status="filed",
                                      filed_on=date(2026, 10, 1), county_code="220104")
    return ids


def test_trace_returns_exactly_the_records_carrying_or_balancing_the_number(conn):
    assert carrying_layers() == ["approval", "supply", "development_report", "consolidation_project",
                                 "enforcement_case", "mining_right"]
    number, other = issue_many(conn, [(R1, 2026, "P"), (R1, 2026, "P")])
    project_no = issue(conn, R1, 2025, "B")  # a project carries its own number and balances ours
    ids = _approval_chain(conn, number, "1")
    _approval_chain(conn, other, "2")         # a second chain that must not leak in
    project = _insert(conn, "consolidation_project", supervision_no=project_no, project_no="TZ-2025-001",
                      name="朝阳区补充耕地项目", county_code="220104")
    idle = _insert(conn, "consolidation_project", supervision_no=issue(conn, R1, 2025, "B"),
                   project_no="TZ-2025-002", name="未挂钩项目", county_code="220104")
    conn.execute(text("INSERT INTO farmland_balance (project_id, supervision_no, area_m2) VALUES "
                      "(:p, :n, 1234.5), (:idle, :other, 99.0)"),
                 {"p": project, "n": number, "idle": idle, "other": other})

    chain = trace(conn, number)
    assert chain == {
        "approval": [{"id": ids["approval"], "label": "吉政土〔2026〕1号"}],
        "supply": [{"id": ids["supply"], "label": "2201042026B1"}],
        "development_report": [{"id": ids["development_report"], "label": number}],
        "consolidation_project": [],
        "enforcement_case": [{"id": ids["enforcement_case"], "label": "吉长朝土罚1"}],
        "mining_right": [],
        "balanced_by": [{"id": project, "label": "TZ-2025-001", "area_m2": 1234.5}],
    }
    assert trace(conn, f" {number}\t") == chain  # pasted with blanks: same records

    project_chain = trace(conn, project_no)
    assert project_chain["consolidation_project"] == [{"id": project, "label": "TZ-2025-001"}]
    assert project_chain["balanced_by"] == [] and project_chain["approval"] == []

    assert all(records == [] for records in trace(conn, f"{R2}-2026-P-000001").values())
    with pytest.raises(InvalidSupervisionNumber):
        trace(conn, "not-a-number")
