"""Plots and statistics for the compliance report (matplotlib, Agg, PNG bytes).

Every plot is drawn from the run directory alone: a measurement line of the record and
the series CSV it (or a sibling measurement of the same trial) points at. Time series
are in the series' own time base (table seconds), where the measurement's
`annotations` place its instants (trigger_s, cross_s, release_s, start_s/end_s,
stop_s, and one key per requirement for the instant that requirement measured).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from reports.rundir import U_DIGITS, number_text  # noqa: E402

MAX_POINTS = 4000  # a plot never needs more points than its pixel width (ish)
# where the measured time of a requirement starts from, in the order looked for
REFERENCES = ("trigger_s", "cross_s", "start_s")
INSTANT_LABELS = {
    "trigger_s": "trigger", "cross_s": "crossing of the limit", "release_s": "release begins",
    "start_s": "start", "end_s": "end", "stop_s": "stop",
}


def load_series(run_dir: Path, rel: str) -> dict[str, np.ndarray]:
    path = Path(run_dir) / rel
    with open(path, encoding="utf-8") as f:
        header = f.readline().strip().split(",")
    data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    if data.size == 0:
        return {k: np.empty(0) for k in header}
    return {k: data[:, i] for i, k in enumerate(header)}


def _decimate(t: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Min/max decimation: keeps the peaks a plain stride would drop."""
    n = len(t)
    if n <= MAX_POINTS:
        return t, f
    step = math.ceil(n / (MAX_POINTS // 2))
    m = n // step * step
    tb, fb = t[:m].reshape(-1, step), f[:m].reshape(-1, step)
    lo, hi = fb.argmin(axis=1), fb.argmax(axis=1)
    rows = np.arange(len(tb))
    first = np.minimum(lo, hi)
    second = np.maximum(lo, hi)
    tt = np.column_stack([tb[rows, first], tb[rows, second]]).ravel()
    ff = np.column_stack([fb[rows, first], fb[rows, second]]).ravel()
    return tt, ff


#: fixed margins instead of tight_layout, which draws every figure once more only to
#: measure it (a third of the report's plotting time); labels are small and known
MARGINS = {"left": 0.085, "right": 0.985, "top": 0.9, "bottom": 0.15}


def _png(fig) -> bytes:
    fig.subplots_adjust(**MARGINS)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96)
    plt.close(fig)
    return buf.getvalue()


def _fmt(v) -> str:
    return "—" if v is None else number_text(v)


def force_plot(run_dir: Path, m: dict, series_rel: str, residual_n: float | None = None) -> bytes:
    """Force vs time of one measurement's series with its limit band and instants."""
    cols = load_series(run_dir, series_rel)
    t = cols.get("t_s", next(iter(cols.values())) if cols else np.empty(0))
    f = cols.get("force_n", np.empty(0))
    fig, ax = plt.subplots(figsize=(7.2, 2.9))
    tt, ff = _decimate(np.asarray(t), np.asarray(f))
    ax.plot(tt, ff, lw=0.8, color="#1f4e79", label="gauge force")
    ann = {k: v for k, v in (m.get("annotations") or {}).items() if isinstance(v, (int, float)) and v is not None}
    cond = m.get("conditions") or {}
    rid, unit = m.get("requirement", ""), m.get("unit") or ""
    hi, value, u = m.get("upper"), m.get("value"), m.get("uncertainty") or 0.0

    rise = m.get("quantity") == "rise" and cond.get("force_at_trigger_n") is not None
    if rise:
        # how far the force rose after the trigger: the band up to the limit above the force
        # held at the trigger, the largest force after it, and the view zoomed on the rise
        f0, peak = cond["force_at_trigger_n"], cond.get("peak_n")
        if hi is not None:
            ax.axhspan(f0, f0 + hi, color="#2e7d32", alpha=0.12, label=f"no rise above {number_text(f0)} + {number_text(hi, 'N')}")
            ax.axhspan(f0 + hi - u, f0 + hi, color="#f9a825", alpha=0.25, label=f"guard band (U = {number_text(u, 'N', U_DIGITS)})")
        ax.axhline(f0, color="#2e7d32", lw=0.6, ls=":")
        if isinstance(peak, (int, float)) and math.isfinite(peak):
            ax.axhline(peak, color="#e65100", lw=1.0, label=f"largest after the trigger {number_text(peak, 'N')}")
            top = max(peak, f0 + (hi or 0.0))
            ax.set_ylim(f0 - 2.0 * (top - f0 + 1.0), top + 0.5 * (top - f0 + 1.0))
    elif unit == "N":
        # a force error: the acceptance band is the setting ± the limit
        setting = cond.get("setting_n", cond.get("set_n"))
        if setting is not None and hi is not None:
            ax.axhspan(setting - hi, setting + hi, color="#2e7d32", alpha=0.12, label=f"limit {number_text(setting)} ± {number_text(hi, 'N')}")
            ax.axhline(setting, color="#2e7d32", lw=0.6, ls=":")
            if len(ff):
                span = max(hi * 3, float(np.ptp(ff)) * 1.1, 1.0)
                ax.set_ylim(setting - span, setting + span)
    elif unit == "s":
        # a latency from an instant (trigger, limit crossing): the acceptance window after it
        ref_key = next((k for k in ("trigger_s", "cross_s") if k in ann), None)
        if ref_key is not None and hi is not None and rid != "ER-SNAP":
            ref = ann[ref_key]
            ax.axvspan(ref, ref + hi, color="#2e7d32", alpha=0.10, label=f"limit ≤ {number_text(hi, 's')} after {INSTANT_LABELS[ref_key]}")
            ax.axvspan(ref + hi - u, ref + hi, color="#f9a825", alpha=0.25, label=f"guard band (U = {number_text(u, 's', U_DIGITS)})")
    # force levels the requirement refers to
    if "limit_n" in cond:
        ax.axhline(cond["limit_n"], color="#c62828", lw=0.8, ls="--", label=f"FORCE_LIMIT {number_text(cond['limit_n'], 'N')}")
    f0 = cond.get("force_at_trigger_n")
    if f0 is not None and rid.startswith("ER-") and not rise:
        ax.axhline(0.5 * f0, color="#6a1b9a", lw=0.6, ls=":", label=f"50 % of {number_text(f0, 'N')}")
        if residual_n is not None:
            ax.axhline(residual_n, color="#ad1457", lw=0.6, ls=":", label=f"residual {number_text(residual_n, 'N')}")
    # instants: the trigger and the other reference instants, then what each requirement measured
    ymax = ax.get_ylim()[1]
    for key, x in ann.items():
        if key in INSTANT_LABELS:
            ax.axvline(x, color="#c62828" if key in ("trigger_s", "cross_s") else "#555", lw=1.0)
            before = key in ("trigger_s", "cross_s", "start_s")
            ax.text(x, ymax, " " + INSTANT_LABELS[key], rotation=90, va="top", ha="right" if before else "left",
                    fontsize=7, color="#333")
    ref = next((ann[k] for k in REFERENCES if k in ann), 0.0)
    for key, x in ann.items():
        if key in INSTANT_LABELS:
            continue
        own = key == rid
        # ER-* instants are times from the trigger; ER-SNAP is a fall time (drawn from its end only as a label)
        at = ref + x
        if key == "ER-SNAP":
            continue
        ax.axvline(at, color="#e65100" if own else "#999", lw=1.4 if own else 0.7, ls="-" if own else "--")
        ax.annotate(f"{key} {x * 1e3:.1f} ms" if abs(x) < 1 else f"{key} {x:.3g} s", (at, ymax), rotation=90,
                    va="top", ha="left", fontsize=7, color="#e65100" if own else "#666")
    if rise and "trigger_s" in ann:
        ax.set_xlim(ann["trigger_s"] - 0.05, ann["trigger_s"] + 0.15)
    elif rid.startswith("ER-") and "trigger_s" in ann:
        # the release is what matters: from shortly before the trigger to the residual crossing + margin
        end = max([ann.get("ER-RESIDUAL", 0.5), (hi or 0.0)]) * 1.3 + 0.05
        ax.set_xlim(ann["trigger_s"] - 0.1 * end - 0.05, ann["trigger_s"] + end)
    elif rid == "IL-OVERFORCE" and "cross_s" in ann:
        ax.set_xlim(ann["cross_s"] - 0.3, ann.get("release_s", ann["cross_s"]) + 0.5)
    verdict = m.get("verdict", "")
    ax.set_title(f"{rid}{'.' + m['quantity'] if m.get('quantity') else ''} — {m.get('name', '')}: {_fmt(value)} {unit} "
                 f"± {number_text(u, digits=U_DIGITS)} → {verdict}", fontsize=8.5)
    ax.set_xlabel("table time (s)", fontsize=8)
    ax.set_ylabel("force (N)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3, lw=0.5)
    ax.legend(fontsize=6.5, loc="best", framealpha=0.8)
    return _png(fig)


def _numeric(measurements: list[dict]) -> list[dict]:
    return [m for m in measurements if isinstance(m.get("value"), (int, float)) and not isinstance(m.get("value"), bool)]


def has_values_plot(measurements: list[dict]) -> bool:
    return len(_numeric(measurements)) >= 2


def values_plot(rid: str, measurements: list[dict]) -> bytes | None:
    """Every measured value of a requirement with its expanded uncertainty and limit(s)."""
    pts = _numeric(measurements)
    if len(pts) < 2:
        return None
    fig, ax = plt.subplots(figsize=(7.2, 2.4))
    x = np.arange(1, len(pts) + 1)
    y = np.array([m["value"] for m in pts], dtype=float)
    u = np.array([m.get("uncertainty") or 0.0 for m in pts], dtype=float)
    colors = ["#2e7d32" if m["verdict"] == "PASS" else "#c62828" if m["verdict"] == "FAIL" else "#f9a825" for m in pts]
    ax.errorbar(x, y, yerr=u, fmt="none", ecolor="#888", lw=0.8, capsize=2)
    ax.scatter(x, y, c=colors, s=14, zorder=3)
    for key, style in (("upper", "--"), ("lower", ":")):
        lims = [m.get(key) for m in pts]
        if any(v is not None for v in lims):
            ax.step(x, [np.nan if v is None else v for v in lims], where="mid", color="#c62828", lw=0.9, ls=style,
                    label=f"{key} limit")
    unit = pts[0].get("unit") or ""
    ax.set_title(f"{rid}: {len(pts)} measured values (bars: expanded uncertainty)", fontsize=8.5)
    ax.set_xlabel("measurement #", fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # measurements are counted: no 1.25, 1.50 …
    ax.set_ylabel(unit, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3, lw=0.5)
    ax.legend(fontsize=6.5, loc="best")
    return _png(fig)


def statistics(measurements: list[dict]) -> dict:
    """count, worst, mean, p95 of the numeric values; verdict counts (summary lines left out)."""
    verdicts: dict[str, int] = {}
    for m in measurements:
        verdicts[m["verdict"]] = verdicts.get(m["verdict"], 0) + 1
    values = [m.get("value") for m in measurements]
    numeric = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    boolean = measurements and all(m.get("decision_rule") == "boolean" for m in measurements)
    out = {"count": len(measurements), "verdicts": verdicts, "never": sum(v is None for v in values),
           "boolean": bool(boolean), "holds": sum(bool(v) for v in values) if boolean else None}
    if numeric:
        arr = np.array(numeric)
        lowers = [m for m in measurements if m.get("lower") is not None and m.get("upper") is None]
        worst = arr.min() if lowers and len(lowers) == len(measurements) else arr.max()
        out.update(worst=float(worst), mean=float(arr.mean()), p95=float(np.percentile(arr, 95)),
                   min=float(arr.min()), max=float(arr.max()))
    if out["never"]:
        out["worst"] = None  # a value never reached (∞) is the worst there is
    return out



def render_all(jobs: list[tuple]) -> list[bytes]:
    """PNGs of ("force_plot" | "values_plot", *arguments) jobs, in order.

    Serial on purpose: forking a process that has threads (pytest's, xdist's, a rig's)
    left pool workers spinning in a library lock, and a fresh interpreter per worker
    costs about what it would save."""
    makers = {"force_plot": force_plot, "values_plot": values_plot}
    return [makers[name](*args) for name, *args in jobs]
