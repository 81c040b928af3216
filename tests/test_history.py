"""The results database, on SQLite and on a real PostgreSQL server: the schema comes
from the migrations, a run goes in with every measurement, an import is idempotent, a
cut run is INCOMPLETE until a later import completes it, an unreachable database
loses nothing, the history's questions are answered, and drift is found."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import inspect

from reports.history.drift import Point, assess, step_warning, trend_warning
from reports.history.models import Base
from reports.history.review import HISTORY_NAME, record_and_review
from reports.history.store import HistoryError, Store, resolve_url, run_rows
from reports.manifest import verify_manifest, write_manifest
from reports.record import RECORD_NAME
from rigcli.main import main as rig_main
from verification.spec import load_spec
from tests.synthetic_run import TABLE_SERIAL, build_run


def _copy_run(src: Path, dst: Path, **start_changes) -> Path:
    """Another run of the same table: the record with its run-start line changed (a new key)."""
    shutil.copytree(src, dst)
    lines = (dst / RECORD_NAME).read_text().splitlines()
    start = json.loads(lines[0])
    start.update(utc=start_changes.pop("utc", start["utc"]), **start_changes)
    lines[0] = json.dumps(start)
    (dst / RECORD_NAME).write_text("\n".join(lines) + "\n")
    return dst


@pytest.fixture
def run(tmp_path) -> Path:
    return build_run(tmp_path / "run")


def test_a_new_database_gets_the_schema_of_the_models_from_the_migrations(database_url):
    with Store(database_url) as store:
        assert store.revision() == "0001"
        found = inspect(store.engine)
        for table in Base.metadata.sorted_tables:
            assert table.name in found.get_table_names()
            columns = {c["name"]: c for c in found.get_columns(table.name)}
            assert set(columns) == {c.name for c in table.columns}, table.name
            for c in table.columns:
                assert columns[c.name]["nullable"] == c.nullable, f"{table.name}.{c.name}"
    with Store(database_url) as again:  # opening again migrates nothing and loses nothing
        assert again.revision() == "0001"


def test_a_run_goes_in_with_its_identity_and_every_measurement(database_url, run):
    rows = run_rows(run)
    with Store(database_url) as store:
        first = store.ingest(run)
        assert first.action == "recorded"
        listed = store.runs()
        assert len(listed) == 1
        r = listed[0]
        assert (r["table_serial"], r["rig_name"], r["spec_name"], r["spec_version"]) == (TABLE_SERIAL, "bench-lumbar-2", "lumbar", load_spec("lumbar").version)
        assert r["operator"] == "A. Tester" and r["gauge_serial"] == "G-7781" and r["calibration_certificate"] == "SYN-CAL-001"
        assert r["status"] == "COMPLETE" and r["manifest_sha256"] is None
        assert len(r["spec_sha256"]) == 64 and r["git_commit"]
        exported = list(store.export_rows())
        assert len(exported) == r["measurement_count"] == len(rows["measurements"]) > 10
        er = [m for m in exported if m["requirement"] == "ER-HALF" and m["trial"] == 1][0]
        assert er["trigger"] == "estop_coil" and er["unit"] == "s" and er["upper"] == 0.5
        assert er["decision_rule"] == "guard-banded" and er["verdict"] == "PASS" and er["uncertainty"] > 0
        assert er["conditions"]["force_n"] == er["force_n"]
        # the same run again: nothing doubles
        assert store.ingest(run).action == "already recorded"
        assert store.count_runs() == 1 and len(list(store.export_rows())) == len(exported)


def test_a_cut_run_goes_in_incomplete_and_an_import_after_sealing_records_the_digest(database_url, tmp_path):
    cut = build_run(tmp_path / "cut", complete=False)
    with Store(database_url) as store:
        assert store.ingest(cut).run["status"] == "INCOMPLETE"
        assert store.runs()[0]["overall"] == "INCONCLUSIVE"
        assert store.ingest(cut).action == "already recorded"
    # rig run ingests before the report seals the run; the import after sealing completes the row
    write_manifest(cut)
    with Store(database_url) as store:
        done = store.ingest(cut)
        assert done.action == "updated"
        row = store.runs()[0]
        assert row["status"] == "INCOMPLETE" and row["manifest_sha256"] and store.count_runs() == 1
        assert store.recorded_digest(cut) == ("key", row["manifest_sha256"])


def test_a_sealed_run_changed_after_ingest_is_refused(database_url, run):
    write_manifest(run)
    with Store(database_url) as store:
        store.ingest(run)
        (run / RECORD_NAME).write_text((run / RECORD_NAME).read_text().replace('"A. Tester"', '"A. Tester"', 1) + "\n")
        write_manifest(run)  # re-sealed after an edit
        with pytest.raises(HistoryError, match="differs from the one recorded at ingest"):
            store.ingest(run)


def test_an_unreachable_database_is_one_line_and_the_run_is_untouched(tmp_path, run, capsys):
    write_manifest(run)
    before = verify_manifest(run)
    url = "postgresql+psycopg://rig@127.0.0.1:1/none"  # nothing listens on port 1
    content = record_and_review(run, url)
    assert content["error"] and "unreachable" in content["error"] and "\n" not in content["error"]
    assert json.loads((run / HISTORY_NAME).read_text())["error"] == content["error"]
    (run / HISTORY_NAME).unlink()
    assert verify_manifest(run) == before == []
    code = rig_main(["history", "import", str(run), "--db", url])
    err = capsys.readouterr().err
    assert code == 1 and "unreachable" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    # later, with the database back: the import completes it
    good = f"sqlite:///{tmp_path / 'later.sqlite'}"
    assert rig_main(["history", "import", str(run), "--db", good]) == 0
    assert "recorded: run" in capsys.readouterr().out


def test_bad_database_urls_are_one_line(tmp_path, capsys):
    for url, words in (("nonsense", "not a database URL"), ("mysql+nothere://x/y", "sqlite:///"),
                       (f"sqlite:///{tmp_path}/no/such/folder/h.sqlite", "does not exist")):
        code = rig_main(["history", "import", str(tmp_path), "--db", url])
        err = capsys.readouterr().err
        assert code == 2 and words in err and "Traceback" not in err, (url, err)


def test_url_order_flag_then_environment_then_lab_then_default(tmp_path, monkeypatch):
    monkeypatch.delenv("TRACTION_RIG_DB", raising=False)
    assert resolve_url(None, run_root=tmp_path) == f"sqlite:///{tmp_path / 'history.sqlite'}"
    assert resolve_url(None, lab_db="sqlite:///lab.sqlite", run_root=tmp_path) == "sqlite:///lab.sqlite"
    monkeypatch.setenv("TRACTION_RIG_DB", "sqlite:///env.sqlite")
    assert resolve_url(None, lab_db="sqlite:///lab.sqlite") == "sqlite:///env.sqlite"
    assert resolve_url("sqlite:///flag.sqlite", lab_db="sqlite:///lab.sqlite") == "sqlite:///flag.sqlite"


def test_trend_list_and_export_from_the_command_line(database_url, run, tmp_path, capsys):
    slow = _copy_run(run, tmp_path / "second", utc="2099-01-01T00:00:00.000+00:00")
    assert rig_main(["history", "import", str(run), str(slow), "--db", database_url]) == 0
    capsys.readouterr()
    assert rig_main(["history", "--db", database_url, "--table", TABLE_SERIAL]) == 0
    assert "2 of 2 runs shown" in capsys.readouterr().out
    assert rig_main(["history", "--db", database_url, "--verdict", "PASS"]) == 0
    assert "0 of 2 runs shown" in capsys.readouterr().out
    assert rig_main(["history", "--db", database_url, "--since", "2098-12-31"]) == 0
    assert "1 of 2 runs shown" in capsys.readouterr().out
    png = tmp_path / "trend.png"
    assert rig_main(["history", "ER-HALF", "--table", TABLE_SERIAL, "--db", database_url, "--png", str(png)]) == 0
    out = capsys.readouterr().out
    assert "ER-HALF of table" in out and "0.059 s" in out and png.stat().st_size > 10_000
    assert rig_main(["history", "ER-HALF", "--db", database_url]) == 2  # which table?
    assert "--table" in capsys.readouterr().err
    assert rig_main(["history", "XX-NONE", "--table", TABLE_SERIAL, "--db", database_url]) == 2
    assert "recorded for it: ER-HALF" in capsys.readouterr().err
    out_csv, out_pq = tmp_path / "m.csv", tmp_path / "m.parquet"
    assert rig_main(["history", "export", "--db", database_url, "--out", str(out_csv)]) == 0
    assert rig_main(["history", "export", "--db", database_url, "--out", str(out_pq), "--requirement", "ER-HALF"]) == 0
    rows = list(csv.DictReader(out_csv.open()))
    table = pq.read_table(out_pq)
    assert len(rows) == 2 * run_rows(run)["run"]["measurement_count"]
    assert table.num_rows == sum(1 for r in rows if r["requirement"] == "ER-HALF") > 0
    assert {"table_serial", "requirement", "value", "uncertainty", "verdict", "decision_rule"} <= set(table.column_names)
    assert rows[0]["started_utc"].endswith("+00:00")


# ---------------------------------------------------------------- drift
def _points(values, u=0.004, upper=0.5):
    return [Point(v, u, None, upper, "PASS") for v in values]


def test_a_steady_table_is_no_drift_even_when_it_scatters():
    import numpy as np

    rng = np.random.default_rng(7)
    for _ in range(50):  # scatter larger than U: reproducibility, not drift
        values = list(0.06 + rng.normal(0, 0.006, 12))
        assert trend_warning("ER-HALF", "S", _points(values)) is None or \
            trend_warning("ER-HALF", "S", _points(values)).runs_to_limit > 5
    assert assess("ER-HALF", "S", _points([0.06] * 8)) == []


def test_a_step_beyond_the_combined_uncertainty_is_flagged_and_one_within_is_not():
    assert step_warning("ER-HALF", "S", _points([0.060, 0.061, 0.059, 0.060, 0.0615])) is None
    w = step_warning("ER-HALF", "S", _points([0.060, 0.061, 0.059, 0.060, 0.080]), "s")
    assert w is not None and w.kind == "step" and "more than the combined U" in w.text


def test_a_creeping_release_is_flagged_before_it_reaches_the_limit():
    values = [0.10 + 0.05 * i for i in range(6)]  # 0.10 … 0.35 s, limit 0.5 s
    w = trend_warning("ER-HALF", "S", _points(values), "s")
    assert w is not None and w.kind == "trend" and 0 < w.runs_to_limit <= 5
    assert all(p.value + p.uncertainty < 0.5 for p in _points(values))  # every run still PASSes
    assert trend_warning("ER-HALF", "S", _points(values), "s", horizon=1) is None  # beyond a 1-run horizon


def test_a_falling_value_towards_a_lower_limit_is_a_trend_too():
    points = [Point(v, 0.002, 0.05, None, "PASS") for v in (0.12, 0.11, 0.10, 0.09, 0.08)]
    w = trend_warning("ER-SNAP", "S", points, "s")
    assert w is not None and "falling" in w.text


def test_the_report_shows_the_history_section(run, tmp_path):
    from reports.render import render_report

    url = f"sqlite:///{tmp_path / 'h.sqlite'}"
    for i in range(4):
        other = _copy_run(run, tmp_path / f"r{i}", utc=f"2020-01-0{i + 1}T00:00:00.000+00:00")
        record_and_review(other, url)
    record_and_review(run, url)
    html = render_report(run, pdf=False)[0].read_text()
    assert "5. History of this table" in html and "5 run(s)" in html and "No drift warning." in html
    assert verify_manifest(run) == []  # history.json is sealed with the run


def test_rig_verify_checks_the_digest_recorded_at_ingest(database_url, run, capsys):
    write_manifest(run)
    with Store(database_url) as store:
        store.ingest(run)
    assert rig_main(["verify", str(run), "--db", database_url]) == 0
    assert "digest as recorded in" in capsys.readouterr().out
    from reports.render import render_report

    render_report(run, pdf=False)  # the report rendered again and the run re-sealed: not an edit of its evidence
    assert rig_main(["verify", str(run), "--db", database_url]) == 0
    capsys.readouterr()
    record = run / RECORD_NAME
    lines = record.read_text().splitlines(keepends=True)
    measured = next(i for i, text in enumerate(lines) if '"requirement": "ER-HALF"' in text)
    line = json.loads(lines[measured])
    line["value"] = line["value"] / 2  # a slow release made to look fast
    lines[measured] = json.dumps(line) + "\n"
    record.write_text("".join(lines))
    write_manifest(run)  # edited and re-sealed: the manifest alone no longer notices
    assert verify_manifest(run) == []
    assert rig_main(["verify", str(run), "--db", database_url]) == 1
    assert "differs from the one" in capsys.readouterr().out
    lines[0] = lines[0].replace("SYN-CAL-001", "SYN-CAL-002")
    record.write_text("".join(lines))
    write_manifest(run)
    assert rig_main(["verify", str(run), "--db", database_url]) == 1
    assert "its start (rig, table, specification, operator) was edited" in capsys.readouterr().out
    other = build_run(run.parent / "never-imported")
    write_manifest(other)
    assert rig_main(["verify", str(other), "--db", database_url]) == 1
    assert "not recorded" in capsys.readouterr().out


def test_history_piped_keeps_every_identifier_whole_and_scripts_get_csv_or_json(run, tmp_path, capsys):
    """`rig history | less` (no terminal: rich assumes 80 columns) cut serials to
    "EMU-LUMB-0…": an identifier is never cut; --format csv/json give one row per run."""
    serial = "EMU-LUMB-0007-WITH-A-LONG-SERIAL-NUMBER"
    long_run = _copy_run(run, tmp_path / ("20261205T005544Z-a-rig-with-a-rather-long-name-" + "7" * 12),
                         table={**json.loads((run / RECORD_NAME).read_text().splitlines()[0])["table"],
                                "serial": serial},
                         rig={**json.loads((run / RECORD_NAME).read_text().splitlines()[0])["rig"],
                              "name": "a-rig-with-a-rather-long-name"})
    url = f"sqlite:///{tmp_path / 'h.sqlite'}"
    assert rig_main(["history", "import", str(long_run), "--db", url]) == 0
    capsys.readouterr()
    assert rig_main(["history", "--db", url]) == 0
    out = capsys.readouterr().out
    assert serial in out and long_run.name in out and "a-rig-with-a-rather-long-name" in out and "…" not in out
    row = next(line for line in out.splitlines() if serial in line)
    assert long_run.name in row  # one run, one line
    assert rig_main(["history", "--db", url, "--format", "csv"]) == 0
    rows = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert [(r["table"], r["rig"], Path(r["run_dir"]).name, r["overall"]) for r in rows] == \
        [(serial, "a-rig-with-a-rather-long-name", long_run.name, "INCONCLUSIVE")]
    assert rig_main(["history", "--db", url, "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["total"] == 1 and document["runs"][0]["table"] == serial
    assert document["runs"][0]["started_utc"].endswith("+00:00")
    png = tmp_path / "trend.png"
    assert rig_main(["history", "ER-HALF", "--table", serial, "--db", url, "--format", "json", "--png", str(png)]) == 0
    said = capsys.readouterr()
    trend = json.loads(said.out)  # stdout is the document alone; the plot is said on stderr
    assert trend["requirement"] == "ER-HALF" and len(trend["runs"]) == 1 and trend["runs"][0]["unit"] == "s"
    assert png.is_file() and str(png) in said.err
    assert rig_main(["history", "ER-HALF", "--table", serial, "--db", url]) == 0
    out = capsys.readouterr().out
    assert long_run.name in out and "…" not in out
    assert rig_main(["history", "--db", url, "--format", "parquet"]) == 2  # export's, not the list's
    assert "rig history export" in capsys.readouterr().err


def test_history_help_keeps_its_usage_lines(capsys):
    with pytest.raises(SystemExit):
        rig_main(["history", "--help"])
    out = capsys.readouterr().out
    lines = [line.strip() for line in out.splitlines()]
    assert any(line.startswith("rig history import RUN_DIR…") for line in lines)
    assert any(line.startswith("rig history export [--format csv|parquet] --out FILE") for line in lines)
    assert any(line.startswith("rig history REQ --table SERIAL") for line in lines)
