"""How long can a frozen runner keep force on a table? SIGSTOP, a deadlock and SIGKILL of a
runner holding the table, idle and under two busy loops, timed from outside.

Each trial starts `python -m tests.heartbeat_runner` (an emulated rig opened the way the
plugin opens it, a heartbeat process fed through the lease, the table holding FORCE N and
the runner waiting through the lease's own bounded sleep), lets it hold for two watchdog
periods (it must still pull: the lease is renewed), freezes it at a random instant and
polls ACTUAL_FORCE over a link of its own every millisecond until it is below the
residual force. Printed per mode and load: min / median / max of that time in wall and
table seconds, against the bound the lease promises (drivers/lease.py):
lease length + watchdog period + the release time measured by the same observer.

    python benchmarks/bench_frozen_runner.py [--trials 10] [--force 400] [--modes stop,deadlock,kill] [--no-load]
                                             [--time-scale K]   (K = 1: a real bench's clock)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_stability import busy_loops  # noqa: E402
from drivers.controller import TractionController  # noqa: E402
from rigs.processes import end_process  # noqa: E402

MODES = {"stop": signal.SIGSTOP, "deadlock": signal.SIGUSR1, "kill": signal.SIGKILL}


def _stop_emulator(pid: int | None) -> None:
    if not pid:
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass


def rig_file(time_scale: float | None, out: Path) -> str:
    """The shipped emulated lumbar rig, at another time scale when asked."""
    if time_scale is None:
        return "emulated-lumbar"
    import yaml

    data = yaml.safe_load((ROOT / "rigs" / "emulated-lumbar.yaml").read_text(encoding="utf-8"))
    data["time_scale"] = time_scale
    path = out / f"emulated-lumbar-k{time_scale:g}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return str(path)


def trial(mode: str, force_n: float, rng: random.Random, rig: str) -> dict:
    proc = subprocess.Popen([sys.executable, "-m", "tests.heartbeat_runner", rig, str(force_n)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                            text=True, start_new_session=True)
    info: dict = {}
    try:
        info = json.loads(proc.stdout.readline())
        k, wd, lease_s = info["time_scale"], info["watchdog_s"], info["lease_wall_s"]
        ep = info["emulator"]["controller"]
        with TractionController(host=ep["host"], port=ep["port"], timeout_s=1.0, name="observer") as ctrl:
            residual = ctrl.residual_force()
            time.sleep(2 * wd / k + rng.uniform(0.0, wd / k))  # a random instant within a period
            st = ctrl.status()
            held = st.force_n > 0.9 * force_n and not st.watchdog_tripped
            frozen = time.perf_counter_ns()
            os.kill(proc.pid, MODES[mode])
            peak, tripped_ns = st.force_n, None
            deadline = frozen + int((4 * wd / k + 10.0) * 1e9)
            while True:
                st = ctrl.status()
                peak = max(peak, st.force_n)
                if st.watchdog_tripped and tripped_ns is None:
                    tripped_ns = st.host_ns
                if st.force_n < residual or st.host_ns > deadline:
                    break
                time.sleep(0.001)
            released_s = (st.host_ns - frozen) / 1e9 if st.force_n < residual else None
            return {"mode": mode, "held_before": held, "released_wall_s": released_s,
                    "trip_wall_s": None if tripped_ns is None else (tripped_ns - frozen) / 1e9,
                    "peak_n": peak, "k": k, "watchdog_wall_s": wd / k, "lease_wall_s": lease_s}
    finally:
        end_process(proc)
        _stop_emulator(info.get("emulator", {}).get("pid"))


def summarise(rows: list[dict], label: str) -> None:
    for mode in MODES:
        got = [r for r in rows if r["mode"] == mode]
        if not got:
            continue
        ok = [r["released_wall_s"] for r in got if r["released_wall_s"] is not None]
        k, wd, lease_s = got[0]["k"], got[0]["watchdog_wall_s"], got[0]["lease_wall_s"]
        bound = lease_s + 0.07 + wd  # drivers/lease.py: lease + the last 50 ms run window read every 20 ms
        if not ok:
            print(f"{label:6} {mode:8} never released in {len(got)} trials")
            continue
        a = np.array(ok)
        trips = [r["trip_wall_s"] for r in got if r["trip_wall_s"] is not None]
        print(f"{label:6} {mode:8} n={len(got):2d} held={sum(r['held_before'] for r in got):2d} "
              f"released={len(ok):2d}  freeze→trip max {max(trips) if trips else float('nan'):.3f} s wall "
              f"(bound lease+70 ms+period {bound:.3f} s)  freeze→below residual min/med/max "
              f"{a.min():.3f}/{np.median(a):.3f}/{a.max():.3f} s wall = {a.max() * k:.2f} s table at K={k:g}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--force", type=float, default=400.0)
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--no-load", action="store_true", help="idle only")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--time-scale", type=float, help="the emulated table's K (default: the rig file's, 10)")
    args = ap.parse_args()
    import tempfile

    rig = rig_file(args.time_scale, Path(tempfile.mkdtemp(prefix="frozen-runner-")))
    rng = random.Random(args.seed)
    modes = [m for m in args.modes.split(",") if m]
    for label in ["idle"] + ([] if args.no_load else ["loaded"]):
        loops = busy_loops(2) if label == "loaded" else []
        try:
            rows = [trial(m, args.force, rng, rig) for _ in range(args.trials) for m in modes]
        finally:
            for p in loops:
                p.kill()
                p.wait()
        summarise(rows, label)
    return 0


if __name__ == "__main__":
    sys.exit(main())
