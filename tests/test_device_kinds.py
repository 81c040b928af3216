"""The registry of device kinds (drivers/kinds.py): what this installation registers (TCM-1,
and the FDC-1 flexion-distraction controller (DEVICE_KIND 4) with the `tilt` inclinometer,
which arrived by registering), that a kind is then accepted by a rig file and a labgrid
resource and told apart from TCM-1 on the wire, with no other code changed; and the
registry's own rules, tried on registries of stand-in classes."""

from __future__ import annotations

import pytest
import yaml
from pymodbus.simulator import DataType, SimData, SimDevice

from drivers import kinds
from drivers.controller import TractionController
from drivers.errors import ConfigError, DeviceProtocolError
from drivers.flexion_controller import FlexionController as FdcDriver
from drivers.gauge import GclGauge, ScpiGauge
from drivers.inclinometer import TiltInclinometer
from drivers.kinds import Registry
from drivers.stimulus import StimulusModule
from drivers.tcm1 import PROTOCOL_VERSION, encode_serial
from rigs.config import RIGS_DIR, rig_from_dict

#: FDC-1's DEVICE_KIND (shared/protocols/flexion-distraction-modbus.md, input register 103)
FDC1_DEVICE_KIND = 4


class FlexionController:
    """Stands in for a controller driver in a registry of the test's own: only registered."""


class Inclinometer:
    """Stands in for an angle instrument's driver in a registry of the test's own: only registered."""


def test_this_installation_registers_tcm1_fdc1_sio1_the_force_gauges_and_the_inclinometer():
    tcm1 = kinds.controller_for_table("lumbar")
    assert tcm1 is kinds.controller_for_table("cervical")
    assert (tcm1.protocol, tcm1.driver, tcm1.device_kinds, tcm1.stimulus) == (
        "TCM-1", TractionController, frozenset({1, 2, 3}), "SIO-1")
    fdc1 = kinds.controller_for_table("flexion-distraction")
    assert (fdc1.protocol, fdc1.driver, fdc1.device_kinds, fdc1.stimulus) == (
        "FDC-1", FdcDriver, frozenset({FDC1_DEVICE_KIND}), "SIO-1")
    assert kinds.controller_for_device(2) is tcm1 and kinds.controller_for_device(FDC1_DEVICE_KIND) is fdc1
    assert kinds.controller_for_device(9) is None
    assert kinds.stimulus("SIO-1") is StimulusModule
    assert kinds.table_kinds() == ("lumbar", "cervical", "flexion-distraction")
    assert kinds.dialects("force") == ("gcl", "scpi") and kinds.dialects("angle") == ("tilt",)
    assert kinds.instrument("GCL ", "force").driver is GclGauge and kinds.instrument("scpi").driver is ScpiGauge
    assert kinds.instrument("tilt", "angle").driver is TiltInclinometer
    with pytest.raises(ConfigError, match="no driver for the controller protocol TCM-2; known: TCM-1, FDC-1"):
        kinds.controller_for_protocol("TCM-2")


def test_unknown_names_are_one_line_naming_what_is_known():
    with pytest.raises(ConfigError, match=r"^table kind 'flexion' has no controller; known: lumbar, cervical, "
                                          r"flexion-distraction$"):
        kinds.controller_for_table("flexion")
    with pytest.raises(ConfigError, match=r"^unknown force instrument dialect 'tilt'; expected one of gcl, scpi$"):
        kinds.instrument("tilt", "force")
    with pytest.raises(ConfigError, match="stimulus module SIO-2"):
        kinds.stimulus("SIO-2")


def _with_fdc1(registry: Registry) -> Registry:
    registry.register_controller("FDC-1", tables=("flexion-distraction",), device_kinds=(FDC1_DEVICE_KIND,),
                                 stimulus="SIO-1")(FlexionController)
    registry.register_instrument("tilt", quantity="angle")(Inclinometer)
    return registry


def test_fdc1_and_tilt_register_beside_tcm1():
    registry = Registry()
    registry.register_controller("TCM-1", tables=("lumbar", "cervical"), device_kinds=(1, 2, 3))(TractionController)
    registry.register_stimulus("SIO-1")(StimulusModule)
    registry.register_instrument("gcl", quantity="force")(GclGauge)
    _with_fdc1(registry)
    fdc1 = registry.controller_for_table("flexion-distraction")
    assert fdc1.driver is FlexionController and registry.controller_for_device(4) is fdc1
    assert registry.controller_for_device(1).protocol == "TCM-1"
    assert registry.table_kinds() == ("lumbar", "cervical", "flexion-distraction")
    assert registry.stimulus(fdc1.stimulus) is StimulusModule  # the same module, one more coil
    assert registry.dialects("angle") == ("tilt",) and registry.dialects("force") == ("gcl",)
    with pytest.raises(ConfigError, match="unknown force instrument dialect 'tilt'"):
        registry.instrument("tilt", "force")  # an inclinometer is not a force gauge


def test_an_instrument_registers_under_the_dialect_it_says_it_speaks():
    with pytest.raises(ValueError, match="GclGauge says it speaks 'gcl', registered as 'tilt'"):
        Registry().register_instrument("tilt", quantity="angle")(GclGauge)


def test_a_kind_cannot_take_another_protocols_table_or_device_kind():
    registry = Registry()
    registry.register_controller("TCM-1", tables=("lumbar", "cervical"), device_kinds=(1, 2, 3))(TractionController)
    with pytest.raises(ValueError, match="DEVICE_KIND 3 is already TCM-1's"):
        registry.register_controller("FDC-1", tables=("flexion-distraction",), device_kinds=(3, 4))(FlexionController)
    with pytest.raises(ValueError, match="table kind lumbar is already TCM-1's"):
        registry.register_controller("FDC-1", tables=("lumbar",), device_kinds=(4,))(FlexionController)


def test_the_registered_kind_is_accepted_by_a_rig_file_and_a_labgrid_resource():
    data = yaml.safe_load((RIGS_DIR / "bench-flexion-example.yaml").read_text())
    assert rig_from_dict(data, "fd.yaml").table.kind == "flexion-distraction"
    from drivers.labgrid_resources import TractionTable

    assert TractionTable(None, "t", kind="flexion-distraction", model="m", serial="s", safety_limit_n=100).kind
    with pytest.raises(ValueError, match=r"'kind' must be one of lumbar, cervical, flexion-distraction"):
        TractionTable(None, "t", kind="flexion", model="m", serial="s", safety_limit_n=100)


def test_an_unregistered_table_kind_in_a_rig_file_is_refused_in_one_line():
    data = yaml.safe_load((RIGS_DIR / "bench-example.yaml").read_text())
    data["table"]["kind"] = "circumduction"
    with pytest.raises(ConfigError) as err:
        rig_from_dict(data, "fd.yaml")
    assert str(err.value) == ("fd.yaml: table.kind: 'circumduction' is not a table kind; "
                              "expected one of lumbar, cervical, flexion-distraction")


@pytest.fixture
def identity_server(fixed_modbus):
    """A plain pymodbus server answering only the identity block, with a given DEVICE_KIND."""

    def start(device_kind: int) -> TractionController:
        ident = [PROTOCOL_VERSION, 0x0100, 2000, device_kind] + encode_serial("FD-0001")
        bits = [SimData(0, values=[False] * 16, datatype=DataType.BITS)]
        device = SimDevice(id=1, simdata=(bits, bits, [SimData(0, values=[0] * 12, datatype=DataType.REGISTERS)],
                                          [SimData(100, values=ident, datatype=DataType.REGISTERS)]))
        return TractionController(host="127.0.0.1", port=fixed_modbus(device), timeout_s=2.0,
                                  pipeline_status=False).connect()

    return start


def test_the_tcm1_driver_names_the_controller_it_found_by_device_kind(identity_server):
    ctrl = identity_server(FDC1_DEVICE_KIND)
    try:
        with pytest.raises(DeviceProtocolError, match=r"DEVICE_KIND 4 is an FDC-1 controller, not TCM-1 — "
                                                      r"set table.kind to one of flexion-distraction"):
            ctrl.identity()
    finally:
        ctrl.close()


def test_an_unknown_device_kind_stays_a_protocol_error(identity_server):
    ctrl = identity_server(9)
    try:
        with pytest.raises(DeviceProtocolError, match="DEVICE_KIND 9 is not 1, 2 or 3"):
            ctrl.identity()
    finally:
        ctrl.close()
