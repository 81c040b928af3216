"""The runs one panel follows: given on the command line, or announced as they start.

`rig run` with several rigs starts one pytest-xdist worker per rig, and each worker's run
directory exists only once its rig has opened — after the panel has started. So the
panel can follow an announce file instead: the plugin appends each run directory's path
to it, one line each, when the run record is created, and every new path becomes a new
tab. A path may be announced before its first record line is flushed; its follower
simply finds nothing yet.
"""

from __future__ import annotations

from pathlib import Path

from reports.panel.follower import RunFollower
from reports.rundir import LineTail, utc_stamp


class RunSet:
    def __init__(self, run_dirs=(), announce: Path | None = None) -> None:
        self.followers: list[RunFollower] = []
        self._known: set[Path] = set()
        self.announce = LineTail(Path(announce)) if announce is not None else None
        for d in run_dirs:
            self._add(Path(d))

    def _add(self, run_dir: Path) -> RunFollower | None:
        key = run_dir.resolve()
        if key in self._known:
            return None
        self._known.add(key)
        follower = RunFollower(run_dir, len(self.followers))
        self.followers.append(follower)
        return follower

    def get(self, run_id: int) -> RunFollower | None:
        return self.followers[run_id] if 0 <= run_id < len(self.followers) else None

    def poll(self) -> list[tuple[str, dict]]:
        """What changed since the last poll, each tagged with its run: ("run", snapshot) for a
        run announced since, (section, {"run": id, "value": …}) for the rest."""
        events: list[tuple[str, dict]] = []
        fresh = []
        if self.announce is not None:
            for raw in self.announce.read_lines():
                text = raw.decode("utf-8", "replace").strip()
                if text:
                    follower = self._add(Path(text))
                    if follower is not None:
                        fresh.append(follower)
        for follower in self.followers:
            changes = follower.poll()
            if follower in fresh:
                continue  # the snapshot below carries all of it
            for section, value in changes:
                events.append((section, {"run": follower.id, "value": value}))
        for follower in fresh:
            events.append(("run", follower.snapshot()))
        return events

    def snapshot(self) -> dict:
        return {"runs": [f.snapshot() for f in self.followers], "waiting": self.announce is not None,
                "now_utc": utc_stamp()}
