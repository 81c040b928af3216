"""A TCP relay a test can stall or sever, to fail a link after its device has answered.

Small on purpose: the driver tests need only "the device answered, then the link went
quiet / went away"; the full fault-injecting proxy (rigs/linkfaults) is for the matrix.
"""

from __future__ import annotations

import socket
import threading


class LinkCut:
    """Relays 127.0.0.1:`port` to 127.0.0.1:`upstream` until `stall()` (bytes are dropped
    both ways, the connections stay open: a hung device or a dead switch) or `sever()`
    (every connection closed, new ones refused: a pulled cable, a device that rebooted)."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.stalled = False
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream), timeout=5.0)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self.sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                return
            if self.stalled:
                continue
            try:
                dst.sendall(data)
            except OSError:
                return

    def stall(self) -> None:
        self.stalled = True

    def sever(self) -> None:
        self.listener.close()
        with self._lock:
            for s in self.sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def close(self) -> None:
        self.sever()

    def __enter__(self) -> "LinkCut":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
