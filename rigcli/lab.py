"""`rig lab export`: publish a bench (or an emulated table) through labgrid's own exporter.

A shared lab is labgrid's coordinator plus one exporter per bench. A real bench's
exporter file is written once by hand (`rigs/labgrid/bench-exporter.yaml`); this command
writes it from a rig file instead, so the rig file stays the one description of the
bench, and for an emulated rig it first starts the table, because the exporter must
publish the addresses the emulator got. Then it runs `labgrid-exporter` and stays in the
foreground until Ctrl-C / SIGTERM, when it stops the exporter and the emulated table.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import yaml

from drivers.errors import ConfigError, RigError
from rigs.config import load_rig
from rigs.lab_env import DEFAULT_COORDINATOR, attached_rig, exporter_config
from rigs.rig import EmulatorProcess, emulator_options


def labgrid_exporter_command() -> list[str]:
    """The exporter installed beside this Python (a venv's bin/ is not always on PATH)."""
    beside = Path(sys.executable).with_name("labgrid-exporter")
    found = str(beside) if beside.exists() else shutil.which("labgrid-exporter")
    if not found:
        raise RigError("labgrid-exporter not found: install the project (pip install -e .) into this Python")
    return [found]


def export(args) -> int:
    config = load_rig(args.rig)
    place = args.place or config.name
    emulator = None
    if config.is_emulated and not config.emulated.attach:
        if args.config_only:
            raise ConfigError(f"--config-only: {config.source}: an emulated table lives only as long as this "
                              "command; run it without --config-only")
        # what the rig file asks of its emulator (serial lines, the obstacle's angle), as open_rig passes it
        extra = emulator_options(config) + (["--host", args.host] if args.host else [])
        if args.host:  # beyond the loopback: refused, or said here (the table's stderr is not shown)
            from rigcli.exposure import emulator_listen

            warning = emulator_listen(args.host, args.allow_remote)
            if warning is not None:
                print(f"rig: {warning}", file=sys.stderr, flush=True)
                extra.append("--allow-remote")
        emulator = EmulatorProcess.start(config.table.kind, config.emulated.seed if args.seed is None else args.seed,
                                         config.time_scale, list(config.emulated.faults) + list(args.fault),
                                         extra=extra or None)
        config = attached_rig(config, emulator.endpoints)
    elif args.seed is not None or args.fault:
        raise ConfigError(f"--seed/--fault: {config.source}: only for an emulated table this command starts")
    try:
        out = Path(args.config_out or f"{place}-exporter.yaml")
        out.write_text(f"## labgrid exporter for place {place}, from {config.source} (rig lab export)\n"
                       + yaml.safe_dump(exporter_config(config, place), sort_keys=False), encoding="utf-8")
        coordinator = args.coordinator or os.environ.get("LG_COORDINATOR", DEFAULT_COORDINATOR)
        name = args.name or place
        line = {"place": place, "exporter": name, "coordinator": coordinator, "config": str(out.resolve()),
                "emulator": emulator.endpoints.to_json() if emulator else None}
        if args.config_only:
            print(json.dumps(line), flush=True)
            return 0
        return _run_exporter(labgrid_exporter_command() + ["-c", coordinator, "-n", name, str(out)], line)
    finally:
        if emulator is not None:
            emulator.stop()


def _run_exporter(cmd: list[str], line: dict) -> int:
    """The exporter as a child; our SIGTERM/SIGINT end it, then the table (caller's finally)."""
    child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    line["pid"] = child.pid
    print(json.dumps(line), flush=True)

    def stop(signum, _frame):
        child.send_signal(signal.SIGTERM)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        code = child.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if child.poll() is None:
            child.kill()
            child.wait()
    # labgrid-exporter ends 0 on SIGTERM and 100 when it wants to be restarted; a lost
    # coordinator is a non-zero exit the bench's service manager should see
    return 0 if code in (0, -signal.SIGTERM) else code


def add_parser(sub) -> None:
    lab = sub.add_parser("lab", help="a shared lab through labgrid: export a bench or an emulated table")
    lsub = lab.add_subparsers(dest="lab_command", required=True)
    exp = lsub.add_parser("export", help="write a rig's labgrid exporter file and run labgrid-exporter with it "
                                         "(an emulated rig: start its table first)")
    exp.add_argument("--rig", help="rig file (default: the embedded emulated lumbar rig)")
    exp.add_argument("--place", help="resource group, and the place name to create (default: the rig's name)")
    exp.add_argument("--name", help="the exporter's public name (default: the place name)")
    exp.add_argument("--coordinator", metavar="HOST:PORT", help=f"default: $LG_COORDINATOR or {DEFAULT_COORDINATOR}")
    exp.add_argument("--config-out", metavar="FILE", help="where the exporter file goes (default: PLACE-exporter.yaml)")
    exp.add_argument("--config-only", action="store_true", help="write the exporter file and stop (bench rig files)")
    exp.add_argument("--seed", type=int, help="emulated rigs: the table's seed")
    exp.add_argument("--fault", action="append", default=[], metavar="NAME", help="emulated rigs: switch on a defect")
    exp.add_argument("--host", help="emulated rigs: address the table binds (default 127.0.0.1; any other needs "
                     "--allow-remote)")
    exp.add_argument("--allow-remote", action="store_true", help="emulated rigs: allow a --host beyond the loopback "
                     "(anyone who can reach it can command the table)")
    exp.set_defaults(func=export)
