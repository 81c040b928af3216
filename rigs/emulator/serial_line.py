"""An asyncio transport on a serial device, so socket protocols serve a tty unchanged.

The gauge server's `_GaugeProtocol` only needs write / get_write_buffer_size /
is_closing / abort; a raw tty file descriptor watched by the event loop gives it
exactly that, with no thread and no pyserial (whose blocking reads would need one).
The line is configured with termios directly: raw, 8 data bits, no parity, one stop
bit — what a gauge's serial port speaks (115200 8N1 by default).

A serial line has no connection: the protocol is "connected" from open to close, and
a client that goes away is not noticed (a hang-up — EIO, as when a USB adapter is
pulled or a pty's other side closes — does end the transport).
"""

from __future__ import annotations

import asyncio
import errno
import os
import termios

from drivers.errors import ConfigError

READ_CHUNK = 65536


def _speed(baudrate: int) -> int:
    try:
        return getattr(termios, f"B{int(baudrate)}")
    except AttributeError:
        raise ConfigError(f"baud rate {baudrate} is not a standard termios speed (e.g. 9600, 19200, 115200)") from None


def open_raw_tty(device: str, baudrate: int = 115200) -> int:
    """Open `device` non-blocking and set it raw 8N1 at `baudrate`; returns the fd."""
    speed = _speed(baudrate)
    try:
        fd = os.open(device, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as exc:
        raise ConfigError(
            f"{device}: cannot open the serial device ({exc.strerror}); check the path and its permissions"
        ) from None
    try:
        iflag, oflag, cflag, lflag, _, _, cc = termios.tcgetattr(fd)
        iflag &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP | termios.INLCR
                   | termios.IGNCR | termios.ICRNL | termios.IXON | termios.IXOFF | termios.IXANY | termios.INPCK)
        oflag &= ~termios.OPOST
        lflag &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
        cflag &= ~(termios.CSIZE | termios.PARENB | termios.PARODD | termios.CSTOPB | termios.CRTSCTS)
        cflag |= termios.CS8 | termios.CREAD | termios.CLOCAL
        cc[termios.VMIN], cc[termios.VTIME] = 1, 0  # with O_NONBLOCK: EAGAIN, never a 0-byte "EOF"
        termios.tcsetattr(fd, termios.TCSANOW, [iflag, oflag, cflag, lflag, speed, speed, cc])
        termios.tcflush(fd, termios.TCIOFLUSH)  # nothing from before we were listening
    except termios.error as exc:
        os.close(fd)
        raise ConfigError(f"{device}: cannot configure {baudrate} 8N1 ({exc.args[-1]}); is it a serial device?") from None
    return fd


class TtyTransport(asyncio.Transport):
    """Reads and writes one non-blocking tty fd from the event loop (never blocks it)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int, protocol: asyncio.Protocol, device: str) -> None:
        super().__init__(extra={"device": device})
        self._loop = loop
        self._fd = fd
        self._protocol = protocol
        self._buffer = bytearray()
        self._closing = False
        self._writing = False
        protocol.connection_made(self)
        loop.add_reader(fd, self._read_ready)

    # -- reading ---------------------------------------------------------------------------
    def _read_ready(self) -> None:
        try:
            data = os.read(self._fd, READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fatal(exc)  # EIO: the line hung up
            return
        if data:
            self._protocol.data_received(data)
        else:
            self._fatal(None)

    # -- writing ---------------------------------------------------------------------------
    def write(self, data) -> None:
        if self._closing or not data:
            return
        if not self._buffer:
            try:
                written = os.write(self._fd, data)
            except (BlockingIOError, InterruptedError):
                written = 0
            except OSError as exc:
                self._fatal(exc)
                return
            data = memoryview(data)[written:]
            if not data:
                return
        self._buffer += data
        if not self._writing:
            self._loop.add_writer(self._fd, self._write_ready)
            self._writing = True

    def _write_ready(self) -> None:
        try:
            written = os.write(self._fd, self._buffer)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fatal(exc)
            return
        del self._buffer[:written]
        if not self._buffer:
            self._loop.remove_writer(self._fd)
            self._writing = False
            if self._closing:
                self._finish(None)

    def get_write_buffer_size(self) -> int:
        return len(self._buffer)

    def can_write_eof(self) -> bool:
        return False

    # -- lifetime --------------------------------------------------------------------------
    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Stop reading; finish sending what is buffered, then close the device."""
        if self._closing:
            return
        self._closing = True
        self._loop.remove_reader(self._fd)
        if not self._buffer:
            self._finish(None)

    def abort(self) -> None:
        self._finish(None)

    def _fatal(self, exc: BaseException | None) -> None:
        if isinstance(exc, OSError) and exc.errno not in (errno.EIO, errno.ENXIO, errno.EBADF):
            self._loop.call_exception_handler({"message": "serial line failed", "exception": exc, "transport": self})
        self._finish(exc)

    def _finish(self, exc: BaseException | None) -> None:
        if self._fd < 0:
            return
        self._closing = True
        self._loop.remove_reader(self._fd)
        if self._writing:
            self._loop.remove_writer(self._fd)
            self._writing = False
        self._buffer.clear()
        fd, self._fd = self._fd, -1
        try:
            os.close(fd)
        except OSError:
            pass
        self._loop.call_soon(self._protocol.connection_lost, exc)
