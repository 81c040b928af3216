"""What the run tells Allure: requirement labels and links, parameters, every measurement
as a step titled with its value, limit, U and verdict, and for each measurement with a
time series its data (CSV) and a force–time plot (PNG).

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


def attach_measurement(csv_path: Path, m) -> None:
    if not active():
        return
    for key in ("setting_n", "trigger", "phase", "rate_n_s", "force_n"):
        if key in m.conditions:
            allure.dynamic.parameter(key, m.conditions[key])
    allure.attach.file(str(csv_path), name=f"{m.name} (data)", attachment_type=allure.attachment_type.CSV)
    png = force_plot(m)
    if png:
        allure.attach(png, name=f"{m.name} (force vs time)", attachment_type=allure.attachment_type.PNG)


def force_plot(m) -> bytes | None:
    t, f = m.series.get("t_s"), m.series.get("force_n")
    if t is None or f is None or len(t) < 2:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3), dpi=90)
    ax.plot(t, f, lw=0.8, color="#1f5fa8")
    for name, value in m.annotations.items():
        if isinstance(value, (int, float)):
            ax.axvline(value, lw=0.6, ls="--", color="#c0392b" if "trigger" in name else "#7f8c8d")
    ax.set_xlabel("table time (s)")
    ax.set_ylabel("force (N)")
    ax.set_title(f"{m.requirement.id}: {m.name}", fontsize=9)
    ax.grid(alpha=0.3)
    buf = io.BytesIO()
    fig.subplots_adjust(left=0.11, right=0.98, top=0.9, bottom=0.16)  # tight_layout would draw it twice
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
