"""`flask --app wsgi etl …`: import submissions, list and roll back batches, export layers."""
from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from app.db import engine


@click.group("etl", cls=AppGroup, help="Import the counties' submissions; export layers.")
def etl_group() -> None:
    pass


def _echo_report(report: list[dict], limit: int = 200) -> None:
    from etl.importer import format_entry
    for entry in report[:limit]:
        click.echo("  " + format_entry(entry), err=entry["severity"] == "error")
    if len(report) > limit:
        click.echo(f"  … {len(report) - limit} more entries (stored with the batch)")


def _echo_compliance(result) -> None:
    """An approval batch's compliance check: counts per colour, then the red and yellow approvals."""
    summary = result.compliance_summary()
    if summary is None:
        return
    c = summary["counts"]
    stored = "not stored: dry run" if result.status == "dry-run" else f"stored with batch {result.batch_id}"
    click.echo(f"compliance check (建设用地审批合规性核查, {stored}): {c['red']} red, {c['yellow']} yellow, "
               f"{c['green']} green")
    for a in summary["flagged"]:
        click.echo(f"  {a['colour']:6s} {a['document_no']}  {a['supervision_no']}")
        for r in a["reasons"]:
            if r["colour"] != "green":
                click.echo(f"         {r['colour']:6s} {r['check']:14s} {r['zh']} / {r['en']}")


@etl_group.command("import", help="Import FILE (.zip, .shp, .gpkg, .geojson, .csv, .xlsx, corner .txt) into LAYER.")
@click.argument("layer")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--county", help="The submitting county (GB/T 2260 code): fills county_code, checks locations, "
                                "gives the zone of unprefixed Gauss-Krüger eastings.")
@click.option("--crs", type=int, help="EPSG code of the file's coordinates (overrides .prj; checked against them).")
@click.option("--sheet", help="The .xlsx sheet to read (default: the only sheet with a geometry column).")
@click.option("--dry-run", is_flag=True, help="Validate and report; write nothing.")
@click.option("--user", help="Who imports (default: the login name).")
def etl_import(layer: str, file: Path, county: str | None, crs: int | None, sheet: str | None, dry_run: bool,
               user: str | None) -> None:
    from etl.importer import BatchRejected, ImportFailed, import_file
    from layers.registry import UnknownLayer
    try:
        with engine().begin() as conn:
            result = import_file(conn, layer, file, county=county, crs=crs, sheet=sheet, dry_run=dry_run, user=user,
                                 progress=lambda msg: click.echo(f"… {msg}", err=True))
    except BatchRejected as exc:
        _echo_report(exc.report)
        raise click.ClickException(str(exc)) from None
    except (ImportFailed, UnknownLayer) as exc:
        raise click.ClickException(str(exc)) from None
    _echo_report(result.report)
    _echo_compliance(result)
    if result.status == "unchanged":
        click.echo(f"{result.file_name}: already imported as batch {result.batch_id}; nothing changed")
    elif result.status == "dry-run":
        click.echo(f"{result.file_name}: {result.rows_read} rows valid for {layer} (dry run: nothing written)")
    else:
        click.echo(f"{result.file_name}: batch {result.batch_id}: {result.rows_inserted} rows into {layer}")


@etl_group.command("rollback", help="Undo import batch BATCH (its rows are deleted; the batch stays recorded).")
@click.argument("batch", type=int)
@click.option("--user", help="Who rolls back (default: the login name).")
def etl_rollback(batch: int, user: str | None) -> None:
    from etl.importer import ImportFailed, rollback_batch
    try:
        with engine().begin() as conn:
            deleted = rollback_batch(conn, batch, user=user)
    except ImportFailed as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"batch {batch}: rolled back, {deleted} rows deleted")


@etl_group.command("batches", help="List recent import batches.")
@click.option("--layer")
@click.option("--limit", type=int, default=50, show_default=True)
def etl_batches(layer: str | None, limit: int) -> None:
    from etl.importer import list_batches
    with engine().connect() as conn:
        for b in list_batches(conn, layer, limit):
            click.echo(f"{b['id']:>6} {b['status']:<11} {b['layer']:<20} {b['rows_inserted']:>8} rows  "
                       f"{b['imported_at']:%Y-%m-%d %H:%M} {b['imported_by']:<12} {b['file_name']}  "
                       f"sha256 {b['file_sha256'][:12]}")


@etl_group.command("export", help="Export LAYER (or a region of it) to FILE (.gpkg, .shp, .geojson).")
@click.argument("layer")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--county", help="Only this county's rows (county_code).")
@click.option("--bbox", help="Only rows meeting this lon/lat box: minlon,minlat,maxlon,maxlat.")
@click.option("--encoding", type=click.Choice(["UTF-8", "GBK"], case_sensitive=False), default="UTF-8",
              show_default=True, help="Shapefile text encoding (written to the .cpg).")
def etl_export(layer: str, file: Path, county: str | None, bbox: str | None, encoding: str) -> None:
    from etl.exporter import export_layer
    from etl.importer import ImportFailed
    from layers.registry import UnknownLayer
    box = None
    if bbox:
        try:
            box = tuple(float(v) for v in bbox.split(","))
            assert len(box) == 4
        except (ValueError, AssertionError):
            raise click.BadParameter("expected minlon,minlat,maxlon,maxlat", param_hint="--bbox") from None
    try:
        with engine().connect() as conn:
            n = export_layer(conn, layer, file, county=county, bbox=box, encoding=encoding.upper())
    except (ImportFailed, UnknownLayer) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{file}: {n} features of {layer}")


@etl_group.command("imagery-register", help="Register GeoTIFF FILE as a new imagery epoch.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="Epoch name (unique), e.g. changchun_2026.")
@click.option("--acquired-on", required=True, type=click.DateTime(["%Y-%m-%d"]), help="YYYY-MM-DD")
@click.option("--sensor")
def etl_imagery_register(file: Path, name: str, acquired_on, sensor: str | None) -> None:
    from etl.imagery import ImageryError, register_epoch
    try:
        with engine().begin() as conn:
            epoch_id = register_epoch(conn, file, name, acquired_on.date(), sensor=sensor)
    except ImageryError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{file.name}: imagery epoch {name!r} registered (id {epoch_id})")


@etl_group.command("changes", help="Derive change patches from two classified epochs BEFORE and AFTER "
                                   "(one band of GB/T 21010 codes as integers, same grid).")
@click.argument("before", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("after", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--batch", required=True, help="Monitoring batch (监测批次), e.g. 2026Q2.")
@click.option("--epoch-before", required=True)
@click.option("--epoch-after", required=True)
@click.option("--detected-on", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--min-pixels", type=int, default=1, show_default=True, help="Drop patches smaller than this.")
def etl_changes(before: Path, after: Path, batch: str, epoch_before: str, epoch_after: str, detected_on,
                min_pixels: int) -> None:
    from etl.imagery import ImageryError, derive_change_patches
    try:
        with engine().begin() as conn:
            s = derive_change_patches(conn, before, after, batch=batch, epoch_before=epoch_before,
                                      epoch_after=epoch_after, detected_on=detected_on.date(), min_pixels=min_pixels)
    except ImageryError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"batch {batch}: {s.patches} change patches, {s.area_m2 / 10_000:,.2f} ha"
               + (f"; {s.outside_counties} outside every county dropped" if s.outside_counties else ""))
