"""The results database holds a flexion-distraction table's history as it holds a traction
table's: each requirement's worst value per run in its own unit (deg, deg/s, s, N), a trend
per table serial, and drift found on an angle as on a force — a stop whose travel creeps
run after run is flagged while every run still PASSes."""

from __future__ import annotations

import json

from reports.history.review import record_and_review
from rigcli.main import main as rig_main
from tests.synthetic_fd_run import SERIAL, build_fd_run

#: the stop's travel over seven runs of one table: steady, then creeping towards 1.5°
TRAVELS = (0.48, 0.48, 0.49, 0.62, 0.76, 0.90, 1.04, 1.18)


def test_angle_and_time_quantities_trend_per_table_and_a_creeping_travel_is_flagged(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'history.sqlite'}"
    reviews = []
    for i, travel in enumerate(TRAVELS):
        run = build_fd_run(tmp_path / f"run{i}", travel_deg=travel, utc=f"2026-12-0{i + 1}T10:00:00.000+00:00")
        reviews.append(record_and_review(run, url))
    assert all(r["error"] is None for r in reviews)

    first = {r["requirement"]: r for r in reviews[0]["requirements"]}
    units = {rid: first[rid]["unit"] for rid in ("FD-DEPTH", "FD-SPEED", "ES-TIME", "ES-TRAVEL", "IL-OBSTRUCT")}
    assert units == {"FD-DEPTH": "deg", "FD-SPEED": "deg/s", "ES-TIME": "s", "ES-TRAVEL": "deg", "IL-OBSTRUCT": "N"}
    steady = reviews[2]
    assert not [w for w in steady["warnings"] if "ES-TRAVEL" in str(w)]  # three steady runs: no drift

    last = {r["requirement"]: r for r in reviews[-1]["requirements"]}
    assert last["ES-TRAVEL"]["verdict"] == "PASS" and last["ES-TRAVEL"]["runs"] == len(TRAVELS)
    assert "trend" in last["ES-TRAVEL"]["warnings"], last["ES-TRAVEL"]
    assert not last["FD-DEPTH"]["warnings"]  # the moves did not change: nothing else drifts

    capsys.readouterr()
    assert rig_main(["history", "--db", url, "--table", SERIAL]) == 0
    assert f"{len(TRAVELS)} of {len(TRAVELS)} runs shown" in capsys.readouterr().out
    for rid, unit in (("ES-TRAVEL", "deg"), ("FD-SPEED", "deg/s"), ("ES-TIME", "s")):
        assert rig_main(["history", rid, "--table", SERIAL, "--db", url, "--format", "json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert [row["unit"] for row in doc["runs"]] == [unit] * len(TRAVELS), (rid, doc["runs"][0])
    assert rig_main(["history", "ES-TRAVEL", "--table", SERIAL, "--db", url]) == 0
    out = capsys.readouterr().out
    assert "1.18 deg" in out and "deg/run" in out  # the trend stated in the angle's own unit
    png = tmp_path / "travel.png"
    assert rig_main(["history", "ES-TRAVEL", "--table", SERIAL, "--db", url, "--png", str(png)]) == 0
    assert png.stat().st_size > 10_000
