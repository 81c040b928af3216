"""A run directory recorded before issue 24 stays valid: today's code verifies it, imports
it to the same database rows and digest, and renders a report that says the same.

The run (tests/data/pre-issue-24-run.tar.xz: an emulated lumbar run of the quick profile,
12 tests, sealed) and what the code of its day made of it
(tests/data/pre-issue-24-run.expected.json) were both made by that code
(tests/data/make_pre_issue_24_run.py). Issue 24 moved every file name, event and format
of the run directory into one module; a byte written or read differently would show
here as a changed manifest, digest, row or report line.

Where issue 24 changed what a report shows on purpose (item 7), the test says so and
checks the new form against the old content, not against nothing.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import tarfile
from pathlib import Path

import pytest

from reports.render import render_report
from reports.rundir import format_value
from reports.verdicts import summarise, verdict_rows
from rigcli.main import main as rig_main
from tests.data.make_pre_issue_24_run import EXPECTED, TARBALL, database_rows, placeholders
from tests.report_content import report_content

RUN_NAME = "20261205T005544Z-emulated-lumbar-7005"


@pytest.fixture(scope="module")
def expected() -> dict:
    return json.loads(EXPECTED.read_text(encoding="utf-8"))


@pytest.fixture
def old_run(tmp_path, monkeypatch) -> Path:
    """The old run, unpacked fresh for each test (rendering re-writes its manifest)."""
    monkeypatch.delenv("TRACTION_RIG_DB", raising=False)
    monkeypatch.delenv("TRACTION_RIG_LAB", raising=False)
    with tarfile.open(TARBALL) as tar:
        tar.extractall(tmp_path / "runs", filter="data")
    return tmp_path / "runs" / RUN_NAME


def cli(argv: list[str]) -> dict:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = rig_main(argv)
    return {"status": code, "stdout": out.getvalue(), "stderr": err.getvalue()}


def test_fixture_is_small_and_sealed(old_run, expected):
    assert TARBALL.stat().st_size < 1_000_000
    assert expected["made_by"]["commit"].startswith("8108879")
    assert (old_run / "MANIFEST.sha256").is_file() and not (old_run / "report").exists()


def test_old_run_verifies(old_run, expected, tmp_path):
    assert placeholders(cli(["verify", str(old_run)]), old_run, tmp_path) == expected["verify"]


def test_old_run_imports_to_the_same_rows_and_digest(old_run, expected, tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    url = f"sqlite:///{scratch / 'history.sqlite'}"
    assert placeholders(cli(["history", "import", str(old_run), "--db", url]), old_run, scratch) == expected["import"]
    assert placeholders(cli(["history", "import", str(old_run), "--db", url]), old_run, scratch) == \
        expected["import_again"]
    # the digest recorded at import is the one `rig verify` finds in the database
    assert placeholders(cli(["verify", str(old_run), "--db", url]), old_run, scratch) == \
        expected["verify_with_database"]
    rows = placeholders(database_rows(scratch / "history.sqlite"), old_run, scratch)
    for table, old_rows in expected["database"].items():
        assert len(rows[table]) == len(old_rows), table
        for new, old in zip(rows[table], old_rows):
            assert new == old, (table, {k: (old.get(k), new.get(k)) for k in old if new.get(k) != old.get(k)})
    assert rows["runs"][0]["evidence_sha256"] == expected["database"]["runs"][0]["evidence_sha256"]


def test_old_run_verdict_table_is_unchanged(old_run, expected):
    summary = summarise(old_run)
    table = [[row.id, *format_value(row.tally.worst), row.tally.verdict] for row in verdict_rows(summary.results)]
    assert table == expected["verdict_table"]
    assert (summary.overall, summary.complete) == (expected["overall"], expected["complete"])


# ------------------------------------------------------------------ the report

#: a condition as the report lists it: "key = value"
_CONDITION = re.compile(r"^(?P<key>\w+) = (?P<value>.*)$")


def _conditions(text: str) -> dict[str, str]:
    out = {}
    for part in text.split("; "):
        m = _CONDITION.match(part)
        assert m, f"not a condition: {part!r} in {text!r}"
        out[m["key"]] = m["value"]
    return out


@pytest.fixture
def reports(old_run, expected, tmp_path) -> tuple[dict, dict]:
    """(the old code's report content, today's) for the old run, rendered to a folder
    outside the run (HTML only: the PDF is the same HTML)."""
    written = render_report(old_run, tmp_path / "report-out", pdf=False)
    assert [p.name for p in written] == expected["report_files_written"]
    new = report_content((tmp_path / "report-out" / "report.html").read_text(encoding="utf-8"))
    return expected["report"], placeholders(new, old_run, tmp_path)


def test_old_run_report_says_the_same(reports):
    old, new = reports
    assert new["overall"] == old["overall"]
    assert new["banners"] == old["banners"]
    assert new["deviations"] == old["deviations"]
    assert new["tests"] == old["tests"]
    assert new["trials"] == old["trials"]
    assert new["files"] == old["files"]  # the report names the same files with the same digests
    old_facts, new_facts = dict(old["facts"]), dict(new["facts"])
    for facts in (old_facts, new_facts):
        del facts["Report generated"]  # the time of rendering
    # issue 24 item 7, on purpose: the cover counts requirements (19), no longer the
    # verdict table's rows (20: ER-NORISE.rise is a quantity of ER-NORISE, not a requirement)
    requirements = len({s["id"].split(".")[0] for s in old["sections"]})
    assert old_facts["Requirements"].startswith(f"{len(old['sections'])}: ")
    assert new_facts.pop("Requirements") == \
        old_facts.pop("Requirements").replace(f"{len(old['sections'])}: ", f"{requirements}: ", 1)
    assert requirements == 19
    assert new_facts == old_facts
    assert len(new["matrix"]) == len(old["matrix"])
    grouped = 0
    for o, n in zip(old["matrix"], new["matrix"]):
        o, n = dict(o), dict(n)
        # issue 24 item 7, on purpose: one entry per test function with its count of
        # parameter sets (test_start_refused ×8), no longer one line per parametrisation
        old_tests, new_tests = o.pop("tests"), n.pop("tests")
        assert new_tests == by_function(old_tests), o["id"]
        grouped += new_tests != old_tests
        # issue 24 item 1: the limit of a requirement nothing measured (the specification's)
        # is shown by the one number formatting too ("≤ 3.0 s" was the YAML's float as typed)
        assert n.pop("limit") == spec_limit(o.pop("limit"), o["verdict"]), o["id"]
        assert n == o
    assert grouped, "no parametrised test in the old run: the grouping went unchecked"


def by_function(tests: list[str]) -> list[str]:
    """The old matrix cell's test ids, grouped as issue 24 shows them."""
    groups: dict[str, list[str]] = {}
    for t in tests:
        groups.setdefault(t.split("[", 1)[0], []).append(t)
    return [ids[0] if len(ids) == 1 else f"{function} ×{len(ids)} parameter sets" for function, ids in groups.items()]


def spec_limit(old: str, verdict: list[str]) -> str:
    """A limit as the old report showed it, with the specification's numbers (shown as the
    YAML typed them where nothing was measured) in the one number formatting."""
    from reports.rundir import number_text

    if verdict[0] != "NOT RUN":
        return old  # a measured limit was always formatted
    bound = re.fullmatch(r"([≤≥]) (-?\d+(?:\.\d+)?)( [A-Za-z%][\w/%]*)?", old)  # a number, not a formula of the conditions
    return f"{bound[1]} {number_text(float(bound[2]))}{bound[3] or ''}" if bound else old


def test_old_run_requirement_sections_are_the_same(reports):
    """Every requirement section: heading and verdict, the specification's facts, the
    statistics, the worst measurement, each measurement's value, limit, U, TUR and
    verdict, and as many plots."""
    from reports.rundir import number_text

    old, new = reports
    assert [s["id"] for s in new["sections"]] == [s["id"] for s in old["sections"]]
    for o, n in zip(old["sections"], new["sections"]):
        where = o["id"]
        for key in ("heading", "statistics", "measurements", "figures", "images", "captions", "banners"):
            assert n[key] == o[key], (where, key)
        o_facts, n_facts = dict(o["facts"]), dict(n["facts"])
        assert n_facts.pop("Limit (specification)") == \
            spec_limit(o_facts.pop("Limit (specification)"), ["NOT RUN"]), where  # see spec_limit
        assert n_facts == o_facts, where
        if o["worst"] is None:
            assert n["worst"] is None, where
            continue
        o_worst, n_worst = dict(o["worst"]), dict(n["worst"])
        o_cond, n_cond = _conditions(o_worst.pop("Conditions")), _conditions(n_worst.pop("Conditions"))
        assert n_worst == o_worst, where
        # issue 24 item 7, on purpose: conditions were printed as raw floats
        # (settled_n = 201.14530066666666); now each number as every other number of the report
        assert list(n_cond) == list(o_cond), where
        for key, old_value in o_cond.items():
            try:
                number = float(old_value)
            except ValueError:
                assert n_cond[key] == old_value, (where, key)
                continue
            if re.fullmatch(r"-?\d+", old_value):  # an integer was never shown otherwise
                assert n_cond[key] == old_value, (where, key)
            else:
                assert n_cond[key] == number_text(number), (where, key, old_value)


def test_old_run_has_raw_float_conditions_that_are_now_formatted(reports):
    """The old report did show conditions as raw floats: the check above is not vacuous."""
    old, new = reports
    raw = [v for s in old["sections"] if s["worst"] for v in _conditions(s["worst"]["Conditions"]).values()
           if re.fullmatch(r"-?\d+\.\d{7,}", v)]
    assert raw, "the old report had no raw float condition"
    shown = [v for s in new["sections"] if s["worst"] for v in _conditions(s["worst"]["Conditions"]).values()]
    assert not any(re.fullmatch(r"-?\d+\.\d{7,}", v) for v in shown)
