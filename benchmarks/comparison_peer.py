"""The comparison's categorisation done with GeoPandas: the peer of benchmarks/comparison.py.

The same job as services.comparison on the same inputs — approvals and supply (dated before
detection), permanent basic farmland, the land-use classes, plan zones, the urban development
boundary, the ecological red line, counties and mining rights — with the rules of
docs/comparison.md (sliver 1 m², covered patches, unions where rows of a layer overlap, the
categories), written the way GeoPandas does an overlay: `geopandas.overlay(patches, layer,
how="intersection")` per layer, areas on the GRS80 ellipsoid (services.areas.areas_m2), the
figures per patch from the pieces with pandas. The zones and counties are read as OneMap's
`comparison_zone_piece` (the same polygons cut by ST_Subdivide, which OneMap keeps between
runs), so neither side pays for cutting them. Nothing is written back to the database.

`categorise(inputs)` returns one row per patch; `agree(ours, onemap)` says how far it is from
the results OneMap stored.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

from layers.codes import FARMLAND_CLASSES
from services.areas import areas_m2
from services.comparison import SEVERITY, VIOLATIONS

SLIVER = 1.0
RESTRICTED = ("030", "040")

QUERIES = {
    "patches": """SELECT id, patch_no, kind, detected_on, county_code,
                         (class_after = '1202' OR coalesce(temporary, false) OR coalesce(false_change, false)) AS other,
                         geom FROM change_patch WHERE batch = :b ORDER BY id""",
    "approval": "SELECT approved_on, geom FROM approval",
    "supply": "SELECT signed_on, geom FROM supply",
    "basic_farmland": "SELECT geom FROM basic_farmland",
    "land_use": "SELECT id AS parcel_id, class_code, geom FROM land_use",
    "zones": "SELECT kind, code, city, geom FROM comparison_zone_piece",
    "mining": "SELECT id AS rid, licence_no, valid_from, valid_to, geom FROM mining_right WHERE right_type = 'mining'",
}


def read_inputs(conn, batch: str) -> dict:
    """The batch's patches and every reference layer as GeoDataFrames, their spatial indexes built."""
    import geopandas as gpd
    from sqlalchemy import text
    out = {name: gpd.read_postgis(text(sql), conn, geom_col="geom", params={"b": batch}).rename_geometry("geometry")
           for name, sql in QUERIES.items()}
    for frame in out.values():
        frame.sindex  # noqa: B018  (built here, not in the timed categorisation)
    return out


def categorise_partitioned(inputs: dict, workers: int = 2, partitions: int = 16) -> pd.DataFrame:
    """`categorise` on a Dask distributed LocalCluster: the patches in Hilbert order cut into
    contiguous partitions, each categorised on a worker with the reference rows inside its bounds."""
    import dask
    import dask_geopandas  # noqa: F401  (registers the GeoPandas types with Dask)
    from dask.distributed import Client, LocalCluster
    patches = inputs["patches"]
    ordered = patches.iloc[patches.hilbert_distance().argsort()].reset_index(drop=True)
    bounds = np.linspace(0, len(ordered), partitions + 1).astype(int)
    with LocalCluster(n_workers=workers, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
                      processes=True) as cluster, Client(cluster) as client:
        tasks = []
        for k in range(partitions):
            part = subset(inputs, ordered.iloc[bounds[k]:bounds[k + 1]])
            # one future for the partition's dict of frames (scattering the dict itself would key its frames
            # by the dict's keys, the same in every partition)
            [future] = client.scatter([part], hash=False)
            tasks.append(dask.delayed(categorise)(future))
        return pd.concat(dask.compute(*tasks)).sort_index()


def subset(inputs: dict, patches) -> dict:
    """The inputs for some of the patches: the reference rows inside their bounds."""
    box = shapely.box(*patches.total_bounds)
    out = {"patches": patches}
    for name, frame in inputs.items():
        if name != "patches":
            out[name] = frame.iloc[frame.sindex.query(box)]
    return out


def _pieces(patches, layer, columns: list[str]):
    """geopandas.overlay of the patches (pid, detected_on) with `layer` (its `columns`), and each
    piece's ellipsoidal area."""
    import geopandas as gpd
    left = patches[["pid", "detected_on", "geometry"]]
    right = layer[columns + ["geometry"]]
    if len(left) == 0 or len(right) == 0:
        out = gpd.GeoDataFrame({c: [] for c in ["pid", "detected_on", *columns]}, geometry=[], crs=patches.crs)
    else:
        out = gpd.overlay(left, right, how="intersection", keep_geom_type=True)
    out["m2"] = areas_m2(out.geometry.values) if len(out) else np.zeros(0)
    return out


def _union(pieces, keys: list[str]) -> pd.DataFrame:
    """Per group of `keys`: the union of its pieces (`g`) and its area (`m2`); a group of one
    piece keeps it as it is (rows of a layer may overlap: a union, never a sum)."""
    if len(pieces) == 0:
        return pd.DataFrame(columns=[*keys, "g", "m2"])
    n = pieces.groupby(keys, dropna=False)["m2"].transform("size").to_numpy()
    single = pieces[n == 1]
    out = [pd.DataFrame({**{k: single[k].to_numpy() for k in keys}, "g": single.geometry.values,
                         "m2": single["m2"].to_numpy()})]
    many = pieces[n > 1]
    if len(many):
        groups = many.groupby(keys, sort=False, dropna=False)
        unions = [shapely.union_all(np.asarray(part.geometry.values)) for _, part in groups]
        heads = groups.size().reset_index()[keys]
        heads["g"] = unions
        heads["m2"] = areas_m2(np.asarray(unions, dtype=object))
        out.append(heads)
    return pd.concat(out, ignore_index=True)


def categorise(inputs: dict) -> pd.DataFrame:
    """One row per patch (indexed by patch id): the areas and categories of docs/comparison.md."""
    patches = inputs["patches"].reset_index(drop=True)
    patches["pid"] = patches["id"]
    frame = {name: f for name, f in inputs.items() if name != "patches"}
    res = pd.DataFrame(index=pd.Index(patches["id"], name="id"))
    res["kind"] = patches["kind"].to_numpy()
    res["other"] = patches["other"].to_numpy()
    res["detected_on"] = pd.to_datetime(patches["detected_on"]).to_numpy()
    res["area_m2"] = areas_m2(patches.geometry.values)

    def dated(pieces, column):
        return pieces[pd.to_datetime(pieces[column]) <= pd.to_datetime(pieces["detected_on"])]

    ap = _union(dated(_pieces(patches, frame["approval"], ["approved_on"]), "approved_on"), ["pid"]).set_index("pid")
    sp = _union(dated(_pieces(patches, frame["supply"], ["signed_on"]), "signed_on"), ["pid"]).set_index("pid")
    res["approval_m2"] = ap["m2"].reindex(res.index).fillna(0.0)
    res["supply_m2"] = sp["m2"].reindex(res.index).fillna(0.0)
    both = ap.index.intersection(sp.index)
    res["unsupplied_m2"] = res["approval_m2"]
    if len(both):
        inter = shapely.intersection(ap.loc[both, "g"].to_numpy(), sp.loc[both, "g"].to_numpy())
        res.loc[both, "unsupplied_m2"] = np.maximum(ap.loc[both, "m2"].to_numpy() - areas_m2(inter), 0.0)
    res["basic_farmland_m2"] = _union(_pieces(patches, frame["basic_farmland"], []), ["pid"]) \
        .set_index("pid")["m2"].reindex(res.index).fillna(0.0)

    lu = _pieces(patches, frame["land_use"], ["class_code"])
    farm = lu["class_code"].isin(sorted(FARMLAND_CLASSES)).to_numpy()
    illegal = np.where(farm, lu["m2"].to_numpy(), 0.0)
    cut = farm & lu["pid"].isin(ap.index).to_numpy()
    if cut.any():
        rest = shapely.difference(lu.geometry.values[cut], ap.loc[lu["pid"].to_numpy()[cut], "g"].to_numpy())
        illegal[cut] = areas_m2(rest)
    lu["farmland_m2"] = np.where(farm, lu["m2"].to_numpy(), 0.0)
    lu["illegal"] = illegal
    per = lu.groupby("pid")[["farmland_m2", "illegal"]].sum()
    res["farmland_m2"] = per["farmland_m2"].reindex(res.index).fillna(0.0)
    res["illegal_farmland_m2"] = per["illegal"].reindex(res.index).fillna(0.0)
    classes = lu[lu["m2"] > 0].groupby(["pid", "class_code"])["m2"].sum()
    by_pid: dict = {}
    for (pid, code), m2 in classes.items():
        by_pid.setdefault(pid, {})[code] = m2
    res["land_use_m2"] = [by_pid.get(pid, {}) for pid in res.index]

    zones = _union(_pieces(patches, frame["zones"], ["kind", "code", "city"]), ["pid", "kind", "code", "city"])
    zones = zones[zones["m2"] > 0]
    by_kind = zones.groupby(["pid", "kind"])["m2"].sum().unstack(fill_value=0.0)
    for kind, column in (("urban", "urban_m2"), ("eco", "eco_redline_m2")):
        res[column] = by_kind[kind].reindex(res.index).fillna(0.0) if kind in by_kind else 0.0
    plan = zones[zones["kind"] == "plan"]
    res["restricted_m2"] = plan[plan["code"].isin(RESTRICTED)].groupby("pid")["m2"].sum() \
        .reindex(res.index).fillna(0.0)
    counties = zones[zones["kind"] == "county"].sort_values(["pid", "m2", "code"], ascending=[True, False, True])
    res["county"] = counties.drop_duplicates("pid").set_index("pid")["code"].reindex(res.index)
    res["county_code"] = res["county"].fillna(pd.Series(patches["county_code"].to_numpy(), index=res.index))

    mining = patches[patches["kind"] == "mining"]
    mr = _pieces(mining, frame["mining"], ["rid", "licence_no", "valid_from", "valid_to"])
    mr = mr.sort_values(["pid", "m2", "valid_to", "rid"], ascending=[True, False, False, True]).drop_duplicates("pid")
    mr = mr.set_index("pid")
    res["own_right_m2"] = mr["m2"].reindex(res.index).fillna(0.0)
    valid_from = pd.to_datetime(mr["valid_from"]).reindex(res.index)
    valid_to = pd.to_datetime(mr["valid_to"]).reindex(res.index)

    a, r = res["area_m2"], res
    construction = (r["kind"] == "construction") & ~r["other"]
    mining_kind = r["kind"] != "construction"
    own = r["own_right_m2"] >= SLIVER
    flags = {
        "basic_farmland": (construction | mining_kind) & (r["basic_farmland_m2"] >= SLIVER),
        "unapproved": construction & (r["approval_m2"] < SLIVER),
        "beyond_extent": construction & (r["approval_m2"] >= SLIVER) & (a - r["approval_m2"] >= SLIVER),
        "unsupplied": construction & (r["approval_m2"] >= SLIVER) & (r["unsupplied_m2"] >= SLIVER),
        "outside_plan": construction & ((r["restricted_m2"] >= SLIVER) | (a - r["urban_m2"] >= SLIVER)
                                        | (r["eco_redline_m2"] >= SLIVER)),
        "unlicensed_mining": mining_kind & ~own,
        "beyond_boundary_mining": mining_kind & own & (a - r["own_right_m2"] >= SLIVER),
        "expired_mining": mining_kind & own & ~((r["detected_on"] >= valid_from) & (r["detected_on"] <= valid_to)),
    }
    names = list(flags)
    table = pd.DataFrame(flags).fillna(False).to_numpy(dtype=bool)
    cats = [tuple(names[k] for k in np.flatnonzero(row)) for row in table]
    other = ((r["kind"] == "construction") & r["other"]).to_numpy()
    res["categories"] = [("other",) if o else (c or ("legal",)) for o, c in zip(other, cats)]
    res["category"] = [next(s for s in SEVERITY if s in c) for c in res["categories"]]
    res["violation"] = [bool(set(c) & VIOLATIONS) for c in res["categories"]]
    res["outside_boundary_m2"] = np.maximum(a - r["urban_m2"], 0.0)
    res["illegal_farmland_m2"] = np.where(construction, res["illegal_farmland_m2"], 0.0)
    return res.drop(columns=["detected_on", "other"])


def agree(ours: pd.DataFrame, onemap: pd.DataFrame) -> dict:
    """How the peer's figures compare with OneMap's stored results (indexed by patch id)."""
    both = ours.index.intersection(onemap.index)
    o, m = ours.loc[both], onemap.loc[both]
    same = np.array([tuple(sorted(x)) == tuple(sorted(y)) for x, y in zip(o["categories"], m["categories"])])
    out = {"patches": len(both), "categories_differ": int((~same).sum())}
    for column in ("area_m2", "approval_m2", "basic_farmland_m2", "farmland_m2", "illegal_farmland_m2",
                   "restricted_m2", "own_right_m2"):
        diff = np.abs(o[column].astype(float).to_numpy() - m[column].fillna(0).astype(float).to_numpy())
        out[f"{column}_max_diff"] = float(diff.max()) if len(diff) else 0.0
    out["differing_examples"] = [int(i) for i in both[~same][:5]]
    return out
