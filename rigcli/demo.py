"""`rig demo`: one short treatment and an emergency stop, measured with the reference
instruments (the gauge; on a flexion-distraction table the inclinometer beside it).

It exercises every part of the rig (emulator or bench, controller, stimulus module,
reference instruments) end to end and prints what the instruments saw, in table time.
It verifies nothing — `rig run` does. Each controller protocol has its demo (DEMOS).
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
    from drivers import kinds

    console = Console()
    config = load_rig(rig_path)
    return DEMOS[kinds.controller_for_table(config.table.kind).protocol](config, console)


def traction_demo(config, console: Console) -> int:
    """A TCM-1 table: a ramp to a third of the rated force, a hold, an emergency stop."""
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


# ---------------------------------------------------------------- flexion-distraction
FD_DEPTH_FRACTION = 0.6  # of the rated flexion travel
FD_FORCE_FRACTION = 0.25  # of the rated distraction force
FD_RAMP_N_S = 100.0
FD_PAUSE_S = 1.0
FD_REST_S = 0.5
FD_ANGLE_RATE_HZ = 200.0
FD_AFTER_STOP_S = 1.5  # table seconds recorded after the emergency stop


def flexion_demo(config, console: Console) -> int:
    """An FDC-1 table: a flexion cycle at the rated speed with the distraction held, then
    an emergency stop half way down the second move out; the inclinometer and the gauge
    buffered throughout."""
    from drivers.fdc1 import Mode
    from drivers.fdc1 import Phase as FdPhase
    from verification.bench import GAUGE_RATE_HZ
    from verification.kinematics import cruise_speed, segment, stop

    k = config.time_scale
    console.print(f"[bold]traction-rig demo[/] — rig [cyan]{config.name}[/] (time scale {k:g})")
    with open_rig(config) as rig:
        ctrl, gauge, tilt = rig.controller, rig.gauge, rig.inclinometer
        ident = ctrl.identity()
        console.print(f"table {ident.kind.name.lower()} serial {ident.serial}: flexion {ident.rated_depth_deg:g}°, "
                      f"lateral {ident.rated_lateral_deg:g}°, {ident.rated_speed_deg_s:g} °/s, distraction "
                      f"{ident.rated_force_n:.0f} N; gauge {config.gauge.dialect} {gauge.resource}; inclinometer "
                      f"{config.inclinometer.dialect} {tilt.resource}")
        depth = round(FD_DEPTH_FRACTION * ident.rated_depth_deg, 1)
        speed = ident.rated_speed_deg_s
        force = round(FD_FORCE_FRACTION * ident.rated_force_n)
        gauge_rate = GAUGE_RATE_HZ[config.gauge.dialect]  # the suites' rate: gcl lines are host-stamped
        moves_out = 0
        try:
            ctrl.set_watchdog(2.0)
            ctrl.set_mode(Mode.FLEXION)
            ctrl.set_depths(flexion_deg=depth)
            ctrl.set_speed(speed)
            ctrl.set_times(pause_s=FD_PAUSE_S, rest_s=FD_REST_S, treatment_s=0)
            ctrl.set_cycles(2)
            ctrl.set_distraction_rate(FD_RAMP_N_S)
            ctrl.set_distraction_force(force)
            ctrl.enable()
            tilt.start_stream(FD_ANGLE_RATE_HZ)
            gauge.start_stream(gauge_rate)
            start_ns = ctrl.start()
            previous = None
            while True:
                ctrl.heartbeat()
                st = ctrl.status()
                if st.phase is FdPhase.MOVING_OUT and previous is not FdPhase.MOVING_OUT:
                    moves_out += 1
                previous = st.phase
                if moves_out >= 2 and st.flexion_deg >= depth / 2:
                    break
                if st.phase is FdPhase.IDLE and moves_out:
                    break  # the treatment ended on its own (a table that skipped the second move)
                time.sleep(0.005)
            trigger_ns = ctrl.emergency_stop()
            time.sleep(FD_AFTER_STOP_S / k)
            angles = tilt.stop_stream()
            trace = gauge.stop_stream()
        finally:
            ctrl.make_safe()
        t_a = (angles.host_ns() - trigger_ns) / 1e9 * k
        ok = np.isfinite(angles.x_deg)
        t_a, x = t_a[ok], angles.x_deg[ok]
        before = t_a < 0
        seg = segment(t_a[before], x[before], still_deg_s=1.0, resolution_deg=config.inclinometer.resolution_deg)
        table = Table(title="what the reference instruments measured (table time)")
        table.add_column("quantity")
        table.add_column("value", justify="right")
        table.add_column("commanded / contract", justify="right")
        if len(seg.moves) >= 2:
            table.add_row("end angle of the first move out (inclinometer)", f"{seg.end_angle(0).value:.2f}°",
                          f"{depth:g}°")
            table.add_row("pause at the depth", f"{seg.dwells[1].duration.value:.2f} s", f"{FD_PAUSE_S:g} s")
            table.add_row("cruise speed (least squares)", f"{abs(cruise_speed(seg.moves[0]).value):.2f} °/s",
                          f"{speed:g} °/s")
            table.add_row("back at neutral", f"{seg.dwells[2].level.value:+.2f}°", "0°")
        t_f = (trace.host_ns() - trigger_ns) / 1e9 * k
        f = trace.force_n
        moving = (t_f > -1.0) & (t_f < 0)
        table.add_row("distraction held while moving (gauge)", f"{float(np.nanmean(f[moving])):.1f} N", f"{force} N")
        if moves_out >= 2:
            s = stop(t_a, x, 0.0, resolution_deg=config.inclinometer.resolution_deg)
            table.add_row("trigger -> section at rest", f"{s.time.value * 1e3:.0f} ms", "")
            table.add_row("travel after the trigger", f"{s.travel.value:.2f}°", "")
        residual = ctrl.residual_force()
        table.add_row("trigger -> below residual force", f"{_first_below(t_f, f, residual, 0) * 1e3:.0f} ms",
                      f"residual {residual:.0f} N")
        table.add_row("samples (inclinometer / gauge)", f"{len(t_a)} / {len(trace)}",
                      f"{(trigger_ns - start_ns) / 1e9 * k:.1f} s to the trigger")
        console.print(table)
        st = ctrl.status()
        console.print(f"after the stop: phase {st.phase.name}, e-stop latched {st.estop_latched}, section at "
                      f"{st.flexion_deg:+.1f}° braked {st.brake_engaged}, distraction {st.force_n:.1f} N — released")
    return 0


#: each controller protocol's demo (drivers/kinds.py names the protocol of a table kind)
DEMOS = {"TCM-1": traction_demo, "FDC-1": flexion_demo}
