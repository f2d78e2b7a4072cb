"""Document, contract, patch, case and licence numbers, and the unified supervision numbers.

Numbers follow the usual shapes of the Chinese systems (批准文号 吉政土批〔2025〕12号,
电子监管号-like contract numbers, 采矿许可证号 C…/勘查许可证号 T…) and are assigned in a fixed
order (by date, then by generation order) so a load is reproducible.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime, time, timedelta, timezone

from sqlalchemy import Connection, text

from etl.demo.records import DemoRecords
from services.supervision import issue_many

CST = timezone(timedelta(hours=8))


def _serials(items, key, group):
    """Yield (item, serial) with serials per group, in `key` order (stable on ties)."""
    counters: dict = defaultdict(int)
    for _, item in sorted(enumerate(items), key=lambda pair: (key(pair[1]), pair[0])):
        g = group(item)
        counters[g] += 1
        yield item, counters[g]


def assign_numbers(r: DemoRecords, county_names: dict[str, str]) -> None:
    for a, k in _serials(r.approvals, lambda a: (a.approved_on, a.county), lambda a: (a.authority, a.approved_on.year)):
        y = a.approved_on.year
        if a.authority == "state_council":
            a.document_no = f"{'国土资函' if y < 2019 else '自然资函'}〔{y}〕{k}号"
        else:
            a.document_no = f"吉政土批〔{y}〕{k}号"
    for a, k in _serials(r.approvals, lambda a: (a.approved_on, a.county), lambda a: (a.county, a.approved_on.year)):
        a.batch_name = f"{county_names[a.county]}{a.approved_on.year}年度第{k}批次城镇建设用地"
    for s, k in _serials(r.supplies, lambda s: (s.signed_on, s.county),
                         lambda s: (s.county, s.signed_on.year, s.method == "allocation")):
        s.contract_no = f"{s.county}{s.signed_on.year}{'A' if s.method == 'allocation' else 'B'}{k:05d}"
    counters: dict = defaultdict(int)
    for p in r.patches:
        counters[p.county] += 1
        p.patch_no = f"{p.county}2026{counters[p.county]:05d}"
    for c, k in _serials(r.cases, lambda c: (c.filed_on, c.county), lambda c: (c.county, c.filed_on.year)):
        c.case_no = f"{c.county}{c.filed_on.year}AJ{k:04d}"
    for lead, k in _serials(r.leads, lambda x: (x.found_on, x.county), lambda x: (x.county, x.found_on.year)):
        lead.lead_no = f"XS{lead.county}{lead.found_on.year}{k:04d}"
    for p, k in _serials(r.projects, lambda p: (p.accepted_on, p.county), lambda p: (p.county, p.accepted_on.year)):
        p.project_no = f"{p.county}{p.accepted_on.year}BC{k:03d}"
    for m, k in _serials(r.rights, lambda m: (m.valid_from, m.county), lambda m: m.right_type):
        ym = f"{m.valid_from.year}{m.valid_from.month:02d}"
        m.licence_no = f"C{m.county}{ym}{k:07d}" if m.right_type == "mining" else f"T{m.county}{ym}{k:06d}"


def issue_supervision_numbers(conn: Connection, r: DemoRecords) -> None:
    """Issue the numbers that open chains (P approvals, G supplies with no approval, B projects,
    K mining rights, C cases on no record), then let supplies and cases carry theirs. Each
    number's issued_at is set to its record's registration date, so the load is reproducible."""
    openers = ([(a, a.county, a.approved_on, "P", f"建设用地审批 {a.document_no}") for a in r.approvals]
               + [(s, s.county, s.signed_on, "G", f"土地供应 {s.contract_no}") for s in r.supplies if s.approval is None]
               + [(p, p.county, p.accepted_on, "B", f"补充耕地项目 {p.project_no}") for p in r.projects]
               + [(m, m.county, m.valid_from, "K", f"矿业权 {m.licence_no}") for m in r.rights]
               + [(c, c.county, c.filed_on, "C", f"执法案件 {c.case_no}") for c in r.cases if c.carries is None])
    numbers = issue_many(conn, [(county, day.year, kind) for _, county, day, kind, _ in openers],
                         subjects=[subject for *_, subject in openers])
    for (record, *_), number in zip(openers, numbers):
        record.supervision_no = number
    for s in r.supplies:
        if s.approval is not None:
            s.supervision_no = s.approval.supervision_no
    for c in r.cases:
        if c.carries is not None:
            c.supervision_no = c.carries.supervision_no
    conn.execute(text("""
        UPDATE supervision_number n SET issued_at = v.at
        FROM unnest(CAST(:numbers AS text[]), CAST(:ats AS timestamptz[])) AS v(number, at)
        WHERE n.number = v.number"""),
        {"numbers": numbers, "ats": [datetime.combine(day, time(9, 0), tzinfo=CST) for _, _, day, _, _ in openers]})



