"""Keeps the controller's communication watchdog fed while the framework is alive.

The controller releases the table by itself when heartbeats stop (WATCHDOG_MS), which
covers the exit paths code cannot: SIGKILL, a crash of the interpreter, a pulled
cable. The beats come from a small process of their own (drivers/heartbeat.py) on a
link of its own, outside this process's GIL, so a test that computes, a report that
renders or a loaded machine cannot starve them; that process ends the moment this one
does, however it ends, and the watchdog then trips. A suite that tests the watchdog
pauses it.

Living is not enough: the beats go on only while this process renews a lease by making
progress (drivers/lease.py), so a runner that is stopped, deadlocked or stuck in a call
releases the table too, within the lease's length plus one watchdog period.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from drivers.controller import ControllerStatus
from drivers.modbus_controller import ModbusController
from drivers.errors import EXIT_FAILED, RigError
from drivers.lease import Lease, lease_length_s
from drivers.tcm1 import Phase

PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: wall seconds the beat process gets to start and to answer a control line
START_TIMEOUT_S = 20.0
REPLY_TIMEOUT_S = 5.0
BEATS_PER_PERIOD = 10


class HeartbeatError(RigError):
    """The heartbeat process could not start, or stopped answering."""

    exit_status = EXIT_FAILED  # the rig failed, not the input


class HeartbeatKeeper:
    def __init__(self, controller: ModbusController, period_table_s: float, time_scale: float = 1.0,
                 stats_file: str | os.PathLike | None = None) -> None:
        if period_table_s <= 0:
            raise ValueError("the watchdog period must be > 0 s")
        self.controller = controller
        self.period_table_s = period_table_s
        self.time_scale = time_scale
        # a tenth of the period in wall seconds: nine beats may be lost before a trip, and
        # the largest gap between two stays well inside a third of the period
        self.interval_wall_s = period_table_s / time_scale / BEATS_PER_PERIOD
        self.lease = Lease(lease_length_s(period_table_s / time_scale))
        self.process: subprocess.Popen | None = None
        self._control: socket.socket | None = None
        self._buffer = b""
        self._paused = True
        self.last_ack_ns = 0
        self.last_rtt_s = 0.0  # write round trip of the last beat: bounds when it acted
        self.stats: dict = {}
        self.stats_file = stats_file  # the beat process rewrites its figures there (the panel reads them)

    # ------------------------------------------------------------ figures
    @property
    def beats(self) -> int:
        return int(self.stats.get("beats", 0))

    @property
    def errors(self) -> int:
        return int(self.stats.get("errors", 0))

    @property
    def max_gap_s(self) -> float:
        """Longest wall time between two acknowledged beats while feeding."""
        return self.stats.get("max_gap_ns", 0) / 1e9

    @property
    def max_gap_end_ns(self) -> int | None:
        """When the longest gap ended (perf_counter_ns, the beat process's clock is this
        one): a gap near the goal is then placed in the test that ran at the time."""
        return self.stats.get("max_gap_end_ns") or None

    @property
    def max_rtt_s(self) -> float:
        """Longest beat round trip: a gap made of it is the device's (or link's), not ours."""
        return self.stats.get("max_rtt_ns", 0) / 1e9

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    # ------------------------------------------------------------ control
    def arm(self) -> None:
        """Set WATCHDOG_MS on the device and start feeding it."""
        self.controller.set_watchdog(self.period_table_s)
        if self.process is None:
            self._spawn()
        elif self._paused:
            self.resume()

    def _spawn(self) -> None:
        parent, child = socket.socketpair()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
        cmd = [sys.executable, "-m", "drivers.heartbeat", "--control-fd", str(child.fileno()),
               "--parent-pid", str(os.getpid()), "--interval-ns", str(int(self.interval_wall_s * 1e9)),
               "--link", json.dumps(self.controller.link_args()), "--protocol", self.controller.protocol, "--lease-fd", str(self.lease.fd),
               "--lease-length-ns", str(self.lease.length_ns)]
        if self.stats_file is not None:
            cmd += ["--stats-file", str(self.stats_file), "--stats-extra",
                    json.dumps({"period_table_s": self.period_table_s, "time_scale": self.time_scale})]
        try:
            self.process = subprocess.Popen(cmd, pass_fds=(child.fileno(), self.lease.fd), stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL, cwd=str(PROJECT_ROOT), env=env)
        finally:
            child.close()  # only the beat process holds that end: its EOF is our death
        self._control = parent
        reply = self._read_line(START_TIMEOUT_S, "start")
        if not reply.startswith("ready "):
            self._kill()
            raise HeartbeatError(f"{self.controller.device}: the heartbeat process did not start "
                                 f"({reply.removeprefix('error ')})")
        self._acked(reply)
        self._paused = False

    def _acked(self, reply: str) -> None:
        _, ack, rtt = reply.split()
        self.last_ack_ns, self.last_rtt_s = int(ack), int(rtt) / 1e9

    def _ask(self, command: str) -> str:
        if self._control is None:
            raise HeartbeatError(f"{self.controller.device}: the heartbeat process is not running")
        try:
            self._control.sendall(command.encode() + b"\n")
        except OSError as exc:
            raise HeartbeatError(f"{self.controller.device}: the heartbeat process is gone ({exc})") from None
        return self._read_line(REPLY_TIMEOUT_S, command)

    def _read_line(self, timeout_s: float, what: str) -> str:
        assert self._control is not None
        deadline = time.perf_counter_ns() + int(timeout_s * 1e9)
        while b"\n" not in self._buffer:
            left = (deadline - time.perf_counter_ns()) / 1e9
            if left <= 0:
                raise HeartbeatError(f"{self.controller.device}: the heartbeat process did not answer "
                                     f"{what!r} within {timeout_s:g} s")
            self._control.settimeout(left)
            try:
                data = self._control.recv(4096)
            except socket.timeout:
                continue
            except OSError as exc:
                raise HeartbeatError(f"{self.controller.device}: the heartbeat process is gone ({exc})") from None
            if not data:
                code = self.process.poll() if self.process is not None else None
                raise HeartbeatError(f"{self.controller.device}: the heartbeat process ended (exit code {code})")
            self._buffer += data
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode("utf-8", "replace")

    def pause(self) -> int:
        """Stop feeding; returns the perf_counter_ns of the last acknowledged heartbeat.
        No beat is sent after this returns."""
        self._acked(self._ask("pause"))
        self._paused = True
        return self.last_ack_ns

    def resume(self) -> None:
        """One beat at once, then feeding as before."""
        self.lease.renew()
        reply = self._ask("resume")
        if not reply.startswith("resumed "):
            raise HeartbeatError(f"{self.controller.device}: heartbeat refused on resume ({reply.removeprefix('error ')})")
        self._acked(reply)
        self._paused = False

    @property
    def paused(self) -> bool:
        return self._paused

    # ------------------------------------------------------------ the lease
    @property
    def lease_length_wall_s(self) -> float:
        return self.lease.length_ns / 1e9

    def at_rest(self, status: ControllerStatus, residual_n: float) -> bool:
        """The table shown at rest by `status` (idle, nothing running, and released by its
        protocol's own rule: the force at or below the residual, on FDC-1 the section braked
        too): the lease is open-ended until the next START. False when the status does not
        show that, or was asked before the last START went out."""
        if status.running or status.phase != Phase.IDLE or not status.released(residual_n):  # PHASE 0: idle in FDC-1 too
            return False
        return self.lease.at_rest(status.sent_ns)

    def drop(self) -> None:
        """No beat from now on: the table could not be confirmed safe by command, so the
        controller's own watchdog is the next path (see SessionRig.make_safe)."""
        self.lease.drop()

    @property
    def dropped(self) -> bool:
        return self.lease.mode == Lease.DROPPED

    def refresh(self) -> dict:
        """The beat process's figures now (beats, errors, largest gap and round trip)."""
        self.stats = json.loads(self._ask("stats"))
        return self.stats

    def stop(self) -> None:
        """Stop the beats (the watchdog then trips unless the table is made safe first)."""
        if self.process is None:
            return
        try:
            self.stats = json.loads(self._ask("stop"))
        except (HeartbeatError, ValueError):
            pass
        self._paused = True
        self._kill()
        self.lease.close()

    def _kill(self) -> None:
        if self._control is not None:
            self._control.close()  # EOF: the process ends even if it missed "stop"
            self._control = None
        if self.process is not None:
            try:
                self.process.wait(2.0)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(2.0)
