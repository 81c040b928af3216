"""The link-fault matrix (`rig faults links`): its parts, and cells end to end.

The end-to-end cells run the real thing — `rig emulate`, five proxies, `rig run` on one
emergency trial, the fault at the moment, the emulator's ground truth — and assert the
goal: released within the bound the rig file and the specification give (watchdog
period + ER-RESIDUAL's release time, in wall seconds, + 0.5 s), no false PASS, no line of
the record lost.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drivers.errors import ConfigError
from rigs.config import load_rig, rig_from_dict
from rigcli.link_matrix import (
    LINK_FAULTS,
    LINKS,
    MOMENTS,
    RUNNER,
    Cell,
    CellRunner,
    Limits,
    all_cells,
    cell_spec,
    check_record,
    release_time_s,
    select,
)
from verification.spec import load_spec

REPO = Path(__file__).resolve().parent.parent
RIG_FILE = REPO / "rigs" / "emulated-lumbar.yaml"
RIG = load_rig(RIG_FILE)
SPEC = load_spec(RIG.table.specification)
LIMITS = Limits.of(RIG, SPEC)


# ------------------------------------------------------------------ the parts


def test_the_matrix_has_every_link_fault_and_moment_plus_the_runner():
    cells = all_cells()
    assert len(cells) == len(LINKS) * len(LINK_FAULTS) * len(MOMENTS) + 2 * len(MOMENTS)
    assert {c.link for c in cells} == set(LINKS) | {RUNNER}
    assert Cell("safety", "stall", "hold") in cells and Cell(RUNNER, "sigstop", "hold") in cells


def test_only_filters_by_pattern_and_names_a_wrong_part():
    assert [c.id for c in select(all_cells(), "test/sever/hold")] == ["test/sever/hold"]
    assert {c.fault for c in select(all_cells(), "runner")} == {"sigstop", "sigkill"}
    assert len(select(all_cells(), "test/*/hold,safety/*/hold")) == 2 * len(LINK_FAULTS)
    with pytest.raises(ValueError, match="'melt' is not one of"):
        select(all_cells(), "test/melt")


def test_the_bound_comes_from_the_rig_file_and_the_specification():
    release = SPEC.requirement("ER-RESIDUAL").limits(residual=SPEC.residual_force_n, force=400.0)[1]
    assert LIMITS.bound_wall_s == pytest.approx((SPEC.plan.watchdog_s + release) / RIG.time_scale + 0.5)
    assert LIMITS.residual_n == SPEC.residual_force_n


def test_release_time_is_until_below_the_residual_for_good():
    ns = lambda s: int(s * 1e9)  # noqa: E731
    samples = [(ns(0.0), 400.0), (ns(0.1), 300.0), (ns(0.2), 10.0), (ns(0.3), 40.0), (ns(0.4), 5.0), (ns(0.5), 4.0)]
    released, peak = release_time_s(samples, ns(0.05), 15.0)
    assert released == pytest.approx(0.35) and peak == 300.0  # the rise at 0.3 s counts
    assert release_time_s(samples[:4], ns(0.05), 15.0)[0] is None  # still above at the end
    assert release_time_s([(ns(1.0), 3.0)], ns(0.5), 15.0) == (0.0, 3.0)
    # the emulator's own crossing between the last sample above and the first below
    assert release_time_s(samples, ns(0.05), 15.0, crossings=[ns(0.01), ns(0.37)])[0] == pytest.approx(0.32)
    # a stopped runner continued at 0.25 s: what follows is the runner's again
    assert release_time_s(samples, ns(0.05), 15.0, until_ns=ns(0.25))[0] == pytest.approx(0.15)


def test_the_record_check_finds_a_bad_line_and_a_lost_one(tmp_path):
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    lines = [{"event": "run-start", "utc": "2026-01-01T00:00:00+00:00"},
             {"event": "measurement", "utc": "2026-01-01T00:00:01+00:00", "requirement": "ER-HALF", "quantity": None},
             {"event": "measurement", "utc": "2026-01-01T00:00:03+00:00", "requirement": "ER-NORISE", "quantity": "rise"}]
    text = "".join(json.dumps(x) + "\n" for x in lines)
    (run / "record.jsonl").write_text(text)
    before = text.split("\n", 2)[0].encode() + b"\n" + text.split("\n", 2)[1].encode() + b"\n"
    fault_utc = 1767225602.0  # 2026-01-01T00:00:02Z
    ok = check_record(tmp_path / "runs", before, fault_utc)
    assert ok["intact"] and ok["measured_after_fault"] == ["ER-NORISE.rise"] and ok["measurements_before_fault"] == 1
    (run / "record.jsonl").write_text(text.replace('"ER-HALF"', '"ER-HALF" broken') + "not json\n")
    bad = check_record(tmp_path / "runs", before, fault_utc)
    assert not bad["intact"] and bad["bad_lines"] == [2, 4] and bad["lost_before_fault"] == 1


def test_rig_file_routes_the_safety_and_heartbeat_links():
    data = {"name": "r", "safety_limit_n": 890, "time_scale": 1.0,
            "controller": {"host": "10.0.0.5", "port": 502, "safety_link": "10.0.0.6:5020",
                           "heartbeat_link": "10.0.0.7:5021"},
            "stimulus": {"host": "10.0.0.8", "port": 502},
            "gauge": {"resource": "TCPIP::10.0.0.9::5025::SOCKET", "dialect": "scpi", "model": "m", "serial": "s",
                      "capacity_n": 1000, "resolution_n": 0.1,
                      "calibration": {"certificate": "c", "date": "2026-01-01", "due": "2027-01-01",
                                      "expanded_uncertainty_n": 0.5}},
            "table": {"kind": "lumbar", "model": "m", "serial": "s", "specification": "lumbar"}}
    rig = rig_from_dict(data, "r.yaml")
    assert rig.controller.link("safety") == ("10.0.0.6", 5020)
    assert rig.controller.link("heartbeat") == ("10.0.0.7", 5021)
    data["controller"]["safety_link"] = "10.0.0.6"
    with pytest.raises(ConfigError, match="r.yaml: controller.safety_link"):
        rig_from_dict(data, "r.yaml")
    data["controller"] = {"transport": "rtu", "serial_port": "/dev/ttyUSB1", "heartbeat_link": "h:1"}
    with pytest.raises(ConfigError, match="only a tcp controller has more than one link"):
        rig_from_dict(data, "r.yaml")


# ------------------------------------------------------------------ cells end to end


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    work = tmp_path_factory.mktemp("link-faults")
    spec = cell_spec(SPEC.source, work / "cell-spec.yaml")
    return CellRunner(RIG_FILE, LIMITS, spec, work)


def _assert_goal(res):
    assert not res.problems, f"{res.cell}: {'; '.join(res.problems)} (the user saw: {res.user_line})"
    assert res.moment_force_n is not None and res.moment_force_n > 300.0  # faulted in the hold, under force
    assert res.exposed_after_s is not None  # the rig needed the link after the fault
    assert res.release_from_exposure_s is not None and res.release_from_exposure_s <= LIMITS.bound_wall_s
    assert not res.false_pass
    assert res.record["intact"] and res.record["lost_before_fault"] == 0


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("cell", ["test/sever/hold", "runner/sigkill/hold"])
def test_cell_end_to_end(runner, cell):
    link, fault, moment = cell.split("/")
    res = runner.run(Cell(link, fault, moment))
    _assert_goal(res)
    if fault == "sigkill":
        assert res.exit_code == -9
    else:
        assert res.exit_code not in (0, None)  # a cut run is never a passing run
