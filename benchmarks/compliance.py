"""The approval compliance check at registration: what it adds to an approval import, and the
set-based check against a per-approval loop, in one run on the same data.

The demo province (loaded at --scale into --url unless it holds one already; `benchmarks/run` passes
its scale-10 bench database) gives the approvals and
every reference layer. Its approvals are exported once to a GeoPackage, renamed (批准文号 prefixed
"B-", no 监管号 so the import issues new ones): each round imports them again as new approvals, in a
transaction rolled back afterwards, so every round starts from the same database. Rounds alternate:

- `import + check`  `import_file(conn, "approval", gpkg)`: the engine as it is (the check of the
  batch's approvals, one query, and its storage, inside the batch's transaction);
- `import only`     the same call with the engine's check replaced by a no-op (the import before
  the check was added): the peer;
- `check, set`      `check_approvals(conn, batch=…)` of the imported batch: one query;
- `check, loop`     `check_approvals(conn, ids=[i])` once per approval of the batch: the peer.

Writes benchmarks/COMPLIANCE.md.

    python benchmarks/compliance.py --url postgresql://…/onemap_bench --rounds 3
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pyogrio.raw  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402


KEPT = "<!-- kept: everything below this line survives a new run -->"


def say(msg: str) -> None:
    print(f"bench compliance: {msg}", file=sys.stderr, flush=True)


def prepare(engine, scale: float, workdir: Path) -> tuple[Path, int]:
    from etl.demo import load_demo
    from etl.exporter import export_layer
    from etl.schema import upgrade
    with engine.begin() as conn:
        upgrade(conn)
        have = conn.execute(text("SELECT count(*) FROM land_use")).scalar()
    if have == 0:
        say(f"loading the demo province at scale {scale}")
        load_demo(engine, data_dir=workdir / "demo", scale=scale, seed=2026, progress=say)
    exported = workdir / "approvals.gpkg"
    with engine.connect() as conn:
        n = export_layer(conn, "approval", exported)
    meta, fids, wkb, cols = pyogrio.raw.read(exported)[:4]
    names = list(meta["fields"])
    keep = [i for i, name in enumerate(names) if name not in ("supervision_no", "compliance", "id")]
    data = [cols[i] for i in keep]
    doc = [names[i] for i in keep].index("document_no")
    data[doc] = np.array(["B-" + d for d in data[doc]], dtype=object)
    renamed = workdir / "approvals_renamed.gpkg"
    pyogrio.raw.write(str(renamed), wkb, data, fields=[names[i] for i in keep], geometry_type="MultiPolygon",
                      crs="EPSG:4490", driver="GPKG")
    return renamed, n


def one_round(engine, gpkg: Path, with_check: bool) -> dict:
    import etl.importer.engine as eng
    from services.compliance import check_approvals
    real = eng.check_and_record
    timed = {}

    def timed_check(*args, **kwargs):
        started = time.perf_counter()
        out = real(*args, **kwargs)
        timed["check_s"] = time.perf_counter() - started
        return out

    eng.check_and_record = timed_check if with_check else (lambda *a, **k: [])
    try:
        with engine.connect() as conn:
            tx = conn.begin()
            try:
                started = time.perf_counter()
                result = eng.import_file(conn, "approval", gpkg, user="bench")
                out = {"import_s": time.perf_counter() - started, "rows": result.rows_inserted, **timed}
                if with_check:
                    out["colours"] = result.compliance_summary()["counts"]
                    started = time.perf_counter()
                    batch = check_approvals(conn, batch=result.batch_id)
                    out["set_s"] = time.perf_counter() - started
                    ids = [a["id"] for a in batch]
                    started = time.perf_counter()
                    loop = [check_approvals(conn, ids=[i])[0] for i in ids]
                    out["loop_s"] = time.perf_counter() - started
                    assert loop == batch, "the loop and the set-based check disagree"
                return out
            finally:
                tx.rollback()
    finally:
        eng.check_and_record = real


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "COMPLIANCE.md")
    args = ap.parse_args()
    url = args.url.replace("postgresql://", "postgresql+psycopg2://", 1)
    engine = create_engine(url)
    workdir = Path(tempfile.mkdtemp(prefix="bench-compliance-", dir=ROOT / "var"))
    gpkg, n = prepare(engine, args.scale, workdir)
    with engine.connect() as conn:
        parcels = conn.execute(text("SELECT count(*) FROM land_use")).scalar()
        farmland = conn.execute(text("SELECT count(*) FROM basic_farmland")).scalar()
        zones = conn.execute(text("SELECT count(*) FROM plan_zone")).scalar()
    say(f"{n} approvals exported; {args.rounds} rounds")
    with_check, without = [], []
    one_round(engine, gpkg, True)            # warm-up (caches), not counted
    for r in range(args.rounds):
        with_check.append(one_round(engine, gpkg, True))
        without.append(one_round(engine, gpkg, False))
        say(f"round {r + 1}: import+check {with_check[-1]['import_s']:.2f} s (check {with_check[-1]['check_s']:.2f} s),"
            f" import only {without[-1]['import_s']:.2f} s, set {with_check[-1]['set_s']:.3f} s,"
            f" loop {with_check[-1]['loop_s']:.2f} s")

    def med(rows, key):
        return statistics.median(r[key] for r in rows)

    def each(rows, key, digits=2):
        return ", ".join(f"{r[key]:.{digits}f}" for r in rows)

    ratio_import = [a["import_s"] / b["import_s"] for a, b in zip(with_check, without)]
    ratio_loop = [a["loop_s"] / a["set_s"] for a in with_check]
    load = os.getloadavg()
    colours = with_check[0]["colours"]
    lines = [
        "# Approval compliance check at registration (建设用地审批合规性核查)", "",
        f"Generated by `benchmarks/compliance.py` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.", "",
        f"- Machine: {platform.node()}, {os.cpu_count()} cores **shared** with other engineers' work "
        f"(load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}): absolute figures are noisy, "
        "the ratios of one run count.",
        f"- Data: the demo province in the database ({parcels:,d} parcels, {farmland:,d} basic-farmland "
        f"patches, {zones:,d} plan zones); its {n:,d} approvals exported to a GeoPackage and imported again as new "
        f"approvals (批准文号 prefixed, new 监管号) by `import_file`, each round in a transaction rolled back. "
        f"Colours of the batch: {colours['red']} red, {colours['yellow']} yellow, {colours['green']} green.",
        f"- {args.rounds} rounds after one warm-up, alternating the two imports.", "",
        "| measure | median s | rounds | ratio (per round) |", "|---|---|---|---|",
        f"| import + check (the engine) | {med(with_check, 'import_s'):.2f} | "
        f"{each(with_check, 'import_s')} | "
        f"**{statistics.median(ratio_import):.2f}** × import only ({min(ratio_import):.2f}–{max(ratio_import):.2f}) |",
        f"| import only (check a no-op: the peer) | {med(without, 'import_s'):.2f} | "
        f"{each(without, 'import_s')} | |",
        f"| of which the check and its storage | {med(with_check, 'check_s'):.2f} | "
        f"{each(with_check, 'check_s')} | |",
        f"| check of the batch, set-based (1 query) | {med(with_check, 'set_s'):.3f} | "
        f"{each(with_check, 'set_s', 3)} | |",
        f"| check of the batch, one query per approval (the peer) | {med(with_check, 'loop_s'):.2f} | "
        f"{each(with_check, 'loop_s')} | loop / set = "
        f"**{statistics.median(ratio_loop):.1f}** ({min(ratio_loop):.1f}–{max(ratio_loop):.1f}) |",
        "", "The loop's results are asserted equal to the set-based check's, approval by approval.", "",
        f"    python benchmarks/compliance.py --url postgresql://…/{url.rsplit('/', 1)[1]} --rounds {args.rounds}"
        "    # or: BENCH_SUITES=compliance make bench", "",
    ]
    old = args.results.read_text(encoding="utf-8") if args.results.exists() else ""
    kept = old[old.index(KEPT):] if KEPT in old else KEPT + "\n"
    args.results.write_text("\n".join(lines) + "\n" + kept, encoding="utf-8")
    for made in workdir.glob("approvals*.gpkg"):
        made.unlink()
    if not any(workdir.iterdir()):        # the demo was not loaded here: nothing of the run is kept
        workdir.rmdir()
    say(f"wrote {args.results}")


if __name__ == "__main__":
    main()
