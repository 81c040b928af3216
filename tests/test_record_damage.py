"""A damaged run record (issue 22, item 4): a line in the middle that does not decode (a disk
error, an editor) is skipped and named by its line number, never the end of the record, and
every consumer says "record damaged at line N": the verdicts, `rig run`'s table, the report,
`rig verify`, `rig history import` and the panel's follower; the run is never PASS. A torn
last line stays what it was, the cut of a killed run (incomplete), not damage."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from reports.panel.follower import RunFollower
from reports.rundir import LineTail
from reports.record import RunRecord
from reports.rundir import RECORD_NAME, Damage, Event, scan_record
from reports.render import render_report
from reports.verdicts import summarise
from rigcli.main import main as rig_main
from rigcli.run import print_verdicts
from tests.synthetic_run import build_run

DAMAGED_NAME = "static error at 120 N"  # the measurement whose line the damage takes


def _lines(run: Path) -> list[bytes]:
    return (run / RECORD_NAME).read_bytes().split(b"\n")[:-1]


def damage_line(run: Path, name: str = DAMAGED_NAME, garbage: bytes = b'{"event": "measurement", "test": "su\x00\x00\x00') -> int:
    """Replace the line of measurement `name` by `garbage` (its newline kept): its line number."""
    lines = _lines(run)
    number = next(i for i, raw in enumerate(lines, start=1)
                  if b'"event": "measurement"' in raw and json.loads(raw)["name"] == name)
    lines[number - 1] = garbage
    (run / RECORD_NAME).write_bytes(b"\n".join(lines) + b"\n")
    return number


def measurements(events) -> list[str]:
    return [e["name"] for e in events if e["event"] == "measurement"]


@pytest.fixture
def runs(tmp_path):
    """(an intact run that PASSes, the same run with one measurement line damaged, its line number)."""
    intact = build_run(tmp_path / "intact", only_measured=True)
    damaged = build_run(tmp_path / "damaged", only_measured=True)
    return intact, damaged, damage_line(damaged)


# ------------------------------------------------------------------ the reader

def test_every_bad_line_is_named_and_skipped_and_the_rest_is_read(tmp_path):
    kinds = [kind.value for kind in list(Event)[:7]]
    rec = RunRecord(tmp_path)
    for kind in kinds:
        rec.event(kind)
    rec.close()
    lines = _lines(tmp_path)
    lines[1] = b'{"event": "session-plan", "utc": "2026-'  # torn in the middle: an editor, a disk error
    lines[3] = b'{"event": "m\xff\xfe"}'  # not UTF-8
    lines[4] = b"[1, 2, 3]"  # JSON, not an object
    lines[5] = b'{"utc": "2026-12-04"}'  # an object that is not an event
    (tmp_path / RECORD_NAME).write_bytes(b"\n".join(lines) + b"\n\n")  # and a blank line at the end
    read = scan_record(tmp_path)
    assert [e["event"] for e in read.events] == [kinds[0], kinds[2], kinds[6]]
    assert [d.line for d in read.damage] == [2, 4, 5, 6, 8]
    reasons = dict(read.damage)
    assert reasons[2].startswith("not JSON") and reasons[4].startswith("not UTF-8")
    assert "object" in reasons[5] and "event" in reasons[6] and reasons[8] == "blank line"
    assert not read.torn_last_line
    assert read.damage_text().startswith("record damaged at 5 lines: line 2 (not JSON")


def test_a_torn_last_line_is_a_cut_not_damage_and_a_bad_ended_last_line_is_damage(tmp_path):
    rec = RunRecord(tmp_path)
    rec.event(Event.RUN_START)
    rec.event(Event.SESSION_PLAN)
    rec.close()
    with open(tmp_path / RECORD_NAME, "ab") as f:
        f.write(b'{"event": "test-start", "utc": "2026-')  # SIGKILL mid-write: no newline
    read = scan_record(tmp_path)
    assert [e["event"] for e in read.events] == ["run-start", "session-plan"] and read.damage == () \
        and read.torn_last_line
    with open(tmp_path / RECORD_NAME, "ab") as f:
        f.write(b"\n")  # the same text, but the line ended: it was written so, it is damage
    read = scan_record(tmp_path)
    assert read.damage == (Damage(3, read.damage[0].reason),) and not read.torn_last_line
    (tmp_path / RECORD_NAME).write_bytes(b'{"event": "a"}\n{"event": "b"}')  # cut just before the newline
    read = scan_record(tmp_path)
    assert [e["event"] for e in read.events] == ["a", "b"] and read.damage == () and not read.torn_last_line


def test_the_panels_tail_counts_lines_across_reads_and_waits_for_a_torn_one(tmp_path):
    path = tmp_path / RECORD_NAME
    tail = LineTail(path, key="event")
    path.write_bytes(b'{"event": "a"}\nnot json\n{"event": "c"}\n{"event": "d", "u')
    assert [e["event"] for e in tail.read()] == ["a", "c"] and [d.line for d in tail.damage] == [2]
    with open(path, "ab") as f:
        f.write(b'tc": "x"}\n\xff\n{"event": "f"}\n')
    assert [e["event"] for e in tail.read()] == ["d", "f"]
    assert [d.line for d in tail.damage] == [2, 5]


# ------------------------------------------------------------------ every consumer

def test_verdicts_keep_every_other_measurement_and_are_never_pass(runs):
    intact, damaged, line = runs
    whole, hurt = summarise(intact), summarise(damaged)
    assert whole.overall == "PASS" and whole.damage == ()
    assert measurements(hurt.events) == [m for m in measurements(whole.events) if m != DAMAGED_NAME]
    assert len(measurements(hurt.events)) == len(measurements(whole.events)) - 1 == 23
    assert hurt.complete and hurt.end is not None  # the lines after the damage are all there
    assert hurt.overall == "INCONCLUSIVE"
    assert hurt.damage_text.startswith(f"record damaged at line {line} (not JSON")


def test_rig_runs_verdict_table_says_so(runs):
    _intact, damaged, line = runs
    out = io.StringIO()
    overall = print_verdicts(damaged, Console(file=out, width=240, color_system=None))
    text = out.getvalue()
    assert overall == "INCONCLUSIVE" and "overall: INCONCLUSIVE" in text
    assert f"record damaged at line {line} (not JSON" in text and "cannot PASS" in text


def test_the_report_shows_the_damage_on_the_cover_and_in_the_deviations(runs):
    intact, damaged, line = runs
    render_report(intact, max_plots=0, pdf=False)
    assert "Overall verdict: PASS" in (intact / "report" / "report.html").read_text(encoding="utf-8")
    render_report(damaged, max_plots=0, pdf=False)
    html = (damaged / "report" / "report.html").read_text(encoding="utf-8")
    cover = html.split('id="matrix"', 1)[0]
    assert "Overall verdict: INCONCLUSIVE" in cover and "Overall verdict: PASS" not in html
    assert 'id="damaged"' in cover and f"record damaged at line {line}" in cover
    deviations = html.split("3. Deviations", 1)[1]
    assert f"record damaged at line {line}" in deviations
    assert DAMAGED_NAME not in html  # the damaged measurement is missing, as the report says
    assert "static error at 600 N" in html  # and the one after it is there


def test_rig_verify_names_the_damaged_line_even_when_sealed(runs, capsys):
    intact, damaged, line = runs
    for run in (intact, damaged):
        render_report(run, max_plots=0, pdf=False)
    capsys.readouterr()
    assert rig_main(["verify", str(intact)]) == 0
    assert "record damaged" not in capsys.readouterr().out
    assert rig_main(["verify", str(damaged)]) == 1  # the manifest holds, the record is still damaged
    out = capsys.readouterr().out
    assert f"record.jsonl: record damaged at line {line} (not JSON" in out


def test_history_import_records_the_intact_lines_inconclusive_and_says_so(runs, tmp_path, capsys):
    from reports.history.store import Store

    intact, damaged, line = runs
    url = f"sqlite:///{tmp_path / 'history.sqlite'}"
    assert rig_main(["history", "import", str(intact), "--db", url]) == 0
    capsys.readouterr()
    for again in (False, True):  # and the same when imported again: the record is still damaged
        assert rig_main(["history", "import", str(damaged), "--db", url]) == 1
        out, err = capsys.readouterr()
        assert ("already recorded" if again else "recorded: damaged") in out
        (message,) = err.strip().splitlines()  # one line
        assert f"record damaged at line {line} (not JSON" in message and "23 measurements" in message
        assert "INCONCLUSIVE" in message and str(damaged) in message
    with Store(url) as store:
        rows = {Path(r["run_dir"]).name: r for r in store.runs(serial=None)}
    assert rows["intact"]["overall"] == "PASS" and rows["intact"]["measurement_count"] == 24
    assert rows["damaged"]["overall"] == "INCONCLUSIVE" and rows["damaged"]["status"] == "DAMAGED"
    assert rows["damaged"]["measurement_count"] == 23


def test_the_panel_follower_says_so_for_a_finished_run_and_as_damage_arrives(runs):
    intact, damaged, line = runs
    follower = RunFollower(damaged, 0)
    follower.poll()
    verdicts = follower.snapshot()["verdicts"]
    assert verdicts["overall"] == "INCONCLUSIVE" and verdicts["damage_lines"] == [line]
    assert verdicts["damage"].startswith(f"record damaged at line {line}")

    class Clock:
        t = 0.0

        def __call__(self):
            return self.t

    clock = Clock()
    live = RunRecord(damaged.parent / "live")
    source = _lines(intact)
    live.close()
    path = live.path
    path.write_bytes(b"\n".join(source[:5]) + b"\n")  # a live run: its start, the first lines
    follower = RunFollower(live.dir, 1, clock=clock)
    follower.poll()
    assert follower.verdicts is not None and follower.verdicts["damage"] is None
    with open(path, "ab") as f:
        f.write(b"\x00\x00\x00\x00 a disk error\n" + b"\n".join(source[5:]) + b"\n")
    clock.t += 2.0
    changes = dict(follower.poll())
    assert changes["verdicts"]["damage"].startswith("record damaged at line 6 (not JSON")
    assert changes["verdicts"]["damage_lines"] == [6]
    assert changes["verdicts"]["overall"] != "PASS"
