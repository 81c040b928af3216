"""The flexion-distraction defects catalogue (rigs/emulator/fd_faults.py): each defect
changes the emulated table's behaviour the way its description says, measured on the
in-process table on a manual clock, and the nominal table is within every tolerance of
suites/specs/flexion-distraction.yaml on the same measurement.

The measurements read the emulator's ground truth (the section's true angles, the strap's
true force, the obstacle's contact force, the controller's phases and refusals), so they
say what the table does, not what a suite would conclude from its instruments; whether
the suites catch each defect is `rig faults matrix --kind flexion-distraction`."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from drivers.errors import ConfigError
from drivers.fdc1 import Coil, InputReg, Phase
from drivers.tcm1 import StimulusCoil
from rigs.emulator.controller import Refused
from rigs.emulator.faults import CATALOGUE, catalogue, check_faults
from rigs.emulator.fd_table import FlexionDistractionTable
from tests.test_fd_emulator_model import Bench
from verification.spec import load_spec

KIND = "flexion-distraction"
FD = catalogue(KIND)
SPEC = load_spec(KIND)
STEP = 0.005  # table seconds per recorded sample
RATED_SPEED = SPEC.rated_speed_deg_s


def bench(fault: str | None = None, seed: int = 0) -> Bench:
    return Bench(FlexionDistractionTable(seed, faults=[fault] if fault else []))


def limit(rid: str, quantity: str | None = None, **variables) -> tuple[float | None, float | None]:
    return SPEC.requirement(rid).limits(quantity, **variables)


# ---------------------------------------------------------------- one recorded treatment
@dataclass
class Record:
    t: np.ndarray
    angle: np.ndarray  # (n, 2) true angles
    encoder: np.ndarray  # (n, 2) the controller's encoders
    force: np.ndarray  # true strap force
    events: list

    def windows(self, phase: Phase) -> list[tuple[float, float]]:
        """(start, end) of each time the controller was in `phase`."""
        marks = [(t, n) for t, n in self.events if n.startswith("phase:")]
        name = f"phase:{phase.name.lower()}"
        return [(t0, t1) for (t0, n0), (t1, _) in zip(marks, marks[1:]) if n0 == name]

    def inside(self, window: tuple[float, float], margin: float = 0.0) -> np.ndarray:
        return (self.t >= window[0] + margin) & (self.t <= window[1] - margin)


def record(b: Bench, until_idle_s: float = 120.0) -> Record:
    """Sample the table every STEP until the treatment is over (PHASE 0)."""
    rows = []
    end = b.now + until_idle_s
    while True:
        b.table.advance_to(b.now + STEP)
        rows.append((b.now, *b.true_angles(), *b.c.encoder_angles(), b.force()))
        if b.phase is Phase.IDLE:
            break
        assert b.now < end, f"the treatment did not end within {until_idle_s} table s (phase {b.phase.name})"
    a = np.array(rows)
    return Record(a[:, 0], a[:, 1:3], a[:, 3:5], a[:, 5], list(b.c.events))


TREATMENTS = {
    # mode, depth, speed, pause, rest, cycles, distraction (the plan's rated-depth and lateral treatments)
    "flexion": dict(MODE=0, FLEXION_DEPTH=25.0, SPEED=20.0, PAUSE_TIME=4.0, REST_TIME=1.0, CYCLES=2,
                    DISTRACTION_FORCE=250.0),
    "shallow": dict(MODE=0, FLEXION_DEPTH=6.0, SPEED=12.0, PAUSE_TIME=0.5, REST_TIME=0.5, CYCLES=4,
                    DISTRACTION_FORCE=100.0),
    "lateral": dict(MODE=1, LATERAL_DEPTH=15.0, SPEED=20.0, PAUSE_TIME=2.0, REST_TIME=2.0, CYCLES=1,
                    DISTRACTION_FORCE=30.0),
}


def treatment(fault: str | None, name: str, seed: int = 0) -> tuple[Record, dict]:
    b = bench(fault, seed)
    settings = TREATMENTS[name]
    b.set(DISTRACTION_RATE=100.0, **settings)
    b.coil(Coil.ENABLE)
    b.coil(Coil.START)
    rec = record(b)
    return rec, {**settings, "count": b.ir(InputReg.CYCLE_COUNT)}


def kinematics(rec: Record, s: dict) -> dict[str, float]:
    """Each kinematic quantity's distance beyond its tolerance (> 0: outside), from the record."""
    axis = s["MODE"]
    depth = s["FLEXION_DEPTH"] if axis == 0 else s["LATERAL_DEPTH"]
    out = {}
    pauses = rec.windows(Phase.PAUSE_AT_DEPTH)
    ends = [np.mean(rec.angle[rec.inside(w, 0.1), axis]) for w in pauses]
    out["FD-DEPTH"] = max(abs(abs(e) - depth) for e in ends) - limit("FD-DEPTH", depth=depth)[1]
    rests = rec.windows(Phase.REST_AT_NEUTRAL)
    out["FD-NEUTRAL"] = max(abs(np.mean(rec.angle[rec.inside(w, 0.1), axis])) for w in rests) - limit("FD-NEUTRAL")[1]
    moves = rec.windows(Phase.MOVING_OUT) + rec.windows(Phase.MOVING_BACK)
    speed = np.abs(np.gradient(rec.angle[:, axis], rec.t))
    cruise = [np.median(speed[rec.inside(w, (w[1] - w[0]) / 3)]) for w in moves]
    set_speed = s["SPEED"]
    out["FD-SPEED"] = max(abs(c - set_speed) for c in cruise) - limit("FD-SPEED", speed=set_speed)[1]
    out["FD-SPEED.above-rated"] = (speed.max() - RATED_SPEED) - limit("FD-SPEED", "above-rated",
                                                                      rated_speed=RATED_SPEED)[1]
    timing = [(w[1] - w[0], s["PAUSE_TIME"]) for w in pauses] + [(w[1] - w[0], s["REST_TIME"]) for w in rests]
    out["FD-TIMING"] = max(abs(d - setting) - limit("FD-TIMING", setting=setting)[1] for d, setting in timing)
    out["FD-CYCLES"] = abs(s["count"] - s["CYCLES"]) - limit("FD-CYCLES")[1]
    at_rest = np.zeros(len(rec.t), bool)
    for w in pauses + rests:
        at_rest |= rec.inside(w, 0.1)
    out["FD-ENCODER"] = np.abs(rec.encoder[at_rest] - rec.angle[at_rest]).max() - limit("FD-ENCODER")[1]
    setting = s["DISTRACTION_FORCE"]
    out["DX-STATIC"] = max(abs(np.mean(rec.force[rec.inside(w)]) - setting) for w in moves) - limit(
        "DX-STATIC", setting=setting)[1]
    return out


# ---------------------------------------------------------------- an emergency stop at the rated speed
def stop_trial(fault: str | None, trigger: str, seed: int = 0, force: float = 250.0) -> dict[str, float]:
    """Flexion to 20° at the rated speed with `force` held, the trigger at mid-move: the ES-*
    quantities beyond their tolerances, and the section after RESET."""
    b = bench(fault, seed)
    b.set(MODE=0, FLEXION_DEPTH=20.0, SPEED=RATED_SPEED, PAUSE_TIME=1.0, REST_TIME=1.0, CYCLES=0,
          DISTRACTION_FORCE=force, DISTRACTION_RATE=100.0)
    b.coil(Coil.ENABLE)
    b.coil(Coil.START)
    b.until_phase(Phase.MOVING_OUT)
    b.until(lambda: b.true_angles()[0] >= 10.0, 5.0, "mid-move")
    t0 = b.now
    held = b.force()
    {"estop": lambda: b.coil(Coil.ESTOP), "unplug": lambda: b.relay(StimulusCoil.PATIENT_SWITCH_UNPLUG)}[trigger]()
    b.advance(8.0)
    t = np.arange(t0, t0 + 8.0, 1e-3)
    angle = b.table.angles_at(t)[:, 0]
    speed = np.abs(np.gradient(angle, t))
    moving = np.nonzero(speed >= 0.5)[0]
    stop_s = t[moving[-1]] - t0 if len(moving) else 0.0
    at_rest = angle[t >= t0 + stop_s][0]
    hold = t[(t >= t0 + stop_s) & (t <= t0 + stop_s + 5.0)]
    force = b.table.force_at(t[t <= t0 + 3.0])
    residual = b.table.params.residual_force_n
    below = np.nonzero(b.table.force_at(t) >= residual)[0]
    release_s = t[below[-1]] - t0 if len(below) else 0.0
    out = {
        "ES-TIME": stop_s - limit("ES-TIME")[1],
        "ES-TRAVEL": abs(at_rest - angle[0]) - limit("ES-TRAVEL")[1],
        "ES-HOLD": np.abs(b.table.angles_at(hold)[:, 0] - at_rest).max() - limit("ES-HOLD")[1],
        "ES-RELEASE": release_s - limit("ES-RELEASE")[1],
        "ES-RELEASE.rise": (force.max() - held) - limit("ES-RELEASE", "rise", force=held)[1],
    }
    before = b.true_angles()[0]
    try:
        b.coil(Coil.RESET)
    except Refused:  # a distraction never released (a defect's own finding above): nothing to reset
        pass
    b.advance(3.0)
    out["ES-HOLD.return"] = abs(b.true_angles()[0] - before) - limit("ES-HOLD", "return")[1]
    return out


# ---------------------------------------------------------------- interlocks and the obstruction
def interlocks(fault: str | None, seed: int = 0) -> dict[str, float]:
    """Boolean interlocks as +1 violated / -1 kept; IL-TRAVEL as seconds beyond its limit."""
    out = {}
    b = bench(fault, seed)
    b.set(ANGLE_LIMIT=20.0, LATERAL_LIMIT=12.0)
    refused = 0
    for name, at in (("FLEXION_DEPTH", 20.0), ("LATERAL_DEPTH", 12.0)):
        for above in (0.1, 5.0):  # the plan's corner and well above (IL-DEPTH)
            try:
                b.set(**{name: at + above})
            except Refused as refusal:
                refused += refusal.code == 3
    out["IL-DEPTH"] = 1.0 if refused < 4 else -1.0
    b.coil(Coil.ENABLE)
    try:  # a limit written while enabled (IL-LIMIT-LOCK)
        b.set(ANGLE_LIMIT=10.0)
        out["IL-LIMIT-LOCK"] = 1.0
    except Refused:
        out["IL-LIMIT-LOCK"] = -1.0
    b = bench(fault, seed)
    b.set(MODE=0, FLEXION_DEPTH=10.0, SPEED=20.0, PAUSE_TIME=5.0, DISTRACTION_FORCE=100.0, DISTRACTION_RATE=100.0)
    b.coil(Coil.ENABLE)
    b.coil(Coil.START)
    b.until_phase(Phase.PAUSE_AT_DEPTH)
    try:  # RESET with the distraction held (IL-RESET)
        b.coil(Coil.RESET)
        out["IL-RESET"] = 1.0
    except Refused:
        out["IL-RESET"] = -1.0
    b.coil(Coil.ESTOP)
    b.advance(4.0)
    b.coil(Coil.ENABLE, False)
    b.coil(Coil.RESET)
    b.set(ANGLE_LIMIT=5.0)  # the plan's over-travel case: standing at 10°, the limit lowered to 5°
    t0 = b.now
    b.coil(Coil.ENABLE)
    trips = [t for t, n in b.c.events if n == "emergency:overtravel" and t >= t0]
    out["IL-TRAVEL"] = (trips[0] - t0 if trips else math.inf) - limit("IL-TRAVEL")[1]
    b = bench(fault, seed)
    b.coil(Coil.ENABLE)
    b.coil(Coil.ESTOP)
    try:  # START with the e-stop latched (IL-START)
        b.coil(Coil.START)
        out["IL-START"] = 1.0
    except Refused:
        out["IL-START"] = -1.0
    return out


def obstruction(fault: str | None, speed: float = RATED_SPEED, seed: int = 0) -> dict[str, float]:
    """The section driven into the obstacle (10°): peak force on it, back-off, release."""
    b = bench(fault, seed)
    b.relay(StimulusCoil.OBSTACLE)
    b.set(MODE=0, FLEXION_DEPTH=15.0, SPEED=speed, PAUSE_TIME=1.0)
    b.coil(Coil.ENABLE)
    b.coil(Coil.START)
    b.until_phase(Phase.EMERGENCY_STOPPED, 10.0)
    b.advance(3.0)
    t = np.arange(0.0, b.now, 1e-3)
    contact = b.table.obstacle_cell.force_at(t)
    angle = b.table.angles_at(t)[:, 0]
    peak = int(np.argmax(contact))
    within = (t >= t[peak]) & (t <= t[peak] + 1.0)
    freed = np.nonzero((contact < 10.0) & (t > t[peak]))[0]
    backoff = b.table.params.backoff_deg
    return {
        "IL-OBSTRUCT": contact[peak] - limit("IL-OBSTRUCT")[1],
        "IL-OBSTRUCT.backoff": (limit("IL-OBSTRUCT", "backoff", backoff=backoff)[0]
                                - (angle[peak] - angle[within].min())),
        "IL-OBSTRUCT.release": (t[freed[0]] - t[peak] if len(freed) else math.inf) - limit("IL-OBSTRUCT", "release")[1],
    }


# ---------------------------------------------------------------- what each defect is measured by
def measured(fault: str | None, seed: int = 0) -> dict[str, float]:
    """Every quantity above, for one table (a fault's are only those its test needs)."""
    out = {}
    for name in TREATMENTS:
        rec, settings = treatment(fault, name, seed)
        for key, value in kinematics(rec, settings).items():
            out[key] = max(out.get(key, -math.inf), value)
    out.update(stop_trial(fault, "estop", seed))
    out["ES-UNPLUG"] = stop_trial(fault, "unplug", seed)["ES-TIME"]
    out.update(interlocks(fault, seed))
    out.update(obstruction(fault, seed=seed))
    return out


#: defect -> how it is seen: (measurement, quantity beyond its tolerance)
SEEN = {
    "lateral-side-short": (lambda f: kinematics(*treatment(f, "lateral")), "FD-DEPTH"),
    "depth-overshoot": (lambda f: kinematics(*treatment(f, "shallow")), "FD-DEPTH"),
    "neutral-short": (lambda f: kinematics(*treatment(f, "flexion")), "FD-NEUTRAL"),
    "slow-cruise": (lambda f: kinematics(*treatment(f, "flexion")), "FD-SPEED"),
    "fast-cruise": (lambda f: kinematics(*treatment(f, "flexion")), "FD-SPEED.above-rated"),
    "long-pause": (lambda f: kinematics(*treatment(f, "flexion")), "FD-TIMING"),
    "short-rest": (lambda f: kinematics(*treatment(f, "lateral")), "FD-TIMING"),
    "extra-cycle": (lambda f: kinematics(*treatment(f, "flexion")), "FD-CYCLES"),
    "treatment-timer-slow": (lambda f: {"FD-CYCLES.time": abs(timer_late(f, 240)) - limit("FD-CYCLES", "time")[1]},
                             "FD-CYCLES.time"),
    "encoder-offset": (lambda f: kinematics(*treatment(f, "flexion")), "FD-ENCODER"),
    "encoder-scale": (lambda f: kinematics(*treatment(f, "flexion")), "FD-ENCODER"),
    "sagging-distraction": (lambda f: kinematics(*treatment(f, "flexion")), "DX-STATIC"),
    "depth-limit-off-by-one": (interlocks, "IL-DEPTH"),
    "limits-unlocked": (interlocks, "IL-LIMIT-LOCK"),
    "late-overtravel": (interlocks, "IL-TRAVEL"),
    "start-while-latched": (interlocks, "IL-START"),
    "reset-under-distraction": (interlocks, "IL-RESET"),
    "obstruction-threshold-high": (obstruction, "IL-OBSTRUCT"),
    "no-backoff": (obstruction, "IL-OBSTRUCT.backoff"),
    "stop-overrun": (lambda f: stop_trial(f, "estop"), "ES-TRAVEL"),
    "slow-emergency-stop": (lambda f: stop_trial(f, "estop"), "ES-TIME"),
    "creeping-brake": (lambda f: stop_trial(f, "estop"), "ES-HOLD"),
    "returns-after-reset": (lambda f: stop_trial(f, "estop"), "ES-HOLD.return"),
    "unplug-not-a-trigger": (lambda f: stop_trial(f, "unplug"), "ES-TIME"),
    "distraction-held-on-stop": (lambda f: stop_trial(f, "estop"), "ES-RELEASE"),
    "late-winch-stop": (lambda f: stop_trial(f, "estop"), "ES-RELEASE.rise"),
    "slow-distraction-release": (lambda f: stop_trial(f, "estop"), "ES-RELEASE"),
}


def test_every_defect_is_measured_here_and_mapped_to_a_requirement_it_breaks():
    assert sorted(SEEN) == sorted(FD.entries) and len(FD.entries) >= 14
    ids = {r.id for r in SPEC.requirements}
    for name, entry in FD.entries.items():
        assert entry.requirements and entry.summary, name
        assert all(r.partition(".")[0] in ids for r in (*entry.requirements, *entry.collateral)), name
        seen = SEEN[name][1]
        assert seen in entry.requirements or seen.partition(".")[0] in entry.requirements, name


@pytest.mark.parametrize("name", sorted(SEEN))
def test_each_defect_breaks_what_it_says_and_the_nominal_table_does_not(name):
    measure, quantity = SEEN[name]
    assert measure(None)[quantity] <= 0.0, f"the nominal table is outside {quantity}"
    assert measure(name)[quantity] > 0.0, f"{name}: {quantity} within its tolerance"


@pytest.mark.parametrize("seed", [1, 7])
def test_the_nominal_table_is_within_every_tolerance(seed):
    beyond = {k: v for k, v in measured(None, seed).items() if v > 0.0}
    assert not beyond, beyond


def test_the_obstruction_threshold_defect_lives_at_the_rated_speed():
    assert obstruction("obstruction-threshold-high", speed=5.0)["IL-OBSTRUCT"] <= 0.0
    assert obstruction("obstruction-threshold-high")["IL-OBSTRUCT"] > 0.0


def timer_late(fault: str | None, seconds: int) -> float:
    """How late (s) a treatment ended by TREATMENT_TIME starts its controlled end."""
    b = bench(fault)
    b.set(MODE=0, FLEXION_DEPTH=10.0, SPEED=10.0, PAUSE_TIME=4.0, REST_TIME=2.0, CYCLES=0, TREATMENT_TIME=seconds)
    b.coil(Coil.ENABLE)
    b.coil(Coil.START)
    while b.phase is not Phase.CONTROLLED_END:
        b.table.advance_to(b.now + 0.1)
        assert b.now < 2 * seconds
    started = [t for t, n in b.c.events if n == "start"][0]
    return [t for t, n in b.c.events if n == "phase:controlled_end"][0] - started - seconds


def test_the_slow_timer_lives_in_long_sessions_only():
    """treatment-timer-slow: a 30 s treatment ends within ±30 s, a 240 s one beyond (profile full)."""
    assert FD.entries["treatment-timer-slow"].profile == "full"
    assert timer_late("treatment-timer-slow", 30) <= limit("FD-CYCLES", "time")[1]


def test_the_distraction_is_held_while_the_section_moves_only_by_the_force_loop():
    """The section's motion shortens the strap line: the nominal loop takes it up (DX-STATIC
    holds), a winch that cannot take up while the section moves lets it sag by about the
    stiffness times the shortening."""
    rec, s = treatment(None, "flexion")
    out = rec.windows(Phase.MOVING_OUT)[0]
    nominal = np.mean(rec.force[rec.inside(out)]) - s["DISTRACTION_FORCE"]
    sag_rec, _ = treatment("sagging-distraction", "flexion")
    sag = np.mean(sag_rec.force[sag_rec.inside(sag_rec.windows(Phase.MOVING_OUT)[0])]) - s["DISTRACTION_FORCE"]
    assert -limit("DX-STATIC", setting=s["DISTRACTION_FORCE"])[1] < nominal < 0.0  # a small lag, taken up
    assert sag < 2 * limit("DX-STATIC", setting=s["DISTRACTION_FORCE"])[1] * -1.0
    assert np.all(np.abs(rec.force[rec.inside(rec.windows(Phase.PAUSE_AT_DEPTH)[0], 0.5)]
                         - s["DISTRACTION_FORCE"]) < 5.0)  # held at the depth


def test_a_slack_strap_moved_by_the_section_takes_no_force():
    """Without distraction the section's motion loads nothing: the strap is slack."""
    b = bench()
    b.set(MODE=0, FLEXION_DEPTH=20.0, SPEED=20.0, CYCLES=1, DISTRACTION_FORCE=0.0)
    b.coil(Coil.ENABLE)
    b.coil(Coil.START)
    rec = record(b)
    assert rec.force.max() < 1.0


# ---------------------------------------------------------------- the registry
def test_the_registry_keys_each_table_kind_to_its_catalogue():
    assert catalogue("lumbar") is catalogue("cervical")
    assert catalogue("lumbar").entries is CATALOGUE and not set(CATALOGUE) & set(FD.entries)
    check_faults(KIND, ["stop-overrun", "creeping-brake"])
    with pytest.raises(ConfigError, match="--fault slow-release: unknown fault of a flexion-distraction table"):
        check_faults(KIND, ["slow-release"])
    with pytest.raises(ConfigError, match="table kind 'rowing' has no defects catalogue"):
        catalogue("rowing")
    with pytest.raises(ConfigError, match="unknown fault 'nope'; known faults: "):
        FlexionDistractionTable(0, faults=["nope"])


def test_a_named_defect_is_its_numbers_and_switches():
    table = FlexionDistractionTable(3, faults=["stop-overrun", "late-winch-stop"])
    assert table.params.stop_overrun_deg == 1.5 and table.defects.late_drive_stop_s == 0.08
    nominal = FlexionDistractionTable(3)
    assert nominal.params.stop_overrun_deg == 0.0 and nominal.defects.late_drive_stop_s == 0.0


# ---------------------------------------------------------------- rig emulate --kind flexion-distraction
def test_rig_emulate_takes_the_kinds_faults_and_wear():
    from rigs.emulator.process import EMULATED_KINDS, EmulatorOptions

    options = EmulatorOptions(kind=KIND, faults=["creeping-brake"], wear=0.5)
    options.check()
    table = EMULATED_KINDS[KIND].build(options)
    assert table.params.brake_creep_deg_s == 0.06 and table.params.release_wear == 0.5
    nominal = FlexionDistractionTable(0).params.winch(0).release_tau_s
    assert table.params.winch(0).release_tau_s == pytest.approx(nominal * 1.5)
    with pytest.raises(ConfigError, match="--fault slow-release: unknown fault of a flexion-distraction table"):
        EmulatorOptions(kind=KIND, faults=["slow-release"]).check()


def test_the_obstacle_gauge_has_a_serial_of_its_own():
    """The embedded rig file's obstacle gauge is EMU-G-0002; the distraction gauge EMU-G-0001."""
    from rigs.config import load_rig
    from rigs.emulator.process import EMULATED_KINDS, EmulatorOptions

    options = EmulatorOptions(kind=KIND)
    table = EMULATED_KINDS[KIND].build(options)
    obstacle = EMULATED_KINDS[KIND].instruments(table, options)["obstacle_gauges"]["scpi"]
    assert obstacle.identity[2] == load_rig("emulated-flexion-distraction").obstacle.gauge.serial == "EMU-G-0002"


# ---------------------------------------------------------------- rig faults list / matrix --kind
def test_rig_faults_list_of_the_kind(capsys):
    from argparse import Namespace

    from rigcli.faults import run_list

    assert run_list(Namespace(kind=KIND)) == 0
    out = capsys.readouterr().out
    assert f"{len(FD.entries)} defects of the emulated flexion-distraction table" in out
    assert "stop-overrun" in out and "slow-release" not in out.replace("slow-distraction-release", "")


def test_the_matrix_runs_the_kinds_rig_and_specification(tmp_path, monkeypatch):
    """One machinery: an FD defect's run is `rig run` on the embedded FD rig with the FD
    specification's copy, its fault and (profile full) its profile."""
    import subprocess

    import yaml

    import rigcli.faults as matrix

    commands = []
    monkeypatch.setattr(matrix.subprocess, "run", lambda cmd, **kw: commands.append(cmd) or subprocess.CompletedProcess(
        cmd, 1, "", "no rig here\n"))
    spec = matrix._spec_copy(3, tmp_path, KIND)
    data = yaml.safe_load(spec.read_text())
    emergency = data["plan"]["emergency"]
    assert data["kind"] == KIND and emergency["trials"] == emergency["quick_trials"] == 3
    for fault in ("treatment-timer-slow", "stop-overrun"):
        matrix._run_one("x", fault, 1, spec, tmp_path, kind=KIND)
    full, quick = commands
    assert full[full.index("--rig") + 1] == "emulated-flexion-distraction" and "treatment-timer-slow" in full
    assert full[full.index("--profile") + 1] == "full" and "--profile" not in quick
    assert matrix.collateral("stop-overrun", {"ES-TRAVEL": "FAIL", "IL-OBSTRUCT": "FAIL", "FD-DEPTH": "FAIL"},
                             FD) == (["IL-OBSTRUCT"], ["FD-DEPTH"])


def test_rig_faults_takes_the_kind_on_its_command_line():
    """`rig faults [list|matrix] --kind K` reaches the kind's catalogue; an unknown kind is argparse's one line."""
    import subprocess
    import sys

    def rig(*args):
        return subprocess.run([sys.executable, "-m", "rigcli", "faults", *args], capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL)

    for args in (("list", "--kind", KIND), ("--kind", KIND)):
        done = rig(*args)
        assert done.returncode == 0, done.stderr
        assert f"{len(FD.entries)} defects of the emulated flexion-distraction table" in done.stdout
    assert "defects of the emulated table" in rig("list").stdout  # lumbar by default, as before
    wrong = rig("list", "--kind", "circumduction")
    assert wrong.returncode == 2 and "invalid choice: 'circumduction'" in wrong.stderr


def test_rig_run_and_rig_emulate_check_a_fault_against_the_rigs_own_kind(tmp_path):
    """An FD defect is a fault of an FD rig and of `rig emulate --kind flexion-distraction`, and
    a traction defect named for an FD rig is one line naming the kind — before any run directory."""
    import subprocess
    import sys

    def rig(*args):
        return subprocess.run([sys.executable, "-m", "rigcli", *args], capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)

    wrong = rig("run", "--rig", "emulated-flexion-distraction", "--fault", "slow-release", "--run-dir", str(tmp_path))
    assert wrong.returncode == 2
    assert wrong.stderr.strip().splitlines()[-1].startswith(
        "rig: --fault slow-release: unknown fault of a flexion-distraction table; known: ")
    assert not list(tmp_path.iterdir())
    lumbar = rig("run", "--fault", "stop-overrun", "--run-dir", str(tmp_path))
    assert lumbar.returncode == 2 and "--fault stop-overrun: unknown fault of a lumbar table" in lumbar.stderr
    emulate = rig("emulate", "--kind", KIND, "--fault", "slow-release")
    assert emulate.returncode == 2 and "--fault slow-release: unknown fault of a flexion-distraction table" in emulate.stderr
