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


class LineTail:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.offset = 0
        self._partial = b""

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
        self.offset, self._partial = offset, b""
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
        return [raw for raw in complete if raw.strip()]

    def read(self, limit: int | None = None) -> list[dict]:
        """The complete lines appended since the last read, parsed; a line that is not a JSON
        object is skipped (nothing the panel shows depends on one broken line)."""
        out = []
        for raw in self.read_lines(limit):
            try:
                line = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
            if isinstance(line, dict):
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
