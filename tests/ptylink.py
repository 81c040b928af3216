"""A null-modem cable made of two pseudo-terminals (what `socat pty,raw pty,raw` gives).

Each end is a real tty device path that pyserial opens like /dev/ttyUSB0; a thread
copies bytes between the two masters.
"""

from __future__ import annotations

import os
import select
import threading
import tty


class PtyLink:
    def __init__(self) -> None:
        self._m1, s1 = os.openpty()
        self._m2, s2 = os.openpty()
        for fd in (self._m1, self._m2, s1, s2):
            tty.setraw(fd)
        self.end_a, self.end_b = os.ttyname(s1), os.ttyname(s2)
        self._slaves = (s1, s2)  # kept open so the masters never see EOF/EIO
        self._stop = False
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        peers = {self._m1: self._m2, self._m2: self._m1}
        while not self._stop:
            ready, _, _ = select.select(list(peers), [], [], 0.05)
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    continue
                if data:
                    os.write(peers[fd], data)

    def close(self) -> None:
        self._stop = True
        self._thread.join(1)
        for fd in (self._m1, self._m2, *self._slaves):
            try:
                os.close(fd)
            except OSError:
                pass
