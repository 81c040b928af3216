"""A flexion-distraction run renders: its series are angles (t_s, angle_deg) as well as
forces, and the report draws each by its column. A synthetic FD run (the record lines and
series the FD suites write, reports.record.RunRecord, no rig): a treatment of three moves
on one angle series, one emergency stop (the stop time on the angle, the release on the
distraction force, the travel and the hold on no series of their own) and one obstruction.
"""

from __future__ import annotations

import pytest

from reports import plots
from reports.render import render_report
from tests.report_content import report_content
from tests.synthetic_fd_run import build_fd_run


@pytest.fixture(scope="module")
def fd_run(tmp_path_factory):
    return build_fd_run(tmp_path_factory.mktemp("fd") / "run")


@pytest.fixture(scope="module")
def drawn(fd_run):
    """The report rendered once, every figure kept (by its title) before it becomes a PNG."""
    figures = {}
    real = plots._png

    def keep(fig):
        figures[fig.axes[0].get_title()] = fig
        return real(fig)

    plots._png = keep
    try:
        render_report(fd_run, pdf=False)
    finally:
        plots._png = real
    html = (fd_run / "report" / "report.html").read_text(encoding="utf-8")
    return figures, report_content(html)


def _figure(figures, start):
    found = [f for title, f in figures.items() if title.startswith(start)]
    assert found, f"no figure titled {start!r} in {sorted(figures)}"
    return found[0]


def test_the_verdict_table_has_the_flexion_requirements(drawn):
    _figures, content = drawn
    rows = {r["id"]: r for r in content["matrix"]}
    for rid in ("FD-DEPTH", "ES-TIME", "ES-TRAVEL", "ES-HOLD", "ES-RELEASE", "IL-OBSTRUCT"):
        assert rows[rid]["verdict"][0] == "PASS", rows[rid]
    assert rows["FD-NEUTRAL"]["verdict"][0] == "NOT RUN"
    assert rows["ES-TRAVEL"]["worst"] == "0.48 deg"


def test_every_series_plot_is_drawn_by_its_column(drawn):
    _figures, content = drawn
    sections = {s["id"]: s for s in content["sections"]}
    for rid in ("FD-DEPTH", "ES-TIME", "ES-TRAVEL", "ES-HOLD", "ES-RELEASE", "IL-OBSTRUCT"):
        assert sections[rid]["images"] >= 1, rid
    # the stop's travel has no series of its own: it is drawn on its trial's angle, the force below
    assert any("ES-TIME" in c and "ES-RELEASE" in c for c in sections["ES-TRAVEL"]["captions"])


def test_the_stop_is_zoomed_on_its_trigger_with_the_force_below(drawn):
    figures, _content = drawn
    fig = _figure(figures, "ES-TIME — ")
    angle, force = fig.axes
    lo, hi = angle.get_xlim()
    assert lo < 0.0 < hi and hi - lo < 1.0, (lo, hi)  # around the trigger, not the 6 s capture
    labels = {t.get_text().strip() for t in angle.texts}
    assert {"trigger", "at rest"} <= labels
    assert any(t.get_text().strip().startswith("travel 0.48") for t in angle.texts)
    legend = [t.get_text() for t in angle.get_legend().get_texts()]
    assert any(text.startswith("hold window 5") for text in legend)
    assert angle.get_ylabel() == "angle (°)" and force.get_ylabel() == "force (N)"
    lo_a, hi_a = angle.get_ylim()
    assert hi_a - lo_a < 5.0  # scaled to the zoom, not to the 20° the trace travelled before


def test_the_hold_is_drawn_over_its_window(drawn):
    figures, _content = drawn
    angle = _figure(figures, "ES-HOLD — ").axes[0]
    assert angle.get_xlim()[1] > 5.0
    assert any(t.get_text().startswith("at rest ± 0.2") for t in angle.get_legend().get_texts())


def test_each_move_of_the_treatment_has_its_band(drawn):
    figures, _content = drawn
    ax = _figure(figures, "FD-DEPTH — ").axes[0]
    marked = [line for line in ax.lines if line.get_marker() == "o"]
    assert len(marked) == 3  # the move plotted and its two companions read on the same series
    assert len(ax.collections) >= 3  # a set ± tolerance band at each move


def test_the_obstruction_shows_the_obstacle_angle(drawn):
    figures, _content = drawn
    ax = _figure(figures, "IL-OBSTRUCT — ").axes[0]
    assert ax.get_ylabel() == "angle (°)"
    assert any(t.get_text().startswith("obstacle at 10") for t in ax.get_legend().get_texts())


def test_allure_draws_an_angle_series_as_it_draws_a_force():
    """A measurement's series attached to Allure is drawn by its column: an FD stop's angle
    gets its plot like a traction release's force (reports.allure_results.series_plot)."""
    from types import SimpleNamespace

    import numpy as np

    from reports.allure_results import series_plot

    t = np.linspace(-0.1, 0.3, 200)
    for column, quantity in (("angle_deg", "angle"), ("force_n", "force")):
        m = SimpleNamespace(series={"t_s": t, column: np.cos(t)}, annotations={"trigger_s": 0.0, "at_rest_s": 0.05},
                            requirement=SimpleNamespace(id="ES-TIME"), name="estop_coil trial 1")
        drawn = series_plot(m)
        assert drawn is not None and drawn[0] == quantity and drawn[1][:8] == b"\x89PNG\r\n\x1a\n"
    assert series_plot(SimpleNamespace(series={"t_s": t}, annotations={}, requirement=None, name="")) is None
