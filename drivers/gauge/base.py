"""The reference force gauge as the rest of traction-rig sees it.

Small on purpose (labgrid style): what a suite needs from an independent force
reference, in newtons, whatever unit the gauge displays. Each reading's unit is taken
from the device (gcl replies carry it; scpi has UNIT:FORC) and converted through
drivers/units.py, so a gauge left in lbF by a colleague still reads right.

Clocks: a gauge's own periods and stamps are in the clock of the table it measures
(shared/protocols/force-gauges.md). Against an emulated table running K times faster
(`time_scale` = K) a gcl AOUTn stream arrives at n*K lines per wall second and a
scpi buffer's instrument times count K seconds per wall second. Durations and rates
passed to `stream()` are in the gauge's clock; `GaugeTrace` says which clock its `t`
is in and how to map it onto the host's perf_counter_ns.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np

from drivers.buffered import instrument_to_host_ns
from drivers.instrument import InstrumentIdentity, ReferenceInstrument

HOST_ARRIVAL = "host-arrival"
INSTRUMENT = "instrument"


#: who a gauge is: the identity every reference instrument reports (drivers/instrument.py)
GaugeIdentity = InstrumentIdentity


@dataclass
class GaugeTrace:
    """A stream of readings.

    `time_base`:
      * "host-arrival" (gcl AOUT): `t` is *wall* seconds since `host_t0_ns` (the host's
        perf_counter_ns just before AOUTn was written), stamped as each line arrived;
        its resolution is the line period plus the transport's jitter.
      * "instrument" (scpi INIT/TRAC:DATA?): `t` is the instrument's own time since
        INIT, in the *table* clock (K = `time_scale` table seconds per wall second);
        `host_t0_ns` is the host perf_counter_ns at which instrument time 0 happened,
        estimated by bracketing TRIG:TIME?, within +-`mapping_uncertainty_s` (wall).
    `force_n` is NaN where the gauge reported an overload.
    """

    t: np.ndarray
    force_n: np.ndarray
    time_base: str
    host_t0_ns: int
    time_scale: float = 1.0
    rate_hz: float = 0.0  # nominal rate, gauge (table) clock
    mapping_uncertainty_s: float = 0.0
    resource: str = ""

    def __len__(self) -> int:
        return len(self.t)

    def host_ns(self) -> np.ndarray:
        """Each sample's instant on the host's perf_counter_ns scale (float)."""
        if self.time_base == HOST_ARRIVAL:
            return self.host_t0_ns + self.t * 1e9
        return instrument_to_host_ns(self.t, self.host_t0_ns, self.time_scale)

    def head(self, n: int) -> "GaugeTrace":
        return GaugeTrace(
            self.t[:n], self.force_n[:n], self.time_base, self.host_t0_ns, self.time_scale,
            self.rate_hz, self.mapping_uncertainty_s, self.resource,
        )


class ForceGauge(ReferenceInstrument):
    """A reference force gauge. Forces in newtons (tension positive), times in seconds."""

    #: stream()'s rate when none is given (Hz, the gauge's clock)
    default_rate_hz = 1000.0
    noun = "gauge"

    # -- readings ----------------------------------------------------------------------
    @abc.abstractmethod
    def read(self) -> float:
        """The displayed reading, newtons."""

    @abc.abstractmethod
    def read_current(self) -> float:
        """The current (not peak) reading, newtons."""

    @abc.abstractmethod
    def peak_tension(self) -> float:
        """Peak tension since clear_peaks()/tare(), newtons (>= 0)."""

    @abc.abstractmethod
    def peak_compression(self) -> float:
        """Peak compression since clear_peaks()/tare(), newtons (<= 0)."""

    # -- settings ------------------------------------------------------------------------
    @abc.abstractmethod
    def tare(self) -> None: ...

    @abc.abstractmethod
    def clear_peaks(self) -> None: ...

    @abc.abstractmethod
    def set_unit(self, unit: str) -> None:
        """Change the gauge's display unit; readings stay in newtons."""

    @abc.abstractmethod
    def identity(self) -> GaugeIdentity: ...

    # -- streaming --------------------------------------------------------------------------
    @abc.abstractmethod
    def start_stream(self, rate_hz: float) -> None:
        """Start streaming at `rate_hz` (gauge clock). Other commands wait for stop_stream()."""

    @abc.abstractmethod
    def stop_stream(self) -> GaugeTrace: ...

    def live_samples(self, since: int) -> tuple[int, list[int], list[float]]:
        """Samples of the running stream from index `since` on, without a word to the gauge:
        (next index, host perf_counter_ns stamps, newtons). A gauge that buffers its
        acquisition (scpi) has none until stop_stream(); safe from another thread."""
        return since, [], []

    @abc.abstractmethod
    def _wait_for_samples(self, n: int, deadline_ns: int) -> None:
        """Block until n samples were collected or the host's perf_counter_ns passes deadline_ns."""

