"""SIO-1's OBSTACLE relay (coil 4, flexion-distraction-modbus.md): the one stimulus driver
drives it on a bench with an obstacle slide, and on a module without one (which answers
coil 4 with 02) neither reads nor rests it, and says in one line that there is no slide.
Against plain pymodbus servers with fixed content (tests/conftest.py `fixed_modbus`)."""

from __future__ import annotations

import pytest
from pymodbus.constants import ExcCodes
from pymodbus.simulator import DataType, SimData, SimDevice

from drivers.errors import DeviceProtocolError
from drivers.stimulus import StimulusModule
from drivers.tcm1 import StimulusCoil

pytestmark = pytest.mark.timeout(30)


def module(slide: bool) -> SimDevice:
    async def no_coil_4(function_code, start_address, address, count, registers, values):
        if function_code in (1, 5, 15) and address + (count or 1) > 4:
            return ExcCodes.ILLEGAL_ADDRESS
        return None

    bits = [SimData(0, values=[False] * 16, datatype=DataType.BITS)]
    return SimDevice(id=1, simdata=(bits, bits, [SimData(0, values=[0], datatype=DataType.REGISTERS)],
                                    [SimData(0, values=[0], datatype=DataType.REGISTERS)]),
                     action=None if slide else no_coil_4)


def open_module(fixed_modbus, slide: bool, obstacle_slide: bool) -> StimulusModule:
    return StimulusModule("127.0.0.1", fixed_modbus(module(slide)), obstacle_slide=obstacle_slide).connect()


def test_a_bench_with_a_slide_drives_and_rests_the_obstacle(fixed_modbus):
    stim = open_module(fixed_modbus, slide=True, obstacle_slide=True)
    try:
        assert stim.relays[-1] is StimulusCoil.OBSTACLE and len(stim.relays) == 5
        assert stim.press(StimulusCoil.OBSTACLE) > 0
        assert stim.states()[StimulusCoil.OBSTACLE] is True
        assert stim.release_all() == []
        assert stim.states() == {relay: False for relay in StimulusCoil}
    finally:
        stim.close()


def test_a_module_without_a_slide_is_read_and_rested_without_coil_4(fixed_modbus):
    stim = open_module(fixed_modbus, slide=False, obstacle_slide=False)
    try:
        assert StimulusCoil.OBSTACLE not in stim.relays
        assert set(stim.states()) == set(StimulusCoil) - {StimulusCoil.OBSTACLE}
        assert stim.release_all() == []
        with pytest.raises(DeviceProtocolError) as err:
            stim.press(StimulusCoil.OBSTACLE)
        assert str(err.value).endswith("this module has no obstacle slide (coil 4): check the bench's obstacle "
                                       "in the rig file")
    finally:
        stim.close()
