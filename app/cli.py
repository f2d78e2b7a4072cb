"""Command groups on Flask's own CLI: `flask --app wsgi <group> <command>`."""
from __future__ import annotations

import time

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from app.db import engine


def register_cli(app: Flask) -> None:
    app.cli.add_command(db_group)
    app.cli.add_command(demo_group)
    from app.ogc.cli import tokens_group
    app.cli.add_command(tokens_group)
    app.cli.add_command(tiles_group)
    from app.etl_cli import etl_group
    app.cli.add_command(etl_group)
    from app.users_cli import users_group
    app.cli.add_command(users_group)
    from app.compare_cli import compare_group
    app.cli.add_command(compare_group)


@click.group("db", help="Database schema (Alembic migrations derived from the layer registry).")
def db_group() -> None:
    pass


@db_group.command("upgrade", help="Apply all migrations.")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    from etl.schema import upgrade
    with engine().begin() as conn:
        upgrade(conn, revision)
    click.echo(f"schema at {revision}")


@click.group("demo", help="The deterministic demo province of Jilin.")
def demo_group() -> None:
    pass


@demo_group.command("load", help="Generate and load the demo province (replaces the layers' contents).")
@click.option("--scale", type=float, default=1.0, show_default=True,
              help="1 gives >=100,000 land-use parcels; 10 gives >=1,000,000.")
@click.option("--seed", type=int, default=2026, show_default=True)
@click.option("--if-empty", is_flag=True, help="Do nothing when land-use parcels are already loaded.")
def demo_load(scale: float, seed: int, if_empty: bool) -> None:
    from etl.demo import load_demo, province_loaded
    if if_empty and province_loaded(engine()):
        click.echo("demo: the database already holds a province; nothing to do")
        return
    started = time.perf_counter()
    summary = load_demo(engine(), data_dir=current_app.config["ONEMAP"].data_dir, scale=scale, seed=seed,
                        progress=click.echo)
    click.echo(f"demo: loaded in {time.perf_counter() - started:.1f} s")
    for layer, count in summary["counts"].items():
        click.echo(f"  {layer:24s} {count:>10,d}")
    click.echo(f"  manifest: {summary['manifest']}")


@click.group("tiles", cls=AppGroup, help="Tile services: imagery pyramids and MapProxy configuration, vector tile cache.")
def tiles_group() -> None:
    pass


@tiles_group.command("seed", help="Build each imagery epoch's COG and tile pyramid, and MapProxy's configuration.")
@click.option("--epoch", "only", multiple=True, help="Only these epochs, by tile layer name (default: every imagery_epoch row).")
@click.option("--if-missing", is_flag=True, help="Skip epochs whose COG and pyramid are newer than their GeoTIFF.")
def tiles_seed(only: tuple[str, ...], if_missing: bool) -> None:
    from tiles import imagery
    tile_dir = current_app.config["TILE_DIR"]
    with engine().connect() as conn:
        epochs = imagery.epochs(conn)
    unknown = set(only) - {e.layer for e in epochs}
    if unknown:
        raise click.UsageError(f"unknown imagery epoch(s): {', '.join(sorted(unknown))}")
    try:
        for epoch in epochs:
            data_dir = current_app.config["ONEMAP"].data_dir
            if only and epoch.layer not in only:
                continue
            if if_missing and imagery.is_seeded(epoch, data_dir, tile_dir):
                if not epoch.files(tile_dir)["xyz"].exists():     # seeded before the tile files were written
                    click.echo(f"tiles: {epoch.name} ({epoch.layer}): {imagery.export_xyz(epoch, tile_dir)} tile files")
                click.echo(f"tiles: {epoch.name} ({epoch.layer}): up to date")
                continue
            imagery.seed_epoch(epoch, data_dir, tile_dir, say=click.echo)
    except imagery.ImageryError as e:
        raise click.ClickException(str(e)) from None
    ready = [e for e in epochs if e.files(tile_dir)["gpkg"].exists()]
    for epoch in set(epochs) - set(ready):
        click.echo(f"tiles: {epoch.name} ({epoch.layer}): not seeded yet, left out of MapProxy")
    path = imagery.write_mapproxy_config(ready, tile_dir)
    click.echo(f"tiles: MapProxy configuration {path} ({len(ready)} epochs)")


@tiles_group.command("prune", help="Forget old changed boxes of the vector tile cache (a cache not caught up "
                                    "with them, e.g. of a server stopped since, is emptied when it next starts).")
@click.option("--older-than-days", type=float, default=7.0, show_default=True)
def tiles_prune(older_than_days: float) -> None:
    from app.tiles import tiles_service
    from tiles import changes
    with engine().begin() as conn:
        tiles_service().cache.catch_up(conn)     # this machine's cache first: it keeps its tiles
        pruned = changes.prune(conn, older_than_days)
    for layer, count in pruned.items():
        click.echo(f"tiles: {layer}: {count} changed boxes pruned")
    click.echo(f"tiles: pruned {sum(pruned.values())} changed boxes")


@tiles_group.command("nginx", help="Print an nginx server block that serves public vector tile hits and imagery "
                                   "XYZ tiles from files and proxies everything else to OneMap (the static front).")
@click.option("--listen", default="127.0.0.1:8080", show_default=True, help="nginx's listen address")
@click.option("--upstream", default=None, help="OneMap's address [default: 127.0.0.1:$PORT]")
def tiles_nginx(listen: str, upstream: str | None) -> None:
    from tiles.front import nginx_server
    upstream = upstream or f"127.0.0.1:{current_app.config['ONEMAP'].port}"
    click.echo(nginx_server(current_app.config["TILE_DIR"], listen, upstream), nl=False)
