"""The demo manifest: what was loaded and the expected answers of every planted case.

Written to `data_dir/demo/manifest.json` with sorted keys and no timestamps, so the same
(scale, seed) writes the same bytes. Areas are on the CGCS2000 (GRS80) ellipsoid, computed
from the construction geometry with pyproj.Geod — independently of PostGIS.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from etl.demo.cases import REFERENCE_DATE, Planter
from etl.demo.load import Loader
from etl.demo.mining import RATES
from etl.demo.records import Approval, DemoRecords, MiningRight, Supply

MANIFEST = Path("demo") / "manifest.json"


def _ref(value):
    if isinstance(value, Approval):
        return {"document_no": value.document_no, "supervision_no": value.supervision_no}
    if isinstance(value, Supply):
        return {"contract_no": value.contract_no, "supervision_no": value.supervision_no}
    if isinstance(value, MiningRight):
        return {"licence_no": value.licence_no, "supervision_no": value.supervision_no,
                "valid_to": value.valid_to.isoformat()}
    return value


def _report(d) -> dict:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in
            dict(reported_on=d.reported_on, status=d.status, actual_start=d.actual_start,
                 developed_share=d.developed_share, invested_share=d.invested_share,
                 halted_since=d.halted_since).items()}


def build_manifest(loader: Loader, r: DemoRecords, planter: Planter, *, scale: float, seed: int, counts: dict,
                   epochs: list[dict], report_ids: dict[str, list[int]], footprint) -> dict:
    patches = []
    for p in r.patches:
        if p.tag is None:
            continue
        entry = {k: _ref(v) for k, v in p.expected.items()}
        entry.update(patch_no=p.patch_no, county_code=p.county, class_after=p.class_after,
                     temporary=p.temporary, false_change=p.false_change)
        patches.append(entry)

    def chain(opened_by: str, number: str, approval: Approval | None, supplies: list[Supply], extra=()) -> dict:
        cases = [c.case_no for c in r.cases if c.carries is not None and c.supervision_no == number]
        return {
            "supervision_no": number, "opened_by": opened_by,
            "approval": approval.document_no if approval else None,
            "supplies": sorted(s.contract_no for s in supplies),
            "development_reports": sorted(i for s in supplies for i in report_ids.get(s.contract_no, [])),
            "balancing_projects": sorted({b.project.project_no for b in r.balances if b.approval is approval})
            if approval else [],
            "cases": sorted(cases), **dict(extra)}

    chains = []
    for a in r.approvals:
        if a.tag is not None:
            chains.append(chain("approval", a.supervision_no, a, [s for s in r.supplies if s.approval is a]))
    for s in r.supplies:
        if s.approval is None:
            chains.append(chain("supply", s.supervision_no, None, [s]))
    for m in r.rights:
        if m.tag is not None:
            chains.append(chain("mining_right", m.supervision_no, None, [], {"licence_no": m.licence_no}))

    farmland = dict(loader.rows("SELECT document_no, farmland_m2 FROM approval"))
    underbalanced = [{"document_no": a.document_no, "supervision_no": a.supervision_no,
                      "farmland_m2": round(farmland[a.document_no], 3),
                      "balanced_m2": round(sum(b.area_m2 for b in r.balances if b.approval is a), 3),
                      "share": share} for a, share in r.underbalanced.items()]
    below = sorted(({"licence_no": m.right.licence_no, "year": m.year, "mining_recovery": m.mining_recovery,
                     "standard": RATES[m.right.mineral][3]} for m in r.mine_reports
                    if m.mining_recovery < RATES[m.right.mineral][3]), key=lambda d: (d["licence_no"], d["year"]))
    return {
        "generator": "etl.demo",
        "scale": scale,
        "seed": seed,
        "reference_date": REFERENCE_DATE.isoformat(),
        "counts": counts,
        "imagery": {"footprint": list(footprint.bounds), "crs": "EPSG:4490",
                    "epochs": [{"name": e["name"], "acquired_on": e["acquired_on"].isoformat(), "path": e["path"],
                                "resolution_m": e["resolution_m"], "sensor": e["sensor"]} for e in epochs]},
        "planted_patches": sorted(patches, key=lambda e: e["patch_no"]),
        "comparison_rules": {
            "construction": "patches of kind construction against approvals, supply, plan zones, the urban "
                            "development boundary and basic farmland",
            "mining": "patches of kind mining against mining-right boundaries only",
        },
        "idle_land": [{"contract_no": s.contract_no, "supervision_no": s.supervision_no, "colour": colour, "rule": rule,
                       "agreed_start": s.agreed_start.isoformat(),
                       "latest_report": _report(max((d for d in r.reports if d.supply is s),
                                                    key=lambda d: d.reported_on))}
                      for s, colour, rule in planter.idle],
        "red_agreement_supplies": [{"contract_no": s.contract_no, "supervision_no": s.supervision_no,
                                    "method": s.method, "land_use": s.land_use}
                                   for s in r.supplies if s.method == "agreement" and s.land_use[:2] in ("05", "07")],
        "supplies_without_approval": [{"contract_no": s.contract_no, "supervision_no": s.supervision_no}
                                      for s in r.supplies if s.approval is None],
        "underbalanced_approvals": underbalanced,
        "chains": chains,
        "disasters": [{"event_no": e.event_no, "kind": e.kind, **e.expected} for e in r.events],
        "mine_reports_below_standard": below,
    }


def write_manifest(data_dir: Path, manifest: dict) -> Path:
    """Write the manifest (with the imagery files' SHA-256) atomically; returns its path."""
    for epoch in manifest["imagery"]["epochs"]:
        epoch["sha256"] = hashlib.sha256((data_dir / epoch["path"]).read_bytes()).hexdigest()
    path = data_dir / MANIFEST
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, sort_keys=True, ensure_ascii=False, indent=2, default=str) + "\n",
                   encoding="utf-8")
    os.replace(tmp, path)
    return path
