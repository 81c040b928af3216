"""`rig demo`: one short treatment and an emergency stop, measured with the reference gauge.

The main job until the safety suites exist: it exercises every part of the rig
(emulator or bench, controller, stimulus module, gauge) end to end and prints what
the gauge saw, in table time. It verifies nothing — `rig run` will.
"""

from __future__ import annotations

import time

import numpy as np
from rich.console import Console
from rich.table import Table

from drivers.tcm1 import Phase
from rigs.config import load_rig
from rigs.rig import open_rig

TARGET_FRACTION = 0.35  # of the table's rated force
RAMP_N_S = 10.0
HOLD_S = 3.0  # table seconds at the target before the emergency stop


def _first_below(t: np.ndarray, f: np.ndarray, level: float, after: float) -> float:
    idx = np.nonzero((t >= after) & (f < level))[0]
    return float(t[idx[0]]) if idx.size else float("nan")


def run_demo(rig_path: str | None) -> int:
    console = Console()
    config = load_rig(rig_path)
    k = config.time_scale
    console.print(f"[bold]traction-rig demo[/] — rig [cyan]{config.name}[/] (time scale {k:g})")
    with open_rig(config) as rig:
        ctrl, gauge = rig.controller, rig.gauge
        ident = ctrl.identity()
        console.print(f"table {ident.kind.name.lower()} serial {ident.serial}, rated {ident.rated_force_n:.0f} N; "
                      f"gauge {config.gauge.dialect} {gauge.resource}")
        target = round(TARGET_FRACTION * ident.rated_force_n)
        ramp = min(RAMP_N_S * 5, target / 6)
        # gcl lines are host-stamped: keep their wall rate modest on a fast table clock
        rate = 1000.0 if config.gauge.dialect == "scpi" else 250.0
        try:
            ctrl.set_watchdog(2.0)
            ctrl.set_target_force(target)
            ctrl.set_ramp_rates(ramp, 100.0)
            ctrl.enable()
            gauge.start_stream(rate)
            ctrl.start()
            hold_since = None
            while True:
                ctrl.heartbeat()
                st = ctrl.status()
                if st.phase is Phase.HOLD and hold_since is None:
                    hold_since = st.uptime_s
                if hold_since is not None and st.uptime_s - hold_since >= HOLD_S:
                    break
                time.sleep(0.01)
            trigger_ns = ctrl.emergency_stop()
            time.sleep(1.5 / k)
            trace = gauge.stop_stream()
        finally:
            ctrl.make_safe()
        t_table = (trace.host_ns() - trigger_ns) / 1e9 * k  # table seconds since the trigger
        f = trace.force_n
        linear = (f > 0.2 * target) & (f < 0.8 * target) & (t_table < 0)
        slope = np.polyfit(t_table[linear], f[linear], 1)[0] if linear.sum() > 10 else float("nan")
        hold = (t_table > -1.0) & (t_table < 0)
        held = float(np.nanmean(f[hold]))
        residual = ctrl.residual_force()
        table = Table(title="what the reference gauge measured (table time)")
        table.add_column("quantity")
        table.add_column("value", justify="right")
        table.add_column("commanded / contract", justify="right")
        table.add_row("ramp slope (least squares, 20-80 %)", f"{slope:.1f} N/s", f"{ramp:.1f} N/s")
        table.add_row("force held before the stop", f"{held:.1f} N", f"{target:.1f} N")
        table.add_row("trigger -> 50 % of held force", f"{_first_below(t_table, f, 0.5 * held, 0) * 1e3:.0f} ms", "")
        table.add_row("trigger -> below residual force", f"{_first_below(t_table, f, residual, 0) * 1e3:.0f} ms",
                      f"residual {residual:.0f} N")
        table.add_row("samples / time base", f"{len(trace)}", trace.time_base)
        console.print(table)
        st = ctrl.status()
        console.print(f"after the stop: phase {st.phase.name}, e-stop latched {st.estop_latched}, "
                      f"force {st.force_n:.1f} N — the table is released")
    return 0
