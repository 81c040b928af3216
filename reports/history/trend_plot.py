"""The trend of one requirement of one table as a PNG: each run's worst value with its
U, the limit and the guard-banded limit, the weighted trend line and its projection."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reports.history.drift import HORIZON_RUNS, Point
from reports.rundir import number_text


def plot_trend(points: list[Point], path: Path, *, title: str, unit: str, horizon: int = HORIZON_RUNS,
               warnings: list | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4), dpi=110)
    i = np.arange(len(points))
    x = np.array([p.value for p in points])
    u = np.array([p.uncertainty for p in points])
    colours = ["#c62828" if p.verdict == "FAIL" else "#f9a825" if p.verdict == "INCONCLUSIVE" else "#2e7d32"
               for p in points]
    ax.errorbar(i, x, yerr=u, fmt="none", ecolor="#555", capsize=2, lw=0.8)
    ax.scatter(i, x, c=colours, s=18, zorder=3, label="worst value per run (± U, k = 2)")
    last = points[-1] if points else None
    for limit, sign in ((last.upper if last else None, 1), (last.lower if last else None, -1)):
        if limit is None:
            continue
        ax.axhline(limit, color="#c62828", lw=1.2, label=f"limit {number_text(limit, unit)}")
        ax.axhline(limit - sign * last.uncertainty, color="#c62828", lw=0.8, ls="--", label="guard-banded limit")
    if len(points) >= 2:
        w = 1.0 / np.maximum(u / 2.0, 1e-12) ** 2
        b, a = np.polyfit(i, x, 1, w=np.sqrt(w))
        ahead = np.arange(0, len(points) + horizon)
        ax.plot(ahead, a + b * ahead, color="#1565c0", lw=1, ls=":", label=f"trend {b:+.3g} {unit}/run, {horizon} runs ahead")
    ax.set_xlabel("run (oldest first)")
    ax.set_ylabel(unit)
    ax.set_title(title, fontsize=10)
    if warnings:
        ax.text(0.01, 0.98, "\n".join(w["kind"] + ": " + w["text"][:110] for w in warnings), transform=ax.transAxes,
                va="top", fontsize=7, color="#c62828")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.subplots_adjust(left=0.1, right=0.98, top=0.9, bottom=0.13)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
