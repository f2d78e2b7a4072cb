"""The tile section of benchmarks/run: tile lists, the static copies nginx serves, benchmarks/TILES.md.

    python benchmarks/tiles.py lists DIR                   # the request path lists (one file per case)
    python benchmarks/tiles.py fetch LIST BASE DEST [--token T] [--ext pbf]
                                                           # GET every path once (warms OneMap's cache),
                                                           # writes the bodies under DEST as static files
    python benchmarks/tiles.py report RAW OUT [--key value ...]

benchmarks/run drives the servers and wrk; this file only does what is easier in Python.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

LAYER = "land_use"
# Jilin city, the densest part of the demo province (the OGC bench's boxes are around it too).
CENTRE = (126.558, 43.849)
# Per zoom, the side of the square of distinct tiles around CENTRE, uncached: more tiles than a
# server renders in one round, so no tile is requested twice in a round (wrk's `distinct`).
UNCACHED_SIDE = {8: 3, 10: 12, 12: 48, 14: 64, 16: 64}
CACHED_ZOOM, CACHED_SIDE = 14, 10       # 100 cached vector tiles (internal land_use)
# 100 cached public tiles for the static front: a public layer whose tiles there weigh a few KB
PUBLIC_LAYER, PUBLIC_ZOOM = "admin_division", 10
RASTER_MAX = 100                        # cached imagery tiles at the pyramid's finest zoom
MS_QUERY = "/mapserv/?map=bench&mode=tile&tilemode=gmap&tile={x}+{y}+{z}&layers=land_use&map.imagetype=mvt"


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    return (int((lon + 180) / 360 * n),
            int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n))


def square(z: int, side: int, centre=CENTRE) -> list[tuple[int, int, int]]:
    """`side`² tiles around the centre, nearest first (so a short round still stays in the dense part)."""
    cx, cy = tile_of(*centre, z)
    lo = side // 2
    tiles = [(z, cx + dx, cy + dy) for dx in range(-lo, side - lo) for dy in range(-lo, side - lo)]
    return sorted(tiles, key=lambda t: (max(abs(t[1] - cx), abs(t[2] - cy)), t[1], t[2]))


def cmd_lists(out: Path) -> None:
    from sqlalchemy import create_engine
    from tiles import imagery

    out.mkdir(parents=True, exist_ok=True)
    for z, side in UNCACHED_SIDE.items():
        tiles = square(z, side)
        (out / f"om_z{z}.txt").write_text("".join(f"/tiles/internal/vector/{LAYER}/{z}/{x}/{y}.pbf\n" for z, x, y in tiles))
        (out / f"ms_z{z}.txt").write_text("".join(MS_QUERY.format(z=z, x=x, y=y) + "\n" for z, x, y in tiles))
    tiles = square(CACHED_ZOOM, CACHED_SIDE)
    (out / "om_vector.txt").write_text("".join(f"/tiles/internal/vector/{LAYER}/{z}/{x}/{y}.pbf\n" for z, x, y in tiles))
    (out / "static_vector.txt").write_text("".join(f"/vector/{LAYER}/{z}/{x}/{y}.pbf\n" for z, x, y in tiles))
    tiles = square(PUBLIC_ZOOM, CACHED_SIDE)
    (out / "om_public.txt").write_text("".join(f"/tiles/vector/{PUBLIC_LAYER}/{z}/{x}/{y}.pbf\n" for z, x, y in tiles))
    (out / "static_public.txt").write_text("".join(f"/public/{PUBLIC_LAYER}/{z}/{x}/{y}.pbf\n" for z, x, y in tiles))
    url = os.environ["DATABASE_URL"]
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1) if url.startswith("postgresql://") else url)
    with engine.connect() as conn:
        epoch = imagery.epochs(conn)[0]
    tile_dir = Path(os.environ["ONEMAP_TILE_DIR"])
    z = imagery.native_zoom(epoch, tile_dir)
    x0, y1 = tile_of(epoch.bounds[0], epoch.bounds[1], z)
    x1, y0 = tile_of(epoch.bounds[2], epoch.bounds[3], z)
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    inside = [(z, x, y) for x in range(x0 + 1, x1) for y in range(y0 + 1, y1)]   # whole tiles only
    inside.sort(key=lambda t: (max(abs(t[1] - cx), abs(t[2] - cy)), t[1], t[2]))
    inside = inside[:RASTER_MAX]
    (out / "om_raster.txt").write_text("".join(f"/tiles/tiles/{epoch.layer}/webmercator/{z}/{x}/{y}.png\n" for z, x, y in inside))
    (out / "static_raster.txt").write_text("".join(f"/imagery/{epoch.layer}/{z}/{x}/{y}.png\n" for z, x, y in inside))
    (out / "raster.json").write_text(json.dumps({"epoch": epoch.layer, "zoom": z, "tiles": len(inside)}))


def cmd_fetch(paths: Path, base: str, dest: Path, static_paths: Path, token: str | None) -> None:
    """GET each path (warming OneMap's cache), write the body at DEST/<the static list's path>."""
    sizes, hits = [], 0
    for path, static in zip(paths.read_text().split(), static_paths.read_text().split()):
        req = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"} if token else {})
        with urllib.request.urlopen(req, timeout=120) as r:
            body = r.read()
            hits += r.headers.get("X-Tile-Cache") == "hit"
        target = dest / static.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
        sizes.append(len(body))
    print(json.dumps({"tiles": len(sizes), "bytes_median": median(sizes), "bytes_min": min(sizes),
                      "bytes_max": max(sizes), "hits_while_fetching": hits}))


def rps(r):
    return r["requests"] / (r["duration_us"] / 1e6)


def cmd_report(raw: Path, out: Path, a: argparse.Namespace) -> None:
    rows = [json.loads(line) for line in raw.read_text().splitlines() if line.strip()]
    by: dict[tuple[str, str], list[dict]] = {}
    rows = [r for r in rows if r["scenario"] != "warmup"]
    for r in rows:
        by.setdefault((r["scenario"], r["server"]), []).append(r)

    def agg(scenario, server):
        rs = [r for r in by.get((scenario, server), []) if r["requests"]]   # a round with no reply has no percentiles
        if not rs:
            return None
        return {"rps": sum(r["requests"] for r in rs) / (sum(r["duration_us"] for r in rs) / 1e6),
                "p50": median(r["p50_us"] for r in rs) / 1000, "p95": median(r["p95_us"] for r in rs) / 1000,
                "per_round": [rps(r) for r in rs], "requests": sum(r["requests"] for r in rs),
                "hits": sum(r.get("hits", 0) for r in rs), "errors": sum(r["errors"] for r in rs),
                "non2xx": sum(r["non2xx"] for r in rs), "distinct": rs[0].get("distinct", 0),
                "max_round": max(r["requests"] for r in rs), "bytes": sum(r["bytes"] for r in rs)}

    def ratio(a_, b_):
        if not a_ or not b_ or not b_["rps"] or a_["errors"] or b_["errors"]:
            return "—", ""
        per = [x / y for x, y in zip(a_["per_round"], b_["per_round"]) if y]
        return f"**{a_['rps'] / b_['rps']:.2f}**", f"{min(per):.2f}–{max(per):.2f}" if per else ""

    fmt = lambda v: "—" if v is None else (f"{v:,.0f}" if v >= 100 else f"{v:.1f}")   # noqa: E731
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    sizes = json.loads(a.sizes) if a.sizes else {}
    raster = json.loads(a.raster) if a.raster else {}
    lines = [
        "# Tiles on 1,000,000 parcels: OneMap against MapServer MVT and nginx static files",
        "",
        f"Generated by `benchmarks/run` (its tile section, `benchmarks/tiles.py`, `benchmarks/tiles.lua`) on {now}"
        f"{(' — ' + a.label) if a.label else ''}. Issue 4's benchmark; the OGC API figures are in RESULTS.md.",
        "",
        f"- Machine: {platform.node()}, {os.cpu_count()} cores. **The machine has 2 shared cores**: wrk, "
        "PostgreSQL, the server measured and possibly another engineer's work share them, so absolute figures "
        "are noisy; the ratios measured in one run, rounds alternating between the servers, are what counts.",
        f"- Data: `land_use` of `onemap_bench` ({int(a.parcels):,} parcels, SRID 4490, GiST); imagery epoch "
        f"`{raster.get('epoch', '?')}` seeded with `flask --app wsgi tiles seed --if-missing` "
        "(ONEMAP_DATA_DIR=var/bench/data, ONEMAP_TILE_DIR=var/bench/tiles).",
        f"- OneMap: `gunicorn --workers 2` "
        f"({'sync' if int(a.om_threads or 1) <= 1 else f'gthread, {a.om_threads} threads each, as bin/serve runs it'}), "
        "`/tiles/internal/vector/land_use/{z}/{x}/{y}.pbf` with "
        "`Authorization: Bearer` (a department token created for the run and revoked after it), "
        f"`/tiles/vector/{PUBLIC_LAYER}/{{z}}/{{x}}/{{y}}.pbf` (public) and MapProxy at "
        "`/tiles/tiles/{epoch}/webmercator/{z}/{x}/{y}.png`; tile cache under var/bench/tiles (not the "
        "development var/tiles).",
        "- MapServer 8: the OGC bench's mapfile, `mapserv` FastCGI ×2 behind nginx, "
        "`/mapserv/?map=bench&mode=tile&tilemode=gmap&tile=x+y+z&layers=land_use&map.imagetype=mvt` "
        "(all attributes at every zoom, no simplification; OneMap sends only label + category below z12 "
        "and simplifies to half a pixel).",
        "- nginx static: nginx-light (1 worker, `sendfile on`, `open_file_cache`) serving the very bytes "
        "OneMap returned, written to var/bench/run/static/.",
        f"- Load: wrk, 127.0.0.1 only, the request paths cycled by `benchmarks/tiles.lua` (distinct paths per "
        f"thread); {a.rounds} rounds of {a.round} s per server and case, alternating servers, after a "
        f"{a.warmup} s warm-up; uncached rounds of {a.uround} s.",
        "",
        "## 1. Uncached vector tiles: OneMap vs MapServer MVT",
        "",
        f"Tiles: a square of distinct tiles around Jilin city per zoom (nearest first). OneMap's cache of "
        f"the layer is deleted before every OneMap round (and after the warm-up), and a round never reaches "
        f"the end of the list, so every OneMap response is a render (`hits` counts `X-Tile-Cache: hit` "
        f"responses: it must be 0). Latency p50/p95: wrk with 1 connection (one request at a time: the time "
        f"to render a tile); throughput: wrk `-t2 -c16`.",
        "",
        "| zoom | distinct tiles | MapServer p50 ms | p95 ms | OneMap p50 ms | p95 ms | MapServer req/s (c16) "
        "| OneMap req/s (c16) | OneMap/MapServer | per round | OneMap cache hits |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for z in (8, 10, 12, 14, 16):
        ms_l, om_l = agg(f"z{z} latency", "MapServer"), agg(f"z{z} latency", "OneMap")
        ms_t, om_t = agg(f"z{z} throughput", "MapServer"), agg(f"z{z} throughput", "OneMap")
        if ms_l is None:
            continue
        if om_l is None and z < 10:
            lines.append(f"| {z} | {ms_l['distinct']} | {fmt(ms_l and ms_l['p50'])} | {fmt(ms_l and ms_l['p95'])} "
                         f"| not served (land_use's style has min_zoom 10: 404) | | — (a tile takes seconds: latency only) | — | — | | |")
            continue
        r, per = ratio(om_t, ms_t)
        hits = (om_t["hits"] + (om_l["hits"] if om_l else 0))
        lines.append(f"| {z} | {ms_t['distinct']} | {fmt(ms_l and ms_l['p50'])} | {fmt(ms_l and ms_l['p95'])} "
                     f"| {fmt(om_l and om_l['p50'])} | {fmt(om_l and om_l['p95'])} | {fmt(ms_t['rps'])} "
                     f"| {fmt(om_t['rps'])} | {r} | {per} | {hits} |")
    lines += ["", "## 2. Cached tiles: OneMap against a bare Python file server and nginx, serving the same files", "",
              "32 connections (`wrk -t2 -c32`), the same 100 tiles per case. **python** = the floor peer: "
              "`benchmarks/fileserver.py`, a bare WSGI app that reads the file and returns it, gunicorn 2 sync "
              "workers like OneMap; **nginx** = the limit (nginx-light, 1 worker, sendfile, open_file_cache); "
              "**front** = OneMap's own static front, the server block `flask --app wsgi tiles nginx` generates "
              "(public vector tiles from the cache files, imagery from the tile files `tiles seed` writes, both "
              "via `try_files`, misses to OneMap), in the same nginx. OneMap's "
              "vector caches were warmed by one GET of each tile (every request measured must be a hit: "
              "`X-Tile-Cache`); imagery comes from MapProxy reading the seeded GeoPackage pyramid.", "",
              "| case | tiles | size (median) | nginx req/s | python req/s | OneMap req/s | OneMap p50 / p95 ms "
              "| **OneMap/python** (target ≥ 0.8) | per round | OneMap/nginx | front req/s | **front/nginx** "
              "(target ≥ 0.5) | per round | OneMap hits |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for case, title in (("cached vector", f"internal vector z{CACHED_ZOOM} (land_use, token)"),
                        ("cached public", f"public vector z{PUBLIC_ZOOM} ({PUBLIC_LAYER})"),
                        ("cached raster", f"imagery z{raster.get('zoom', '?')} PNG (MapProxy)")):
        om, py, ng, fr = (agg(case, s_) for s_ in ("OneMap", "python", "nginx", "front"))
        if not om or not ng:
            continue
        r_py, per_py = ratio(om, py)
        r_ng, _ = ratio(om, ng)
        r_fr, per_fr = ratio(fr, ng) if fr else ("—", "")
        size = sizes.get(case.split()[1], {}).get("bytes_median") or 0
        hits = f"{om['hits']} / {om['requests']}" if case != "cached raster" else "n/a"
        lines.append(f"| {title} | {om['distinct']} | {size / 1024:.1f} KB | {fmt(ng['rps'])} "
                     f"| {fmt(py and py['rps'])} | {fmt(om['rps'])} | {fmt(om['p50'])} / {fmt(om['p95'])} "
                     f"| {r_py} | {per_py} | {r_ng} | {fmt(fr and fr['rps'])} | {r_fr} | {per_fr} | {hits} |")
    errors = [f"{r['server']} {r['scenario']} round {r['round']}: {r['errors']} errors ({r['non2xx']} non-2xx)"
              for r in rows if r["errors"] and r["scenario"] != "warmup"]
    repeats = [f"{r['server']} {r['scenario']} round {r['round']}" for r in rows
               if r.get("distinct") and r["requests"] > r["distinct"] and "latency" not in r["scenario"]
               and "throughput" in r["scenario"]]
    lines += ["", "req/s = all requests of the rounds / their total time; p50/p95 = the median over the rounds of "
              "each round's percentile; per round = the lowest and highest ratio of paired rounds.", "",
              "Errors: " + ("; ".join(errors) if errors else "none") + ".",
              "Uncached rounds that went past the end of their tile list (repeats, MapServer renders them again, "
              "OneMap could hit its cache): " + (", ".join(repeats) if repeats else "none") + ".", "",
              "Raw figures: `var/bench/run/tiles.jsonl` (not in git).", ""]
    out.write_text("\n".join(lines) + "\n")


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("lists"); s.add_argument("out", type=Path)
    s = sub.add_parser("fetch")
    for n in ("paths", "base", "dest", "static_paths"):
        s.add_argument(n)
    s.add_argument("--token")
    s = sub.add_parser("report"); s.add_argument("raw", type=Path); s.add_argument("out", type=Path)
    for n in ("parcels", "rounds", "round", "uround", "warmup", "label", "sizes", "raster", "om_threads"):
        s.add_argument(f"--{n}", default="")
    a = p.parse_args()
    if a.cmd == "lists":
        cmd_lists(a.out)
    elif a.cmd == "fetch":
        cmd_fetch(Path(a.paths), a.base, Path(a.dest), Path(a.static_paths), a.token)
    else:
        cmd_report(a.raw, a.out, a)


if __name__ == "__main__":
    main()
