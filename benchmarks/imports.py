"""The import section of benchmarks/run: one GeoPackage of the demo's land_use (>= 1,000,000
parcels) loaded three ways into fresh databases, alternating, a few rounds, timed from the outside:

- peer   `ogr2ogr -f PostgreSQL` (Debian gdal-bin; COPY, GiST index) + ANALYZE;
- floor  `psql \\copy` of a prepared EWKB text file into a bare table + GiST index + ANALYZE;
- OneMap `flask --app wsgi etl import land_use FILE`: reading, mapping, the whole validation
  (CRS, coordinates, geometry, codes, required, types, duplicates, county codes and location
  against admin_division), the load into the registry's table with its indexes and tile-change
  record, the batch record; in a freshly migrated database holding the province's divisions.

Writes a block into benchmarks/RESULTS.md (between its markers, below the kept line).

    python benchmarks/imports.py --base-url postgresql://…/onemap --gpkg var/bench/land_use_1m.gpkg \
        --divisions-from onemap_bench --rounds 3 --results benchmarks/RESULTS.md
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pyogrio
import pyogrio.raw
import shapely

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- import:begin -->", "<!-- import:end -->"
DATABASES = {"ogr2ogr": "bench_import_ogr", "floor": "bench_import_floor", "onemap": "bench_import_onemap"}
CHUNK = 200_000


def say(msg: str) -> None:
    print(f"bench import: {msg}", file=sys.stderr, flush=True)


class Cluster:
    def __init__(self, base_url: str):
        u = urlsplit(base_url)
        self.env = {**os.environ, "PGHOST": u.hostname, "PGPORT": str(u.port), "PGUSER": u.username,
                    "PGPASSWORD": u.password or "", "PGDATABASE": u.path.lstrip("/"),
                    "PGOPTIONS": "-c client_min_messages=warning"}
        self.base = base_url

    def url(self, db: str) -> str:
        return self.base.rsplit("/", 1)[0] + "/" + db

    def psql(self, *args: str, db: str | None = None, stdin=None, capture=False) -> str:
        cmd = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", *(["-d", db] if db else []), *args]
        out = subprocess.run(cmd, env=self.env, check=True, stdin=stdin, text=True,
                             stdout=subprocess.PIPE if capture else subprocess.DEVNULL)
        return out.stdout if capture else ""

    def fresh(self, db: str) -> None:
        self.psql("-c", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        self.psql("-c", f"CREATE DATABASE {db}")
        self.psql("-c", "CREATE EXTENSION postgis", db=db)


def floor_file(gpkg: Path, out: Path) -> tuple[list[str], list[str]]:
    """The GeoPackage as COPY text: attributes, then the geometry as hex EWKB (made once, untimed)."""
    info = pyogrio.read_info(gpkg)
    names = list(info["fields"])
    types = ["double precision" if t.startswith("float") else "bigint" if t.startswith("int") else
             "date" if t.startswith("datetime64[D]") else "text" for t in info["dtypes"]]
    if out.exists() and out.stat().st_mtime > gpkg.stat().st_mtime:
        return names, types
    say(f"writing the \\copy file {out.name} ({info['features']:,d} rows, once)")
    tmp = out.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for start in range(0, info["features"], CHUNK):
            _meta, _fids, wkb, data = pyogrio.raw.read(gpkg, skip_features=start, max_features=CHUNK)[:4]
            geoms = shapely.set_srid(shapely.from_wkb(wkb), 4490)
            cols = [_cells(v) for v in data] + [shapely.to_wkb(geoms, hex=True, include_srid=True).tolist()]
            fh.write("".join("\t".join(row) + "\n" for row in zip(*cols)))
    tmp.rename(out)
    return names, types


def _cells(values: np.ndarray) -> list[str]:
    if values.dtype.kind == "M":
        return ["\\N" if v == "NaT" else v for v in np.datetime_as_string(values, unit="D").tolist()]
    if values.dtype.kind == "f":
        return ["\\N" if not np.isfinite(v) else repr(v) for v in values.tolist()]
    return ["\\N" if v is None else str(v).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
            for v in values.tolist()]


def run_ogr2ogr(cl: Cluster, gpkg: Path) -> float:
    db = DATABASES["ogr2ogr"]
    cl.fresh(db)
    started = time.perf_counter()
    subprocess.run(["ogr2ogr", "-f", "PostgreSQL", f"PG:dbname={db}", str(gpkg), "-nln", "land_use",
                    "-lco", "GEOMETRY_NAME=geom", "-lco", "SPATIAL_INDEX=GIST"],
                   env=cl.env, check=True, stderr=subprocess.DEVNULL)
    cl.psql("-c", "ANALYZE land_use", db=db)
    return time.perf_counter() - started


def run_floor(cl: Cluster, tsv: Path, names: list[str], types: list[str]) -> float:
    db = DATABASES["floor"]
    cl.fresh(db)
    columns = ", ".join(f"{n} {t}" for n, t in zip(names, types))
    started = time.perf_counter()
    cl.psql("-c", f"CREATE TABLE land_use ({columns}, geom geometry(MultiPolygon, 4490))",
            "-c", f"\\copy land_use FROM '{tsv}'",
            "-c", "CREATE INDEX ON land_use USING gist (geom)", "-c", "ANALYZE land_use", db=db)
    return time.perf_counter() - started


def run_onemap(cl: Cluster, gpkg: Path, divisions_from: str) -> float:
    db = DATABASES["onemap"]
    cl.fresh(db)
    env = {**cl.env, "DATABASE_URL": cl.url(db)}
    flask = [str(ROOT / ".venv/bin/flask"), "--app", "wsgi"]
    subprocess.run([*flask, "db", "upgrade"], env=env, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    divisions = subprocess.run(["psql", "-X", "-d", divisions_from, "-c", "\\copy admin_division TO STDOUT"],
                               env=cl.env, check=True, capture_output=True, text=True).stdout
    cl.psql("-c", "\\copy admin_division FROM STDIN", db=db, stdin=_stdin(divisions))
    started = time.perf_counter()
    subprocess.run([*flask, "etl", "import", "land_use", str(gpkg), "--user", "benchmark"], env=env, check=True,
                   cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def _stdin(text: str):
    import tempfile
    fh = tempfile.TemporaryFile("w+")
    fh.write(text)
    fh.seek(0)
    return fh


def count(cl: Cluster, db: str) -> int:
    return int(cl.psql("-Atc", "SELECT count(*) FROM land_use", db=db, capture=True))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--gpkg", type=Path, required=True)
    ap.add_argument("--divisions-from", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--label", default="")
    a = ap.parse_args()
    cl = Cluster(a.base_url)
    tsv = a.gpkg.with_suffix(".ewkb.tsv")
    names, types = floor_file(a.gpkg, tsv)
    runners = {"ogr2ogr": lambda: run_ogr2ogr(cl, a.gpkg), "floor": lambda: run_floor(cl, tsv, names, types),
               "onemap": lambda: run_onemap(cl, a.gpkg, a.divisions_from)}
    times: dict[str, list[float]] = {k: [] for k in runners}
    order = list(runners)
    for r in range(a.rounds):
        for name in order[r % 3:] + order[:r % 3]:          # alternate who goes first
            seconds = runners[name]()
            times[name].append(seconds)
            say(f"round {r + 1}: {name} {seconds:.2f} s")
    rows = {name: count(cl, db) for name, db in DATABASES.items()}
    for db in DATABASES.values():
        cl.psql("-c", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    write(a, times, rows)


def _version(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]
    except (OSError, IndexError):
        return "?"


def write(a, times: dict[str, list[float]], rows: dict[str, int]) -> None:
    med = {k: statistics.median(v) for k, v in times.items()}
    per_round = [o / p for o, p in zip(times["onemap"], times["ogr2ogr"])]
    ratio = med["onemap"] / med["ogr2ogr"]
    size = a.gpkg.stat().st_size
    lines = [
        BEGIN,
        "## Import (issue 6): 1,000,000-parcel GeoPackage into PostGIS, OneMap vs `ogr2ogr`",
        "",
        f"Generated by `benchmarks/run` (`BENCH_SUITES=import`) on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
        f"{(' — ' + a.label) if a.label else ''}; {platform.node()}, {os.cpu_count()} cores; load average at the end "
        f"of the rounds {' / '.join(f'{x:.2f}' for x in os.getloadavg())} (1 / 5 / 15 min). Absolute times move with "
        "whatever else the machine runs; the ratio of one run is what counts.",
        "",
        f"- File: `{a.gpkg.name}` ({size / 1e6:,.0f} MB), the demo's land_use exported by `etl export` "
        f"({rows['onemap']:,d} parcels, MultiPolygon, EPSG:4490, 10 attributes).",
        f"- Peer: {_version(['ogr2ogr', '--version'])} (Debian gdal-bin), `ogr2ogr -f PostgreSQL PG:… FILE -nln "
        "land_use -lco GEOMETRY_NAME=geom -lco SPATIAL_INDEX=GIST`, then `ANALYZE`, into a fresh database.",
        "- Floor: `psql \\copy` of the same rows as hex EWKB text (prepared once, untimed) into a bare table, "
        "`CREATE INDEX … USING gist`, `ANALYZE`.",
        "- OneMap: `flask --app wsgi etl import land_use FILE` (the whole command, Python start-up included) into a "
        "freshly migrated database holding the 70 divisions of admin_division: every validation of the layer runs "
        "(CRS against the coordinates, non-finite or out-of-range coordinates, geometry type/emptiness/validity with "
        "repair, required fields, numbers and dates, code lists, duplicates within the file, county codes, each "
        "parcel inside its county) in a worker thread while the rows, this being a first big load into the emptied "
        "table, are COPYed straight into `land_use` (binary, under reserved ids) and its 4 secondary indexes rebuilt "
        "and the table analysed; the tile-change record (the TRUNCATE's whole-world box; the insert trigger off), "
        "the batch and its id range; one transaction, taken back if a check fails.",
        f"- {a.rounds} rounds, the three loaders alternating (each round starts with the next one).",
        "",
        "| loader | rows | median s | rounds s | vs ogr2ogr |",
        "|---|---|---|---|---|",
    ]
    for name, label in (("floor", "psql \\copy EWKB + GiST + ANALYZE (floor)"), ("ogr2ogr", "ogr2ogr -f PostgreSQL + ANALYZE"),
                        ("onemap", "OneMap `etl import` (validation included)")):
        lines.append(f"| {label} | {rows[name]:,d} | {med[name]:.2f} | {', '.join(f'{t:.2f}' for t in times[name])} | "
                     f"{med[name] / med['ogr2ogr']:.2f} |")
    met = "met" if ratio <= 1.0 else "not met"
    lines += ["", f"**OneMap / ogr2ogr = {ratio:.2f}** (per round {min(per_round):.2f}–{max(per_round):.2f}); "
                  f"target ≤ 1.0: {met}.", END]
    block = "\n".join(lines) + "\n"
    text = a.results.read_text() if a.results.exists() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + "\n" + rest.split(END, 1)[1].lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    a.results.write_text(text)
    say(f"OneMap/ogr2ogr = {ratio:.2f}; wrote {a.results}")


if __name__ == "__main__":
    main()
