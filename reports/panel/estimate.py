"""How long the rest of a run will take, for the progress bar.

A test's duration here is the wall time from its test-start to the next test's start (or
the run's end): the call phase alone (`duration_s`) leaves out the bench preparation and
the emergency release around every test, which a person waiting at the bench waits for
too. The best guide is the same specification run before on this run root — the same
tests take about as long again — so the newest earlier finished run with the same
specification name is used where the test ids match; tests it did not run are estimated
by the mean of the tests this run has finished. The page says which basis it used.
"""

from __future__ import annotations

from pathlib import Path

from reports.rundir import (EVENT_KEY, RECORD_NAME, Event, RunStart, first_line, last_line, parse_stamp, read_record,
                            run_dirs)


def utc_seconds(text: str | None) -> float | None:
    """Seconds since the epoch of a line's stamp (None when it has none, or not one)."""
    try:
        at = parse_stamp(text)
    except (ValueError, TypeError):
        return None
    return None if at is None else at.timestamp()


def test_spans(events: list[dict]) -> dict[str, float]:
    """Each test's wall seconds in a record: test-start to the next test-start or run-end.
    A test skipped before it started (no test-start) counts its recorded duration."""
    starts: list[tuple[str, float]] = []
    spans: dict[str, float] = {}
    end_s = None
    last_end: dict[str, float] = {}
    for e in events:
        kind = e.get(EVENT_KEY)
        t = utc_seconds(e.get("utc"))
        if kind == Event.TEST_START and t is not None:
            starts.append((e.get("test"), t))
        elif kind == Event.TEST_END:
            test = e.get("test")
            if t is not None:
                last_end[test] = t
            if not any(s == test for s, _ in starts):
                spans[test] = spans.get(test, 0.0) + float(e.get("duration_s") or 0.0)
        elif kind == Event.RUN_END:
            end_s = t
    for i, (test, t0) in enumerate(starts):
        if i + 1 < len(starts):
            t1 = starts[i + 1][1]
        elif end_s is not None:
            t1 = end_s
        elif test in last_end:
            t1 = last_end[test]
        else:
            continue  # still running
        spans[test] = max(0.0, t1 - t0)
    return spans


def previous_durations(run_dir: Path, spec_name: str | None, started_utc: str | None) -> tuple[str, dict] | None:
    """(run name, test spans) of the newest finished run before this one under the same run
    root with the same specification name; None when there is none."""
    if not spec_name:
        return None
    run_dir = Path(run_dir).resolve()
    mine = utc_seconds(started_utc)
    for other in sorted(run_dirs(run_dir.parent), reverse=True):
        if other.resolve() == run_dir:
            continue
        start = first_line(other / RECORD_NAME)
        if not start or start.get(EVENT_KEY) != Event.RUN_START:
            continue
        identity = RunStart.from_line(start)
        if identity.spec.name != spec_name:
            continue
        begun = utc_seconds(identity.utc)
        if mine is not None and begun is not None and begun >= mine:
            continue  # started after this one (or beside it: another rig of the same session)
        end = last_line(other / RECORD_NAME)
        if not end or end.get(EVENT_KEY) != Event.RUN_END:
            continue  # not finished: its durations are not whole
        try:
            spans = test_spans(read_record(other))
        except OSError:
            continue
        if spans:
            return other.name, spans
    return None


def estimate(plan: list[str], done: set[str], current: str | None, spans_so_far: dict[str, float],
             previous: tuple[str, dict] | None) -> dict:
    """The time left, split so the page can count down without a new event: the tests after
    the current one, and the current test's expected duration (its elapsed time is the
    page's to subtract)."""
    previous_name, previous_spans = previous if previous else (None, {})
    finished = [spans_so_far[t] for t in done if t in spans_so_far]
    mean = sum(finished) / len(finished) if finished else None
    after = [t for t in plan if t not in done and t != current]
    matched = unknown = 0
    remaining = 0.0

    def expected(test: str) -> float | None:
        nonlocal matched, unknown
        if test in previous_spans:
            matched += 1
            return previous_spans[test]
        if mean is not None:
            return mean
        unknown += 1
        return None

    for test in after:
        value = expected(test)
        remaining += value or 0.0
    current_s = expected(current) if current else 0.0
    pending = len(after) + (1 if current else 0)
    if pending == 0:
        basis, source = "nothing left to run", "none"
    elif unknown:
        why = (f"{unknown} tests are not in the earlier run {previous_name}" if previous_name
               else "no earlier finished run of this specification")
        return {"known": False, "basis": f"no estimate yet: {why} and no test has finished so far", "source": "none",
                "after_current_s": None, "current_s": None, "previous_run": previous_name}
    elif matched == pending:
        basis, source = f"from the durations of the earlier run {previous_name}", "previous"
    elif matched:
        basis = (f"from the earlier run {previous_name} for {matched} of {pending} tests, the mean of the "
                 f"{len(finished)} tests finished so far for the rest")
        source = "mixed"
    else:
        basis, source = f"the mean duration of the {len(finished)} tests finished so far", "mean"
    return {"known": True, "basis": basis, "source": source, "after_current_s": round(remaining, 1),
            "current_s": None if current_s is None else round(current_s, 1), "previous_run": previous_name}
