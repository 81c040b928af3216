"""`rig` — run the safety suites, emulate a table, inspect a rig.

Every user-facing failure is one line on stderr with exit status 2 (bad input: nothing
was done) or 1 (a device, the database or the run failed); README "Exit status" has the
table. Tracebacks are kept for `--debug`.
"""

from __future__ import annotations

import argparse
import sys

from drivers.errors import EXIT_FAILED, EXIT_INTERRUPTED, ConfigError, RigError, exit_status
from drivers.kinds import table_kinds


def _emulate(args: argparse.Namespace) -> int:
    from rigs.emulator.faults import check_faults
    from rigs.emulator.process import EmulatorOptions, main as emulate_main

    check_faults(args.kind, args.fault)  # before any output: the kind's own catalogue
    from rigcli.exposure import emulator_listen

    warning = emulator_listen(args.host, args.allow_remote)  # beyond the loopback: refused, or said
    if warning is not None:
        print(f"rig: {warning}", file=sys.stderr, flush=True)
    return emulate_main(
        EmulatorOptions(
            kind=args.kind,
            seed=args.seed,
            time_scale=args.time_scale,
            faults=list(args.fault),
            wear=args.wear,
            host=args.host,
            unit_id=args.unit_id,
            controller_rtu=args.controller_rtu,
            gauge_serial=args.gauge_serial,
            serial_lines=args.serial_lines,
            rtu_parity=args.rtu_parity,
            events_path=args.events,
            stats_path=args.stats,
            obstacle_angle_deg=args.obstacle_angle,
        )
    )


def _wear(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (a fraction, e.g. 0.2)") from None
    if not 0.0 <= value <= 100.0:
        raise argparse.ArgumentTypeError(f"{text}: wear is a fraction from 0 to 100")
    return value


def _faults_list(args: argparse.Namespace) -> int:
    from rigcli.faults import run_list

    return run_list(args)


def _faults_matrix(args: argparse.Namespace) -> int:
    from rigcli.faults import run_matrix

    return run_matrix(args)


def _faults_links(args: argparse.Namespace) -> int:
    from rigcli.faults import run_links

    return run_links(args)


def _check(args: argparse.Namespace) -> int:
    """Open the rig, print what answered, close it (a smoke test of a bench)."""
    from rigs.config import load_rig
    from rigs.rig import open_rig

    config = load_rig(args.rig)
    with open_rig(config) as rig:
        ident = rig.controller.identity()
        status = rig.controller.status()
        force = rig.gauge.read()
        print(f"rig        {config.name} ({'emulated' if config.is_emulated else 'bench'}, time scale {config.time_scale})")
        print(f"controller {rig.controller.device}: {ident.kind.name.lower()} serial {ident.serial}, "
              f"rated {ident.rated_force_n:.1f} N, firmware 0x{ident.firmware_version:04X}")
        print(f"status     ready={status.ready} enabled={status.enabled} phase={status.phase.name} "
              f"force={status.force_n:.1f} N")
        print(f"stimulus   {rig.stimulus.device}: {', '.join(f'{k.name}={int(v)}' for k, v in rig.stimulus.states().items())}")
        print(f"gauge      {config.gauge.dialect} {rig.gauge.resource}: {force:.2f} N")
        if rig.inclinometer is not None:  # a flexion-distraction bench: the angle reference, the encoder beside it
            tilt = rig.inclinometer.read()
            why = f" ({tilt.reason})" if tilt.reason else ""
            print(f"inclinometer {config.inclinometer.dialect} {rig.inclinometer.resource}: X {tilt.x_deg:+.3f}° "
                  f"Y {tilt.y_deg:+.3f}°{why}; encoder flexion {status.flexion_deg:+.1f}° "
                  f"lateral {status.lateral_deg:+.1f}°")
        if rig.obstacle_gauge is not None:
            ob = config.obstacle
            print(f"obstacle   {ob.gauge.dialect} {rig.obstacle_gauge.resource}: {rig.obstacle_gauge.read():.2f} N "
                  f"(load cell at {ob.angle_deg:g}° {ob.axis})")
    return _check_calibration(config, args.allow_expired_calibration)


def _check_calibration(config, allowed: bool) -> int:
    """Each reference instrument's calibration (the gauge; an inclinometer and an obstacle
    load cell where the rig has them), always shown; an expired one is a loud line on
    stderr and exit 1 (the bench answered, but `rig run` would refuse it), unless
    --allow-expired-calibration, which `rig run` would need too."""
    import datetime as dt

    from fixtures.plugin import reference_instruments

    code = 0
    for key, noun, section in reference_instruments(config):
        cal = section.calibration
        left = (cal.due - dt.date.today()).days
        state = "EXPIRED" if cal.expired() else f"valid, {left} days left"
        named = "" if key == "gauge" else f"{key} "
        print(f"{named}calibration {cal.certificate}: due {cal.due} ({state})")
        if not cal.expired():
            continue
        what = (f"rig check: {config.source}: {noun}'s calibration EXPIRED (due {cal.due}, "
                f"certificate {cal.certificate}): its readings are not traceable — recalibrate {noun}")
        if allowed:
            print(f"{what}; allowed by --allow-expired-calibration", file=sys.stderr)
            continue
        print(f"{what}; `rig run` refuses this rig unless --allow-expired-calibration", file=sys.stderr)
        code = EXIT_FAILED
    return code


def _demo(args: argparse.Namespace) -> int:
    from rigcli.demo import run_demo

    return run_demo(args.rig)


def _run(args: argparse.Namespace) -> int:
    from rigcli.run import run

    return run(args)


def _report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from reports.render import ReportError, render_report

    code, allure_index = 0, None
    if args.allure:  # built first, so the manifest written with the report covers it
        from reports.allure_report import build

        try:
            allure_index = build(Path(args.run))
        except RigError as exc:
            print(f"rig: {exc}", file=sys.stderr)
            code = 1
    from reports.lab_config import load_lab

    signing_key = load_lab(args.lab).signing.private_key
    try:
        written = render_report(args.run, args.out, signing_key=signing_key,
                                **({} if args.max_plots is None else {"max_plots": args.max_plots}))
    except ReportError as exc:
        raise RigError(str(exc)) from None
    for path in [*written, *([allure_index] if allure_index else [])]:
        print(path)
    return code


def _verify_signature(run_dir, lab) -> tuple[list[str], str]:
    """The signature check of `rig verify`: (problems, what to add to the success line).

    With a public key in the lab config the run must carry a valid signature; without
    one a signature cannot be checked, and saying nothing would pass it off as checked."""
    from reports.manifest import SIGNATURE_NAME

    public_key = lab.signing.public_key
    if public_key is None:
        if (run_dir / SIGNATURE_NAME).exists():
            print("note: signature present, not checked: no public key (lab config signing.public_key)")
        return [], ""
    from reports.signing import check_signature, key_fingerprint, load_public_key, short_fingerprint

    problems = check_signature(run_dir, public_key)
    if problems:
        return problems, ""
    return [], f", signature valid (key {short_fingerprint(key_fingerprint(load_public_key(public_key)))})"


def _verify(args: argparse.Namespace) -> int:
    from pathlib import Path

    from reports.lab_config import load_lab
    from reports.manifest import ManifestError, verify_manifest

    run_dir = Path(args.run)
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: no such run directory")
    lab = load_lab(args.lab)  # a wrong lab config is a usage error (exit 2), found before any verdict
    damaged = _record_damage(run_dir)  # said whatever the manifest says: sealed damage is still damage
    try:
        problems = verify_manifest(run_dir)
    except ManifestError as exc:
        print(f"rig verify: {exc}", file=sys.stderr)
        for line in damaged:
            print(line)
        return 1
    problems = damaged + problems
    if problems:
        for line in problems:
            print(line)
        return 1
    from reports.manifest import read_manifest

    problems, signed = _verify_signature(run_dir, lab)
    if not problems:
        problems, recorded = _verify_database(run_dir, args, lab)
        signed += recorded
    if problems:
        for line in problems:
            print(line)
        return 1
    print(f"{run_dir}: {len(read_manifest(run_dir))} files verified{signed}")
    return 0


def _record_damage(run_dir) -> list[str]:
    """`rig verify`'s check of the record itself: a line that does not decode was skipped by
    every verdict, so the run cannot be trusted as a PASS whatever its manifest says."""
    from reports.record import RECORD_NAME, scan_record

    try:
        read = scan_record(run_dir)
    except OSError:
        return []  # no record: the manifest check names the missing file
    if not read.damaged:
        return []
    return [f"{RECORD_NAME}: {read.damage_text()}: the line is skipped by the verdicts, report and history; "
            "the run cannot PASS"]


def _verify_database(run_dir, args, lab) -> tuple[list[str], str]:
    """The digest the results database recorded at ingest must be the manifest's now (its
    evidence lines: all but report/, which `rig report` may render again): a run edited
    and re-sealed, even with a stolen key, no longer matches what the lab's database holds. Checked where a database is configured (--db, $TRACTION_RIG_DB, the
    lab config) or the default history.sqlite lies beside the run."""
    from drivers.errors import ConfigError
    from reports.history.store import DEFAULT_DB_NAME, HistoryError, Store, configured_url, shown
    from reports.manifest import evidence_sha256

    url = configured_url(args.db, lab_db=lab.database)
    if url is None:
        beside = run_dir.resolve().parent / DEFAULT_DB_NAME
        if not beside.is_file():
            return [], ""
        url = f"sqlite:///{beside}"
    digest = evidence_sha256(run_dir)  # the report folder may have been rendered again since: not evidence
    try:
        with Store(url) as store:
            known, recorded = store.recorded_digest(run_dir)
    except HistoryError as exc:
        if isinstance(exc, ConfigError):
            raise
        return [f"database: {exc}"], ""
    where = shown(url)
    if known is None:
        return [f"database: the run is not recorded in {where}; `rig history import {run_dir}` records a run "
                "that was never recorded"], ""
    if known == "folder":
        return [f"database: {where} recorded a run of this folder with another run-start line: its start "
                "(rig, table, specification, operator) was edited"], ""
    if recorded is None:
        return [f"database: {where} recorded the run before it was sealed; `rig history import {run_dir}` "
                "records its digest"], ""
    if recorded != digest:
        return [f"database: the manifest differs from the one {where} recorded at ingest "
                f"(sha256 {recorded[:12]}…, now {digest[:12]}…): edited and re-sealed"], ""
    return [], f", digest as recorded in {where}"


def _keys_generate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from reports.signing import generate_keypair, key_fingerprint, load_public_key

    key_path, pub_path = generate_keypair(Path(args.out), args.name, force=args.force)
    key_path, pub_path = key_path.resolve(), pub_path.resolve()
    print(f"private key  {key_path}  (mode 0600: only on the machines that seal runs)")
    print(f"public key   {pub_path}  (on every machine that verifies)")
    print(f"fingerprint  {key_fingerprint(load_public_key(pub_path))}")
    print("lab config   (paste into lab.yaml; see docs/keys.md):")
    print(f"signing:\n  public_key: {pub_path}\n  private_key: {key_path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rig", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the safety suites against a rig and print the verdicts")
    run.add_argument("--rig", action="append", default=[], metavar="FILE",
                     help="rig file (default: the embedded emulated lumbar rig); repeat it to verify several rigs "
                          "side by side, one pytest-xdist worker each")
    run.add_argument("--lg-env", metavar="FILE", help="describe the rig(s) by a labgrid environment instead "
                     "(one rig per target; a RemotePlace must be acquired first)")
    run.add_argument("--lg-coordinator", metavar="HOST:PORT", help="labgrid coordinator (default: $LG_COORDINATOR)")
    run.add_argument("--workers", type=int, metavar="N",
                     help="parallel rigs (default: one per rig given; with one emulated rig, N emulated tables)")
    run.add_argument("--spec", help="specification file or name (default: the rig file's)")
    run.add_argument("--fault", action="append", default=[], metavar="NAME", help="emulated rigs: switch on a defect")
    run.add_argument("--seed", type=int, help="emulated rigs: the table's seed")
    run.add_argument("--wear", type=_wear, metavar="FRACTION", help="emulated rigs: a release valve worn by FRACTION")
    run.add_argument("--run-dir", help="where run records go (default: runs/)")
    run.add_argument("--operator", help="who runs the tests (recorded)")
    run.add_argument("--allow-expired-calibration", action="store_true")
    run.add_argument("-k", dest="keyword", help="only tests matching this pytest expression")
    run.add_argument("--profile", choices=["quick", "full"], default="quick",
                     help="quick (daily use, default) or full (the compliance run: clinical-length treatment "
                          "sessions; `rig spec duration SPEC --profile full` says how long)")
    run.add_argument("--no-report", action="store_true", help="skip rendering the compliance report at the end")
    run.add_argument("--db", metavar="URL", help="results database the run goes into (default: $TRACTION_RIG_DB, "
                     "the lab config's database, or RUN_DIR/history.sqlite)")
    run.add_argument("--no-history", action="store_true", help="do not record the run in the results database")
    run.add_argument("--lab", metavar="FILE", help="lab config: results database and signing key "
                     "(default: $TRACTION_RIG_LAB or /etc/traction-rig/lab.yaml)")
    run.add_argument("--panel", action="store_true", help="serve the live bench panel (a browser page) while the "
                     "suites run; operator questions can be answered in it too")
    run.add_argument("--panel-host", default="127.0.0.1", metavar="HOST",
                     help="address the panel listens on (default 127.0.0.1: this machine only; any other needs "
                          "--panel-allow-remote)")
    run.add_argument("--panel-allow-remote", action="store_true",
                     help="allow a --panel-host beyond the loopback: anyone who gets the printed URL can then answer "
                          "the operator's questions (a trusted bench network only)")
    run.add_argument("--panel-port", type=int, default=8765, metavar="PORT",
                     help="the panel's port (default 8765; 0: any free port)")
    run.add_argument("--panel-linger", type=float, default=0.0, metavar="S",
                     help="keep serving the panel S seconds after the run (default 0)")
    run.add_argument("pytest_args", nargs="*", help="more pytest arguments (after --)")
    run.set_defaults(func=_run)

    emulate = sub.add_parser("emulate", help="serve an emulated table (controller, stimulus module, gauges)")
    emulate.add_argument("--kind", choices=table_kinds(), default="lumbar")
    emulate.add_argument("--obstacle-angle", type=float, metavar="DEG",
                         help="flexion-distraction: the bench's obstacle angle on the flexion axis (default 10.0)")
    emulate.add_argument("--seed", type=int, default=0)
    emulate.add_argument("--time-scale", type=float, default=1.0, help="table seconds per wall second (K)")
    emulate.add_argument("--fault", action="append", default=[], metavar="NAME", help="switch on a named defect")
    emulate.add_argument("--wear", type=_wear, default=0.0, metavar="FRACTION",
                         help="a worn release valve: the emergency release is slower by this fraction (default 0)")
    emulate.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback only; any other "
                         "needs --allow-remote)")
    emulate.add_argument("--allow-remote", action="store_true", help="allow a --host beyond the loopback: anyone who "
                         "can reach it can command the table (Modbus TCP has no authentication)")
    emulate.add_argument("--unit-id", type=int, default=1)
    emulate.add_argument("--controller-rtu", metavar="DEVICE", help="serve the controller as Modbus RTU on this serial device")
    emulate.add_argument("--gauge-serial", metavar="DEVICE", help="serve the gcl gauge on this serial device (115200 8N1)")
    emulate.add_argument("--serial-lines", action="store_true",
                         help="make pty null-modem lines for the controller (RTU) and the gcl gauge and print the "
                              "ends to open (see docs/transports.md)")
    emulate.add_argument("--rtu-parity", choices=["E", "N", "O"],
                         help="RTU parity (default E, the contract's 8E1; N with --serial-lines: ptys carry no parity)")
    emulate.add_argument("--events", metavar="FILE", help="append ground-truth events as JSON lines")
    emulate.add_argument("--stats", metavar="FILE",
                         help="on stopping, write how promptly it answered (reply latency per server) and its CPU use as JSON")
    emulate.set_defaults(func=_emulate)

    from rigcli.lab import add_parser as add_lab_parser

    add_lab_parser(sub)

    from rigcli.history import add_parser as add_history_parser

    add_history_parser(sub)

    from rigcli.panel import add_parser as add_panel_parser

    add_panel_parser(sub)

    faults = sub.add_parser("faults", help="the emulated table's named defects: list them, or run the detection matrix")
    faults.set_defaults(func=_faults_list)
    fsub = faults.add_subparsers(dest="faults_command")
    flist = fsub.add_parser("list", help="list the defects and the requirements that must catch them")
    flist.set_defaults(func=_faults_list)
    matrix = fsub.add_parser("matrix", help="run the suites against the nominal table and every defect")
    for kind_parser in (faults, flist, matrix):
        kind_parser.add_argument("--kind", choices=table_kinds(), default=argparse.SUPPRESS,
                            help="the table kind whose catalogue (and embedded emulated rig) it is (default lumbar)")
    matrix.add_argument("--seeds", type=int, default=20, help="nominal tables (seeds 1..N) that must all pass (default 20)")
    matrix.add_argument("--only", metavar="A,B", help="only these defects (default: the whole catalogue)")
    matrix.add_argument("--trials", type=int, default=8, help="emergency trials per trigger (default 8)")
    matrix.add_argument("--jobs", type=int, default=2, help="parallel runs (default 2, one per core)")
    matrix.add_argument("--save", metavar="PATH", help="write PATH.md and PATH.json (e.g. docs/fault-matrix)")
    matrix.add_argument("--work-dir", help="where the runs go (default: a temporary directory)")
    matrix.add_argument("--focus", action="store_true",
                        help="each defect runs only the tests of the requirements it is mapped to and its documented "
                             "collateral (the nominal seeds run everything): a quick check that each is caught, which "
                             "cannot see a NEW collateral FAIL elsewhere (CI's share of the matrix)")
    matrix.set_defaults(func=_faults_matrix)
    links = fsub.add_parser("links", help="break every link of an emulated rig on purpose (sever, stall, delay, "
                            "refused reconnect, garbage) at every moment of a trial, plus SIGSTOP/SIGKILL of the "
                            "runner, and judge each cell by the emulator's ground truth (docs/link-fault-matrix.md)")
    links.add_argument("--rig", help="emulated rig file (default: the embedded emulated lumbar rig)")
    links.add_argument("--only", metavar="L/F/M,…", help="only these cells: LINK/FAULT/MOMENT patterns, * for any "
                       "(e.g. test/*/hold,runner)")
    links.add_argument("--jobs", type=int, default=1, help="cells side by side (default 1: each cell times a release)")
    links.add_argument("--load", type=int, default=0, metavar="N", help="N busy-loop processes during the matrix")
    links.add_argument("--poll-ms", type=float, default=20.0, help="ground-truth force poll (default 20 ms)")
    links.add_argument("--delay-ms", type=float, help="the delay fault (default: the link's own timeout, each way)")
    links.add_argument("--save", metavar="PATH", help="write PATH.md and PATH.json (e.g. docs/link-fault-matrix)")
    links.add_argument("--work-dir", help="where the cells' runs go (default: a temporary directory)")
    links.set_defaults(func=_faults_links)

    spec = sub.add_parser("spec", help="a specification's plan: what it samples per requirement (coverage) and more")
    spec_sub = spec.add_subparsers(dest="spec_command", required=True)
    from rigcli.coverage_cmd import add_parser as add_coverage_parser

    add_coverage_parser(spec_sub)
    from rigcli.spec_cmd import add_parsers as add_spec_parsers

    add_spec_parsers(spec_sub)

    check = sub.add_parser("check", help="open a rig and show what answers")
    check.add_argument("--rig", help="rig file (default: the embedded emulated lumbar rig)")
    check.add_argument("--allow-expired-calibration", action="store_true",
                       help="exit 0 although the gauge's calibration has expired (it is still reported)")
    check.set_defaults(func=_check)

    report = sub.add_parser("report", help="render a run's compliance report (HTML and PDF) and seal the run with a "
                            "SHA-256 manifest, signed with the lab key when configured")
    report.add_argument("run", metavar="RUN", help="run directory (holds record.jsonl)")
    report.add_argument("--out", metavar="DIR", help="where report.html and report.pdf go (default: RUN/report)")
    report.add_argument("--max-plots", type=int, default=None, metavar="N",
                        help="time-series plots per requirement (default: reports.render.MAX_PLOTS, 3)")
    report.add_argument("--allure", action="store_true",
                        help="also build the Allure 3 single-file report (RUN/report/allure/index.html; needs Node.js)")
    report.add_argument("--lab", metavar="FILE", help="lab config (default: $TRACTION_RIG_LAB, else "
                        "/etc/traction-rig/lab.yaml); its signing.private_key signs the manifest")
    report.set_defaults(func=_report)

    verify = sub.add_parser("verify", help="check a run directory against its MANIFEST.sha256 and, with the lab's "
                            "public key, its signature")
    verify.add_argument("run", metavar="RUN", help="run directory")
    verify.add_argument("--db", metavar="URL", help="results database whose recorded digest the manifest must match "
                        "(default: $TRACTION_RIG_DB, the lab config's, or history.sqlite beside the run)")
    verify.add_argument("--lab", metavar="FILE", help="lab config (default: $TRACTION_RIG_LAB, else "
                        "/etc/traction-rig/lab.yaml); with signing.public_key the run must be signed by that key")
    verify.set_defaults(func=_verify)

    keys = sub.add_parser("keys", help="the lab's Ed25519 key pair that signs run manifests (docs/keys.md)")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    generate = ksub.add_parser("generate", help="write NAME.key (private, mode 0600) and NAME.pub")
    generate.add_argument("--out", metavar="DIR", default=".", help="where the pair goes (default: the current directory)")
    generate.add_argument("--name", default="lab-signing", help="file name without extension (default: lab-signing)")
    generate.add_argument("--force", action="store_true",
                          help="overwrite an existing pair (runs signed with it then verify only with a kept copy "
                               "of its public key)")
    generate.set_defaults(func=_keys_generate)

    demo = sub.add_parser("demo", help="short demo: a treatment and an emergency stop, measured with the gauge")
    demo.add_argument("--rig", help="rig file (default: the embedded emulated lumbar rig)")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except RigError as exc:
        if args.debug:
            raise
        print(f"rig: {exc}", file=sys.stderr)
        return exit_status(exc)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
