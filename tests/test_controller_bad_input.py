"""Bad links and bad peers: one line naming the device and the fix, in bounded time."""

from __future__ import annotations

import socket
import threading

import pytest

from drivers.controller import TractionController
from drivers.errors import DeviceError, DeviceTimeout, DeviceUnreachable
from drivers.stimulus import StimulusModule


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RawServer:
    """A TCP peer that accepts and then answers with `reply(data)` (None: stays silent)."""

    def __init__(self, reply):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.reply = reply
        self.conns = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _talk(self, conn):
        while True:
            try:
                data = conn.recv(4096)
            except OSError:
                return
            if not data:
                return
            answer = self.reply(data)
            if answer:
                try:
                    conn.sendall(answer)
                except OSError:
                    return

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def one_line(err: Exception) -> str:
    text = str(err)
    assert "\n" not in text and "Traceback" not in text
    return text


def test_unreachable_controller():
    ctrl = TractionController(host="127.0.0.1", port=closed_port(), timeout_s=0.5)
    with pytest.raises(DeviceUnreachable) as err:
        ctrl.connect()
    text = one_line(err.value)
    assert "traction controller" in text and "check the host/port" in text


def test_unreachable_stimulus_module():
    with pytest.raises(DeviceUnreachable) as err:
        StimulusModule("127.0.0.1", closed_port(), timeout_s=0.5).connect()
    assert "stimulus module" in one_line(err.value)


@pytest.mark.timeout(20)
def test_silent_controller_times_out_with_a_hint():
    server = RawServer(lambda data: None)
    try:
        ctrl = TractionController(host="127.0.0.1", port=server.port, timeout_s=0.3).connect()
        with pytest.raises(DeviceTimeout) as err:
            ctrl.status()
        text = one_line(err.value)
        assert "unit id" in text and "discrete inputs" in text
    finally:
        server.close()


@pytest.mark.timeout(20)
def test_garbage_replying_peer():
    server = RawServer(lambda data: b"\x13\x37garbage that is not modbus\r\n" * 3)
    try:
        ctrl = TractionController(host="127.0.0.1", port=server.port, timeout_s=0.3).connect()
        with pytest.raises(DeviceError) as err:
            ctrl.identity()
        one_line(err.value)
    finally:
        server.close()


@pytest.mark.timeout(20)
def test_gauge_speaking_instead_of_controller():
    """A rig file pointing the controller at the gauge's port: no valid reply, clear line."""
    server = RawServer(lambda data: b"*10\r\n")
    try:
        ctrl = TractionController(host="127.0.0.1", port=server.port, timeout_s=0.3).connect()
        with pytest.raises(DeviceError):
            ctrl.status()
    finally:
        server.close()


def test_emulator_survives_malformed_frames(lumbar):
    junk = [
        b"\x00\x01\x00\x00\x00\x02\x01",  # truncated MBAP
        b"\x00\x01\x00\x00\x00\x06\x01\x63\x00\x00\x00\x01",  # unknown function code 0x63
        b"\x00\x02\x00\x00\xff\xff\x01\x03" + b"\x00" * 32,  # absurd length
        bytes(range(256)),
        b"\x00\x03\x00\x00\x00\x06\x01\x03\x00\x00\x7f\xff",  # count beyond 125 registers
    ]
    for frame in junk:
        with socket.create_connection(("127.0.0.1", lumbar.controller_port), timeout=1) as s:
            s.sendall(frame)
            s.settimeout(0.2)
            try:
                s.recv(1024)
            except (TimeoutError, socket.timeout, ConnectionError):
                pass
    assert lumbar.controller.identity().rated_force_n == 890.0
    with socket.create_connection(("127.0.0.1", lumbar.stimulus_port), timeout=1) as s:
        s.sendall(bytes(range(256)) * 4)
    assert lumbar.stimulus.states()
