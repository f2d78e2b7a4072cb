"""`flask --app wsgi compare …`: run the spatial comparison (比对核查) of a batch, list runs, report."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask.cli import AppGroup
from sqlalchemy import text

from app.db import engine


@click.group("compare", cls=AppGroup, help="Spatial comparison (比对核查) of change-patch batches.")
def compare_group() -> None:
    pass


@compare_group.command("run", help="Compare every change patch of BATCH; resumes an interrupted run of it.")
@click.option("--batch", required=True, help="The monitoring batch (change_patch.batch).")
@click.option("--restart", is_flag=True, help="Start a new run even if an earlier run of the batch was interrupted.")
@click.option("--sliver-m2", type=float, default=1.0, show_default=True,
              help="Overlaps below this area count as none.")
@click.option("--chunk-size", type=int, default=2000, show_default=True, help="Patches per transaction.")
@click.option("--workers", type=int, default=2, show_default=True,
              help="Chunks (dask: county partitions) compared at once, each on its own connection.")
@click.option("--engine", "engine_name", type=click.Choice(["local", "dask"]), default="local", show_default=True,
              help="local: threads in this process; dask: one task per county on a Dask distributed LocalCluster.")
@click.option("--user", help="Who runs it (default: the login name).")
def compare_run(batch: str, restart: bool, sliver_m2: float, chunk_size: int, workers: int, engine_name: str,
                user: str | None) -> None:
    from services.comparison import ComparisonError, Parameters, get_run, run_comparison, where_it_stopped
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=total, label=f"comparing {batch}", show_pos=True, file=sys.stderr)
            bar.__enter__()
        bar.update(done - bar.pos)

    try:
        params = Parameters(sliver_m2=sliver_m2, chunk_size=chunk_size, workers=workers, engine=engine_name)
        result = run_comparison(engine(), batch, params, requested_by=user, resume=not restart, progress=progress)
    except ComparisonError as exc:
        raise click.ClickException(str(exc)) from None
    except BaseException:
        if bar is not None:
            bar.__exit__(None, None, None)
        with engine().connect() as conn:
            last = conn.execute(text("SELECT max(id) FROM comparison_run WHERE batch = :b"), {"b": batch}).scalar()
            if last is not None:
                click.echo(where_it_stopped(get_run(conn, last)), err=True)
        raise
    if bar is not None:
        bar.__exit__(None, None, None)
    if result.resumed_from:
        click.echo(f"run {result.run_id}: resumed after its last committed chunk (ending with patch id "
                   f"{result.resumed_from})")
    c = result.counts
    click.echo(f"run {result.run_id}: {c['patches']:,} patches compared, {c['violations']:,} violations; "
               f"leads {c.get('leads_created', 0)} created, {c.get('leads_updated', 0)} updated; "
               f"{result.timings.get('total_s', 0):.2f} s")
    for county, part in sorted(result.timings.get("partitions", {}).items()):
        click.echo(f"  county {county}: {part['patches']:,} patches in {part['total_s']:.2f} s on {part['worker']}")
    for category, n in c["categories"].items():
        if n:
            click.echo(f"  {category:24s} {n:>8,d}")


@compare_group.command("runs", help="List the comparison runs (latest first) and where unfinished ones stopped.")
@click.option("--limit", type=int, default=20, show_default=True)
def compare_runs(limit: int) -> None:
    from services.comparison import STATUS_FINISHED, get_run, where_it_stopped
    with engine().connect() as conn:
        ids = conn.execute(text("SELECT id FROM comparison_run ORDER BY id DESC LIMIT :n"), {"n": limit}).scalars()
        for run_id in list(ids):
            run = get_run(conn, run_id)
            line = (f"{run['id']:>5}  {run['status']:11s} {run['batch']}  {run['patches_done']:,}/"
                    f"{run['patches_total']:,}  started {run['started_at']:%Y-%m-%d %H:%M:%S}")
            click.echo(line if run["status"] == STATUS_FINISHED else f"{line}\n       {where_it_stopped(run)}")


@compare_group.command("report", help="The report of BATCH by city and county, as JSON, CSV or XLSX.")
@click.option("--batch", required=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="File to write (.json, .csv, .xlsx); default: JSON on standard output.")
def compare_report(batch: str, output: Path | None) -> None:
    from services.comparison import ComparisonError
    from services.comparison_report import report, to_csv, to_xlsx
    try:
        with engine().connect() as conn:
            rep = report(conn, batch)
    except ComparisonError as exc:
        raise click.ClickException(str(exc)) from None
    if output is None:
        click.echo(json.dumps(rep, ensure_ascii=False, indent=2))
        return
    writers = {".json": lambda r: json.dumps(r, ensure_ascii=False, indent=2).encode("utf-8"), ".csv": to_csv,
               ".xlsx": to_xlsx}
    if output.suffix.lower() not in writers:
        raise click.BadParameter(f"{output.name}: use .json, .csv or .xlsx", param_hint="--output")
    output.write_bytes(writers[output.suffix.lower()](rep))
    click.echo(f"{output}: {len(rep['rows'])} rows")


@compare_group.command("approvals", help="Approval compliance check (建设用地审批合规性核查): red/yellow/green with "
                                          "reasons, stored as the approvals' latest check.")
@click.option("--document-no", "document_nos", multiple=True, help="Only these approvals (批准文号); default all.")
@click.option("--county", help="Only the approvals of this county (GB/T 2260 code).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
@click.option("--user", help="Who checks (default: the login name).")
def compare_approvals(document_nos: tuple[str, ...], county: str | None, as_json: bool, user: str | None) -> None:
    import getpass

    from services.compliance import check_and_record, colour_counts
    with engine().begin() as conn:
        ids = None
        if document_nos:
            found = dict(conn.execute(text("SELECT document_no, id FROM approval WHERE document_no = ANY(:d)"),
                                      {"d": list(document_nos)}).all())
            missing = sorted(set(document_nos) - set(found))
            if missing:
                raise click.BadParameter(f"no approval {', '.join(missing)}", param_hint="--document-no")
            ids = sorted(found.values())
        checked = check_and_record(conn, ids=ids, county=county, triggered_by="on_demand",
                                   requested_by=user or getpass.getuser())
    if as_json:
        click.echo(json.dumps(checked, ensure_ascii=False, indent=2, default=str))
        return
    for a in checked:
        click.echo(f"{a['colour']:6s} {a['document_no']}  {a['supervision_no']}")
        for r in a["reasons"]:
            click.echo(f"       {r['colour']:6s} {r['check']:14s} {r['zh']} / {r['en']}")
    counts = colour_counts(checked)
    click.echo(f"{len(checked)} approvals: {counts['red']} red, {counts['yellow']} yellow, {counts['green']} green"
               + (f" (stored as checked on demand by {checked[0]['requested_by']})" if checked else ""))


@compare_group.command("quota", help="Set a county's annual construction-land quota (年度计划指标), in m².")
@click.option("--county", required=True)
@click.option("--year", type=int, required=True)
@click.option("--m2", "quota_m2", type=float, required=True)
def compare_quota(county: str, year: int, quota_m2: float) -> None:
    if quota_m2 < 0:
        raise click.BadParameter("must be >= 0", param_hint="--m2")
    with engine().begin() as conn:
        if not conn.execute(text("SELECT 1 FROM admin_division WHERE code = :c AND level = 'county'"),
                            {"c": county}).first():
            raise click.BadParameter(f"{county} is not a county of admin_division", param_hint="--county")
        conn.execute(text("INSERT INTO construction_quota (county_code, year, quota_m2) VALUES (:c, :y, :q) "
                          "ON CONFLICT (county_code, year) DO UPDATE SET quota_m2 = EXCLUDED.quota_m2"),
                     {"c": county, "y": year, "q": quota_m2})
    click.echo(f"quota of {county} for {year}: {quota_m2:,.2f} m²")
