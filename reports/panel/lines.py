"""Reading a JSON-lines file that another process is still appending to.

The run's files are append-only and written line by line, but a read can land in the
middle of a line being written. Only complete lines are returned; the torn tail is kept
and completed by the next read, so no line is lost or parsed half. Reads go by byte
offset, so following a long run costs only what was appended since the last look.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from reports.record import Damage, decode_line


class LineTail:
    """`key`: the field every line names its kind by (a run record's "event"); a line
    without it is damage like a line that is not JSON."""

    def __init__(self, path: Path, key: str | None = None) -> None:
        self.path = Path(path)
        self.key = key
        self.offset = 0
        self._partial = b""
        #: complete lines read so far, blank ones included; None after skip_to (not counted from the start)
        self.lines: int | None = 0
        #: the lines that did not decode, by line number (reports.record.Damage), oldest first
        self.damage: list[Damage] = []

    def size(self) -> int:
        try:
            return os.stat(self.path).st_size
        except OSError:
            return 0

    def skip_to(self, offset: int) -> None:
        """Start reading at the first line that begins at or after `offset` (a long finished
        feed: only its end is shown, so its start is not worth parsing)."""
        if offset <= self.offset:
            return
        self.offset, self._partial, self.lines = offset, b"", None
        try:
            with open(self.path, "rb") as f:
                f.seek(offset - 1)
                if f.read(1) != b"\n":
                    rest = f.readline()
                    self.offset += len(rest)
        except OSError:
            pass

    def read_lines(self, limit: int | None = None) -> list[bytes]:
        """The complete lines appended since the last read (without their newline)."""
        return [raw for raw in self._complete_lines(limit) if raw.strip()]

    def _complete_lines(self, limit: int | None) -> list[bytes]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read() if limit is None else f.read(limit)
        except OSError:  # not there yet: a run directory announced before its first line
            return []
        if not data:
            return []
        self.offset += len(data)
        data = self._partial + data
        *complete, self._partial = data.split(b"\n")
        return complete

    def read(self, limit: int | None = None) -> list[dict]:
        """The complete lines appended since the last read, parsed; a line that does not
        decode is skipped and kept in `damage` with its line number (the lines after it are
        read as ever: one broken line never ends the file)."""
        out = []
        for raw in self._complete_lines(limit):
            if self.lines is not None:
                self.lines += 1
            if not raw.strip() and self.key is None:
                continue  # a feed's blank line is nothing; a record never writes one
            line, problem = decode_line(raw, self.key)
            if line is None:
                if self.lines is not None:
                    self.damage.append(Damage(self.lines, problem))
                continue
            out.append(line)
        return out


def first_line(path: Path, max_bytes: int = 1 << 20) -> dict | None:
    """The first line of a JSON-lines file (a run record's run-start), or None."""
    try:
        with open(path, "rb") as f:
            raw = f.readline(max_bytes)
    except OSError:
        return None
    try:
        line = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return line if isinstance(line, dict) else None


def last_line(path: Path, max_bytes: int = 64 * 1024) -> dict | None:
    """The last complete line of a JSON-lines file (whether a record ends with run-end)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError:
        return None
    for raw in reversed(data.split(b"\n")):
        if raw.strip():
            try:
                line = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue  # a torn last line: the one before it is the last complete one
            return line if isinstance(line, dict) else None
    return None
