"""Controller status reads per second over Modbus TCP against the emulator process.

Prints figures; asserts nothing (timing goals are not tests on a shared machine).
Goal: >= 2,500 status reads/s. A status snapshot is two Modbus transactions (FC2 for
the ten discrete inputs, FC4 for the seven status registers), so both the snapshot
rate and the transaction rate are printed, beside a raw-socket loopback round trip.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pymodbus.client import ModbusTcpClient  # noqa: E402

from benchmarks.loopback import loopback_round_trip  # noqa: E402
from drivers.controller import TractionController  # noqa: E402
from drivers.tcm1 import InputReg  # noqa: E402
from rigs.rig import EmulatorProcess  # noqa: E402

DURATION_S = 3.0


def rate(fn, duration_s: float = DURATION_S) -> float:
    n = 0
    end = time.perf_counter_ns() + int(duration_s * 1e9)
    while time.perf_counter_ns() < end:
        fn()
        n += 1
    return n / duration_s


def main() -> int:
    emulator = EmulatorProcess.start("lumbar", seed=1, time_scale=1.0)
    try:
        ep = emulator.endpoints.controller
        with TractionController.on(ep.link()) as ctrl:
            rate(ctrl.status, 0.5)  # warm up
            snapshots = rate(ctrl.status)
        # the emulator's bare reply rate: one register per request, pymodbus's own client
        client = ModbusTcpClient(ep.host, port=ep.port, timeout=1.0, retries=0)
        client.connect()
        try:
            single = rate(lambda: client.read_input_registers(InputReg.ACTUAL_FORCE, count=1, device_id=ep.unit_id or 1))
        finally:
            client.close()
        echo = loopback_round_trip()
    finally:
        emulator.stop()
    print("controller (Modbus TCP, emulator in its own process)")
    print(f"  status reads/s (snapshot: FC2 + FC4) {snapshots:8.0f}   goal >= 2500  ({2 * snapshots:.0f} transactions/s)")
    print(f"  ACTUAL_FORCE reads/s (FC4, 1 reg)    {single:8.0f}")
    print(f"  raw-socket loopback round trip     p50 {echo['p50_us']:.1f} us, p99 {echo['p99_us']:.1f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
