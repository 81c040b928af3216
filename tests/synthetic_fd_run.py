"""A flexion-distraction run written without a rig: the record lines and series the FD
suites write (reports.record.RunRecord) — a treatment of three moves on one angle series,
one emergency stop (the stop time on the angle, the release on the distraction force, the
travel and the hold on no series of their own) and one obstruction — for fast report and
history tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from reports.record import RunRecord
from reports.rundir import RECORD_NAME
from verification.spec import load_spec

SERIAL = "SYN-FD-0007"
KIN_TEST = "suites/test_fd_kinematics.py::test_treatment_kinematics[flexion-10deg-20dps-p1-r1-3c]"
ES_TEST = "suites/test_fd_emergency.py::test_fd_emergency_stop[estop_coil]"
OB_TEST = "suites/test_fd_interlocks.py::test_fd_obstruction"
STOP = "estop_coil trial 1 (flexion moving_out, 250 N)"


def _m(rec, test, rid, name, value, unit, upper, *, u=0.01, series=None, conditions=None, annotations=None,
       quantity=None, lower=None):
    rec.event("measurement", test=test, series=series, name=name, requirement=rid, quantity=quantity, value=value,
              unit=unit, lower=lower, upper=upper, uncertainty=u, coverage_factor=2.0,
              budget=[{"name": "inclinometer resolution", "standard": u / 2}], tur=(upper or lower) / u,
              tur_below_4=False, decision_rule="guard-banded", verdict="PASS", conditions=conditions or {},
              annotations=annotations or {}, note="")


def _treatment(depth: float, speed: float, pause: float, rest: float, cycles: int, rng) -> tuple:
    """An angle trace of `cycles` trapezoidal moves out and back, and where each move ended."""
    dt, t, a, ends = 0.01, [0.0], [0.0], []
    def hold(seconds):
        for _ in range(int(seconds / dt)):
            t.append(t[-1] + dt)
            a.append(a[-1])
    def move(to):
        step = speed * dt * np.sign(to - a[-1])
        while abs(to - a[-1]) > abs(step):
            t.append(t[-1] + dt)
            a.append(a[-1] + step)
        t.append(t[-1] + dt)
        a.append(to)
    hold(0.5)
    for _ in range(cycles):
        move(depth)
        ends.append(t[-1] + pause / 2)
        hold(pause)
        move(0.0)
        hold(rest)
    t, a = np.array(t), np.array(a)
    return t, a + rng.normal(0, 0.003, a.size), ends


def build_fd_run(run_dir: Path, *, travel_deg: float = 0.48, utc: str | None = None) -> Path:
    """One run of table SERIAL; `travel_deg`: the stop's travel (ES-TRAVEL), `utc`: the
    run-start stamp (another run of the same table, in the order a history reads them)."""
    spec = load_spec("flexion-distraction")
    rec = RunRecord(run_dir)
    cal = {"certificate": "SYN-TILT-01", "date": "2026-03-01", "due": "2027-03-01", "expanded_uncertainty_deg": 0.02,
           "coverage_factor": 2.0}
    gauge = {"dialect": "scpi", "model": "TractionRig LCI-3000", "serial": "G-1",
             "calibration": {"certificate": "SYN-CAL-1", "date": "2026-03-01", "due": "2027-03-01",
                             "expanded_uncertainty_n": 0.5, "coverage_factor": 2.0}, "calibration_expired": False}
    rec.event("run-start",
              rig={"name": "bench-fd-1", "description": "Synthetic flexion-distraction bench", "time_scale": 1.0,
                   "emulated": None,
                   "gauge": {"dialect": "scpi", "model": "TractionRig LCI-3000", "serial": "G-1", "resolution_n": 0.01,
                             "calibration": gauge["calibration"]},
                   "inclinometer": {"dialect": "tilt", "model": "TILT-2", "serial": "I-9", "range_deg": 60.0,
                                    "resolution_deg": 0.001, "calibration": cal},
                   "table": {"kind": "flexion-distraction", "model": "Synthetic FD-1", "serial": SERIAL}},
              rig_file="rigs/bench-fd-1.yaml", specification=spec.model_dump(mode="json"), spec_file=str(spec.source),
              table={"kind": "flexion-distraction", "serial": SERIAL, "firmware": 256}, gauge=gauge, emulator=None,
              operator="A. Tester", software={"git_commit": "0" * 40, "git_dirty": False}, argv=["rig", "run"])
    rng = np.random.default_rng(25)

    # a treatment: three moves to 10°, the series on the first move's measurement only
    rec.event("test-start", test=KIN_TEST, requirements=["FD-DEPTH"])
    t, a, ends = _treatment(10.0, 20.0, 1.0, 1.0, 3, rng)
    rel = rec.save_series("FD-DEPTH end angle of move 1", {"t_s": t, "angle_deg": a})
    for i, at in enumerate(ends, start=1):
        measured = float(np.mean(a[np.abs(t - at) < 0.2]))
        _m(rec, KIN_TEST, "FD-DEPTH", f"end angle of move {i}", abs(measured - 10.0), "deg", 0.5,
           series=rel if i == 1 else None, annotations={"start_s": 0.5, "at_s": at},
           conditions={"set_deg": 10.0, "measured_deg": measured, "depth_deg": 10.0})
    _m(rec, KIN_TEST, "FD-SPEED", "cruise speed error", 0.12, "deg/s", 2.0, u=0.05,
       conditions={"speed_deg_s": 20.0, "depth_deg": 10.0})
    rec.event("test-end", test=KIN_TEST, when="call", outcome="passed", longrepr=None, duration_s=12.0)

    # one emergency stop at 20 °/s moving out, t = 0 the trigger
    rec.event("test-start", test=ES_TEST, requirements=["ES-TIME", "ES-TRAVEL", "ES-HOLD", "ES-RELEASE"])
    ts = np.arange(-1.0, 5.2, 0.002)
    a0, v = 10.5, 20.0
    stop = 2 * travel_deg / v  # braking evenly from v: the stop takes twice travel / v
    a = np.where(ts < 0, a0 + v * ts, np.where(ts < stop, a0 + v * ts - v * ts**2 / (2 * stop), a0 + travel_deg))
    a = a + rng.normal(0, 0.002, ts.size)
    tf = np.arange(-0.5, 3.0, 0.001)
    f = np.where(tf < 0, 250.0, 250.0 * np.exp(-tf / 0.04)) + rng.normal(0, 0.2, tf.size)
    cond = {"trigger": "estop_coil", "motion": "flexion", "phase": "moving_out", "force_n": 250.0, "trial": 1,
            "angle_at_trigger_deg": a0, "angle_at_rest_deg": a0 + travel_deg, "hold_from_s": stop + 0.02,
            "hold_window_s": 5.0}
    ann = {"trigger_s": 0.0, "at_rest_s": stop}
    angle_rel = rec.save_series(f"ES-TIME {STOP}", {"t_s": ts, "angle_deg": a})
    _m(rec, ES_TEST, "ES-TIME", STOP, stop, "s", 0.2, series=angle_rel, conditions=cond, annotations=ann)
    _m(rec, ES_TEST, "ES-TRAVEL", STOP, travel_deg, "deg", 1.5, conditions=cond, annotations=ann)
    _m(rec, ES_TEST, "ES-HOLD", STOP, 0.002, "deg", 0.2, conditions=cond,
       annotations={**ann, "hold_from_s": stop + 0.02})
    below = float(tf[np.argmax((tf > 0) & (f < 10.0))])
    force_rel = rec.save_series(f"ES-RELEASE {STOP}", {"t_s": tf, "force_n": f})
    _m(rec, ES_TEST, "ES-RELEASE", STOP, below, "s", 3.0, series=force_rel,
       conditions={**cond, "force_at_trigger_n": 250.0}, annotations={"trigger_s": 0.0, "below_residual_s": below})
    _m(rec, ES_TEST, "ES-RELEASE", STOP, 0.3, "N", 5.0, quantity="rise", u=0.2,
       conditions={**cond, "force_at_trigger_n": 250.0, "peak_n": 250.3}, annotations={"trigger_s": 0.0})
    rec.event("test-end", test=ES_TEST, when="call", outcome="passed", longrepr=None, duration_s=9.0)

    # one move into the obstacle at 10°: the peak force on its load cell, the angle trace
    rec.event("test-start", test=OB_TEST, requirements=["IL-OBSTRUCT"])
    to = np.arange(0.0, 3.0, 0.005)
    ao = np.where(to < 1.1, 10 * to, np.maximum(11.0 - 2.0 * (to - 1.1).clip(max=1.0), 9.0))
    rel = rec.save_series("IL-OBSTRUCT obstruction at 10 deg/s", {"t_s": to, "angle_deg": ao})
    _m(rec, OB_TEST, "IL-OBSTRUCT", "obstruction at 10 °/s", 82.0, "N", 130.0, u=0.5, series=rel,
       conditions={"obstacle_deg": 10.0, "angle_at_peak_deg": 11.0}, annotations={"peak_s": 1.1})
    rec.event("test-end", test=OB_TEST, when="call", outcome="passed", longrepr=None, duration_s=3.0)
    rec.event("safe-state", reason="session end", problems=[])
    rec.event("run-end", complete=True, exitstatus=0)
    rec.close()
    if utc is not None:
        path = Path(run_dir) / RECORD_NAME
        lines = path.read_text(encoding="utf-8").splitlines()
        lines[0] = json.dumps({**json.loads(lines[0]), "utc": utc}, ensure_ascii=False)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Path(run_dir)
