"""The heartbeat process: feeds a controller's watchdog from outside the test process.

Why a process: a heartbeat thread shares the test process's GIL, and a test that
computes (numpy on a long trace, a report, a pure-Python loop) or a loaded machine can
keep it from running for longer than the watchdog period; the controller then trips
in the middle of a trial that has nothing to do with the watchdog. This process does
nothing but beat, on a Modbus link of its own, so only the operating system can
delay it.

It beats only while the test process makes progress: before every beat it reads the
lease (drivers/lease.py), a deadline in memory shared with the test process that only
the test process's progress moves; past it, no beat goes out and the controller's
watchdog releases the table one period later. It also beats only while its parent lives. The parent holds the other end of a socket pair
(`--control-fd`); when the parent dies in any way, SIGKILL included, that end closes
and this process exits at once, so the beats stop and the controller's watchdog
releases the table. A parent-death signal (Linux prctl) and a check of the parent's
pid at every beat are second and third ways to notice the same thing.

Control lines from the parent, each answered with one line:
  pause   -> "paused <last ack ns> <last round trip ns>"   (no beat is sent after it)
  resume  -> "resumed <ack ns> <round trip ns>"            (one beat first)
  stats   -> a JSON object (beats, errors, largest gap and round trip, wall ns)
  stop    -> the stats, then it exits
The first line it writes is "ready <ack ns> <round trip ns>" after its first beat, or
"error <one line>" before it exits. Instants are time.perf_counter_ns, which on Linux
is CLOCK_MONOTONIC and so the same clock in the parent.

On Modbus RTU the line has one master port. This process and the test process open
the same serial device and take turns, one whole transaction each, under an exclusive
flock on the device (ModbusController does it for every RTU transaction), so a beat
waits for at most one test transaction and never for the test process's GIL.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import selectors
import signal
import socket
import sys
import threading
import time

from drivers import kinds
from drivers.modbus_controller import ModbusController
from drivers.lease import LeaseReader
from drivers.priority import raise_priority
from drivers.record_io import utc_stamp, write_atomic

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent thread ends (a second guard)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the socket's EOF still ends this process
        pass


#: while the lease has lapsed, it is read this often (wall ns) so beats resume promptly
LAPSED_POLL_NS = 5_000_000
#: the window over which the runner's main thread must have run (the kernel accounts run
#: time when a thread leaves the CPU and at every tick)
RUNNING_WINDOW_NS = 50_000_000
#: the runner's CPU time is read at least this often (a frozen runner's last window ends soon)
CPU_SAMPLE_NS = 20_000_000


class MainThreadCpu:
    """Whether the runner's main thread ran lately, read from outside its GIL.

    Why: the lease is renewed by the runner's transactions and bounded waits, but a long
    computation (numpy on a long trace, a pure-Python loop) or a polling loop of a test's
    own is progress too and renews nothing. Such a thread runs on a CPU now and then; a
    stopped (SIGSTOP, a debugger), deadlocked or stuck (a call that never returns) one
    does not run at all (/proc's schedstat: nanoseconds on a CPU). A thread that spins or
    polls forever passes for a live one: the per-test timeout catches that, not the lease."""

    def __init__(self, pid: int) -> None:
        self.path = f"/proc/{pid}/task/{pid}/schedstat"
        self.samples: list[tuple[int, int]] = []

    def _read(self) -> int | None:
        try:
            with open(self.path, "rb") as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def running(self, now_ns: int) -> bool:
        """It ran in the last window (at least RUNNING_WINDOW_NS, at most a sample more)."""
        cpu = self._read()
        if cpu is None:
            return False
        self.samples.append((now_ns, cpu))
        # keep one sample at least a window old, and nothing older than needed
        while len(self.samples) > 2 and now_ns - self.samples[1][0] >= RUNNING_WINDOW_NS:
            self.samples.pop(0)
        t0, c0 = self.samples[0]
        if now_ns - t0 < RUNNING_WINDOW_NS:
            return False
        return cpu > c0


class Beater:
    def __init__(self, link: ModbusController, interval_ns: int, parent_pid: int,
                 lease: LeaseReader | None = None, lease_length_ns: int = 0) -> None:
        self.link = link
        self.lease = lease
        self.lease_length_ns = lease_length_ns
        self.cpu = MainThreadCpu(parent_pid) if lease is not None else None
        self.running_until_ns = 0  # the runner's main thread was seen running: beats until then
        self.lapses = 0  # times the lease ran out while feeding
        self.max_lapse_ns = 0  # the longest of them
        self.lapsed_since_ns = 0  # when the present lapse began, 0 when none
        self.interval_ns = interval_ns
        self.parent_pid = parent_pid
        self.running = True
        self.beats = 0
        self.errors = 0
        self.last_ack_ns = 0
        self.last_rtt_ns = 0
        self.max_gap_ns = 0  # longest time between two acknowledged beats while feeding
        self.max_gap_end_ns = 0  # the acknowledgement that ended it (perf_counter_ns): where to look
        self.max_rtt_ns = 0
        self.last_error = ""
        self.next_ns = 0

    def beat(self) -> bool:
        sent = time.perf_counter_ns()
        try:
            ack = self.link.heartbeat()
        except Exception as exc:  # noqa: BLE001 — a missed beat is what the watchdog is for
            self.errors += 1
            self.last_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.next_ns = time.perf_counter_ns() + self.interval_ns
            return False
        if self.running and self.last_ack_ns and ack - self.last_ack_ns > self.max_gap_ns:
            self.max_gap_ns, self.max_gap_end_ns = ack - self.last_ack_ns, ack
        self.last_ack_ns, self.last_rtt_ns = ack, ack - sent
        self.max_rtt_ns = max(self.max_rtt_ns, self.last_rtt_ns)
        self.beats += 1
        # the next beat one interval after this one was sent; a late one does not burst
        self.next_ns = max(sent + self.interval_ns, time.perf_counter_ns())
        return True

    def tick(self) -> None:
        """Beat if the lease allows it; otherwise note the lapse and look again soon."""
        now = time.perf_counter_ns()
        if not self.may_beat(now):
            if not self.lapsed_since_ns:
                self.lapsed_since_ns = now
                self.lapses += 1
            self.max_lapse_ns = max(self.max_lapse_ns, now - self.lapsed_since_ns)
            self.next_ns = now + min(self.interval_ns, LAPSED_POLL_NS)
            return
        if self.lapsed_since_ns:
            self.max_lapse_ns = max(self.max_lapse_ns, now - self.lapsed_since_ns)
            self.lapsed_since_ns = 0
        self.beat()

    def sample(self, now: int) -> None:
        """Look at the runner's main thread: running lately extends the beats by a lease."""
        if self.cpu is not None and self.cpu.running(now):
            self.running_until_ns = now + self.lease_length_ns

    def may_beat(self, now: int) -> bool:
        """The lease lies ahead, or the runner's main thread is running; never after a drop."""
        if self.lease is None:
            return True
        self.sample(now)
        deadline = self.lease.deadline_ns()
        if deadline == 0:
            return False  # dropped: a safe-state command failed, the watchdog must trip
        return now < deadline or now < self.running_until_ns

    def stats(self) -> dict:
        return {"beats": self.beats, "errors": self.errors, "max_gap_ns": self.max_gap_ns,
                "max_gap_end_ns": self.max_gap_end_ns,
                "lease_lapses": self.lapses, "max_lease_lapse_ns": self.max_lapse_ns,
                "lease_lapsed": bool(self.lapsed_since_ns),
                "max_rtt_ns": self.max_rtt_ns, "last_ack_ns": self.last_ack_ns, "last_rtt_ns": self.last_rtt_ns,
                "last_error": self.last_error, "running": self.running, "pid": os.getpid(),
                "niceness": os.getpriority(os.PRIO_PROCESS, 0)}

    def command(self, line: str) -> tuple[str, bool]:
        """Answer one control line; (reply, whether to go on)."""
        if line == "pause":
            self.running = False
            return f"paused {self.last_ack_ns} {self.last_rtt_ns}", True
        if line == "resume":
            if not self.may_beat(time.perf_counter_ns()):
                return "error the lease has run out (the test process stopped renewing it)", True
            ok = self.beat()
            self.running = True
            return (f"resumed {self.last_ack_ns} {self.last_rtt_ns}" if ok else f"error {self.last_error}"), True
        if line == "stats":
            return json.dumps(self.stats()), True
        if line == "stop":
            self.running = False
            return json.dumps(self.stats()), False
        return f"error unknown command {line!r}", True


#: how often the stats file is rewritten (wall ns): the panel's heartbeat health
STATS_EVERY_NS = 1_000_000_000


def write_stats(beater: Beater, path: str, extra: dict) -> None:
    """The beater's figures for whoever watches the run (the panel), replaced atomically."""
    stats = {"utc": utc_stamp(), **beater.stats(), "interval_ns": beater.interval_ns, **extra}
    try:
        write_atomic(path, json.dumps(stats).encode("utf-8"), durable=False)
    except OSError:
        pass  # a panel without health figures; the beats matter, not the file


def stats_writer(beater: Beater, path: str, extra: dict, stop: threading.Event) -> threading.Thread:
    """Rewrites the stats file every STATS_EVERY_NS from a thread of its own: a file write
    can stall for hundreds of milliseconds on a busy disk (a database's fsyncs beside the
    run), and in the beat loop such a stall was a missed beat — a watchdog trip the
    framework caused. In its own thread the write blocks only itself (the GIL is free
    while it waits on the disk)."""
    def run() -> None:
        while not stop.wait(STATS_EVERY_NS / 1e9):
            write_stats(beater, path, extra)
        write_stats(beater, path, extra)

    thread = threading.Thread(target=run, name="heartbeat-stats", daemon=True)
    write_stats(beater, path, extra)
    thread.start()
    return thread


def serve(beater: Beater, control: socket.socket, stats_file: str | None = None, stats_extra: dict | None = None) -> None:
    stop = threading.Event()
    writer = stats_writer(beater, stats_file, stats_extra or {}, stop) if stats_file else None
    try:
        _serve(beater, control)
    finally:
        stop.set()
        if writer is not None:
            writer.join(timeout=2.0)


def _serve(beater: Beater, control: socket.socket) -> None:
    sel = selectors.DefaultSelector()
    sel.register(control, selectors.EVENT_READ)
    buffer = b""
    while True:
        timeout = None
        now = time.perf_counter_ns()
        if beater.running:
            timeout = max(0.0, (beater.next_ns - now) / 1e9)
            if beater.cpu is not None:  # the runner's CPU is looked at between beats too
                timeout = min(timeout, CPU_SAMPLE_NS / 1e9)
        events = sel.select(timeout)
        if os.getppid() != beater.parent_pid:
            return  # the parent is gone and this process was handed to another
        if events:
            try:
                data = control.recv(4096)
            except OSError:
                return
            if not data:
                return  # the parent's end closed: it died or let go — stop beating
            buffer += data
            while b"\n" in buffer:
                raw, buffer = buffer.split(b"\n", 1)
                reply, go_on = beater.command(raw.decode("ascii", "replace").strip())
                control.sendall(reply.encode() + b"\n")
                if not go_on:
                    return
        elif beater.running:
            now = time.perf_counter_ns()
            if now >= beater.next_ns:
                beater.tick()
            else:
                beater.sample(now)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--interval-ns", type=int, required=True)
    parser.add_argument("--link", required=True, help="the controller's link as JSON (ModbusController arguments)")
    parser.add_argument("--protocol", default="TCM-1", help="the controller's protocol (its driver beats)")
    parser.add_argument("--lease-fd", type=int, help="the lease's shared memory (drivers/lease.py)")
    parser.add_argument("--lease-length-ns", type=int, default=0,
                        help="how long the runner's main thread seen running keeps the beats going")
    parser.add_argument("--stats-file", help="rewrite the beat figures into this JSON file about once a second")
    parser.add_argument("--stats-extra", default="{}", help="JSON fields added to the stats file")
    args = parser.parse_args(argv)
    _die_with_parent()
    raise_priority()
    # Ctrl-C reaches the whole process group: the parent decides when beats stop
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    control = socket.socket(fileno=args.control_fd)
    if os.getppid() != args.parent_pid:
        return 1  # the parent died before the guard was set
    driver = kinds.controller_for_protocol(args.protocol).driver
    link = driver(name=f"{driver.default_name} (heartbeat process)", pipeline_status=False, **json.loads(args.link))
    lease = LeaseReader(args.lease_fd) if args.lease_fd is not None else None
    beater = Beater(link, args.interval_ns, args.parent_pid, lease, args.lease_length_ns)
    try:
        link.connect()
    except Exception as exc:  # noqa: BLE001 — one line to the parent
        control.sendall(f"error {str(exc).splitlines()[0]}\n".encode("utf-8"))
        return 2
    if not beater.beat():
        control.sendall(f"error {beater.last_error}\n".encode("utf-8"))
        return 2
    control.sendall(f"ready {beater.last_ack_ns} {beater.last_rtt_ns}\n".encode())
    try:
        serve(beater, control, args.stats_file, json.loads(args.stats_extra))
    finally:
        link.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
