"""What a reader of the report sees (issue 24, item 7): the cover counts requirements, not
the verdict table's rows; a parametrised test is one entry of the matrix with its count
of parameter sets; conditions are numbers shown as every number; the values plot counts
measurements in whole numbers."""

from __future__ import annotations

import json

import pytest

from reports import plots
from reports.render import condition_text, render_report, by_test_function
from reports.rundir import number_text
from tests.report_content import report_content
from tests.synthetic_run import ER_TEST, build_run


def test_values_plot_numbers_measurements_with_whole_ticks(monkeypatch):
    drawn = []
    monkeypatch.setattr(plots, "_png", lambda fig: drawn.append(fig) or b"")
    ms = [{"value": v, "uncertainty": 0.01, "upper": 0.5, "verdict": "PASS", "unit": "s"}
          for v in (0.11, 0.12, 0.1, 0.13)]
    plots.values_plot("ER-HALF", ms)
    ax = drawn[0].axes[0]
    drawn[0].canvas.draw()
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_conditions_are_numbers_as_the_report_shows_them():
    assert condition_text(201.14530066666666) == number_text(201.14530066666666) == "201.1"
    assert condition_text(800.0) == "800"
    assert condition_text(1000) == "1000" and condition_text(123456) == "123456"  # a count as counted
    assert condition_text(True) == "True" and condition_text("estop_coil") == "estop_coil"


def test_a_parametrised_test_is_one_entry_with_its_count():
    tests = [f"suites/test_emergency_release.py::test_emergency_release[{t}]" for t in ("estop_coil", "a", "b")]
    tests.append("suites/test_force_accuracy.py::test_static_force_accuracy")
    assert by_test_function(tests, unfinished={tests[1]}) == [
        {"test": "suites/test_emergency_release.py::test_emergency_release", "count": 3, "unfinished": 1},
        {"test": "suites/test_force_accuracy.py::test_static_force_accuracy", "count": 1, "unfinished": 0},
    ]
    one = by_test_function(tests[:1])
    assert one == [{"test": tests[0], "count": 1, "unfinished": 0}]  # run once: its full id


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A synthetic run whose emergency release ran for four triggers and whose static
    accuracy recorded a raw float condition, rendered once (HTML)."""
    run = build_run(tmp_path_factory.mktemp("runs") / "run")
    record = run / "record.jsonl"
    lines = [json.loads(x) for x in record.read_text(encoding="utf-8").splitlines()]
    end = lines.pop()
    for trigger in ("patient_switch", "mains_cut", "link_cut"):
        test = ER_TEST.replace("[estop_coil]", f"[{trigger}]")
        lines.append({"event": "test-start", "utc": end["utc"], "test": test, "requirements": ["ER-LATCH"]})
        lines.append({"event": "measurement", "utc": end["utc"], "test": test, "name": f"{trigger} latch",
                      "requirement": "ER-LATCH", "value": True, "unit": "", "lower": None, "upper": None,
                      "uncertainty": 0.0, "decision_rule": "boolean", "verdict": "PASS",
                      "conditions": {"trigger": trigger, "settled_n": 201.14530066666666}})
        lines.append({"event": "test-end", "utc": end["utc"], "test": test, "when": "call", "outcome": "passed"})
    lines.append(end)
    record.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    out = tmp_path_factory.mktemp("out")
    render_report(run, out, pdf=False)
    return report_content((out / "report.html").read_text(encoding="utf-8"))


def test_cover_counts_requirements_not_rows(report):
    from verification.spec import load_spec

    requirements = load_spec("lumbar").requirements
    rows = len(report["matrix"])
    assert rows == len(requirements) + 1  # ER-NORISE.rise: a row of its own, not a requirement
    count, rest = report["facts"]["Requirements"].split(": ", 1)
    assert int(count) == len(requirements)
    assert sum(int(part.split()[0]) for part in rest.split(" (")[0].split(", ")) == len(requirements)


def test_matrix_lists_a_parametrised_test_once(report):
    latch = next(r for r in report["matrix"] if r["id"] == "ER-LATCH")
    assert latch["tests"] == ["suites/test_emergency_release.py::test_emergency_release ×4 parameter sets"]


def test_conditions_are_not_raw_floats(report):
    shown = " ".join(s["worst"]["Conditions"] for s in report["sections"] if s["worst"])
    assert "201.1453" not in shown
