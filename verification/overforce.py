"""IL-OVERFORCE's analysis: the gauge crossing FORCE_LIMIT and the trip the controller
reports, whoever takes the force over it (the emulated table's patient simulator snags the
harness, or a person at the bench pulls it). Both are timed and judged alike: the crossing
from the gauge trace, the trip bracketed by status reads (`TripWatch`, a
`verification.status_watch.StatusWatch`; `analyse_overforce_trip`), one budget and
decision rule (`record_overforce_trip`).
Beside the release analysis (`verification.release`), which it resembles: an instant on a
gauge trace against an instant the controller reports.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from verification.analysis import crossing_above, fit_line
from verification.measurement import Measurement, Precondition, UncertaintyTerm, expanded_uncertainty
from verification.status_watch import StatusWatch, bracket

CROSSING_BAND = 0.05  # the slope at the crossing: from this fraction below FORCE_LIMIT up to it
CROSSING_FIT_MAX = 2000  # samples at most in that fit (a very slow pull)


class TripWatch(StatusWatch):
    """Status reads while the force is taken over FORCE_LIMIT, waiting for
    OVERFORCE_TRIPPED (`StatusWatch`), with where the harness was: at the first read and
    at the trip (how far the force loop paid the cord out before the force rose)."""

    def __init__(self, ctrl) -> None:
        super().__init__(ctrl, "overforce_tripped", lambda st: f"tripped (OVERFORCE_TRIPPED, fault {st.fault_code.name})")
        self.first_position_m: float | None = None
        self.trip_position_m: float | None = None

    @property
    def tripped(self) -> bool:
        return self.seen

    def read(self):
        st = super().read()
        if self.first_position_m is None:
            self.first_position_m = st.position_m
        if st.overforce_tripped:
            self.trip_position_m = st.position_m
        return st


@dataclass
class OverforceTrip:
    """The gauge crossing FORCE_LIMIT and the trip, in table seconds of one capture."""

    cross: float  # first gauge crossing of FORCE_LIMIT (inf: never)
    trip: float  # the trip instant (inf: never seen, or nothing to time it from)
    half: float  # half-width of the trip's bracket
    peak: float  # gauge peak over the capture
    slope_n_s: float  # gauge slope just before the crossing (nan: no crossing)
    crossing_u_s: float  # standard uncertainty of the crossing instant from the gauge force

    @property
    def crossed(self) -> bool:
        return bool(np.isfinite(self.cross))

    @property
    def delay(self) -> float:
        return self.trip - self.cross if np.isfinite(self.trip) else float("inf")


def analyse_overforce_trip(bench, cap, t0: int, reads: list[tuple[int, int, bool]], limit: float) -> OverforceTrip:
    """The crossing from the gauge trace and the trip instant from the status reads."""
    cross = crossing_above(cap.t, cap.force, limit)
    b = bracket(reads)  # the trip between two status reads (verification.status_watch)
    if not b.seen or not np.isfinite(cross):
        trip, half = float("inf"), 0.0
    else:
        # tripped at the first read: it may have come before that read was even sent
        trip, half = b.in_seconds(lambda ns: bench.table_s(t0, ns), min(cross, bench.table_s(t0, b.first_sent_ns)))
    peak = float(np.max(cap.force)) if len(cap.force) else float("nan")
    slope, u_cross = float("nan"), 0.0
    if np.isfinite(cross):
        # a slow pull crosses slowly: the gauge's force uncertainty (calibration,
        # resolution, its noise about the rise) becomes time at the crossing, ÷ the slope.
        # For a snag this is microseconds; for a person's pull, milliseconds.
        # the slope: a line through the rise's last stretch below the limit (the samples
        # from FORCE_LIMIT − CROSSING_BAND of it up to the first one above), so neither the
        # hold before a snag nor the table giving way before a person's pull bends it
        i = int(np.searchsorted(cap.t, cross))  # the first sample above the limit
        j = i - 1
        while j >= 0 and cap.force[j] >= (1.0 - CROSSING_BAND) * limit and i - j < CROSSING_FIT_MAX:
            j -= 1
        fit = fit_line(cap.t[j + 1:i + 1], cap.force[j + 1:i + 1])
        secant = ((cap.force[i] - cap.force[i - 1]) / (cap.t[i] - cap.t[i - 1])
                  if 0 < i < len(cap.t) and cap.t[i] > cap.t[i - 1] else float("nan"))
        slope = fit.slope if np.isfinite(fit.slope) and fit.slope > 0 else secant
        noise = fit.residual_std if np.isfinite(fit.residual_std) else 0.0
        force_u = expanded_uncertainty(bench.force_terms_of(noise, 1), k=1.0)  # one reading's standard uncertainty
        u_cross = force_u / slope if np.isfinite(slope) and slope > 0 else float(cap.period)
    return OverforceTrip(cross, trip, half, peak, slope, u_cross)


def record_overforce_trip(bench, recorder, req, limit: float, cap, a: OverforceTrip, conditions: dict, *,
                          note: str = "", series_from_s: float | None = None) -> Measurement:
    """IL-OVERFORCE's measurement, judged alike whoever pulled; then the latch must hold."""
    st = bench.ctrl.status()
    over = Precondition("the pull took the gauge force over FORCE_LIMIT", a.crossed,
                        f"gauge peak {a.peak:.4g} N, FORCE_LIMIT {limit:g} N")
    keep = cap.t >= series_from_s if series_from_s is not None else slice(None)
    lo, hi = req.limits()
    m = recorder.record(Measurement(
        "gauge crossing FORCE_LIMIT to the trip", req, a.delay, "s", lo, hi,
        [UncertaintyTerm.rectangular("trip seen between two status reads", a.half),
         UncertaintyTerm.rectangular("gauge sample period (crossing)", cap.period),
         UncertaintyTerm.rectangular("gauge clock mapping × K", getattr(cap, "mapping_half_width_s", 0.0) * bench.k),
         UncertaintyTerm("crossing instant: gauge force uncertainty ÷ slope at the crossing", a.crossing_u_s)],
        conditions={"limit_n": limit, **conditions, "latched": st.overforce_tripped, "peak_n": a.peak},
        series={"t_s": cap.t[keep], "force_n": cap.force[keep]},
        annotations={"cross_s": a.cross, **({"trip_s": a.trip} if np.isfinite(a.trip) else {})},
        note=note,
        preconditions=[over],
    ))
    if over.held:
        assert st.overforce_tripped and st.fault_code.name == "OVERFORCE", "the over-force trip did not latch"
    return m


def pull_rates(spec, limit: float) -> tuple[float, float]:
    """(asked, slowest useful) pull rate in N/s for a person's pull.

    Slowly through FORCE_LIMIT, the trip's delay includes the controller's own cell error
    at the limit ÷ the pull rate — time the force really is over the limit, so it is
    judged as measured. The slowest useful rate lets a cell within FA-CELL's tolerance
    (2 % of the limit on both tables) trip within half of IL-OVERFORCE's limit; the
    person is asked for twice that."""
    upper = spec.requirement("IL-OVERFORCE").limits()[1] or 0.1
    try:
        tolerance = spec.requirement("FA-CELL").limits(setting=limit)[1] or 0.02 * limit
    except KeyError:
        tolerance = 0.02 * limit
    slowest = tolerance / (upper / 2)
    return float(np.ceil(2 * slowest / 10.0) * 10.0), float(np.ceil(slowest / 10.0) * 10.0)
