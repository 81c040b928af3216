"""`rig faults matrix`: the suites against the nominal table and against every defect.

Each cell is the verdict of one requirement on one table (of each quantity, for a
requirement that bounds several: ER-NORISE and ER-NORISE.rise). A defect must be caught
(FAIL) by at least one of the requirements it is mapped to; the nominal table must
pass every requirement on every seed (no FAIL, no INCONCLUSIVE). A defect that is not
caught is a defect of the suites. Runs `rig run` in parallel worker processes.

A FAIL of a requirement the defect is not mapped to is a *collateral* FAIL: right when
the defect really breaks that requirement too (each such FAIL is documented in the
catalogue with its reason), wrong when a check blamed a requirement the table met. An
undocumented one is flagged NEW and makes the matrix exit non-zero, so it is noticed.

A defect whose part of the parameter space only the full profile's plan reaches
(`Defect.profile == "full"`: a timer that drifts only in clinical-length sessions) is
run with `rig run --profile full`. After the table, a summary per requirement says how
many defects it is mapped to, how many of them it caught, and by what margin: a suite
that catches a defect by a hair is one plan change away from missing it.

`--kind` chooses the table kind (default lumbar): its catalogue
(rigs.emulator.faults.catalogue), its embedded emulated rig (rigs/emulated-KIND.yaml) and
the specification that rig names; the machinery is the same for every kind.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

from reports.record import run_dirs
from reports.verdicts import summarise, verdict_rows
from rigs.emulator.faults import Catalogue, catalogue
from verification.spec import SPECS_DIR

ROOT = Path(__file__).resolve().parent.parent
SHORT = {"PASS": "P", "FAIL": "F", "INCONCLUSIVE": "I", "NOT RUN": "-"}
#: the table kind a matrix or a listing is of when none is named
DEFAULT_KIND = "lumbar"


def kind_of(args) -> str:
    return getattr(args, "kind", None) or DEFAULT_KIND


def emulated_rig(kind: str) -> str:
    """The embedded emulated rig of a table kind (`rig run --rig NAME`)."""
    return f"emulated-{kind}"


def run_list(args) -> int:
    """`rig faults list [--kind K]`: the kind's catalogue, one row a defect."""
    from rich.console import Console
    from rich.table import Table

    kind = kind_of(args)
    entries = catalogue(kind).entries
    title = f"{len(entries)} defects of the emulated table (rig emulate --fault NAME; docs/faults.md)"
    if kind != DEFAULT_KIND:
        title = f"{len(entries)} defects of the emulated {kind} table (rig emulate --kind {kind} --fault NAME; " \
                "docs/faults.md)"
    table = Table(title=title)
    for column in ("defect", "must be caught by", "profile", "what is wrong"):
        table.add_column(column, overflow="fold", no_wrap=column == "defect")
    for entry in entries.values():
        table.add_row(entry.name, ", ".join(entry.requirements), entry.profile, entry.summary)
    Console(width=max(Console().width, 140)).print(table)
    return 0


def covers(ids, row: str) -> bool:
    """Whether a defect's mapping (or its documented collateral) names this verdict row: a
    requirement names all its quantities (ER-NORISE: ER-NORISE and ER-NORISE.rise), a
    quantity id only itself."""
    return row in ids or row.partition(".")[0] in ids


def collateral(fault: str, verdicts: dict, entries: Catalogue | None = None) -> tuple[list[str], list[str]]:
    """(documented, new) collateral FAILs of a defect's run (of the traction catalogue unless `entries`)."""
    entry = (entries or catalogue(DEFAULT_KIND))[fault]
    others = [r for r, v in verdicts.items() if v == "FAIL" and not covers(entry.requirements, r)]
    return [r for r in others if covers(entry.collateral, r)], [r for r in others if not covers(entry.collateral, r)]


def margin(m: dict | None) -> dict | None:
    """How far a deciding measurement lies beyond its limit: in the requirement's unit and
    as a fraction of the tolerance (the limit's own magnitude; half the band of a two-sided
    one). None for no measurement; a boolean has no distance (`violated`); a value that was
    never reached (a release that never came) is `never` (no finite distance)."""
    if m is None:
        return None
    unit = m.get("unit") or ""
    if m.get("decision_rule") == "boolean":
        return {"beyond": None, "fraction": None, "unit": unit, "violated": not m.get("value"), "never": False,
                "limit": None, "uncertainty": None}
    value, lo, hi = m.get("value"), m.get("lower"), m.get("upper")
    if lo is not None and hi is not None:
        tolerance = abs(hi - lo) / 2.0
    elif hi is not None or lo is not None:
        tolerance = abs(hi if hi is not None else lo)
    else:
        tolerance = None
    never = value is None
    beyond = None
    if not never:
        sides = ([value - hi] if hi is not None else []) + ([lo - value] if lo is not None else [])
        beyond = max(sides) if sides else None
    fraction = beyond / tolerance if beyond is not None and tolerance else None
    return {"beyond": beyond, "fraction": fraction, "unit": unit, "violated": never or (beyond is not None and beyond > 0),
            "never": never, "limit": hi if hi is not None else lo, "uncertainty": m.get("uncertainty")}


def margin_text(mg: dict | None) -> str:
    """A margin as one short cell: '+2.1 N (+21 %)', 'never reached', 'violated'."""
    if mg is None:
        return "—"
    if mg.get("never"):
        return "never reached"
    if mg["beyond"] is None:
        return "violated" if mg["violated"] else "holds"
    text = f"{mg['beyond']:+.3g} {mg['unit']}".rstrip()
    if mg["fraction"] is not None:
        text += f" ({mg['fraction']:+.0%})"
    return text


def requirement_summary(rows: list[dict], req_ids: list[str], entries: Catalogue | None = None) -> list[dict]:
    """Per requirement (or quantity) column: the defects mapped to it, those it caught (its
    verdict FAIL in the defect's run) and the margin it caught each by (the run's deciding
    measurement for that column, `margins` in each row)."""
    entries = entries or catalogue(DEFAULT_KIND)
    summary = []
    for rid in req_ids:
        mapped = [r for r in rows if r.get("fault") and covers(entries[r["fault"]].requirements, rid)]
        caught = [r for r in mapped if r["verdicts"].get(rid) == "FAIL"]
        summary.append({
            "requirement": rid,
            "mapped": [r["fault"] for r in mapped],
            "caught": [{"fault": r["fault"], "margin": r.get("margins", {}).get(rid)} for r in caught],
            "missed": [{"fault": r["fault"], "verdict": r["verdicts"].get(rid, "NOT RUN")} for r in mapped
                       if r not in caught],
        })
    return summary


def summary_lines(summary: list[dict]) -> list[str]:
    """The per-requirement summary as Markdown rows (requirements no defect is mapped to left out)."""
    lines = ["| requirement | defects mapped | caught (FAIL) | margin of each catch (beyond the limit; fraction of the "
             "tolerance) | not caught |", "|---|---|---|---|---|"]
    for s in summary:
        if not s["mapped"]:
            continue
        margins = "; ".join(f"`{c['fault']}` {margin_text(c['margin'])}" for c in s["caught"]) or "—"
        missed = "; ".join(f"`{m['fault']}` ({m['verdict']})" for m in s["missed"]) or "—"
        lines.append(f"| {s['requirement']} | {len(s['mapped'])} | {len(s['caught'])} | {margins} | {missed} |")
    return lines


def _spec_copy(trials: int, workdir: Path, kind: str = DEFAULT_KIND) -> Path:
    """The specification the kind's emulated rig names, with `trials` emergency trials."""
    from rigs.config import load_rig

    name = load_rig(emulated_rig(kind)).table.specification
    data = yaml.safe_load((SPECS_DIR / f"{name}.yaml").read_text())
    # the same number in either profile: a full-profile defect is judged on as many trials
    data["plan"]["emergency"]["trials"] = trials
    data["plan"]["emergency"]["quick_trials"] = trials
    path = workdir / f"{name}-{trials}-trials.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def focus_of(fault: str, entries: Catalogue | None = None) -> list[str]:
    """The requirements a focused run of a defect verifies: those it is mapped to and those
    its documented collateral FAILs name (`rig faults matrix --focus`)."""
    entry = (entries or catalogue(DEFAULT_KIND))[fault]
    return sorted({*entry.requirements, *entry.collateral})


def _run_one(label: str, fault: str | None, seed: int, spec: Path, workdir: Path, focus: bool = False,
             kind: str = DEFAULT_KIND) -> dict:
    entries = catalogue(kind)
    run_root = workdir / label
    # --no-history: runs of defects made on purpose stay out of any results database
    cmd = [sys.executable, "-m", "rigcli", "run", "--no-report", "--no-history", "--run-dir", str(run_root),
           "--rig", emulated_rig(kind), "--seed", str(seed), "--spec", str(spec)]
    if fault:
        cmd += ["--fault", fault]
        if entries[fault].profile != "quick":
            # only that profile's plan samples where the defect lives (`rig run --profile`)
            cmd += ["--profile", entries[fault].profile]
        if focus:
            cmd += ["--", "--requirements", ",".join(focus_of(fault, entries))]
    started = time.perf_counter_ns()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=1800)
    wall = (time.perf_counter_ns() - started) / 1e9
    runs = list(run_dirs(run_root))
    if not runs:
        return {"label": label, "fault": fault, "seed": seed, "exit": proc.returncode, "wall_s": wall,
                "verdicts": {}, "error": (proc.stderr or proc.stdout).strip().splitlines()[-1:]}
    summary = summarise(runs[-1])
    rows = verdict_rows(summary.results)
    return {"label": label, "fault": fault, "seed": seed, "exit": proc.returncode, "wall_s": wall,
            "profile": entries[fault].profile if fault else "quick",
            "verdicts": {row.id: row.tally.verdict for row in rows},
            "margins": {row.id: margin(row.tally.worst) for row in rows if row.tally.verdict == "FAIL"},
            "run": str(runs[-1])}


def run_matrix(args) -> int:
    console = Console(width=max(Console().width, 170))  # 18 requirement columns
    kind = kind_of(args)
    entries = catalogue(kind)
    workdir = Path(args.work_dir or tempfile.mkdtemp(prefix="fault-matrix-"))
    workdir.mkdir(parents=True, exist_ok=True)
    spec = _spec_copy(args.trials, workdir, kind)
    faults = [f.strip() for f in args.only.split(",")] if args.only else sorted(entries.entries)
    unknown = [f for f in faults if f not in entries.entries]
    if unknown:
        from drivers.errors import ConfigError

        raise ConfigError(f"--only {unknown[0]}: unknown fault; known: {entries.known()}")
    jobs = [(f"nominal-seed{s}", None, s) for s in range(1, args.seeds + 1)]
    jobs += [(f"fault-{f}", f, 1) for f in faults]
    started = time.perf_counter_ns()
    results = []
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(_run_one, label, fault, seed, spec, workdir, args.focus, kind)
                   for label, fault, seed in jobs]
        for fut in futures:
            res = fut.result()
            results.append(res)
            console.print(f"  {res['label']:<34} {res['wall_s']:6.1f} s  exit {res['exit']}")
    wall = (time.perf_counter_ns() - started) / 1e9
    req_ids = next((list(r["verdicts"]) for r in results if r["verdicts"]), [])
    console = Console(width=max(Console().width, 170, 70 + 5 * len(req_ids)))  # a column per requirement
    table = Table(title=f"fault detection matrix — {len(results)} runs, {args.trials} trials per trigger, {wall:.0f} s")
    table.add_column("table", no_wrap=True)
    for rid in req_ids:
        table.add_column(rid.replace("-", "\n", 1), justify="center")
    table.add_column("result", no_wrap=True)
    table.add_column("collateral FAIL", no_wrap=True)
    ok = True
    rows = []
    for res in results:
        fault = res["fault"]
        v = res["verdicts"]
        documented, new, caught = [], [], False
        if fault is None:
            good = bool(v) and all(x == "PASS" for x in v.values())
            outcome = "all PASS" if good else "FALSE FAIL"
        else:
            mapped = entries[fault].requirements
            documented, new = collateral(fault, v, entries)
            by = [r for r, x in v.items() if x == "FAIL" and covers(mapped, r)]
            caught = bool(by)
            good = caught and not new
            outcome = f"caught by {', '.join(by)}" if caught else "NOT CAUGHT"
        ok &= good
        cells = []
        for rid in req_ids:
            mark = SHORT.get(v.get(rid, "NOT RUN"), "?")
            if fault and covers(entries[fault].requirements, rid):
                mark = f"[bold]{mark}*[/]"
            elif rid in new:
                mark = f"[bold red]{mark}![/]"
            elif rid in documented:
                mark = f"{mark}°"
            cells.append(mark)
        coll = ", ".join(documented) + ("; " if documented and new else "") + (f"NEW: {', '.join(new)}" if new else "")
        table.add_row(res["label"], *cells, f"[{'green' if good else 'red'}]{outcome}[/]",
                      f"[{'red' if new else 'default'}]{coll or '—'}[/]")
        rows.append({**res, "outcome": outcome, "good": good, "caught": caught, "collateral": documented,
                     "new_collateral": new})
    console.print(table)
    console.print("P pass, F fail, I inconclusive, - not run; * = a requirement the defect is mapped to; "
                  "° = a collateral FAIL the catalogue documents; ! = a NEW collateral FAIL (a check may blame the "
                  "wrong requirement: see docs/fault-matrix.md)")
    new_total = sum(len(r["new_collateral"]) for r in rows)
    if new_total:
        console.print(f"[red]{new_total} new collateral FAIL(s): " + "; ".join(
            f"{r['label']}: {', '.join(r['new_collateral'])}" for r in rows if r["new_collateral"]) + "[/]")
    focused = " (focused: looked for only within each defect's own requirements)" if args.focus else ""
    nominal = [r for r in rows if r["fault"] is None]
    console.print(f"nominal: {sum(r['good'] for r in nominal)}/{len(nominal)} seeds all PASS "
                  f"(false-fail rate {sum(not r['good'] for r in nominal)}/{len(nominal)}); "
                  f"defects caught: {sum(r['caught'] for r in rows if r['fault'])}/{len(rows) - len(nominal)}; "
                  f"new collateral FAILs: {new_total}{focused}; "
                  f"wall {wall:.0f} s with {args.jobs} workers")
    per_requirement = requirement_summary(rows, req_ids, entries)
    by_req = Table(title="per requirement: defects mapped, caught, and the margin of each catch")
    for head in ("requirement", "mapped", "caught", "margin of each catch", "not caught"):
        by_req.add_column(head, overflow="fold")
    for s in per_requirement:
        if s["mapped"]:
            by_req.add_row(s["requirement"], str(len(s["mapped"])), str(len(s["caught"])),
                           "; ".join(f"{c['fault']} {margin_text(c['margin'])}" for c in s["caught"]) or "—",
                           "; ".join(f"{m['fault']} ({m['verdict']})" for m in s["missed"]) or "—")
    console.print(by_req)
    if args.save:
        out = Path(args.save)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".json").write_text(json.dumps({"trials": args.trials, "wall_s": wall, "jobs": args.jobs,
                                                        "requirements": req_ids, "runs": rows,
                                                        "per_requirement": per_requirement}, indent=1))
        lines = [f"# Fault detection matrix{'' if kind == DEFAULT_KIND else f' — {kind} tables'}\n",
                 f"`rig faults matrix{'' if kind == DEFAULT_KIND else f' --kind {kind}'} --seeds {args.seeds} "
                 f"--trials {args.trials} --jobs {args.jobs}{' --focus' if getattr(args, 'focus', False) else ''}` — "
                 f"{len(rows)} runs in {wall:.0f} s on this 2-core machine (time scale 10). "
                 "P pass, F fail, I inconclusive, - not run; **bold** = a requirement the defect is mapped to; "
                 "F° = a collateral FAIL, justified below; F! = a NEW collateral FAIL, not justified.\n",
                 "| table | " + " | ".join(req_ids) + " | result | collateral FAIL |", "|---" * (len(req_ids) + 3) + "|"]
        for r in rows:
            mapped = entries[r["fault"]].requirements if r["fault"] else ()

            def cell(x):
                mark = SHORT.get(r["verdicts"].get(x, "NOT RUN"))
                if covers(mapped, x):
                    return f"**{mark}**"
                return mark + ("!" if x in r["new_collateral"] else "°" if x in r["collateral"] else "")
            coll = ", ".join(r["collateral"]) + (f" NEW: {', '.join(r['new_collateral'])}" if r["new_collateral"] else "")
            lines.append(f"| {r['label']} | " + " | ".join(cell(x) for x in req_ids) + f" | {r['outcome']} | {coll or '—'} |")
        lines += ["", "## Per requirement: defects caught and by what margin", "",
                  "For each requirement (or quantity) column: how many defects are mapped to it, how many of those "
                  "it caught (FAIL), and by how much — the deciding measurement's distance beyond its limit, in the "
                  "requirement's unit and as a fraction of the tolerance (`violated` for a refusal or latch, "
                  "`never reached` for a release that never came).", ""]
        lines += summary_lines(per_requirement)
        full = [r["fault"] for r in rows if r.get("profile") == "full"]
        if full:
            lines += ["", "Run with `--profile full`: " + ", ".join(f"`{f}`" for f in full) + "."]
        lines += ["", "## Why each collateral FAIL is right", "",
                  "A defect that breaks more than the requirement it is mapped to makes those FAIL too; each such FAIL "
                  "below is a finding of its own, not a check blaming a requirement the table met "
                  "(`rigs/emulator/faults.py`, `collateral=`).", ""]
        for name in sorted(entries.entries):
            for rid, why in entries[name].collateral.items():
                lines.append(f"- `{name}` → **{rid}**: {why}")
        out.with_suffix(".md").write_text("\n".join(lines) + "\n")
        console.print(f"saved {out.with_suffix('.md')} and {out.with_suffix('.json')}")
    return 0 if ok else 1


# ---------------------------------------------------------------------------------------
# rig faults links: the link-fault matrix (rigcli/link_matrix.py)
# ---------------------------------------------------------------------------------------

LINKS_DOC = """# Link-fault matrix

The framework's first promise: whatever happens to the rig, the table ends released.
`rig faults links` tries it the way a skeptical test engineer would. Every link of an
emulated rig runs through a fault-injecting proxy of its own (`rigs/linkfaults/proxy.py`):
the controller's **test** link, its **safety** link (the second Modbus TCP connection kept
for making the table safe), the **heartbeat** process's link, the **stimulus** module and
the **gauge** (the rig file's `controller.safety_link` / `controller.heartbeat_link` route
the two extra controller links, `rigs/config.py`); **commands** breaks the test and the
safety link at once, leaving only the heartbeat link and the stimulus module to make the
table safe. Each link is broken in five ways —

| fault | what the proxy does |
|---|---|
| sever | closes both sides of every connection (a reconnect is served) |
| stall | keeps the connections open and forwards no byte either way |
| delay | adds the link's own timeout (rig file) to every chunk, each way: every exchange answers too late |
| refused | sever, then every reconnect is reset at once (a refused reconnect) |
| garbage | 16 random bytes toward the rig, then every frame from the device corrupted |

— at five moments of one emergency-release trial (a hold at 400 N, then the ESTOP coil at
rest): **setup** (the rig is open and its heartbeat armed, nothing moves yet), **ramp**
(ramping up, above 100 N), **hold** (in the hold above 300 N), **trigger** (the controller
has just entered its emergency release) and **release** (half-way down that release, or
as late in it as a 2 ms watch of the phase catches: at time scale 10 the whole release
takes ~15 ms wall). The runner itself (`rig run`) is also stopped (**SIGSTOP**) and killed
(**SIGKILL**) at each moment. Link faults stay until the run ends; a stopped runner stays
stopped for the bound + 2 s, then continues (SIGCONT), and is judged while it was stopped.

Each cell starts a fresh `rig emulate` (the rig file's time scale), its five proxies and
`rig run -k "emergency and estop_coil"` with one trial. The judge is the emulator, never
the rig: a reader of its own, on no proxy, polls the table's true cord force every 20 ms
through the gauge dialect the rig does not use (it measures the emulator's true force,
0.05 N noise) and the controller's phase (to find the moment, every 2 ms near a trigger);
the gauge's peak since the fault (`CLR`, then `?PT`) gives the largest force even between
two polls.

## How to run

```sh
rig faults links                                   # all 160 cells, ~8 s each (~25 min)
rig faults links --only test/*/hold,safety/*/hold,runner/*/hold
rig faults links --load 2 --save docs/link-fault-matrix   # under two busy loops, saved here
```

`--only LINK/FAULT/MOMENT,…` (`*` or a missing part: any), `--jobs N` cells side by side,
`--load N` busy-loop processes for the matrix's duration, `--poll-ms`, `--delay-ms`,
`--rig` (an emulated TCP rig with the scpi gauge), `--save PATH` (PATH.md and PATH.json),
`--work-dir` (every cell's rig file, emulator events, run record, stdout and stderr are
kept there). The exit status is 0 only when every cell meets the goal.

## Columns

| column | meaning |
|---|---|
| cell | LINK/FAULT/MOMENT |
| F at fault | the true force when the fault was applied, N |
| used after | wall seconds from the fault until the rig next touched the faulted link (a byte sent, a connection tried); `never`: the rig did not need that link again, so no release is owed to that fault |
| released | wall seconds from the fault until the true force was below the residual force for good (the emulator's own crossing instant from its events when it has one, else the first poll below); `never` if it still was not at the end |
| goal | released counted from the first use, against the bound: watchdog period + ER-RESIDUAL's release time (table s ÷ time scale) + 0.5 s wall |
| max F after | the largest true force after the fault (the gauge's peak), N |
| verdicts after | the verdicts of the requirement rows measured after the fault reached the rig (P pass, F fail, I inconclusive, - not run). A P is checked against the emulator: it is a **false PASS** when the trial's release was not its trigger's (the first emergency release after the trial's START had another cause, e.g. the watchdog) or a measured ER-HALF / ER-RESIDUAL is off the emulator's own crossing by more than its uncertainty (at least 20 ms table). A P that agrees (e.g. the heartbeat link cut and re-made, the stimulus module not needed by this trial) is a true PASS |
| record | `ok`: every line of record.jsonl parses and every line written before the fault is still there, else what is wrong |
| rc | `rig run`'s exit status (-9: killed) |
| the user saw | the last line on stderr, or the overall verdict line |

The goal per cell: released within the bound, 0 false PASS, 0 lines lost. A cell that
misses any of it is red and listed with the reason; a cell that could not run (moment
never reached, emulator failed) is red too. A request in flight when the fault comes
counts as a use at that instant (a stalled reply is the rig waiting on the link now).

Under load: `rig faults links --load 2 --only … --save docs/link-fault-matrix-load2`
keeps its own file (`docs/link-fault-matrix-load2.md`), same columns.
"""


def _short(verdicts: dict) -> str:
    return " ".join(f"{rid}:{SHORT.get(v, '?')}" for rid, v in verdicts.items()) or "—"


def _s(x) -> str:
    return "never" if x is None else f"{x:.2f}"


def _row(r: dict) -> list[str]:
    rec = r["record"]
    record = "ok" if rec.get("intact") else (
        f"{len(rec.get('bad_lines', []))} bad, {rec.get('lost_before_fault', 0)} lost" if rec else "—")
    used = "—" if not r["record"] and r["exposed_after_s"] is None and r["problems"] else _s(r["exposed_after_s"])
    return [r["cell"], "—" if r["moment_force_n"] is None else f"{r['moment_force_n']:.0f}", used,
            _s(r["release_s"]), f"{_s(r['release_from_exposure_s'])} ≤ {r['bound_s']:.2f}" if r["exposed_after_s"] is not None
            else "n/a", "—" if r["max_force_n"] is None else f"{r['max_force_n']:.0f}", _short(r["affected"]), record,
            "—" if r["exit_code"] is None else str(r["exit_code"]), r["user_line"]]


HEAD = ["cell", "F at fault", "used after", "released", "goal", "max F after", "verdicts after", "record", "rc",
        "the user saw"]


def run_links(args) -> int:
    from rigs.config import load_rig
    from rigcli.link_matrix import BusyLoad, CellRunner, Limits, all_cells, cell_spec, result_dict, run_cells, select
    from drivers.errors import ConfigError
    from verification.spec import load_spec

    console = Console(width=max(Console().width, 200))
    try:
        rig = load_rig(args.rig)
        cells = select(all_cells(), args.only)
    except (ConfigError, ValueError) as exc:
        print(f"rig faults links: {exc}", file=sys.stderr)
        return 2
    if rig.emulated is None or rig.controller.transport != "tcp" or rig.gauge.dialect != "scpi":
        print(f"rig faults links: {rig.source or rig.name}: needs an emulated rig with a tcp controller and the scpi "
              "gauge (the gcl gauge is the ground truth's)", file=sys.stderr)
        return 2
    if not cells:
        print(f"rig faults links: --only {args.only}: no cell matches", file=sys.stderr)
        return 2
    spec = load_spec(rig.table.specification)
    limits = Limits.of(rig, spec)
    workdir = Path(args.work_dir or tempfile.mkdtemp(prefix="link-faults-"))
    workdir.mkdir(parents=True, exist_ok=True)
    spec_file = cell_spec(Path(spec.source) if getattr(spec, "source", None) else SPECS_DIR / f"{spec.name}.yaml",
                          workdir / "cell-spec.yaml")
    runner = CellRunner(Path(rig.source) if rig.source else ROOT / "rigs" / "emulated-lumbar.yaml", limits, spec_file,
                        workdir, poll_s=args.poll_ms / 1000.0, delay_ms=args.delay_ms)
    console.print(f"link-fault matrix: {len(cells)} cells, bound {limits.bound_wall_s:.2f} s wall "
                  f"(watchdog {limits.watchdog_table_s:g} s + release {limits.release_table_s:g} s table at K = "
                  f"{limits.time_scale:g}, + {limits.margin_wall_s:g} s), residual {limits.residual_n:g} N, "
                  f"load {args.load}, jobs {args.jobs}; work dir {workdir}")
    load = BusyLoad(args.load) if args.load else None
    started = time.perf_counter_ns()

    def progress(res) -> None:
        mark = "[green]ok[/]" if res.ok else "[red]MISS[/]"
        console.print(f"  {res.cell:<28} {mark} {res.wall_s:5.1f} s  " + ("; ".join(res.problems) or ""))

    try:
        results = run_cells(cells, runner, args.jobs, progress)
    finally:
        if load is not None:
            load.stop()
    wall = (time.perf_counter_ns() - started) / 1e9
    rows = [result_dict(r) for r in results]
    misses = [r for r in rows if not r["ok"]]
    table = Table(title=f"link-fault matrix — {len(rows)} cells, {len(misses)} missed the goal, {wall:.0f} s, "
                        f"load {args.load}")
    for h in HEAD:
        table.add_column(h, overflow="fold", no_wrap=h in ("cell",))
    for r in rows:
        style = "green" if r["ok"] else "red"
        table.add_row(*[f"[{style}]{r['cell']}[/]"] + _row(r)[1:])
    console.print(table)
    for r in misses:
        console.print(f"[red]MISS {r['cell']}: {'; '.join(r['problems'])}[/]")
    summary = (f"{len(rows) - len(misses)}/{len(rows)} cells met the goal; false PASS in "
               f"{sum(1 for r in rows if r['false_pass'])}; record damaged or lines lost in "
               f"{sum(1 for r in rows if r['record'] and not r['record'].get('intact'))}; wall {wall:.0f} s")
    console.print(summary)
    if args.save:
        out = Path(args.save)
        out.parent.mkdir(parents=True, exist_ok=True)
        command = "rig faults links" + (f" --only {args.only}" if args.only else "") + (
            f" --load {args.load}" if args.load else "") + (f" --jobs {args.jobs}" if args.jobs != 1 else "")
        meta = {"command": command, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "wall_s": wall,
                "load": args.load, "jobs": args.jobs, "bound_wall_s": limits.bound_wall_s,
                "limits": limits.__dict__, "cells": rows}
        out.with_suffix(".json").write_text(json.dumps(meta, indent=1))
        lines = [LINKS_DOC, "## Latest results", "",
                 f"`{command}` on {meta['date']}, this 2-core machine shared with other work, time scale "
                 f"{limits.time_scale:g}: bound {limits.bound_wall_s:.2f} s wall, residual {limits.residual_n:g} N. "
                 f"{summary}.", "",
                 "| " + " | ".join(HEAD) + " |", "|---" * len(HEAD) + "|"]
        for r in rows:
            cells_md = _row(r)
            cells_md[0] = f"{r['cell']}" if r["ok"] else f"**{r['cell']} MISS**"
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells_md) + " |")
        if misses:
            lines += ["", "### Cells that missed the goal", ""]
            lines += [f"- **{r['cell']}**: {'; '.join(r['problems'])}" for r in misses]
        out.with_suffix(".md").write_text("\n".join(lines) + "\n")
        console.print(f"saved {out.with_suffix('.md')} and {out.with_suffix('.json')}")
    return 0 if not misses else 1
