"""A real PostgreSQL server for the results-database tests: a throw-away cluster made
with the Debian binaries (initdb, pg_ctl), listening only on a Unix socket in its own
folder, so no port can clash and nothing outside the test can reach it.

As root (CI), the cluster belongs to the `postgres` system user, because PostgreSQL
refuses to run as root. Without the binaries the tests that need the server are
skipped — except where $TRACTION_RIG_REQUIRE_POSTGRES is set (CI sets it), where that
is a failure: CI must never pass by not testing the database it promises.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

REQUIRE_ENV = "TRACTION_RIG_REQUIRE_POSTGRES"


def pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


class PostgresServer:
    def __init__(self) -> None:
        self.bin = pg_bin()
        if self.bin is None:
            raise FileNotFoundError("PostgreSQL server binaries (initdb) not found: apt-get install postgresql")
        self.root = Path(tempfile.mkdtemp(prefix="traction-rig-pg-"))
        self.data = self.root / "data"
        self.socket = self.root / "socket"
        self.socket.mkdir()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.socket, "postgres")
            os.chmod(self.root, 0o755)

    def _run(self, *cmd: str, timeout: float = 60) -> None:
        full = (["runuser", "-u", "postgres", "--"] if self.as_root else []) + list(cmd)
        proc = subprocess.run(full, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:2])} failed: {(proc.stderr or proc.stdout).strip()[-800:]}")

    def start(self) -> "PostgresServer":
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "rig", "-E", "UTF8",
                  "--no-instructions")
        opts = f"-c listen_addresses='' -k {self.socket} -p 5432 -c fsync=off -c full_page_writes=off"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l", str(self.root / "server.log"),
                  "-w", "-t", "60", "start", timeout=90)
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://rig@/{database}?host={self.socket}&port=5432"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(host=str(self.socket), port=5432, user="rig", dbname="postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        except (RuntimeError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(self.root, ignore_errors=True)
