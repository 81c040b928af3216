"""A null-modem cable made of two pseudo-terminals (what `socat pty,raw pty,raw` gives).

Each end is a real tty device path (/dev/pts/N) that pyserial, pymodbus and pyvisa-py
open exactly like /dev/ttyUSB0, so the serial transports are tested without hardware
and `rig emulate --serial-lines` needs no socat. A thread copies bytes between the
two masters.

Like a real cable it carries bytes, nothing else: baud rate, parity and stop bits
set on either end change nothing (a pty has no UART), and some kernels refuse
PARENB on a pty outright (tcsetattr fails with EINVAL), so both ends must use parity
N. A cable also never blocks the sender: when nobody reads one end, what is sent to
it piles up to `MAX_PENDING` bytes and the rest is dropped, so an emulated gauge
streaming into an unplugged line cannot stall the other direction.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import threading
import tty

#: Bytes held for one end that does not read; beyond this they are lost, as on a wire.
MAX_PENDING = 1 << 20
_POLL_S = 0.05  # how long a quiet pump sleeps before it checks for close()


class PtyLink:
    """Two pty pairs bridged master to master: `end_a` and `end_b` are the cable's plugs."""

    def __init__(self) -> None:
        self._m1, s1 = os.openpty()
        self._m2, s2 = os.openpty()
        for fd in (self._m1, self._m2, s1, s2):
            tty.setraw(fd)
        for fd in (self._m1, self._m2):
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
        self.end_a, self.end_b = os.ttyname(s1), os.ttyname(s2)
        # kept open so the masters never see EOF/EIO when a user closes its end
        self._slaves = (s1, s2)
        self._pending = {self._m1: bytearray(), self._m2: bytearray()}  # to write to that master
        self.dropped = 0  # bytes lost because an end was not read
        self._stop = False
        self._thread = threading.Thread(target=self._pump, name=f"nullmodem {self.end_a}<->{self.end_b}", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        peer = {self._m1: self._m2, self._m2: self._m1}
        pending = self._pending
        while not self._stop:
            writable = [fd for fd, data in pending.items() if data]
            try:
                readable, ready, _ = select.select(list(peer), writable, [], _POLL_S)
            except (OSError, ValueError):  # closed under us
                return
            for fd in readable:
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                except OSError:
                    continue  # EIO while no one holds the slave: nothing to carry
                if data:
                    self._queue(peer[fd], data)
            for fd in ready:
                self._flush(fd)

    def _queue(self, fd: int, data: bytes) -> None:
        buf = self._pending[fd]
        if not buf:
            try:
                written = os.write(fd, data)
            except BlockingIOError:
                written = 0
            except OSError:
                return
            data = data[written:]
        room = MAX_PENDING - len(buf)
        if len(data) > room:
            self.dropped += len(data) - max(room, 0)
            data = data[: max(room, 0)]
        buf += data

    def _flush(self, fd: int) -> None:
        buf = self._pending[fd]
        try:
            written = os.write(fd, buf)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno != errno.EINTR:
                buf.clear()
            return
        del buf[:written]

    def close(self) -> None:
        """Unplug the cable: both ends hang up (readers get EIO / EOF)."""
        self._stop = True
        self._thread.join(1.0)
        for fd in (self._m1, self._m2, *self._slaves):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> "PtyLink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<PtyLink {self.end_a} <-> {self.end_b}>"
