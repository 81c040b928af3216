"""Client of the emulated table's patient simulator (emulator only, no contract).

It pulls back on the harness from outside the winch, the way a patient or a snag
does, so the over-force interlock can be provoked. Forces in newtons.
"""

from __future__ import annotations

from pymodbus.client import ModbusTcpClient

from drivers.errors import DeviceProtocolError, DeviceUnreachable
from drivers.units import n_to_dn


class PatientSimulator:
    def __init__(self, host: str, port: int) -> None:
        self.device = f"patient simulator (modbus-tcp://{host}:{port})"
        self._client = ModbusTcpClient(host, port=int(port), timeout=1.0, retries=0)

    def connect(self) -> "PatientSimulator":
        if not self._client.connect():
            raise DeviceUnreachable(self.device, "cannot connect", "is this an emulated rig?")
        return self

    def pull(self, newtons: float, rate_n_s: float = 0.0) -> None:
        """Pull back with `newtons`, reached at `rate_n_s` (0: at once)."""
        response = self._client.write_registers(0, [n_to_dn(newtons), n_to_dn(rate_n_s)], device_id=1)
        if response.isError():
            raise DeviceProtocolError(self.device, f"refused pull {newtons} N: {response}")

    def close(self) -> None:
        self._client.close()
