"""Approval compliance check (建设用地审批合规性核查, services/compliance.py) on the demo province."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from services import department_tokens
from services.compliance import check_and_record, check_approvals, latest


@pytest.fixture(scope="module")
def manifest(demo) -> dict:
    return json.loads(Path(demo["manifest"]).read_text(encoding="utf-8"))


def _approval_of(manifest, case: str) -> str:
    return next(p["approval"]["document_no"] for p in manifest["planted_patches"] if p["case"] == case)


def _check(conn, document_no: str) -> dict:
    approval_id = conn.execute(text("SELECT id FROM approval WHERE document_no = :d"), {"d": document_no}).scalar()
    return check_approvals(conn, ids=[approval_id])[0]


def _checks(result: dict) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for r in result["reasons"]:
        out.setdefault(r["check"], set()).add(r["colour"])
    return out


def test_the_demo_load_stores_every_approvals_check(conn, demo):
    """Loaded directly (not imported), the demo's approvals are checked once, on demand by `demo`."""
    ids = [i for i, in conn.execute(text("SELECT id FROM approval ORDER BY id"))]
    stored = latest(conn, ids)
    assert len(stored) == len(ids) > 0
    assert {(c["triggered_by"], c["requested_by"], c["import_batch_id"]) for c in stored} == {("on_demand", "demo", None)}
    fresh = {c["id"]: c for c in check_approvals(conn, ids=ids)}
    assert all(c["colour"] == fresh[c["id"]]["colour"] and c["reasons"] == fresh[c["id"]]["reasons"] for c in stored)
    assert dict(conn.execute(text("SELECT id, compliance FROM approval")).all()) == {
        c["id"]: c["colour"] for c in stored}
    assert {c["colour"] for c in stored} == {"red", "yellow"}        # the demo records no quota: never green


def test_on_demand_check_stores_the_new_latest(conn, manifest):
    no = _approval_of(manifest, "legal")
    approval_id = conn.execute(text("SELECT id FROM approval WHERE document_no = :d"), {"d": no}).scalar()
    [before] = latest(conn, [approval_id])
    county, year, area = conn.execute(text("SELECT county_code, extract(year FROM approved_on)::int, area_m2 "
                                           "FROM approval WHERE id = :i"), {"i": approval_id}).one()
    conn.execute(text("INSERT INTO construction_quota VALUES (:c, :y, 1e12)"), {"c": county, "y": year})
    [now] = check_and_record(conn, ids=[approval_id], triggered_by="on_demand", requested_by="督察 test")
    assert (before["colour"], now["colour"], now["reasons"]) == ("yellow", "green", [])
    [after] = latest(conn, [approval_id])
    assert (after["check_id"], after["colour"], after["requested_by"]) == (now["check_id"], "green", "督察 test")
    assert after["check_id"] > before["check_id"] and after["area_m2"] == pytest.approx(area, abs=0.01)
    assert conn.execute(text("SELECT compliance FROM approval WHERE id = :i"), {"i": approval_id}).scalar() == "green"
    assert conn.execute(text("SELECT count(*) FROM approval_check WHERE approval_id = :i"),
                        {"i": approval_id}).scalar() == 2
    with pytest.raises(ValueError, match="names its import batch"):
        check_and_record(conn, ids=[approval_id], triggered_by="registration", requested_by="x")


def test_underbalanced_approvals_are_red_with_their_shortfall(conn, manifest):
    assert manifest["underbalanced_approvals"]
    for a in manifest["underbalanced_approvals"]:
        result = _check(conn, a["document_no"])
        assert result["colour"] == "red"
        balance = next(r for r in result["reasons"] if r["check"] == "balance" and r["colour"] == "red")
        assert balance["m2"] == pytest.approx(a["farmland_m2"] - a["balanced_m2"], abs=0.01)
        assert result["balanced_m2"] == pytest.approx(a["balanced_m2"], abs=0.01)


def test_plan_and_basic_farmland(conn, manifest):
    on_farmland = _check(conn, _approval_of(manifest, "approved_basic_farmland"))
    assert on_farmland["colour"] == "red"
    assert _checks(on_farmland)["basic_farmland"] == {"red"} and "red" in _checks(on_farmland)["plan"]
    assert "State Council" in next(r["en"] for r in on_farmland["reasons"] if r["check"] == "basic_farmland")
    outside = _check(conn, _approval_of(manifest, "outside_plan"))
    assert "red" in _checks(outside)["plan"] and "basic_farmland" not in _checks(outside)
    legal = _check(conn, _approval_of(manifest, "legal"))           # in the 010 ring, off basic farmland
    assert "plan" not in _checks(legal) and "basic_farmland" not in _checks(legal)
    assert _checks(legal)["quota"] == {"yellow"}                    # no quota recorded in the demo


def test_county_quota(conn, manifest):
    no = _approval_of(manifest, "legal")
    county, year, used = conn.execute(text("""
        SELECT a.county_code, extract(year FROM a.approved_on)::int,
               (SELECT sum(x.area_m2) FROM approval x WHERE x.county_code = a.county_code
                  AND extract(year FROM x.approved_on) = extract(year FROM a.approved_on)
                  AND (x.approved_on, x.id) <= (a.approved_on, a.id))
        FROM approval a WHERE a.document_no = :d"""), {"d": no}).one()
    conn.execute(text("INSERT INTO construction_quota VALUES (:c, :y, :q)"), {"c": county, "y": year, "q": used - 500})
    over = next(r for r in _check(conn, no)["reasons"] if r["check"] == "quota")
    assert over["colour"] == "red" and over["m2"] == pytest.approx(500, abs=0.01)
    conn.execute(text("UPDATE construction_quota SET quota_m2 = :q WHERE county_code = :c"), {"q": used + 1, "c": county})
    assert "quota" not in _checks(_check(conn, no))


def test_cli_and_api(demo, test_settings, live_server, engine, manifest):
    from app import create_app
    runner = create_app(test_settings).test_cli_runner()
    no = manifest["underbalanced_approvals"][0]["document_no"]
    out = runner.invoke(args=["compare", "approvals", "--document-no", no])
    assert out.exit_code == 0 and out.output.startswith(f"red    {no}") and "1 approvals: 1 red" in out.output
    assert runner.invoke(args=["compare", "approvals", "--document-no", "无此文号"]).exit_code != 0
    with engine.begin() as conn:
        approval_id = conn.execute(text("SELECT id FROM approval WHERE document_no = :d"), {"d": no}).scalar()
        secret, _ = department_tokens.create(conn, "用地处 compliance test", ["approval"])
    with engine.connect() as conn:
        [cli] = latest(conn, [approval_id])
    assert (cli["colour"], cli["triggered_by"], cli["import_batch_id"]) == ("red", "on_demand", None)
    r = live_server.get(f"/api/approvals/{approval_id}/compliance", headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 200 and r.json()["colour"] == "red" and r.json()["document_no"] == no
    assert r.json()["check_id"] == cli["check_id"] and r.json()["checked_at"] == cli["checked_at"].isoformat()
    import requests
    posted = requests.post(live_server.url + f"/api/approvals/{approval_id}/compliance", timeout=30,
                           headers={"Authorization": f"Bearer {secret}"})
    assert posted.status_code == 200 and posted.json()["check_id"] > cli["check_id"]
    assert (posted.json()["colour"], posted.json()["requested_by"]) == ("red", "用地处 compliance test")
    again = live_server.get(f"/api/approvals/{approval_id}/compliance", headers={"Authorization": f"Bearer {secret}"})
    assert again.json()["check_id"] == posted.json()["check_id"]
    assert live_server.get(f"/api/approvals/{approval_id}/compliance").status_code == 401
    assert live_server.get("/api/approvals/99999999/compliance",
                           headers={"Authorization": f"Bearer {secret}"}).status_code == 404
    assert requests.post(live_server.url + "/api/approvals/99999999/compliance", timeout=30,
                         headers={"Authorization": f"Bearer {secret}"}).status_code == 404
