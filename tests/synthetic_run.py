"""A run directory written without a rig: the same record lines and series CSVs the plugin
writes (reports.record.RunRecord), for fast report tests and the screenshot script."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reports.record import RunRecord
from verification.spec import load_spec

TABLE_SERIAL = "SYN-LUMB-0042"
ER_TEST = "suites/test_emergency_release.py::test_emergency_release[estop_coil]"
FA_TEST = "suites/test_force_accuracy.py::test_static_force_accuracy"
OF_TEST = "suites/test_interlocks.py::test_overforce_trip"
RAMP_TEST = "suites/test_ramps.py::test_ramp[slow]"
#: the requirements build_run measures (every other one of the lumbar specification is NOT RUN)
MEASURED = ("ER-NORISE", "ER-HALF", "ER-RESIDUAL", "ER-SNAP", "ER-LATCH", "FA-STATIC", "FA-CELL", "IL-OVERFORCE")


def _m(rec: RunRecord, test: str, rid: str, name: str, value, unit="s", lower=None, upper=None, u=0.0025,
       verdict="PASS", rule="guard-banded", conditions=None, annotations=None, series=None, quantity=None):
    rec.event("measurement", test=test, series=series, name=name, requirement=rid, quantity=quantity, value=value,
              unit=unit,
              lower=lower, upper=upper, uncertainty=u if rule != "boolean" else 0.0, coverage_factor=2.0,
              budget=[{"name": "gauge sample period", "standard": u / 2}] if rule != "boolean" else [],
              tur=(None if rule == "boolean" else ((upper or lower or 1.0) / u)), tur_below_4=False,
              decision_rule=rule, verdict=verdict, conditions=conditions or {}, annotations=annotations or {}, note="")


def _release(f0: float, tau: float, delay: float, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    t = np.arange(-0.5, 1.0, 0.001)
    f = np.where(t < delay, f0 + 20 * t.clip(max=0) + 20 * t.clip(min=0),
                 (f0 + 20 * delay) * np.exp(-(t - delay) / tau))
    return {"t_s": t, "force_n": f + rng.normal(0, 0.3, t.size)}


def build_run(run_dir: Path, *, complete: bool = True, calibration_expired: bool = False,
              fail: bool = False, only_measured: bool = False) -> Path:
    """Write a lumbar run: emergency release (3 trials, estop_coil), static force accuracy at
    two setpoints, the over-force trip; every other requirement NOT RUN.

    complete=False: the run is cut during a ramp test (test-start, no test-end, no run-end).
    fail=True: the emergency release's third trial is too slow (ER-HALF FAIL).
    only_measured=True: the recorded specification keeps only the requirements measured here,
    so an intact, complete run without `fail` PASSes overall."""
    spec = load_spec("lumbar")
    if only_measured:
        spec = spec.model_copy(update={"requirements": [r for r in spec.requirements if r.id in MEASURED]})
    rec = RunRecord(run_dir)
    cal = {"certificate": "SYN-CAL-001", "date": "2024-01-10" if calibration_expired else "2026-03-01",
           "due": "2025-01-10" if calibration_expired else "2027-03-01", "expanded_uncertainty_n": 0.5,
           "coverage_factor": 2.0}
    gauge = {"dialect": "scpi", "resource": "TCPIP::127.0.0.1::5025::SOCKET", "model": "TractionRig LCI-3000",
             "serial": "G-7781", "calibration": cal, "calibration_expired": calibration_expired}
    rec.event("run-start",
              rig={"name": "bench-lumbar-2", "description": "Synthetic lumbar bench", "time_scale": 1.0,
                   "safety_limit_n": 890.0, "emulated": None,
                   "gauge": {**{k: gauge[k] for k in ("dialect", "model", "serial")}, "capacity_n": 1000.0,
                             "resolution_n": 0.01, "calibration": cal},
                   "table": {"kind": "lumbar", "model": "Acme TX-900 lumbar table", "serial": TABLE_SERIAL}},
              rig_file="rigs/bench-lumbar-2.yaml", specification=spec.model_dump(mode="json"),
              spec_file=str(spec.source),
              table={"kind": "lumbar", "serial": TABLE_SERIAL, "rated_force_n": 890.0, "firmware": 259, "protocol": 256},
              gauge=gauge, emulator=None, operator="A. Tester",
              software={"traction_rig": "0.1.0", "python": "3.11.7", "git_commit": "0" * 40, "git_dirty": False},
              argv=["rig", "run"])

    # emergency release: three trials, ER-HALF carries the series
    rec.event("test-start", test=ER_TEST, requirements=["ER-NORISE", "ER-HALF", "ER-RESIDUAL", "ER-SNAP", "ER-LATCH"])
    halves = []
    for i, (f0, tau) in enumerate([(150.0, 0.06), (400.0, 0.07), (400.0, 0.9 if fail else 0.08)]):
        name = f"estop_coil trial {i + 1} (hold, {f0:g} N)"
        cols = _release(f0, tau, 0.003, i)
        t, f = cols["t_s"], cols["force_n"]
        after = t >= 0
        half = float(t[after][np.argmax(f[after] < 0.5 * f0)])
        resid = float(t[after][np.argmax(f[after] < 15.0)])
        values = {"ER-NORISE": 0.003, "ER-HALF": half, "ER-RESIDUAL": resid, "ER-SNAP": 2.2 * tau}
        ann = {"trigger_s": 0.0, **values}
        cond = {"trigger": "estop_coil", "phase": "hold", "force_n": f0, "force_at_trigger_n": f0, "trial": i + 1}
        rel = rec.save_series(f"ER-HALF {name}", cols)
        for rid, v in values.items():
            lo, hi = (0.05, None) if rid == "ER-SNAP" else (None, {"ER-NORISE": 0.05, "ER-HALF": 0.5, "ER-RESIDUAL": 3.0}[rid])
            verdict = "FAIL" if (hi is not None and v > hi) else "PASS"
            _m(rec, ER_TEST, rid, name, v, lower=lo, upper=hi, verdict=verdict, conditions=cond, annotations=ann,
               series=rel if rid == "ER-HALF" else None)
            if rid == "ER-HALF":
                halves.append((v, verdict))
        peak = float(np.max(f[after]))  # ER-NORISE's amount: how far the force rose after the trigger
        _m(rec, ER_TEST, "ER-NORISE", name, peak - f0, unit="N", upper=max(0.02 * f0, 5.0), u=0.9,
           conditions={**cond, "peak_n": peak}, annotations={"trigger_s": 0.0}, quantity="rise")
        _m(rec, ER_TEST, "ER-LATCH", f"estop_coil trial {i + 1} restart refused until RESET", True, unit="",
           rule="boolean", conditions=cond)
    worst, verdict = max(halves)
    _m(rec, ER_TEST, "ER-HALF", "estop_coil: worst of 3 trials", worst, upper=0.5, verdict=verdict,
       conditions={"trigger": "estop_coil", "summary": True})
    rec.event("test-end", test=ER_TEST, when="call", outcome="failed" if fail else "passed", longrepr=None, duration_s=3.0)
    rec.event("safe-state", reason="after test", problems=[])

    # static force accuracy at two setpoints
    rec.event("test-start", test=FA_TEST, requirements=["FA-STATIC", "FA-CELL"])
    rng = np.random.default_rng(7)
    for setting in (120.0, 600.0):
        t = np.arange(0, 3, 0.001)
        f = setting + 0.8 + rng.normal(0, 0.2, t.size)
        rel = rec.save_series(f"FA-STATIC static error at {setting:g} N", {"t_s": t, "force_n": f})
        _m(rec, FA_TEST, "FA-STATIC", f"static error at {setting:g} N", 0.8, unit="N", upper=max(0.05 * setting, 10),
           u=0.5, conditions={"setting_n": setting}, series=rel)
        _m(rec, FA_TEST, "FA-CELL", f"load cell vs gauge at {setting:g} N", 0.4, unit="N", upper=max(0.02 * setting, 3),
           u=0.5, conditions={"setting_n": setting})
    rec.event("test-end", test=FA_TEST, when="call", outcome="passed", longrepr=None, duration_s=30.0)

    # over-force trip
    rec.event("test-start", test=OF_TEST, requirements=["IL-OVERFORCE"])
    t = np.arange(0, 2, 0.001)
    f = np.where(t < 1.0, 240 + 60 * t, 300 + 6000 * (t - 1.0))
    f = np.where(t > 1.01, f.clip(max=360) * np.exp(-(t - 1.01) / 0.2), f)
    rel = rec.save_series("IL-OVERFORCE crossing FORCE_LIMIT to release", {"t_s": t, "force_n": f})
    _m(rec, OF_TEST, "IL-OVERFORCE", "crossing FORCE_LIMIT to release", 0.01, upper=0.1,
       conditions={"limit_n": 300.0, "latched": True}, annotations={"cross_s": 1.0, "release_s": 1.01}, series=rel)
    rec.event("test-end", test=OF_TEST, when="call", outcome="passed", longrepr=None, duration_s=2.0)

    if complete:
        rec.event("safe-state", reason="session end", problems=[])
        rec.event("run-end", complete=True, exitstatus=1 if fail else 0)
    else:
        rec.event("test-start", test=RAMP_TEST, requirements=["RA-RATE", "RA-OVERSHOOT", "RA-SETTLE"])
        rec.close()
        with open(Path(run_dir) / "record.jsonl", "a", encoding="utf-8") as f:
            f.write('{"event": "measurement", "utc": "2026-')  # torn by the cut
        return Path(run_dir)
    rec.close()
    return Path(run_dir)
