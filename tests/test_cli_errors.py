"""Errors a test engineer reads: one line, naming the device, the link and the phase, and
the exit status the README documents.

A link fault mid-run must not be a screen of pytest traceback, advice meant for a
connection that never worked must not be given for one that stopped, and the same kind
of bad input must give the same exit status in every command.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from drivers.controller import TractionController
from drivers.errors import EXIT_NOT_CONFIRMED_SAFE, DeviceTimeout, DeviceUnreachable
from drivers.gauge import open_gauge
from drivers.stimulus import StimulusModule
from drivers.tcm1 import Coil
from drivers.watchdog import HeartbeatError, HeartbeatKeeper
from reports.record import read_record
from rigcli.main import main as rig_main
from reports.exit_status import rig_run_exit_status
from rigcli.run import broke_off
from rigs.emulator.gauges import GclGauge as GclModel
from tests.gauge_helpers import FakeClock, FunctionSource, resource, served
from tests.link_cut import LinkCut

pytestmark = pytest.mark.timeout(60)


def one_line(err: Exception) -> str:
    text = str(err)
    assert "\n" not in text and "Traceback" not in text
    return text


def test_the_heartbeat_process_error_keeps_its_dash():
    """The beat process writes its one line in UTF-8; read as ASCII, the dash before the
    fix became three replacement characters."""
    dead = TractionController(host="127.0.0.1", port=1, timeout_s=0.5)  # nothing listens on port 1
    keeper = HeartbeatKeeper(dead, 3.0, 10.0)
    with pytest.raises(HeartbeatError) as err:
        keeper._spawn()
    text = str(err.value)
    assert "cannot connect — check the host/port" in text
    assert "\ufffd" not in text
    assert keeper.process.wait(5.0) == 2


# ---------------------------------------------------------------- advice that fits the moment
MID_RUN = "stopped answering mid-run"
SETUP_ADVICE = "unit id"


def test_a_controller_that_stalls_mid_run_is_not_given_set_up_advice(lumbar):
    with LinkCut(lumbar.controller_port) as cut:
        ctrl = TractionController(host="127.0.0.1", port=cut.port, timeout_s=0.3, name="traction controller (test link)")
        with ctrl:
            ctrl.status()
            cut.stall()
            with pytest.raises(DeviceTimeout) as err:
                ctrl.status()
    text = one_line(err.value)
    assert text.startswith(f"traction controller (test link) (modbus-tcp://127.0.0.1:{cut.port} unit 1): {MID_RUN}")
    assert "after its last good reply" in text and "check the cable or network and the device's power" in text
    assert SETUP_ADVICE not in text and "19200 8E1" not in text


def test_a_controller_that_never_answered_gets_set_up_advice():
    with socket.socket() as silent:  # accepts (the kernel does), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        ctrl = TractionController(host="127.0.0.1", port=silent.getsockname()[1], timeout_s=0.3)
        with ctrl, pytest.raises(DeviceTimeout) as err:
            ctrl.identity()
    text = one_line(err.value)
    assert "check the unit id, transport (TCP vs RTU, 19200 8E1)" in text and MID_RUN not in text


def test_a_severed_controller_link_says_lost_mid_run(lumbar):
    with LinkCut(lumbar.controller_port) as cut:
        ctrl = TractionController(host="127.0.0.1", port=cut.port, timeout_s=0.3)
        with ctrl:
            ctrl.read_coils()
            cut.sever()
            with pytest.raises(DeviceUnreachable) as err:
                ctrl.read_coils()
    text = one_line(err.value)
    assert f"{MID_RUN}: connection lost or refused during coils 0..4" in text and SETUP_ADVICE not in text


def test_a_second_link_to_a_device_that_answered_knows_it_answered(lumbar):
    """The safety link's first request may come long after the test link's last reply: a
    silent device then stopped mid-run, it was not set up wrong."""
    with LinkCut(lumbar.controller_port) as cut:
        test_link = TractionController(host="127.0.0.1", port=cut.port, timeout_s=0.3).connect()
        safety = TractionController(host="127.0.0.1", port=cut.port, timeout_s=0.3,
                                    name="traction controller (safety link)").connect()
        try:
            test_link.status()
            cut.stall()
            with pytest.raises(DeviceTimeout) as err:
                safety.write_coil(Coil.ESTOP)
        finally:
            test_link.close()
            safety.close()
    text = one_line(err.value)
    assert text.startswith("traction controller (safety link)") and MID_RUN in text and SETUP_ADVICE not in text


def test_a_stimulus_module_that_stalls_mid_run(lumbar):
    with LinkCut(lumbar.stimulus_port) as cut:
        stim = StimulusModule("127.0.0.1", cut.port, timeout_s=0.3)
        with stim:
            stim.states()
            cut.stall()
            with pytest.raises(DeviceTimeout) as err:
                stim.states()
    text = one_line(err.value)
    assert text.startswith("stimulus module") and MID_RUN in text and SETUP_ADVICE not in text


def test_a_gauge_that_stalls_mid_run_is_not_told_to_check_its_termination():
    source = FunctionSource(77.0, FakeClock(1.0))
    with served(lambda: GclModel(source, noise_n=0.0)) as srv, LinkCut(srv.ports[0]) as cut:
        gauge = open_gauge(resource(cut.port), "gcl", timeout_ms=300)
        try:
            gauge.read()
            cut.stall()
            with pytest.raises(DeviceTimeout) as err:
                gauge.read()
        finally:
            gauge.close()
    text = one_line(err.value)
    assert MID_RUN in text and "termination" not in text and "check the cable or network" in text


# ---------------------------------------------------------------- a link fault mid-test: one line
REPO = Path(__file__).resolve().parent.parent
LUMBAR_RIG = REPO / "rigs" / "emulated-lumbar.yaml"

STALLING_TEST = '''
from tests.link_cut import LinkCut


def test_link_stalls(bench, controller):
    """The test link goes quiet at trial 3: its path now runs through a relay that stalls."""
    bench.context(requirement="ER-HALF", trigger="estop_coil", phase="hold", force_n=150.0, trial=3, trials=8)
    client = controller._client
    cut = LinkCut(client.comm_params.port)
    client.close()
    client.comm_params.port = cut.port
    controller.status()  # answered through the relay
    cut.stall()
    controller.status()
'''


def child_pytest(tmp_path: Path, source: str, *args: str, rig: Path = LUMBAR_RIG,
                 timeout: float = 90) -> subprocess.CompletedProcess:
    """A pytest session of its own (the plugin opens `rig`, by default the shipped emulated one) on one test file."""
    (tmp_path / "test_child.py").write_text(source, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "pytest", "test_child.py", f"--rig={rig}",
                           f"--run-dir={tmp_path / 'runs'}", "-p", "no:cacheprovider", "-p", "no:labgrid", "-q",
                           *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


@pytest.mark.slow
def test_a_link_that_stalls_mid_test_is_one_line_naming_device_link_and_step(tmp_path):
    proc = child_pytest(tmp_path, STALLING_TEST)
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    expected_start = ("during test_link_stalls trial 3 of 8 (ER-HALF, estop_coil, hold, 150 N): "
                      "traction controller (test link) (modbus-tcp://127.0.0.1:")
    lines = [line for line in out.splitlines() if line.startswith(expected_start)]
    assert len(lines) == 1, out  # the failure itself: one line, not pages of library frames
    assert ("stopped answering mid-run: no valid reply to the status reads within 1 s" in lines[0]
            and "after its last good reply — check the cable or network and the device's power" in lines[0])
    assert "Traceback" not in out and "pymodbus" not in out and "unit id, transport" not in out
    assert len(out.splitlines()) < 20, out
    # the closing summary names it too
    assert "traction-rig: 1 test(s) broke off on a rig error (full tracebacks: tracebacks.log" in out
    assert f"  {lines[0]}" in out.splitlines()
    # nothing is lost: the whole traceback is in the run directory, the line in the record
    (run_dir,) = (tmp_path / "runs").iterdir()
    kept = (run_dir / "tracebacks.log").read_text(encoding="utf-8")
    assert "test_child.py::test_link_stalls (call)" in kept and lines[0] in kept
    assert "Traceback (most recent call last)" in kept and "drivers.errors.DeviceTimeout" in kept
    ends = [e for e in read_record(run_dir) if e["event"] == "test-end" and e.get("failure")]
    assert [e["failure"]["line"] for e in ends] == lines
    assert ends[0]["failure"]["device"].startswith("traction controller (test link) (modbus-tcp://127.0.0.1:")
    assert broke_off(read_record(run_dir), ends[0]["test"]) == f"{ends[0]['test']} — {lines[0]}"


@pytest.mark.slow
def test_a_gauge_error_names_the_reference_gauge(tmp_path):
    """A gauge's errors carry only its VISA resource; the line says which device that is."""
    proc = child_pytest(tmp_path, """
from drivers.errors import DeviceTimeout


def test_gauge_goes_quiet(gauge):
    raise DeviceTimeout(gauge.resource, "no reply to 'TRAC:DATA?' within 2.0 s")
""")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("during test_gauge_goes_quiet: ")]
    assert line.startswith("during test_gauge_goes_quiet: reference gauge (scpi) TCPIP::127.0.0.1::")
    assert line.endswith("::SOCKET: no reply to 'TRAC:DATA?' within 2.0 s")


def test_a_failure_that_is_no_rig_error_keeps_its_traceback(tmp_path):
    """Only the rig's own errors are shortened: an assertion in a test is the test's to show."""
    proc = child_pytest(tmp_path, "def test_plain(bench):\n    assert 1 + 1 == 3\n")
    assert proc.returncode == 1
    assert "assert (1 + 1) == 3" in proc.stdout and "broke off on a rig error" not in proc.stdout
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert not (run_dir / "tracebacks.log").exists()


# ---------------------------------------------------------------- bad input before anything runs
def expired_rig(tmp_path: Path) -> Path:
    """The shipped emulated rig with a gauge calibration that ran out in 2025."""
    data = yaml.safe_load(LUMBAR_RIG.read_text(encoding="utf-8"))
    data["name"] = "expired-cal"
    data["gauge"]["calibration"].update(date="2024-01-01", due="2025-01-01")
    path = tmp_path / "expired.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def dead_bench(tmp_path: Path) -> Path:
    """The bench example with every device on a port of this machine where nothing listens."""
    data = yaml.safe_load((REPO / "rigs" / "bench-example.yaml").read_text(encoding="utf-8"))
    port = closed_port()
    data["controller"].update(host="127.0.0.1", port=port)
    data["stimulus"].update(host="127.0.0.1", port=port)
    data["gauge"]["resource"] = f"TCPIP::127.0.0.1::{port}::SOCKET"
    path = tmp_path / "dead-bench.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def only_line(text: str) -> str:
    lines = text.splitlines()
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


def run_dirs_in(root: Path) -> list[Path]:
    return [p for p in root.iterdir() if p.is_dir()] if root.exists() else []


def test_rig_run_refuses_an_expired_calibration_before_pytest_starts(tmp_path, capsys):
    rig = expired_rig(tmp_path)
    runs = tmp_path / "runs"
    code = rig_main(["run", "--rig", str(rig), "--run-dir", str(runs), "--no-report", "--no-history"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""  # nothing on stdout: no pytest, no '!' wrapper
    assert only_line(err) == (f"rig: {rig}: gauge.calibration.due 2025-01-01 has passed — recalibrate the gauge "
                              "or pass --allow-expired-calibration (the report will say so)")
    assert run_dirs_in(runs) == []  # no empty run directory left behind


def test_plain_pytest_still_refuses_an_expired_calibration(tmp_path):
    """The plugin keeps its own guard for sessions `rig run` did not start."""
    proc = child_pytest(tmp_path, "def test_x(bench):\n    raise AssertionError('must not run')\n",
                        rig=expired_rig(tmp_path))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert only_line(proc.stderr).startswith(f"rig: {tmp_path / 'expired.yaml'}: gauge.calibration.due 2025-01-01 has passed")
    assert "must not run" not in proc.stdout and run_dirs_in(tmp_path / "runs") == []


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_rig_run_checks_the_database_url_before_the_suites(tmp_path, capsys, monkeypatch, how):
    runs = tmp_path / "runs"
    args = ["run", "--run-dir", str(runs), "--no-report", "-k", "nothing_matches"]
    if how == "flag":
        args += ["--db", "nonsense"]
    else:
        monkeypatch.setenv("TRACTION_RIG_DB", "nonsense")
    code = rig_main(args)
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert only_line(err) == ("rig: results database 'nonsense': not a database URL — use e.g. "
                              "sqlite:////path/history.sqlite or postgresql+psycopg://user@host/db")
    assert run_dirs_in(runs) == []


def test_rig_run_checks_that_the_database_answers_before_the_suites(tmp_path, capsys):
    runs = tmp_path / "runs"
    url = f"postgresql+psycopg://rig@127.0.0.1:{closed_port()}/none"
    code = rig_main(["run", "--run-dir", str(runs), "--no-report", "--db", url, "-k", "nothing_matches"])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""  # the database failed, the input may be right: the "failed" status
    line = only_line(err)
    assert line.startswith(f"rig: results database {url}: unreachable or unusable (") and "Connection refused" in line
    assert run_dirs_in(runs) == []


@pytest.mark.slow
def test_rig_check_flags_an_expired_calibration(tmp_path):
    rig = expired_rig(tmp_path)
    refused = rig_cli("check", "--rig", str(rig))
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "calibration EMU-CAL-2026-001: due 2025-01-01 (EXPIRED)" in refused.stdout.splitlines()
    assert only_line(refused.stderr) == (
        f"rig check: {rig}: the gauge's calibration EXPIRED (due 2025-01-01, certificate EMU-CAL-2026-001): its "
        "readings are not traceable — recalibrate the gauge; `rig run` refuses this rig unless "
        "--allow-expired-calibration")
    allowed = rig_cli("check", "--rig", str(rig), "--allow-expired-calibration")
    assert allowed.returncode == 0 and "EXPIRED" in only_line(allowed.stderr)
    valid = rig_cli("check", "--rig", str(LUMBAR_RIG))
    assert valid.returncode == 0 and valid.stderr == ""
    assert "calibration EMU-CAL-2026-001: due 2027-03-01 (valid, " in valid.stdout


def rig_cli(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rigcli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


# ---------------------------------------------------------------- one exit status per kind of failure
def bad_inputs(tmp: Path) -> list[tuple[list[str], str]]:
    """(arguments, words of the one line): bad input in every command that takes some."""
    missing = str(tmp / "no-such")
    return [
        (["run", "--rig", f"{missing}.yaml", "--run-dir", str(tmp / "runs")], "cannot read rig file"),
        (["run", "--spec", "no-such-spec", "--run-dir", str(tmp / "runs")], "cannot read specification"),
        (["run", "--fault", "no-such-fault", "--run-dir", str(tmp / "runs")], "--fault no-such-fault: unknown fault"),
        (["run", "--lg-env", f"{missing}.yaml", "--run-dir", str(tmp / "runs")], "no such labgrid environment file"),
        (["check", "--rig", f"{missing}.yaml"], "cannot read rig file"),
        (["demo", "--rig", f"{missing}.yaml"], "cannot read rig file"),
        (["emulate", "--fault", "no-such-fault"], "--fault no-such-fault: unknown fault"),
        (["report", missing], "no such run directory"),
        (["verify", missing], "no such run directory"),
        (["history", "import", missing, "--db", f"sqlite:///{tmp / 'h.sqlite'}"], "no such run directory"),
        (["history", "--db", "nonsense"], "not a database URL"),
        (["history", "--db", f"sqlite:///{tmp / 'h.sqlite'}"], "no such file yet"),
        (["faults", "matrix", "--only", "no-such-fault", "--work-dir", str(tmp / "m")], "--only no-such-fault: unknown fault"),
    ]


def test_bad_input_is_one_line_and_exit_2_in_every_command(tmp_path, capsys):
    for args, words in bad_inputs(tmp_path):
        code = rig_main(args)
        out, err = capsys.readouterr()
        assert code == 2, (args, code, out, err)
        line = only_line(err)
        assert line.startswith("rig: ") and words in line, (args, line)
        assert "run record" not in out, (args, out)
    assert run_dirs_in(tmp_path / "runs") == []


def test_a_device_or_database_that_fails_is_exit_1(tmp_path, capsys):
    """The input may be right: the bench is off, the database server down."""
    bench = dead_bench(tmp_path)
    for args, words in [
        (["check", "--rig", str(bench)], "traction controller (test link)"),
        (["history", "--db", f"postgresql+psycopg://rig@127.0.0.1:{closed_port()}/none"], "unreachable"),
    ]:
        code = rig_main(args)
        out, err = capsys.readouterr()
        assert code == 1, (args, code, out, err)
        assert words in only_line(err), (args, err)


@pytest.mark.slow
def test_rig_run_on_a_bench_that_does_not_answer_is_one_line_naming_the_phase(tmp_path):
    proc = rig_cli("run", "--rig", str(dead_bench(tmp_path)), "--run-dir", str(tmp_path / "runs"), "--no-report",
                   "--no-history")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    line = only_line(proc.stderr)
    assert line.startswith("rig: traction controller (test link) (modbus-tcp://127.0.0.1:")
    assert line.endswith("cannot connect — check the host/port in the rig file and that the controller is powered "
                         "and on the network (while opening the rig)")
    assert "!" not in proc.stdout and "Exit" not in proc.stdout and "no run record" not in proc.stdout


def test_rig_run_gives_pytests_statuses_the_rig_commands_meanings(tmp_path):
    assert rig_run_exit_status(pytest.ExitCode.INTERRUPTED, []) == 130  # pytest's 2 is an interrupt, not bad input
    assert rig_run_exit_status(pytest.ExitCode.USAGE_ERROR, []) == 2
    assert rig_run_exit_status(pytest.ExitCode.INTERNAL_ERROR, []) == 1
    assert rig_run_exit_status(pytest.ExitCode.TESTS_FAILED, ["FAIL"]) == 1  # the verdicts decide
    assert rig_run_exit_status(pytest.ExitCode.OK, ["PASS", "PASS"]) == 0
    assert rig_run_exit_status(pytest.ExitCode.OK, ["PASS", "INCONCLUSIVE"]) == 1
    # a rig opened: a 4 can only be the plugin's
    assert rig_run_exit_status(4, ["PASS"]) == EXIT_NOT_CONFIRMED_SAFE == 4
    assert rig_run_exit_status(0, ["PASS"], not_safe=True) == 4
    # the rig did not open: the plugin's own status is the answer
    assert rig_run_exit_status(1, [], open_error=True) == 1 and rig_run_exit_status(2, [], open_error=True) == 2
