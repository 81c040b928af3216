"""The kinds of device a rig can hold, registered by the driver that speaks each.

A bench is one controller protocol (TCM-1 for the lumbar and cervical traction tables,
FDC-1 for flexion-distraction tables), the stimulus module its contract names (SIO-1)
and reference instruments of some dialects (force gauges: gcl, scpi; the inclinometer:
tilt). Why a registry: a new kind of table brings a new
controller protocol and new instruments (FDC-1 and the `tilt` inclinometer next), and it
must arrive by registering its drivers, not by adding `if kind == ...` wherever a rig is
checked, opened or bound to a labgrid target. Registration is by decorator on the driver
class, as labgrid registers its drivers (`@target_factory.reg_driver`):

    @register_controller("TCM-1", tables=("lumbar", "cervical"), device_kinds=(1, 2, 3), stimulus="SIO-1")
    class TractionController: ...

    @register_stimulus("SIO-1")
    class StimulusModule: ...

    @register_instrument("gcl", quantity="force")
    class GclGauge(ForceGauge): ...

A driver module registers when it is imported; `DRIVER_MODULES` lists the modules every
look-up imports first, so a new kind is one decorated class and one line here.

The contract that tells controllers apart on the wire is DEVICE_KIND (input register 103,
the same address in every protocol of this family): 1, 2, 3 are TCM-1 tables, 4 is FDC-1.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Callable, TypeVar

from drivers.errors import ConfigError

#: modules whose classes register themselves (imported before any look-up)
DRIVER_MODULES = ("drivers.controller", "drivers.flexion_controller", "drivers.stimulus", "drivers.gauge.gcl",
                  "drivers.gauge.scpi", "drivers.inclinometer.tilt")

T = TypeVar("T", bound=type)


@dataclass(frozen=True)
class ControllerKind:
    """A controller protocol: the table kinds it drives (a rig file's `table.kind`), the
    DEVICE_KIND values its controllers answer, and the stimulus module on its benches.

    `driver` is opened as `driver.on(link, name=..., safety_limit_n=...)` with a
    `drivers.links.ModbusLink`, the stimulus module's class as `.on(link)`.
    """

    protocol: str
    driver: type
    tables: tuple[str, ...]
    device_kinds: frozenset[int]
    stimulus: str = "SIO-1"


@dataclass(frozen=True)
class InstrumentDialect:
    """A reference instrument's line protocol; `driver(resource, **kw)` opens one."""

    name: str
    quantity: str
    driver: type


class Registrants:
    """The modules that register into a registry as they are imported, imported by its
    first look-up — never at the registry's own import, because they import it. Marked
    loaded before the imports, so a module that looks up while it registers does not
    import the list again; an import that fails leaves the list to be tried again."""

    def __init__(self, modules: tuple[str, ...]) -> None:
        self.modules = tuple(modules)
        self._loaded = not self.modules

    def load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        try:
            for module in self.modules:
                import_module(module)
        except BaseException:
            self._loaded = False
            raise


class Registry:
    """Controllers by protocol, stimulus modules by protocol, instruments by dialect."""

    def __init__(self, modules: tuple[str, ...] = ()) -> None:
        self._registrants = Registrants(modules)
        self.controllers: dict[str, ControllerKind] = {}
        self.stimuli: dict[str, type] = {}
        self.instruments: dict[str, InstrumentDialect] = {}

    # ------------------------------------------------------------ registration
    def register_controller(self, protocol: str, *, tables: tuple[str, ...], device_kinds: tuple[int, ...],
                            stimulus: str = "SIO-1") -> Callable[[T], T]:
        def register(cls: T) -> T:
            kind = ControllerKind(protocol, cls, tuple(tables), frozenset(int(k) for k in device_kinds), stimulus)
            for other in self.controllers.values():
                if other.protocol == protocol:
                    continue
                if clash := set(kind.tables) & set(other.tables):
                    raise ValueError(f"{protocol}: table kind {sorted(clash)[0]} is already {other.protocol}'s")
                if clash := kind.device_kinds & other.device_kinds:
                    raise ValueError(f"{protocol}: DEVICE_KIND {min(clash)} is already {other.protocol}'s")
            self.controllers[protocol] = kind
            return cls

        return register

    def register_stimulus(self, protocol: str) -> Callable[[T], T]:
        def register(cls: T) -> T:
            self.stimuli[protocol] = cls
            return cls

        return register

    def register_instrument(self, dialect: str, *, quantity: str) -> Callable[[T], T]:
        def register(cls: T) -> T:
            named = getattr(cls, "dialect", dialect)
            if named != dialect:
                raise ValueError(f"{cls.__name__} says it speaks {named!r}, registered as {dialect!r}")
            self.instruments[dialect] = InstrumentDialect(dialect, quantity, cls)
            return cls

        return register

    # ------------------------------------------------------------ look-up
    def _load(self) -> None:
        self._registrants.load()

    def table_kinds(self) -> tuple[str, ...]:
        """Every table kind a rig file may name, in registration order."""
        self._load()
        return tuple(t for kind in self.controllers.values() for t in kind.tables)

    def controller_for_table(self, table: str) -> ControllerKind:
        self._load()
        for kind in self.controllers.values():
            if table in kind.tables:
                return kind
        raise ConfigError(f"table kind {table!r} has no controller; known: {', '.join(self.table_kinds())}")

    def controller_for_protocol(self, protocol: str) -> ControllerKind:
        """The controller kind registered as `protocol` (TCM-1, FDC-1)."""
        self._load()
        try:
            return self.controllers[protocol]
        except KeyError:
            raise ConfigError(f"no driver for the controller protocol {protocol}; "
                              f"known: {', '.join(self.controllers)}") from None

    def controller_for_device(self, device_kind: int) -> ControllerKind | None:
        """The protocol whose controllers answer DEVICE_KIND `device_kind` (None: no known one)."""
        self._load()
        return next((k for k in self.controllers.values() if device_kind in k.device_kinds), None)

    def stimulus(self, protocol: str) -> type:
        self._load()
        try:
            return self.stimuli[protocol]
        except KeyError:
            raise ConfigError(f"no driver for the stimulus module {protocol}; "
                              f"known: {', '.join(self.stimuli)}") from None

    def dialects(self, quantity: str | None = None) -> tuple[str, ...]:
        """The instrument dialects (of one quantity: force, angle, ...)."""
        self._load()
        return tuple(d.name for d in self.instruments.values() if quantity in (None, d.quantity))

    def instrument(self, dialect: str, quantity: str | None = None) -> InstrumentDialect:
        """The dialect `dialect` (case and blanks ignored), checked to measure `quantity`."""
        self._load()
        found = self.instruments.get(dialect.strip().lower())
        if found is None or quantity not in (None, found.quantity):
            what = f"{quantity} instrument" if quantity else "instrument"
            raise ConfigError(f"unknown {what} dialect {dialect!r}; expected one of "
                              f"{', '.join(self.dialects(quantity))}")
        return found


#: the registry of this installation (tests make their own to try a kind out)
REGISTRY = Registry(DRIVER_MODULES)

register_controller = REGISTRY.register_controller
register_stimulus = REGISTRY.register_stimulus
register_instrument = REGISTRY.register_instrument
table_kinds = REGISTRY.table_kinds
controller_for_table = REGISTRY.controller_for_table
controller_for_device = REGISTRY.controller_for_device
controller_for_protocol = REGISTRY.controller_for_protocol
stimulus = REGISTRY.stimulus
dialects = REGISTRY.dialects
instrument = REGISTRY.instrument

__all__ = [
    "ControllerKind",
    "DRIVER_MODULES",
    "Registrants",
    "InstrumentDialect",
    "REGISTRY",
    "Registry",
    "controller_for_device",
    "controller_for_protocol",
    "controller_for_table",
    "dialects",
    "instrument",
    "register_controller",
    "register_instrument",
    "register_stimulus",
    "stimulus",
    "table_kinds",
]
