"""Emergency-release latency as the rig measures it vs the emulator's own ground truth.

At time scale 1 the rig triggers ESTOP (coil) and the patient switch (relay) in hold,
measures trigger -> 50 % and trigger -> residual with the reference gauge exactly as
the suite does, and compares each with the instants the emulated table itself
recorded (its trigger and the true force's crossings, on this machine's monotonic
clock). Prints |error| p50/p99 per dialect. Goal: p99 <= 1 ms. Asserts nothing.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drivers.watchdog import HeartbeatKeeper  # noqa: E402
from rigs.config import load_rig  # noqa: E402
from rigs.rig import open_rig  # noqa: E402
from verification.analysis import crossing_below  # noqa: E402
from verification.bench import Bench  # noqa: E402
from verification.spec import load_spec  # noqa: E402
from verification.emergency import run_trial  # noqa: E402

TRIALS = 12


def truth_pairs(events_path: Path) -> list[dict]:
    """Per emergency: table instants of the trigger and the true crossings."""
    events = [json.loads(x) for x in events_path.read_text().splitlines() if x.strip()]
    out, current = [], None
    for e in events:
        if e["event"].startswith("emergency:"):
            current = {"trigger": e["wall_ns"]}
            out.append(current)
        elif e["event"] == "truth:half" and current is not None:
            current["half"] = e["wall_ns"]
        elif e["event"] == "truth:residual" and current is not None:
            current["residual"] = e["wall_ns"]
    return out


def run(rig_name: str, spec_name: str) -> dict:
    config = load_rig(rig_name).model_copy(update={"time_scale": 1.0})
    spec = load_spec(spec_name)
    events = Path(tempfile.mkdtemp()) / "events.jsonl"
    errors = {"half": [], "residual": []}
    with open_rig(config, events_path=str(events)) as rig:
        keeper = HeartbeatKeeper(rig.controller, spec.plan.watchdog_s, 1.0)
        keeper.arm()
        bench = Bench(rig, keeper)
        bench.prepare()
        measured = []
        for i in range(TRIALS):
            trigger = "estop_coil" if i % 2 == 0 else "switch_pressed"
            trial = run_trial(bench, spec, trigger, "hold", spec.plan.emergency.forces_n[0], i)
            measured.append({
                "half": crossing_below(trial.t, trial.f, 0.5 * trial.f0, 0.0),
                "residual": crossing_below(trial.t, trial.f, spec.residual_force_n, 0.0),
                "trigger_ns": trial.capture.ref_ns,
            })
        keeper.stop()
        rig.make_safe()
        time.sleep(0.3)  # let the emulator flush its last events
    truths = truth_pairs(events)
    # pair each measured trial with the emulator's emergency nearest to its trigger
    for m in measured:
        truth = min(truths, key=lambda tr: abs(tr["trigger"] - m["trigger_ns"]))
        for key in ("half", "residual"):
            if key in truth:
                true_s = (truth[key] - truth["trigger"]) / 1e9
                errors[key].append(m[key] - true_s)
    return {k: np.abs(np.array(v)) * 1e3 for k, v in errors.items()}


def main() -> int:
    print(f"emergency-release latency vs emulator ground truth, time scale 1, {TRIALS} trials each")
    for rig_name, spec_name, label in (("emulated-lumbar", "lumbar", "scpi (instrument clock)"),
                                       ("emulated-cervical", "cervical", "gcl (streamed lines)")):
        err = run(rig_name, spec_name)
        for key, values in err.items():
            print(f"  {label:<26} trigger -> {key:<9} |error| p50 {np.percentile(values, 50):6.3f} ms  "
                  f"p99 {np.percentile(values, 99):6.3f} ms  max {values.max():6.3f} ms  (goal p99 <= 1 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
