"""Plots and statistics for the compliance report (matplotlib, Agg, PNG bytes).

Every plot is drawn from the run directory alone: a measurement line of the record and
the series CSV it (or a sibling measurement of the same trial) points at. Time series
are in the series' own time base (table seconds), where the measurement's
`annotations` place its instants (trigger_s, cross_s, release_s, start_s/end_s,
stop_s, at_rest_s …, and one key per requirement for the instant that requirement
measured). A series is drawn by what its column holds (COLUMNS: a force, an angle), so
a traction release and a flexion-distraction stop go through the same code; the trial's
series of another quantity are drawn in a panel below on the same time axis.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from reports.rundir import SERIES_COLUMNS, SERIES_TIME, U_DIGITS, number_text  # noqa: E402

MAX_POINTS = 4000  # a plot never needs more points than its pixel width (ish)
# where the measured time of a requirement starts from, in the order looked for
REFERENCES = ("trigger_s", "cross_s", "start_s")
INSTANT_LABELS = {
    "trigger_s": "trigger", "cross_s": "crossing of the limit", "release_s": "release begins",
    "start_s": "start", "end_s": "end", "stop_s": "stop",
    # instants in the series' own time base (not offsets from a reference)
    "at_rest_s": "at rest", "hold_from_s": "hold window begins", "below_residual_s": "below the residual",
    "at_s": "read here", "peak_s": "peak on the obstacle",
}
#: the series' time base column
TIME_COLUMN = SERIES_TIME
#: what a series column holds, as a plot shows it: (trace label, axis label, the unit a
#: measurement of it is stated in: reports.rundir.SERIES_COLUMNS). A series is plotted by
#: its column, whatever recorded it, so a new quantity of a new table is one row here (and
#: its column in rundir), never a branch on the table's kind.
_LABELS = {
    "force_n": ("gauge force", "force (N)"),
    "angle_deg": ("inclinometer angle", "angle (°)"),
    "obstacle_force_n": ("obstacle force", "obstacle force (N)"),
}
COLUMNS = {name: (*_LABELS.get(name, (name, f"{name} ({unit})")), unit) for name, unit in SERIES_COLUMNS.items()}


def load_series(run_dir: Path, rel: str) -> dict[str, np.ndarray]:
    path = Path(run_dir) / rel
    with open(path, encoding="utf-8") as f:
        header = f.readline().strip().split(",")
    data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    if data.size == 0:
        return {k: np.empty(0) for k in header}
    return {k: data[:, i] for i, k in enumerate(header)}


def value_column(cols) -> str | None:
    """The column a series is plotted by: the first one COLUMNS knows, else the first that
    is not its time base (a series from a newer writer still draws, labelled by its name)."""
    return next((k for k in cols if k in COLUMNS), None) or next((k for k in cols if k != TIME_COLUMN), None)


def column_unit(column: str | None) -> str | None:
    """The unit a measurement of a series' column is stated in (None: not known)."""
    return COLUMNS[column][2] if column in COLUMNS else None


def series_header(run_dir: Path, rel: str) -> list[str]:
    """A series' column names, from its first line only (choosing a series costs no parse)."""
    try:
        with open(Path(run_dir) / rel, encoding="utf-8") as f:
            return f.readline().strip().split(",")
    except OSError:
        return []


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


def _visible_ylim(ax, lines: list[tuple[np.ndarray, np.ndarray]], lo: float, hi: float) -> None:
    """Scale an axis to what its traces show between lo and hi (a zoom must not keep the
    whole capture's range, which would flatten the part zoomed on)."""
    seen = [y[(x >= lo) & (x <= hi)] for x, y in lines]
    seen = np.concatenate(seen) if seen else np.empty(0)
    seen = seen[np.isfinite(seen)]
    if len(seen):
        a, b = float(seen.min()), float(seen.max())
        pad = max(0.15 * (b - a), 0.05 * max(abs(a), abs(b)), 0.05)
        ax.set_ylim(a - pad, b + pad)


def series_plot(run_dir: Path, m: dict, series_rel: str, residual_n: float | None = None,
                companions: Sequence[dict] = (), others: Sequence[str] = ()) -> bytes:
    """One measurement's series against time, drawn by what its column holds (a force, an
    angle), with its limit band and instants; `companions`: measurements of the same test
    and requirement read on the same series (each move of a treatment: its end angle and
    band); `others`: series of the same trial holding another quantity (the distraction
    force beside a stop's angle), drawn in a panel below on the same time axis."""
    cols = load_series(run_dir, series_rel)
    t = cols.get(TIME_COLUMN, next(iter(cols.values())) if cols else np.empty(0))
    column = value_column(cols)
    f = cols.get(column, np.empty(0)) if column else np.empty(0)
    label, axis_label, col_unit = COLUMNS.get(column, (column or "value", column or "value", None))
    below = []
    for rel in others:
        oc = load_series(run_dir, rel)
        ocol = value_column(oc)
        if ocol is not None and ocol != column and TIME_COLUMN in oc:
            below.append((ocol, oc[TIME_COLUMN], oc[ocol]))
    if below:
        fig, (ax, *lower) = plt.subplots(1 + len(below), 1, figsize=(7.2, 2.9 + 1.5 * len(below)), sharex=True,
                                         gridspec_kw={"height_ratios": [2] + [1] * len(below), "hspace": 0.08})
    else:
        fig, ax = plt.subplots(figsize=(7.2, 2.9))
        lower = []
    tt, ff = _decimate(np.asarray(t), np.asarray(f))
    ax.plot(tt, ff, lw=0.8, color="#1f4e79", label=label)
    traces = [(tt, ff)]
    ann = {k: v for k, v in (m.get("annotations") or {}).items() if isinstance(v, (int, float)) and v is not None}
    cond = m.get("conditions") or {}
    rid, unit = m.get("requirement", ""), m.get("unit") or ""
    hi, value, u = m.get("upper"), m.get("value"), m.get("uncertainty") or 0.0
    forces = col_unit == "N"  # force levels are drawn on a force trace only
    angles = col_unit == "deg"

    rise = forces and m.get("quantity") == "rise" and cond.get("force_at_trigger_n") is not None
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
    elif unit == "N" and forces:
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
    if angles:
        _angle_levels(ax, m, cond, ann, companions)
    # force levels the requirement refers to
    if forces and "limit_n" in cond:
        ax.axhline(cond["limit_n"], color="#c62828", lw=0.8, ls="--", label=f"FORCE_LIMIT {number_text(cond['limit_n'], 'N')}")
    f0 = cond.get("force_at_trigger_n")
    if forces and f0 is not None and rid.startswith("ER-") and not rise:
        ax.axhline(0.5 * f0, color="#6a1b9a", lw=0.6, ls=":", label=f"50 % of {number_text(f0, 'N')}")
        if residual_n is not None:
            ax.axhline(residual_n, color="#ad1457", lw=0.6, ls=":", label=f"residual {number_text(residual_n, 'N')}")
    if forces and residual_n is not None and "below_residual_s" in ann:  # a release judged by its residual crossing
        ax.axhline(residual_n, color="#ad1457", lw=0.6, ls=":", label=f"residual {number_text(residual_n, 'N')}")
    if residual_n is not None and any(c == "force_n" for c, _t, _v in below):
        lower[[c for c, _t, _v in below].index("force_n")].axhline(
            residual_n, color="#ad1457", lw=0.6, ls=":", label=f"residual {number_text(residual_n, 'N')}")
    for lax, (ocol, ot, ov) in zip(lower, below):
        ot2, ov2 = _decimate(np.asarray(ot), np.asarray(ov))
        olabel, oaxis, _ou = COLUMNS.get(ocol, (ocol, ocol, None))
        lax.plot(ot2, ov2, lw=0.8, color="#6d4c41", label=olabel)
        lax.set_ylabel(oaxis, fontsize=8)
        lax.tick_params(labelsize=7)
        lax.grid(alpha=0.3, lw=0.5)
        lax.legend(fontsize=6.5, loc="best", framealpha=0.8)
    # instants: the trigger and the other reference instants, then what each requirement measured
    ymax = ax.get_ylim()[1]
    for key, x in ann.items():
        if key in INSTANT_LABELS:
            ax.axvline(x, color="#c62828" if key in ("trigger_s", "cross_s") else "#555", lw=1.0)
            for lax in lower:
                lax.axvline(x, color="#c62828" if key in ("trigger_s", "cross_s") else "#555", lw=0.8)
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
    elif "trigger_s" in ann and "at_rest_s" in ann:
        _zoom_on_stop(ax, lower, traces, below, m, ann, cond)
    verdict = m.get("verdict", "")
    ax.set_title(f"{rid}{'.' + m['quantity'] if m.get('quantity') else ''} — {m.get('name', '')}: {_fmt(value)} {unit} "
                 f"± {number_text(u, digits=U_DIGITS)} → {verdict}", fontsize=8.5)
    (lower[-1] if lower else ax).set_xlabel("table time (s)", fontsize=8)
    ax.set_ylabel(axis_label, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3, lw=0.5)
    ax.legend(fontsize=6.5, loc="best", framealpha=0.8)
    return _png(fig)


def _angle_levels(ax, m: dict, cond: dict, ann: dict, companions) -> None:
    """The angles a measurement on an angle trace refers to: a set angle and its tolerance
    band where the angle was read (each companion move too), the angle at the trigger and
    at rest with the travel between them and its limit, the hold window and its band."""
    unit, hi = m.get("unit") or "", m.get("upper")
    for c in (m, *companions):
        c_ann, c_cond, c_hi = c.get("annotations") or {}, c.get("conditions") or {}, c.get("upper")
        at, setting = c_ann.get("at_s"), c_cond.get("set_deg")
        if (c.get("unit") == "deg" and isinstance(at, (int, float)) and isinstance(setting, (int, float))
                and c_hi is not None):
            first = c is m
            half = 0.6
            ax.fill_between([at - half, at + half], setting - c_hi, setting + c_hi, color="#2e7d32",
                            alpha=0.18 if first else 0.10,
                            label=f"set {number_text(setting, 'deg')} ± {number_text(c_hi, 'deg')}" if first else None)
            ax.hlines(setting, at - half, at + half, color="#2e7d32", lw=0.6, ls=":")
            measured = c_cond.get("measured_deg")
            if isinstance(measured, (int, float)):
                ax.plot([at], [measured], marker="o", ms=3.5, color="#e65100" if first else "#555", ls="none",
                        label="end angle read" if first else None)
            if not first:
                ax.axvline(at, color="#999", lw=0.5, ls="--")
    a0, a1 = cond.get("angle_at_trigger_deg"), cond.get("angle_at_rest_deg")
    if isinstance(a0, (int, float)):
        ax.axhline(a0, color="#c62828", lw=0.6, ls=":", label=f"at the trigger {number_text(a0, 'deg')}")
    if isinstance(a0, (int, float)) and isinstance(a1, (int, float)):
        ax.axhline(a1, color="#555", lw=0.6, ls=":", label=f"at rest {number_text(a1, 'deg')}")
        x = ann.get("at_rest_s")
        if isinstance(x, (int, float)):
            ax.annotate("", (x, a1), (x, a0), arrowprops={"arrowstyle": "<->", "color": "#e65100", "lw": 1.0})
            ax.annotate(f" travel {number_text(abs(a1 - a0), 'deg')}", (x, 0.5 * (a0 + a1)), fontsize=7,
                        color="#e65100", va="center")
        hold_from, window = cond.get("hold_from_s"), cond.get("hold_window_s")
        if isinstance(hold_from, (int, float)) and isinstance(window, (int, float)):
            ax.axvspan(hold_from, hold_from + window, color="#1565c0", alpha=0.06,
                       label=f"hold window {number_text(window, 's')}")
        if unit == "deg" and hi is not None:
            if "hold_from_s" in ann:  # a drift while held: the band about the angle at rest
                ax.axhspan(a1 - hi, a1 + hi, color="#2e7d32", alpha=0.12, label=f"at rest ± {number_text(hi, 'deg')}")
            else:  # a travel after the trigger: up to the limit in the direction it moved
                side = 1.0 if a1 >= a0 else -1.0
                ax.axhspan(a0, a0 + side * hi, color="#2e7d32", alpha=0.10, label=f"travel ≤ {number_text(hi, 'deg')}")
    obstacle = cond.get("obstacle_deg")
    if isinstance(obstacle, (int, float)):
        ax.axhline(obstacle, color="#6a1b9a", lw=0.8, ls="--", label=f"obstacle at {number_text(obstacle, 'deg')}")
    at_peak = cond.get("angle_at_peak_deg")
    if isinstance(at_peak, (int, float)):
        ax.axhline(at_peak, color="#e65100", lw=0.6, ls=":", label=f"at the peak force {number_text(at_peak, 'deg')}")


def _zoom_on_stop(ax, lower, traces, below, m: dict, ann: dict, cond: dict) -> None:
    """A stop zoomed: from before the trigger to after the table came to rest (and, for a
    measurement of the hold, the whole hold window), every panel scaled to what it shows."""
    instants = [ann[k] for k in ("trigger_s", "at_rest_s", "hold_from_s") if k in ann]
    if m.get("unit") == "s" and m.get("upper") is not None:  # a stop time: its whole acceptance window
        instants.append(ann["trigger_s"] + m["upper"])
    lo_t, hi_t = min(instants), max(instants)
    held = "hold_from_s" in ann and isinstance(cond.get("hold_window_s"), (int, float))
    if held:
        hi_t = ann["hold_from_s"] + cond["hold_window_s"]
    span = max(hi_t - lo_t, 0.05)
    margin = 0.08 * span if held else max(0.1, 0.6 * span)
    lo, hi = lo_t - margin, hi_t + margin
    ax.set_xlim(lo, hi)
    if held:  # the drift while held is what is judged: the angle scaled to the hold window and its band
        _visible_ylim(ax, traces, ann["hold_from_s"], hi_t)
        a1, band = cond.get("angle_at_rest_deg"), m.get("upper")
        if isinstance(a1, (int, float)) and band is not None:
            y0, y1 = ax.get_ylim()
            ax.set_ylim(min(y0, a1 - 2 * band), max(y1, a1 + 2 * band))
    else:
        _visible_ylim(ax, traces, lo, hi)
    for lax, (_c, ot, ov) in zip(lower, below):
        _visible_ylim(lax, [(np.asarray(ot), np.asarray(ov))], lo, hi)


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
    """PNGs of ("series_plot" | "values_plot", *arguments) jobs, in order.

    Serial on purpose: forking a process that has threads (pytest's, xdist's, a rig's)
    left pool workers spinning in a library lock, and a fresh interpreter per worker
    costs about what it would save."""
    makers = {"series_plot": series_plot, "values_plot": values_plot}
    return [makers[name](*args) for name, *args in jobs]
