"""What the run tells Allure: requirement labels and links, parameters, every measurement
as a step titled with its value, limit, U and verdict, and for each measurement with a
time series its data (CSV) and its plot against time (PNG: a force, an angle).

Everything here is a no-op when allure-pytest is not writing results (`rig run`
turns it on with `--allure`); the run record stays the source of truth.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import allure

from reports.rundir import format_value
from verification.spec import quantity_id


def active() -> bool:
    try:
        from allure_commons import plugin_manager

        return any(type(p).__name__ == "AllureListener" for p in plugin_manager.get_plugins())
    except Exception:  # noqa: BLE001
        return False


def label_test(session_rig, requirement_ids: list[str]) -> None:
    if not active():
        return
    spec, config = session_rig.spec, session_rig.config
    allure.dynamic.epic(spec.title)
    allure.dynamic.parameter("rig", config.name)
    allure.dynamic.parameter("table serial", config.table.serial)
    for rid in requirement_ids:
        req = spec.requirement(rid)
        allure.dynamic.label("requirement", rid)
        allure.dynamic.feature(f"{rid} {req.title}")
        allure.dynamic.link(f"#{rid}", link_type="requirement", name=f"{rid} — {req.source}")


def measurement_step(m) -> None:
    """Every measurement as a step of its test, titled as the verdict table reads
    (ER-NORISE.rise: 3.2 N ≤ 8 N, U ± 0.4 N → PASS), the whole measurement attached: in
    Allure each quantity a requirement bounds is seen with its own value and verdict."""
    if not active():
        return
    rid = quantity_id(m.requirement.id, m.quantity)
    line = m.to_dict()  # the measurement line as the record holds it: shown as the verdict table shows it
    value, limit, u = format_value(line)
    title = f"{rid}: {value} {limit}{'' if u == '—' else f', U {u}'} → {m.verdict.value} — {m.name}"
    with allure.step(title):
        allure.attach(json.dumps(line, indent=1, default=str), name=f"{rid} measurement",
                      attachment_type=allure.attachment_type.JSON)


#: the conditions shown as the test's parameters in Allure (those a measurement has)
PARAMETERS = ("setting_n", "trigger", "phase", "rate_n_s", "force_n", "motion", "speed_deg_s", "depth_deg",
              "distraction_n")


def attach_measurement(csv_path: Path, m) -> None:
    if not active():
        return
    for key in PARAMETERS:
        if key in m.conditions:
            allure.dynamic.parameter(key, m.conditions[key])
    allure.attach.file(str(csv_path), name=f"{m.name} (data)", attachment_type=allure.attachment_type.CSV)
    drawn = series_plot(m)
    if drawn:
        quantity, png = drawn
        allure.attach(png, name=f"{m.name} ({quantity} vs time)", attachment_type=allure.attachment_type.PNG)


def series_plot(m) -> tuple[str, bytes] | None:
    """(what is drawn, the PNG) of a measurement's series against time, drawn by its column
    as the report draws it (a force, an angle: reports.plots.COLUMNS), or None without one."""
    from reports.plots import COLUMNS, TIME_COLUMN, value_column

    column = value_column(m.series or {})
    t, y = (m.series or {}).get(TIME_COLUMN), (m.series or {}).get(column)
    if t is None or y is None or len(t) < 2:
        return None
    _label, axis_label, _unit = COLUMNS.get(column, (column, column, None))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3), dpi=90)
    ax.plot(t, y, lw=0.8, color="#1f5fa8")
    for name, value in m.annotations.items():
        if isinstance(value, (int, float)):
            ax.axvline(value, lw=0.6, ls="--", color="#c0392b" if "trigger" in name else "#7f8c8d")
    ax.set_xlabel("table time (s)")
    ax.set_ylabel(axis_label)
    ax.set_title(f"{m.requirement.id}: {m.name}", fontsize=9)
    ax.grid(alpha=0.3)
    buf = io.BytesIO()
    fig.subplots_adjust(left=0.11, right=0.98, top=0.9, bottom=0.16)  # tight_layout would draw it twice
    fig.savefig(buf, format="png")
    plt.close(fig)
    return axis_label.split(" (")[0], buf.getvalue()
