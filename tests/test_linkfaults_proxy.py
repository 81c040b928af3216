"""The fault-injecting proxy against a real echo server: every fault, from this process and
from another one. Bounded waits only; no timing asserts beyond the lower bound a delay
guarantees by construction."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from rigs.linkfaults.proxy import FaultProxy, ProxyControl, ProxyError

REPO = Path(__file__).resolve().parent.parent
WAIT_S = 5.0  # the bound of every wait for bytes that must arrive
QUIET_S = 0.3  # how long "nothing arrives" is watched for


class EchoServer:
    """A threaded TCP echo server on an ephemeral port of 127.0.0.1."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                conn.sendall(data)

    def close(self) -> None:
        self._stop = True
        self.sock.close()


@pytest.fixture
def echo():
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def proxy(echo):
    with FaultProxy("127.0.0.1", echo.port, name="echo", seed=7) as p:
        yield p


def connect(proxy: FaultProxy) -> socket.socket:
    sock = socket.create_connection(proxy.address, timeout=WAIT_S)
    return sock


def recv_exactly(sock: socket.socket, n: int, timeout_s: float = WAIT_S) -> bytes:
    sock.settimeout(timeout_s)
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def wait_until(predicate, within_s: float = WAIT_S) -> None:
    deadline = time.perf_counter_ns() + int(within_s * 1e9)
    while not predicate():
        assert time.perf_counter_ns() < deadline, "condition not reached within the bound"
        time.sleep(0.005)


def nothing_arrives(sock: socket.socket, within_s: float = QUIET_S) -> bool:
    sock.settimeout(within_s)
    try:
        return sock.recv(1) == b"never"
    except socket.timeout:
        return True


def closed_by_peer(sock: socket.socket) -> bool:
    """The far end is gone: EOF or a reset, within the bound."""
    sock.settimeout(WAIT_S)
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


def test_forwards_both_ways(proxy, echo):
    with connect(proxy) as sock:
        sock.sendall(b"hello table")
        assert recv_exactly(sock, 11) == b"hello table"
    state = proxy.state()
    assert state["bytes_to_device"] == 11 and state["bytes_to_client"] == 11
    assert echo.accepted == 1


def test_sever_closes_both_sides_and_a_reconnect_is_served(proxy, echo):
    with connect(proxy) as sock:
        sock.sendall(b"x")
        assert recv_exactly(sock, 1) == b"x"
        at = proxy.sever()
        assert at > 0 and proxy.state()["connections"] == 0
        assert closed_by_peer(sock)
    with connect(proxy) as again:
        again.sendall(b"y")
        assert recv_exactly(again, 1) == b"y"


def test_the_next_use_of_a_severed_link_is_seen(proxy):
    with connect(proxy) as sock:
        sock.sendall(b"x")
        assert recv_exactly(sock, 1) == b"x"
        at = proxy.sever()
        assert closed_by_peer(sock)  # the client is told at once
        assert proxy.state()["first_use_ns"] is None
        sock.sendall(b"request into a cut link")
        wait_until(lambda: proxy.state()["first_use_ns"] is not None)
        assert proxy.state()["first_use_ns"] > at


def test_stall_holds_every_byte_until_heal(proxy):
    with connect(proxy) as sock:
        proxy.stall()
        sock.sendall(b"held")
        assert nothing_arrives(sock)
        assert proxy.state()["stalled"] and proxy.state()["connections"] == 1  # still open
        proxy.heal()
        assert recv_exactly(sock, 4) == b"held"  # delivered late, not lost


def test_stall_covers_a_connection_opened_during_it(proxy):
    proxy.stall()
    with connect(proxy) as sock:
        sock.sendall(b"new")
        assert nothing_arrives(sock)
        proxy.heal()
        assert recv_exactly(sock, 3) == b"new"


def test_delay_adds_at_least_its_time_each_way_and_keeps_order(proxy):
    delay_ms = 60.0
    with connect(proxy) as sock:
        proxy.delay(delay_ms)
        sent = time.perf_counter_ns()
        for part in (b"a", b"b", b"c"):
            sock.sendall(part)
        got = recv_exactly(sock, 3)
        took_s = (time.perf_counter_ns() - sent) / 1e9
        assert got == b"abc"
        assert took_s >= 2 * delay_ms / 1000  # a lower bound the proxy guarantees by construction
        assert proxy.state()["delay_ms"] == delay_ms
        proxy.heal()
        assert proxy.state()["delay_ms"] == 0


def test_refuse_after_sever_is_a_refused_reconnect(proxy):
    with connect(proxy) as sock:
        sock.sendall(b"x")
        assert recv_exactly(sock, 1) == b"x"
        proxy.sever()
        proxy.refuse()
        assert closed_by_peer(sock)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(proxy.address, timeout=WAIT_S)
    proxy.heal()
    with connect(proxy) as again:  # same port again
        again.sendall(b"back")
        assert recv_exactly(again, 4) == b"back"


def test_refuse_reset_sees_each_attempt(proxy):
    with connect(proxy) as sock:
        sock.sendall(b"x")
        assert recv_exactly(sock, 1) == b"x"
        at = proxy.sever()
        proxy.refuse(reset=True)
        assert proxy.state()["first_use_ns"] is None  # nobody touched the link since
    try:
        with connect(proxy) as again:  # the handshake completes; the connection is reset at once
            assert closed_by_peer(again)
    except ConnectionResetError:
        pass  # the reset came before this (loaded) process returned from connect(): reset all the same
    state = proxy.state()
    assert state["refused_attempts"] == 1 and state["first_use_ns"] > at


def test_first_use_after_a_fault(proxy):
    with connect(proxy) as sock:
        sock.sendall(b"x")
        assert recv_exactly(sock, 1) == b"x"
        at = proxy.stall()
        assert proxy.state()["first_use_ns"] is None
        sock.sendall(b"u")
        wait_until(lambda: proxy.state()["first_use_ns"] is not None)
        assert proxy.state()["first_use_ns"] > at


def test_a_request_in_flight_meets_the_fault_at_once(proxy):
    with connect(proxy) as sock:
        proxy.delay(200)
        sock.sendall(b"q")  # its answer is on its way back
        wait_until(lambda: proxy.state()["bytes_to_device"] == 1)
        proxy.heal()  # the answer keeps its place in the delay; the watch starts again
        at = proxy.stall()
        assert proxy.state()["first_use_ns"] == at


def test_a_fault_stacked_on_another_keeps_its_watch(proxy):
    with connect(proxy) as sock:
        sock.sendall(b"x")
        assert recv_exactly(sock, 1) == b"x"
        at = proxy.garbage(4)
        recv_exactly(sock, 4)
        sock.sendall(b"y")  # the client's next request, between the two calls
        wait_until(lambda: proxy.state()["first_use_ns"] is not None)
        used = proxy.state()["first_use_ns"]
        proxy.garbage(corrupt=True, frames=100)
        assert proxy.state()["first_use_ns"] == used > at


def test_refuse_keeps_current_connections(proxy):
    with connect(proxy) as sock:
        sock.sendall(b"x")
        assert recv_exactly(sock, 1) == b"x"
        proxy.refuse()
        sock.sendall(b"still")
        assert recv_exactly(sock, 5) == b"still"


def test_garbage_injects_bytes_toward_the_client(proxy):
    with connect(proxy) as sock:
        sock.sendall(b"q")
        assert recv_exactly(sock, 1) == b"q"
        proxy.garbage(16)
        noise = recv_exactly(sock, 16)
        assert len(noise) == 16
        assert proxy.state()["garbage_bytes"] == 16


def test_garbage_corrupt_several_frames_until_heal(proxy):
    frame = bytes(range(8))
    with connect(proxy) as sock:
        proxy.garbage(corrupt=True, frames=1000)
        for _ in range(3):
            sock.sendall(frame)
            got = recv_exactly(sock, len(frame))
            assert len(got) == len(frame) and got != frame
        proxy.heal()
        sock.sendall(frame)
        assert recv_exactly(sock, len(frame)) == frame


def test_garbage_corrupt_replaces_the_next_frame_from_the_device(proxy):
    frame = bytes(range(32))
    with connect(proxy) as sock:
        proxy.garbage(corrupt=True)
        sock.sendall(frame)
        got = recv_exactly(sock, len(frame))
        assert len(got) == len(frame) and got != frame
        sock.sendall(frame)
        assert recv_exactly(sock, len(frame)) == frame  # only the next one


def test_device_down_closes_the_client():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # bound, never listening: a connect is refused
        with FaultProxy("127.0.0.1", port, name="dead") as p, connect(p) as sock:
            assert closed_by_peer(sock)


def test_bad_commands_are_one_line_naming_the_proxy(proxy):
    with pytest.raises(ProxyError, match="echo: unknown fault 'melt'"):
        proxy.command("melt")
    with pytest.raises(ProxyError, match="delay needs one argument"):
        proxy.command("delay")
    with pytest.raises(ProxyError, match="must be >= 0"):
        proxy.delay(-1)
    with pytest.raises(ProxyError, match="refuse takes nothing or `reset`"):
        proxy.command("refuse hard")
    assert proxy.command("garbage 4 corrupt 3") > 0 and proxy.state()["corrupt_pending"] == 3


def test_control_socket_from_another_process(proxy):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with connect(proxy) as sock:
        done = subprocess.run([sys.executable, "-m", "rigs.linkfaults.proxy", "send", "--control",
                               str(proxy.control_port), "stall"], capture_output=True, text=True, env=env,
                              cwd=REPO, timeout=60)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["ok"]
        sock.sendall(b"z")
        assert nothing_arrives(sock)
        with ProxyControl(proxy.control_port) as control:
            assert control.send("state")["state"]["stalled"]
            control.send("heal")
            with pytest.raises(ProxyError, match="unknown fault"):
                control.send("melt")
        assert recv_exactly(sock, 1) == b"z"


def test_a_proxy_process_of_its_own(echo):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "rigs.linkfaults.proxy", "serve", "--target",
                             f"127.0.0.1:{echo.port}"], stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)
    try:
        ports = json.loads(proc.stdout.readline())
        with socket.create_connection(("127.0.0.1", ports["port"]), timeout=WAIT_S) as sock:
            sock.sendall(b"hi")
            assert recv_exactly(sock, 2) == b"hi"
            with ProxyControl(ports["control_port"]) as control:
                control.send("sever")
            assert closed_by_peer(sock)
    finally:
        proc.terminate()
        proc.wait(WAIT_S)
    assert proc.returncode == 0
