"""Operator steps: the console on a pseudo-terminal pair (in process), then `rig run -k
operator` end to end under a pseudo-terminal (pexpect), this test acting as the person at
the bench: it presses the emulated table's red e-stop through the SIO-1 stimulus module,
answers the prompts and reads the run record. Every wait is bounded; nothing here asserts
on timing (a hand press's trigger is known to a few status reads: its gauge verdicts may
be INCONCLUSIVE on a loaded machine, never FAIL on a nominal table).

`pytest.main` cannot run twice in one process (labgrid's plugin), hence the children
(tests/child_run.py)."""

from __future__ import annotations

import concurrent.futures
import os
import re
import select
import signal
import sys

import pexpect
import pexpect.fdpexpect
import pytest

from drivers.controller import TractionController
from drivers.stimulus import StimulusModule
from drivers.tcm1 import FaultCode, Phase, StimulusCoil
from fixtures.operator import (
    OPERATOR_DID_IT,
    Operator,
    OperatorAborted,
    OperatorConsole,
    OperatorNoAnswer,
    Terminal,
    bound_operator_tests,
    seconds,
)
from reports.record import RunRecord
from reports.rundir import Event, RecordRead, scan_record
from reports.render import render_report
from reports.verdicts import summarise
from verification.spec import load_spec
from tests.child_run import HOLD_ARGS, REPO, rig_run_argv
from tests.synthetic_run import build_run

pytest_plugins = ["pytester"]

SPEC = load_spec("lumbar")  # the default rig of `rig run`: the emulated lumbar table
RESIDUAL_N = SPEC.residual_force_n
RELEASE_TABLE_S = SPEC.requirement("ER-RESIDUAL").limits()[1]  # below the residual force within 3 s
MARGIN_WALL_S = 2.0  # signal handling, polling and scheduling on a loaded machine
TEST = "suites/test_operator_checks.py::test_estop_button_pressed_by_hand"
EXPECT_S = 60  # bound of every wait for the child's output
RELEASE_IDS = ["ER-NORISE", "ER-HALF", "ER-RESIDUAL", "ER-SNAP"]


def events(run_dir_or_record, kind: str) -> list[dict]:
    record = run_dir_or_record if isinstance(run_dir_or_record, RecordRead) else scan_record(run_dir_or_record)
    return record.of(Event(kind))


# ================================================================ the console, in process
@pytest.fixture
def tty(tmp_path):
    """A console on the slave end of a pty pair; the test types on the master (pexpect)."""
    master, slave = os.openpty()
    record = RunRecord(tmp_path / "run")
    pool = concurrent.futures.ThreadPoolExecutor(1)

    class Tty:
        def __init__(self) -> None:
            self.person = pexpect.fdpexpect.fdspawn(master, encoding="utf-8", timeout=10)
            self.record, self.dir = record, tmp_path / "run"

        def console(self, name: str | None = "alice", timeout_s: float = 10.0) -> OperatorConsole:
            return OperatorConsole(Terminal(slave, owned=False), record, name, timeout_s)

        def operator(self, console: OperatorConsole, requirements=("ER-RESIDUAL", "ER-LATCH")) -> Operator:
            return Operator(console, "suites/test_x.py::test_x", list(requirements))

        def run(self, fn, *args, **kwargs) -> concurrent.futures.Future:
            """The console blocks on its prompt: it runs in a thread while the test types."""
            return pool.submit(fn, *args, **kwargs)

    yield Tty()
    pool.shutdown(wait=True)
    record.close()
    os.close(slave)
    os.close(master)


def test_confirm_records_who_answered_what(tty):
    op = tty.operator(tty.console())
    answer = tty.run(op.confirm, "ER-RESIDUAL", "cord-slack", "Has the cord gone slack? [y/n]")
    tty.person.expect("Has the cord gone slack")
    tty.person.expect("Answer y or n: ")
    tty.person.sendline("maybe")  # not an answer: asked again within the same bound
    tty.person.expect("Answer y or n: ")
    tty.person.sendline("N")
    assert answer.result(10) is False
    (step,) = events(tty.dir, "operator-step")
    assert step["test"] == "suites/test_x.py::test_x" and step["requirements"] == ["ER-RESIDUAL"]
    assert step["step"] == "cord-slack" and step["prompt"] == "confirm"
    assert step["instruction"] == "Has the cord gone slack? [y/n]"
    assert step["answer"] == "n" and step["answered"] is True and step["outcome"] == "answered"
    assert step["operator"] == "alice" and step["timeout_s"] == 10.0
    assert step["asked_utc"] <= step["answered_utc"] and step["waited_s"] >= 0


def test_done_and_yes(tty):
    op = tty.operator(tty.console())
    done = tty.run(op.done, "ER-LATCH", "release-estop", "Twist the button out.")
    tty.person.expect("Type done when done: ")
    tty.person.sendline("ok")  # only "done" is done
    tty.person.expect("Type done when done: ")
    tty.person.sendline("done")
    assert done.result(10).answer == "done"
    yes = tty.run(op.confirm, ["ER-RESIDUAL", "ER-LATCH"], "both", "Both? [y/n]")
    tty.person.expect("Answer y or n: ")
    tty.person.sendline("yes")
    assert yes.result(10) is True
    assert [(s["step"], s["answer"], s["requirements"]) for s in events(tty.dir, "operator-step")] == [
        ("release-estop", "done", ["ER-LATCH"]), ("both", "y", ["ER-RESIDUAL", "ER-LATCH"])]


def test_no_answer_is_recorded_and_fails(tty):
    op = tty.operator(tty.console(timeout_s=0.3))
    with pytest.raises(OperatorNoAnswer, match=r"operator step cord-slack \(ER-RESIDUAL\): no answer within 0.3 s"):
        op.confirm("ER-RESIDUAL", "cord-slack", "Has the cord gone slack? [y/n]")
    (step,) = events(tty.dir, "operator-step")
    assert step["answered"] is False and step["outcome"] == "no answer"
    assert step["answer"] is None and step["answered_utc"] is None and step["waited_s"] is not None
    tty.person.expect("no answer: the check fails")


def test_type_ahead_is_not_an_answer(tty):
    """A line typed before the question was shown is discarded, not taken as its answer."""
    console = tty.console(timeout_s=0.3)
    tty.person.sendline("y")
    assert select.select([console.terminal.fd], [], [], 10)[0]  # it is waiting in the terminal
    with pytest.raises(OperatorNoAnswer):
        tty.operator(console).confirm("ER-RESIDUAL", "cord-slack", "Has the cord gone slack? [y/n]")
    assert events(tty.dir, "operator-step")[0]["answer"] is None


def test_name_is_asked_once_when_none_was_given(tty):
    op = tty.operator(tty.console(name=None))
    first = tty.run(op.confirm, "ER-RESIDUAL", "one", "First? [y/n]")
    tty.person.expect("Your name")
    tty.person.sendline("")  # a name is needed
    tty.person.expect("a name of 1 to 80 characters")
    tty.person.sendline("Bob Smith")
    tty.person.expect("OPERATOR Bob Smith")
    tty.person.expect("Answer y or n: ")
    tty.person.sendline("y")
    assert first.result(10) is True
    second = tty.run(op.confirm, "ER-RESIDUAL", "two", "Second? [y/n]")
    tty.person.expect("Answer y or n: ")
    assert "Your name" not in tty.person.before
    tty.person.sendline("n")
    assert second.result(10) is False
    assert [e["operator"] for e in events(tty.dir, "operator-name")] == ["Bob Smith"]
    assert [s["operator"] for s in events(tty.dir, "operator-step")] == ["Bob Smith", "Bob Smith"]


def test_action_answered_by_the_table_by_done_or_aborted(tty):
    op = tty.operator(tty.console(), RELEASE_IDS)
    polls = []

    def table_reports_on_third_poll():
        polls.append(1)
        return "e-stop reported" if len(polls) >= 3 else None

    step = op.await_action(RELEASE_IDS, "press-estop", "PRESS the red button.", table_reports_on_third_poll)
    assert step.answer == "e-stop reported" and step.prompt == "action" and len(polls) == 3

    pressed = tty.run(op.await_action, "ER-HALF", "press-again", "PRESS it again.", lambda: None)
    tty.person.expect("PRESS it again")
    tty.person.sendline("done")  # pressed, and the table did not notice: a finding, answered
    assert pressed.result(10).answer == OPERATOR_DID_IT

    aborted = tty.run(op.await_action, "ER-HALF", "press-third", "PRESS it a third time.", lambda: None)
    tty.person.expect("PRESS it a third time")
    tty.person.sendline("abort")
    with pytest.raises(OperatorAborted, match="the operator alice aborted"):
        aborted.result(10)
    outcomes = [(s["step"], s["outcome"], s["answered"]) for s in events(tty.dir, "operator-step")]
    assert outcomes == [("press-estop", "answered", True), ("press-again", "answered", True),
                        ("press-third", "aborted", False)]


def test_step_must_trace_to_the_tests_requirements(tty):
    op = tty.operator(tty.console(), ["ER-LATCH"])
    with pytest.raises(AssertionError, match=r"traced to \['FA-STATIC'\], but the test is marked \['ER-LATCH'\]"):
        op.confirm("FA-STATIC", "x", "?")
    assert events(tty.dir, "operator-step") == []


REASON_SCRIPT = """
import os, sys
from types import SimpleNamespace
sys.path.insert(0, {repo!r})
from fixtures.operator import unavailable
if sys.argv[1] == "background":  # a child in a process group of its own: not the terminal's foreground
    pid = os.fork()
    if pid:
        sys.exit(os.waitpid(pid, 0)[1])
    os.setpgid(0, 0)
if sys.argv[1] == "stdin-devnull":  # the terminal is still there, but input comes from nowhere
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
print("REASON", unavailable(SimpleNamespace(getoption=lambda name, default=None: False)))
"""


@pytest.mark.parametrize("where, reason", [
    ("foreground", "None"),
    ("background", "running in the background of its terminal (a background job cannot be asked)"),
    ("stdin-devnull", "stdin is not a terminal (a non-interactive run)"),
])
def test_only_an_interactive_foreground_run_is_asked(tmp_path, where, reason):
    """A background job reading its terminal is stopped by SIGTTIN: it must skip, not hang;
    a run started with stdin /dev/null (a script, the fault matrix) has nobody to ask."""
    script = tmp_path / "reason.py"
    script.write_text(REASON_SCRIPT.format(repo=str(REPO)), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    out = pexpect.run(sys.executable, args=[str(script), where], env=env, timeout=30, encoding="utf-8")
    assert f"REASON {reason}" in out, out


def test_operator_timeout_must_be_positive_seconds():
    assert seconds("2.5") == 2.5
    for bad in ("0", "-1", "soon", "inf", "nan"):
        with pytest.raises(Exception, match="must be a number of seconds > 0"):
            seconds(bad)


def test_operator_tests_get_a_bound_covering_their_prompts(pytester):
    pytester.makepyfile("""
        import pytest

        @pytest.mark.operator(prompts=3)
        def test_person(): pass

        @pytest.mark.operator(prompts=3)
        @pytest.mark.timeout(7)
        def test_own_bound(): pass

        def test_plain(): pass
    """)
    items, _ = pytester.inline_genitems("-p", "no:labgrid", "-p", "no:cacheprovider")
    config = items[0].config
    config.option.operator_timeout = 10.0
    bound_operator_tests(config, items)
    bounds = {i.name: (i.get_closest_marker("timeout").args[0] if i.get_closest_marker("timeout") else None)
              for i in items}
    assert bounds == {"test_person": (3 + 1) * 10.0 + 120.0, "test_own_bound": 7, "test_plain": None}


# ================================================================ the compliance report
def _step(rec: RunRecord, step: str, requirements: list[str], answer: str | None, outcome: str, waited_s: float) -> None:
    rec.event("operator-step", test=TEST, requirements=requirements, step=step, prompt="confirm",
              instruction=f"Instruction of {step}? [y/n]", operator="alice", timeout_s=60.0,
              asked_utc="2026-05-04T10:00:00.000+00:00", answer=answer, answered=outcome == "answered",
              outcome=outcome, answered_utc="2026-05-04T10:00:04.200+00:00" if answer else None, waited_s=waited_s)


def test_report_says_who_confirmed_what_and_which_step_went_unanswered(tmp_path):
    run_dir = build_run(tmp_path / "run")
    rec = RunRecord(run_dir)
    _step(rec, "cord-slack", ["ER-RESIDUAL"], "y", "answered", 4.2)
    _step(rec, "release-estop", ["ER-LATCH"], None, "no answer", 60.0)
    # the operator's passing observation does not hide ER-RESIDUAL's worst measured value
    rec.event("measurement", test=TEST, series=None, name="cord slack (operator)", requirement="ER-RESIDUAL",
              value=True, unit="", lower=None, upper=None, uncertainty=0.0, coverage_factor=2.0, budget=[], tur=None,
              tur_below_4=False, decision_rule="boolean", verdict="PASS", conditions={}, annotations={}, note="")
    rec.close()
    html = render_report(run_dir, pdf=False)[0].read_text(encoding="utf-8")
    section = html.split('id="operator-steps"', 1)[1].split("</section>", 1)[0]
    assert "4. Operator steps" in section
    rows = re.findall(r"<tr><td class=\"mono\">(.*?)</tr>", section, re.S)
    assert len(rows) == 2
    assert "cord-slack" in rows[0] and "ER-RESIDUAL" in rows[0] and "Instruction of cord-slack? [y/n]" in rows[0]
    assert "<td>y</td>" in rows[0] and "alice" in rows[0] and "4.2 s" in rows[0]
    assert "2026-05-04 10:00:00 UTC" in rows[0] and "2026-05-04 10:00:04 UTC" in rows[0]
    assert "release-estop" in rows[1] and "NO ANSWER" in rows[1] and "60.0 s" in rows[1]
    deviations = html.split('id="deviations"', 1)[1].split("</section>", 1)[0]
    assert "step release-estop (ER-LATCH) — no answer after 60.0 s (operator alice)" in deviations
    assert "cord-slack" not in deviations
    residual = next(r for r in summarise(run_dir).results if r.id == "ER-RESIDUAL")
    assert residual.worst["decision_rule"] == "guard-banded" and residual.worst["unit"] == "s"


def test_report_without_operator_steps_says_so(tmp_path):
    html = render_report(build_run(tmp_path / "run"), pdf=False)[0].read_text(encoding="utf-8")
    section = html.split('id="operator-steps"', 1)[1].split("</section>", 1)[0]
    assert "None: no check of this run needed a person at the bench." in section


# ================================================================ `rig run`, end to end
class RigRun:
    """`rig run -k estop_button_pressed_by_hand` under a pseudo-terminal (tests/child_run.py):
    this test is the person at the bench."""

    def __init__(self, child_run, pytest_args: tuple = (), env: dict | None = None, hold: bool = False,
                 stdin_devnull: bool = False) -> None:
        extra = ("-rfEs", *pytest_args, *(HOLD_ARGS if hold else ()))  # -rs: the skip reasons in the output
        # stdin_devnull: as a script or the fault matrix starts it; the terminal stays the controlling one
        self.run = child_run(lambda runs: rig_run_argv("-k", "estop_button_pressed_by_hand", "--operator", "alice",
                                                       "--run-dir", str(runs), "--no-report", pytest_args=extra),
                             terminal=True, stdin_devnull=stdin_devnull, hold=hold, env=env, drop_env=("CI",),
                             wait_s=EXPECT_S)
        self.stim: StimulusModule | None = None
        self.ctrl: TractionController | None = None

    def output(self) -> str:
        return self.run.output()

    def expect(self, pattern, timeout: float = EXPECT_S) -> None:
        self.run.expect(pattern, timeout)

    def answer(self, prompt: str, text: str) -> None:
        self.run.answer(prompt, text)

    def record(self) -> RecordRead:
        return scan_record(self.run.wait_run_dir())  # one run directory, which must exist

    def connect(self) -> None:
        """The emulated table's stimulus module and controller, from the run-start line."""
        self.k = self.run.run_start().time_scale
        self.stim = self.run.stimulus()
        self.ctrl = self.run.controller("observer")

    def press(self, on: bool) -> None:
        self.stim.set(StimulusCoil.ESTOP_BUTTON, on)

    def wait_released(self):
        """The table below its residual force within the release the specification allows
        (table s, over K) plus a margin for a loaded machine."""
        last = []

        def released():
            last[:] = [self.ctrl.status()]
            return last[0] if last[0].force_n < RESIDUAL_N else None

        return self.run.wait_for(released, lambda: f"released below {RESIDUAL_N} N (last status {last})",
                                 RELEASE_TABLE_S / self.k + MARGIN_WALL_S, poll_s=0.005, while_running=False)

    def wait_holding(self) -> None:
        self.run.wait_holding(EXPECT_S)

    def finish(self) -> int:
        self.run.let_go()
        return self.run.wait(EXPECT_S)


@pytest.fixture
def rig_run(child_run):
    def start(**kwargs) -> RigRun:
        return RigRun(child_run, **kwargs)

    return start


def press_estop_by_hand(r: RigRun, cord_answer: str) -> None:
    """The procedure as the person at the bench does it."""
    r.answer("Type done when done: ", "done")  # ready
    r.expect("PRESS the red EMERGENCY STOP button")
    r.expect("Waiting for the table to report it")
    r.connect()
    r.press(True)
    r.expect("e-stop reported by the controller")
    r.expect(r"has it gone slack")
    r.answer("Answer y or n: ", cord_answer)
    r.expect("Twist the red EMERGENCY STOP button")
    r.expect("Type done when done: ")
    r.press(False)
    r.run.sendline("done")


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("cord, verdict", [("y", "PASS"), ("n", "FAIL")], ids=["cord-slack", "cord-not-slack"])
def test_estop_pressed_by_hand_recorded_with_who_confirmed_what(rig_run, cord, verdict):
    r = rig_run()
    press_estop_by_hand(r, cord)
    assert r.finish() == 1, r.output()[-4000:]  # the requirements not run leave the run INCONCLUSIVE at best
    out = r.output()
    assert "operator steps" in out and "alice: test_estop_button_pressed_by_hand cord-slack [ER-RESIDUAL] -> " + cord in out
    record = r.record()
    steps = events(record, "operator-step")
    assert [(s["step"], s["operator"], s["answered"]) for s in steps] == [
        ("ready", "alice", True), ("press-estop", "alice", True), ("cord-slack", "alice", True),
        ("release-estop", "alice", True)]
    assert [s["answer"] for s in steps][2:] == [cord, "done"]
    assert steps[1]["answer"].startswith("e-stop reported by the controller (fault ESTOP)")
    assert all(s["test"] == TEST for s in steps)
    assert steps[0]["requirements"] == RELEASE_IDS and steps[3]["requirements"] == ["ER-LATCH"]
    ms = {(m["requirement"], m["decision_rule"]): m for m in events(record, "measurement") if not m.get("quantity")}
    rise = next(m for m in events(record, "measurement") if m.get("quantity") == "rise")
    assert rise["requirement"] == "ER-NORISE" and rise["unit"] == "N" and rise["upper"] == pytest.approx(8.0, abs=0.2)  # 2 % of 400 N
    assert rise["verdict"] in ("PASS", "INCONCLUSIVE"), rise
    cord_m = ms["ER-RESIDUAL", "boolean"]
    assert cord_m["value"] is (cord == "y") and cord_m["verdict"] == verdict
    assert cord_m["conditions"]["operator"] == "alice" and cord_m["conditions"]["answer"] == cord
    assert ms["ER-LATCH", "boolean"]["verdict"] == "PASS"
    assert ms["ER-LATCH", "boolean"]["conditions"]["latched_after_release"] is True
    for rid in RELEASE_IDS:  # measured with the gauge, from the controller's latch
        m = ms[rid, "guard-banded"]
        assert m["unit"] == "s" and m["value"] is not None and m["uncertainty"] > 0
        assert (m["lower"] if rid == "ER-SNAP" else m["upper"]) is not None
        assert m["verdict"] in ("PASS", "INCONCLUSIVE"), m  # nominal table: never FAIL, timing aside
        assert m["conditions"]["trigger_seen_by"] == "controller" and m["conditions"]["operator"] == "alice"
        trigger_terms = [t for t in m["budget"] if t["name"].startswith("trigger instant")]
        assert [t["name"] for t in trigger_terms] == (  # a fall time has no trigger term
            [] if rid == "ER-SNAP" else ["trigger instant (e-stop latch between two status reads) × K"])
    (end,) = [e for e in events(record, "test-end") if e["test"] == TEST]
    if cord == "n":
        assert end["outcome"] == "failed" and "cord slack after the e-stop" in end["longrepr"]
    else:  # passed, unless a loaded machine left a gauge verdict INCONCLUSIVE
        others = [m for m in ms.values() if m["verdict"] != "PASS"]
        assert end["outcome"] == "passed" or all(m["verdict"] == "INCONCLUSIVE" for m in others), end


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_no_answer_fails_and_the_table_ends_released(rig_run):
    r = rig_run(pytest_args=("--operator-timeout=3",), hold=True)
    r.answer("Type done when done: ", "done")
    r.expect("Waiting for the table to report it")
    r.connect()
    held = r.ctrl.status()
    assert held.phase is Phase.HOLD and held.force_n > RESIDUAL_N  # force on while nobody answers
    r.expect("no answer: the check fails")
    r.wait_holding()
    st = r.wait_released()
    assert st.estop_latched and st.fault_code is FaultCode.ESTOP  # the bench teardown's emergency release
    assert r.finish() == 1
    record = r.record()
    (step,) = [s for s in events(record, "operator-step") if s["step"] == "press-estop"]
    assert step["answered"] is False and step["outcome"] == "no answer" and step["operator"] == "alice"
    (end,) = [e for e in events(record, "test-end") if e["test"] == TEST]
    assert end["outcome"] == "failed" and "no answer within 3 s" in end["longrepr"]
    safe = events(record, "safe-state")
    assert safe[0]["reason"] == "after test" and safe[0]["problems"] == []
    assert record.events.index(end) < record.events.index(safe[0])
    assert not [m for m in events(record, "measurement") if m["verdict"] == "PASS"]  # silence is not a pass


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_ctrl_c_at_a_prompt_releases_the_table(rig_run):
    """SIGINT to the rig-run process, as Ctrl-C at its terminal delivers it (the terminal's
    own ^C would also reach the emulator, which shares the process group: see the docs)."""
    r = rig_run(hold=True)
    r.answer("Type done when done: ", "done")
    r.expect("Waiting for the table to report it")
    r.connect()
    assert r.ctrl.status().force_n > RESIDUAL_N
    r.run.send_signal(signal.SIGINT)
    r.wait_holding()
    st = r.wait_released()
    assert st.estop_latched and st.fault_code is FaultCode.ESTOP and not st.watchdog_tripped
    assert r.finish() == 130  # interrupted (README, "Exit status")
    record = r.record()
    safe = events(record, "safe-state")
    assert safe[0]["reason"] == "signal SIGINT" and safe[0]["problems"] == []
    (step,) = [s for s in events(record, "operator-step") if s["step"] == "press-estop"]
    assert step["outcome"] == "interrupted" and step["answered"] is False
    assert record.events[-1]["event"] == "run-end" and record.events[-1]["complete"] is False


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("how, reason", [
    ({"env": {"CI": "1"}}, "needs a person at the bench: CI is set"),
    ({"pytest_args": ("--no-operator",)}, "needs a person at the bench: --no-operator was given"),
    ({"stdin_devnull": True}, "needs a person at the bench: stdin is not a terminal (a non-interactive run)"),
], ids=["CI", "no-operator", "stdin-devnull"])
def test_skipped_at_a_terminal_on_ci_when_told_or_without_input(rig_run, how, reason):
    r = rig_run(**how)
    r.expect(pexpect.EOF)
    out = r.output()
    assert reason in out and "1 skipped" in out
    assert "OPERATOR" not in out  # nobody was asked
    assert not r.run.has_run_dir()  # skipped before the rig opened


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_skipped_without_a_terminal(child_run):
    run = child_run(lambda runs: rig_run_argv("-k", "estop_button_pressed_by_hand", "--operator", "alice", "--run-dir",
                                              str(runs), "--no-report", pytest_args=("-rfEs",)),
                    drop_env=("CI",))  # stdin /dev/null, no controlling terminal
    run.wait(100)
    out = run.output()
    assert "needs a person at the bench: no controlling terminal (/dev/tty: " in out, out[-3000:]
    assert "1 skipped" in out and "OPERATOR" not in out
    assert not run.has_run_dir()
