"""labgrid: a bench described by a labgrid environment is the same rig as its rig file, and
a shared lab runs through labgrid's own coordinator and exporter (real processes on
loopback): the suites run against an acquired place, and a second user is refused with
a line naming who holds it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from drivers.errors import ConfigError
from reports.record import run_dirs
from reports.record import read_record
from rigs.config import load_rig
from rigs.lab_env import PlaceUnavailable, attached_rig, exporter_config, lab_target, load_environment, target_resources
from rigs.rig import EmulatorProcess, RigResources, read_line
from tests.emulated import wait_for

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DRIVERS = {"TractionControllerDriver": {}, "StimulusModuleDriver": {}, "ForceGaugeDriver": {},
           "PatientSimulatorDriver": {}}
WAIT_S = 30.0


def local_env(tmp_path: Path, resources: dict, drivers: dict | None = None, name: str = "env.yaml") -> Path:
    """A labgrid environment whose one target holds `resources` ({class: params}) itself."""
    target = {"resources": [{cls: dict(params)} for cls, params in resources.items()]}
    if drivers is not None:
        target["drivers"] = [{cls: params} for cls, params in drivers.items()]
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"targets": {"main": target}, "imports": ["drivers.labgrid_drivers"]}))
    return path


def remote_env(tmp_path: Path, place: str) -> Path:
    path = tmp_path / "remote.yaml"
    path.write_text(yaml.safe_dump({"targets": {"main": {"resources": {"RemotePlace": {"name": place}},
                                                         "drivers": DRIVERS}},
                                    "imports": ["drivers.labgrid_drivers"]}))
    return path


def _start(record: list[dict]) -> dict:
    return next(e for e in record if e["event"] == "run-start")


def pytest_suites(*args, user: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """The suites in their own process, as a person at another desk would start them."""
    env = dict(os.environ, LG_USERNAME=user, LG_HOSTNAME="lab-pc")
    env.pop("LG_ENV", None)
    env.pop("LG_TOKEN", None)
    return subprocess.run([sys.executable, "-m", "pytest", "suites", "-p", "no:cacheprovider", "-q", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL)


# ------------------------------------------------------------------ one rig, two descriptions
def test_exporter_file_of_a_bench_gives_back_its_rig(tmp_path):
    from labgrid.remote.config import ResourceConfig

    rig = load_rig(ROOT / "rigs" / "bench-example.yaml")
    out = tmp_path / "exporter.yaml"
    subprocess.run([sys.executable, "-m", "rigcli", "lab", "export", "--rig", str(ROOT / "rigs" / "bench-example.yaml"),
                    "--place", "bench-3", "--config-only", "--config-out", str(out)], cwd=ROOT, check=True,
                   capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    group = ResourceConfig(str(out)).data["bench-3"]
    assert set(group) == {"TractionTable", "TractionControllerTCP", "StimulusModuleTCP", "ForceGaugeVISA"}
    again = lab_target(load_environment(local_env(tmp_path, group)), "main").config
    assert again.model_dump(exclude={"name", "source"}) == rig.model_dump(exclude={"name", "source"})


def test_shipped_local_environment_is_the_example_bench():
    lab = lab_target(load_environment(ROOT / "rigs" / "labgrid" / "bench-local.yaml"), "main")
    rig = load_rig(ROOT / "rigs" / "bench-example.yaml")
    assert lab.config.model_dump(exclude={"name", "source"}) == rig.model_dump(exclude={"name", "source"})


def test_shipped_exporter_file_is_the_example_bench(tmp_path):
    from labgrid.remote.config import ResourceConfig  # the exporter's own reader (a Jinja2 template)

    groups = ResourceConfig(str(ROOT / "rigs" / "labgrid" / "bench-exporter.yaml")).data
    lab = lab_target(load_environment(local_env(tmp_path, groups["bench-3-lumbar"])), "main")
    rig = load_rig(ROOT / "rigs" / "bench-example.yaml")
    assert lab.config.model_dump(exclude={"name", "source", "description"}) == \
        rig.model_dump(exclude={"name", "source", "description"})


def test_a_target_and_its_rig_file_give_the_resources_one_connect_path_opens():
    """What the labgrid drivers resolve is what the rig file says: rigs.rig.connect cannot
    tell which description it was given."""
    lab = lab_target(load_environment(ROOT / "rigs" / "labgrid" / "bench-local.yaml"), "main")
    try:
        assert target_resources(lab.target, lab.config) == RigResources.of(load_rig(ROOT / "rigs" / "bench-example.yaml"))
    finally:
        lab.target.deactivate_all_drivers()


def test_rtu_controller_resource(tmp_path):
    rig = load_rig(ROOT / "rigs" / "bench-example.yaml")
    group = exporter_config(rig, "b")["b"]
    group["TractionControllerRTU"] = {"port": "/dev/ttyUSB1"}
    del group["TractionControllerTCP"]
    lab = lab_target(load_environment(local_env(tmp_path, group)), "main")
    c = lab.config.controller
    assert (c.transport, c.serial_port, c.baudrate, c.parity, c.unit_id) == ("rtu", "/dev/ttyUSB1", 19200, "E", 1)
    try:
        assert target_resources(lab.target, lab.config) == RigResources.of(lab.config)
        assert RigResources.of(lab.config).controller.address == "modbus-rtu:///dev/ttyUSB1 unit 1"
    finally:
        lab.target.deactivate_all_drivers()


def _bench_group() -> dict:
    return exporter_config(load_rig(ROOT / "rigs" / "bench-example.yaml"), "b")["b"]


def test_missing_resource_is_one_line_naming_it(tmp_path):
    group = _bench_group()
    del group["ForceGaugeVISA"]
    with pytest.raises(ConfigError, match=r"env\.yaml \(labgrid target main\): no ForceGaugeVISA resource "
                                          r"\(resources found: StimulusModuleTCP, TractionControllerTCP, TractionTable\)"):
        lab_target(load_environment(local_env(tmp_path, group)), "main")


def test_bad_parameter_names_the_resource_parameter(tmp_path):
    group = _bench_group()
    group["ForceGaugeVISA"]["capacity_n"] = "ten newtons"
    with pytest.raises(ConfigError, match=r"labgrid target main\): ForceGaugeVISA\.capacity_n: "):
        lab_target(load_environment(local_env(tmp_path, group)), "main")


def test_wrong_dialect_is_refused_by_the_resource(tmp_path):
    group = _bench_group()
    group["ForceGaugeVISA"]["dialect"] = "modbus"
    with pytest.raises(ConfigError, match=r"env\.yaml: target main: .*dialect"):
        lab_target(load_environment(local_env(tmp_path, group)), "main")


def test_environment_file_errors_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="no such labgrid environment file"):
        load_environment(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("targets: {main: {resources: {}}}\nimports: [no_such_module_here]\n")
    with pytest.raises(ConfigError, match="imports: module 'no_such_module_here' not found"):
        load_environment(bad)


def test_unreachable_coordinator_is_one_line(tmp_path):
    env = load_environment(remote_env(tmp_path, "nowhere"), coordinator=f"127.0.0.1:{_free_port()}")
    with pytest.raises(PlaceUnavailable, match="coordinator 127.0.0.1:.* unreachable"):
        lab_target(env, "main")


# ------------------------------------------------------------------ suites through labgrid drivers
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_suites_run_with_lg_env_as_with_rig(tmp_path):
    rig = load_rig(ROOT / "rigs" / "emulated-lumbar.yaml")
    emulator = EmulatorProcess.start("lumbar", 4, rig.time_scale)
    try:
        group = exporter_config(attached_rig(rig, emulator.endpoints), "lumbar")["lumbar"]
        env = local_env(tmp_path, group, DRIVERS)
        proc = pytest_suites("--lg-env", str(env), "--run-dir", str(tmp_path / "runs"), "-k", "accuracy",
                             user="alice")
    finally:
        emulator.stop()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (run_dir,) = run_dirs(tmp_path / "runs")
    record = read_record(run_dir)
    start = _start(record)
    assert start["labgrid"]["target"] == "main" and start["labgrid"]["place"] is None
    assert start["table"]["serial"] == "EMU-LUMB-0004"  # the emulator's own, not the rig file's
    assert {e["requirement"] for e in record if e["event"] == "measurement"} >= {"FA-STATIC", "FA-CELL"}
    assert (run_dir / "labgrid-env.yaml").read_text() == env.read_text()


def test_lg_env_and_rig_together_are_refused(tmp_path):
    proc = pytest_suites("--lg-env", str(ROOT / "rigs" / "labgrid" / "bench-local.yaml"),
                         "--rig", str(ROOT / "rigs" / "emulated-lumbar.yaml"), "--co", user="alice", timeout=60)
    assert proc.returncode == 4
    assert "describe the rig one way, not both" in proc.stderr


# ------------------------------------------------------------------ a shared lab: coordinator + exporter
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _read_json_line(proc: subprocess.Popen, timeout_s: float = WAIT_S) -> dict:
    line = read_line(proc, timeout_s)
    assert line, f"no line from {proc.args} within {timeout_s:.0f} s"
    return json.loads(line)


class Lab:
    """labgrid's real coordinator, and `rig lab export` running labgrid's real exporter."""

    def __init__(self, tmp_path: Path) -> None:
        self.address = f"127.0.0.1:{_free_port()}"
        self.tmp = tmp_path
        self.procs: list[subprocess.Popen] = []
        self.procs.append(subprocess.Popen([str(BIN / "labgrid-coordinator"), "-l", self.address],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                           stdin=subprocess.DEVNULL, cwd=tmp_path))
        host, port = self.address.split(":")
        wait_for(lambda: _connects(host, int(port)), WAIT_S, "coordinator listening", poll_s=0.2)

    def export_emulated(self, place: str, seed: int) -> dict:
        proc = subprocess.Popen([sys.executable, "-m", "rigcli", "lab", "export", "--place", place, "--seed", str(seed),
                                 "--coordinator", self.address, "--config-out", str(self.tmp / f"{place}.yaml")],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                                cwd=ROOT)
        self.procs.append(proc)
        line = _read_json_line(proc)
        wait_for(lambda: f"{place}/{place}/ForceGaugeVISA" in self.client("resources", check=False).stdout,
                 WAIT_S, f"exporter publishes {place}", poll_s=0.2)
        return line

    def client(self, *args, user: str = "alice", check: bool = True, token: str | None = None):
        env = dict(os.environ, LG_COORDINATOR=self.address, LG_USERNAME=user, LG_HOSTNAME="lab-pc")
        env.pop("LG_TOKEN", None)
        if token:
            env["LG_TOKEN"] = token
        proc = subprocess.run([str(BIN / "labgrid-client"), *args], capture_output=True, text=True, timeout=60,
                              env=env, stdin=subprocess.DEVNULL)
        if check:
            assert proc.returncode == 0, f"labgrid-client {' '.join(args)}: {proc.stdout}{proc.stderr}"
        return proc

    def close(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)


def _connects(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


@pytest.fixture
def lab(tmp_path):
    lab = Lab(tmp_path)
    try:
        yield lab
    finally:
        lab.close()


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_shared_lab_place_is_locked_to_its_holder(lab, tmp_path):
    place = "traction-ci"
    exported = lab.export_emulated(place, seed=5)
    assert exported["place"] == place and exported["emulator"]["controller"]["host"] == "127.0.0.1"
    lab.client("-p", place, "create")
    lab.client("-p", place, "add-match", f"{place}/{place}/*")
    env = remote_env(tmp_path, place)
    runs = tmp_path / "runs"
    common = ("--lg-env", str(env), "--lg-coordinator", lab.address, "--run-dir", str(runs))

    # not acquired: refused before the bench is touched, with the command that fixes it
    proc = pytest_suites(*common, "-k", "FA-STATIC or accuracy", user="alice", timeout=60)
    assert proc.returncode != 0
    assert f"labgrid place {place} is not acquired: run `labgrid-client -p {place} acquire` first" in proc.stderr

    lab.client("-p", place, "acquire", user="alice")
    # a suite test that talks to the place's table and takes no table time: what is asserted
    # here is whose place it ran on, not what it measured (test_suites_run_with_lg_env_as_with_rig)
    proc = pytest_suites(*common, "-k", "test_residual_force_read_only", user="alice")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (run_dir,) = run_dirs(runs)
    start = _start(read_record(run_dir))
    assert start["labgrid"]["place"] == {"name": place, "coordinator": lab.address, "acquired_by": "lab-pc/alice"}
    assert start["table"]["serial"] == "EMU-LUMB-0005"

    # a second user can neither drive the place nor take it
    proc = pytest_suites(*common, "-k", "accuracy", user="bob", timeout=60)
    assert proc.returncode != 0
    refusal = [line for line in proc.stderr.splitlines() if "held by" in line]
    assert refusal == [f"ERROR: labgrid place {place} is held by lab-pc/alice (you are lab-pc/bob): wait until they "
                       f"run `labgrid-client -p {place} release`, or ask them to "
                       f"`labgrid-client -p {place} allow lab-pc/bob`"], proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(list(run_dirs(runs))) == 1  # nothing was opened or recorded for bob
    taken = lab.client("-p", place, "acquire", user="bob", check=False)
    assert taken.returncode != 0 and "alice" in taken.stdout + taken.stderr

    # released, a reservation by tag hands the place to whoever holds the token
    lab.client("-p", place, "release", user="alice")
    lab.client("-p", place, "set-tags", "table=lumbar", user="alice")
    reserved = lab.client("reserve", "--wait", "--shell", "table=lumbar", user="bob")
    token = dict(line.removeprefix("export ").split("=", 1) for line in reserved.stdout.splitlines()
                 if line.startswith("export "))["LG_TOKEN"]
    lab.client("-p", "+", "acquire", user="bob", token=token)
    shown = lab.client("-p", place, "show", user="bob").stdout
    assert "acquired: lab-pc/bob" in shown
    lab.client("-p", place, "release", user="bob")
