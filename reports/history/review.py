"""A run seen against its table's history: what `rig run` prints under its verdict
table and what the report's history section shows.

`rig run` ingests the run, reviews it and writes the review into the run directory as
`history.json` before the report is rendered, so the report stays a rendering of the
run directory alone and the manifest seals what the history said at the time.
"""

from __future__ import annotations

import json
from pathlib import Path

from reports.history.drift import HORIZON_RUNS, WINDOW_RUNS, assess, points_from_rows
from reports.history.store import HistoryError, Store, shown
from reports.rundir import HISTORY_NAME, write_atomic

__all__ = ["HISTORY_NAME", "read_history", "record_and_review", "review", "write_history"]


def review(store: Store, serial: str, *, upto_run_id: int | None = None, horizon: int = HORIZON_RUNS,
           window: int = WINDOW_RUNS) -> dict:
    """Every requirement of this table with numbers: its runs, the newest value, the
    history's mean, and the drift warnings."""
    rows_out, warnings = [], []
    for requirement in store.requirements_of(serial):
        rows = store.trend(serial, requirement, limit=window + 1, upto_run_id=upto_run_id)
        points = points_from_rows(rows)
        if not points:
            continue
        unit = next((r.unit for r in reversed(rows) if r.unit), "") or ""
        found = assess(requirement, serial, points, unit, horizon=horizon, window=window)
        warnings += [w.to_dict() for w in found]
        previous = points[:-1]
        rows_out.append({
            "requirement": requirement, "unit": unit, "runs": len(points),
            "value": points[-1].value, "uncertainty": points[-1].uncertainty, "verdict": points[-1].verdict,
            "upper": points[-1].upper, "lower": points[-1].lower,
            "history_mean": (sum(p.value for p in previous) / len(previous)) if previous else None,
            "warnings": [w.kind for w in found],
        })
    return {"serial": serial, "horizon_runs": horizon, "window_runs": window, "requirements": rows_out,
            "warnings": warnings}


def write_history(run_dir: Path, content: dict) -> Path:
    return write_atomic(Path(run_dir) / HISTORY_NAME, json.dumps(content, indent=1, default=str).encode("utf-8"))


def read_history(run_dir: Path) -> dict | None:
    path = Path(run_dir) / HISTORY_NAME
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def record_and_review(run_dir: Path, url: str, *, horizon: int = HORIZON_RUNS) -> dict:
    """Ingest the run and review it against its table's history; on a database that
    cannot be used, a review that says so (and the run directory untouched but for
    history.json, which says the same)."""
    try:
        with Store(url) as store:
            ingested = store.ingest(run_dir)
            content = review(store, ingested.run["table_serial"], upto_run_id=ingested.run_id, horizon=horizon)
            content.update(database=shown(url), recorded=ingested.action, error=None,
                           runs_of_table=store.count_runs(serial=ingested.run["table_serial"]))
    except HistoryError as exc:
        content = {"database": shown(url), "error": str(exc), "recorded": None, "requirements": [], "warnings": []}
    write_history(run_dir, content)
    return content
