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
from rigs.emulator.faults import CATALOGUE
from suites.spec import SPECS_DIR

ROOT = Path(__file__).resolve().parent.parent
SHORT = {"PASS": "P", "FAIL": "F", "INCONCLUSIVE": "I", "NOT RUN": "-"}


def covers(ids, row: str) -> bool:
    """Whether a defect's mapping (or its documented collateral) names this verdict row: a
    requirement names all its quantities (ER-NORISE: ER-NORISE and ER-NORISE.rise), a
    quantity id only itself."""
    return row in ids or row.partition(".")[0] in ids


def collateral(fault: str, verdicts: dict) -> tuple[list[str], list[str]]:
    """(documented, new) collateral FAILs of a defect's run."""
    entry = CATALOGUE[fault]
    others = [r for r, v in verdicts.items() if v == "FAIL" and not covers(entry.requirements, r)]
    return [r for r in others if covers(entry.collateral, r)], [r for r in others if not covers(entry.collateral, r)]


def _spec_copy(trials: int, workdir: Path) -> Path:
    data = yaml.safe_load((SPECS_DIR / "lumbar.yaml").read_text())
    data["plan"]["emergency"]["trials"] = trials
    path = workdir / f"lumbar-{trials}-trials.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _run_one(label: str, fault: str | None, seed: int, spec: Path, workdir: Path) -> dict:
    run_root = workdir / label
    # --no-history: runs of defects made on purpose stay out of any results database
    cmd = [sys.executable, "-m", "rigcli", "run", "--no-report", "--no-history", "--run-dir", str(run_root),
           "--seed", str(seed), "--spec", str(spec)]
    if fault:
        cmd += ["--fault", fault]
    started = time.perf_counter_ns()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=1800)
    wall = (time.perf_counter_ns() - started) / 1e9
    runs = list(run_dirs(run_root))
    if not runs:
        return {"label": label, "fault": fault, "seed": seed, "exit": proc.returncode, "wall_s": wall,
                "verdicts": {}, "error": (proc.stderr or proc.stdout).strip().splitlines()[-1:]}
    summary = summarise(runs[-1])
    return {"label": label, "fault": fault, "seed": seed, "exit": proc.returncode, "wall_s": wall,
            "verdicts": {row.id: row.tally.verdict for row in verdict_rows(summary.results)}, "run": str(runs[-1])}


def run_matrix(args) -> int:
    console = Console(width=max(Console().width, 170))  # 18 requirement columns
    workdir = Path(args.work_dir or tempfile.mkdtemp(prefix="fault-matrix-"))
    workdir.mkdir(parents=True, exist_ok=True)
    spec = _spec_copy(args.trials, workdir)
    faults = [f.strip() for f in args.only.split(",")] if args.only else sorted(CATALOGUE)
    unknown = [f for f in faults if f not in CATALOGUE]
    if unknown:
        console.print(f"rig: unknown fault {unknown[0]}; known: {', '.join(sorted(CATALOGUE))}")
        return 2
    jobs = [(f"nominal-seed{s}", None, s) for s in range(1, args.seeds + 1)]
    jobs += [(f"fault-{f}", f, 1) for f in faults]
    started = time.perf_counter_ns()
    results = []
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(_run_one, label, fault, seed, spec, workdir) for label, fault, seed in jobs]
        for fut in futures:
            res = fut.result()
            results.append(res)
            console.print(f"  {res['label']:<34} {res['wall_s']:6.1f} s  exit {res['exit']}")
    wall = (time.perf_counter_ns() - started) / 1e9
    req_ids = next((list(r["verdicts"]) for r in results if r["verdicts"]), [])
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
            mapped = CATALOGUE[fault].requirements
            documented, new = collateral(fault, v)
            by = [r for r, x in v.items() if x == "FAIL" and covers(mapped, r)]
            caught = bool(by)
            good = caught and not new
            outcome = f"caught by {', '.join(by)}" if caught else "NOT CAUGHT"
        ok &= good
        cells = []
        for rid in req_ids:
            mark = SHORT.get(v.get(rid, "NOT RUN"), "?")
            if fault and covers(CATALOGUE[fault].requirements, rid):
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
    nominal = [r for r in rows if r["fault"] is None]
    console.print(f"nominal: {sum(r['good'] for r in nominal)}/{len(nominal)} seeds all PASS "
                  f"(false-fail rate {sum(not r['good'] for r in nominal)}/{len(nominal)}); "
                  f"defects caught: {sum(r['caught'] for r in rows if r['fault'])}/{len(rows) - len(nominal)}; "
                  f"new collateral FAILs: {new_total}; "
                  f"wall {wall:.0f} s with {args.jobs} workers")
    if args.save:
        out = Path(args.save)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".json").write_text(json.dumps({"trials": args.trials, "wall_s": wall, "jobs": args.jobs,
                                                        "requirements": req_ids, "runs": rows}, indent=1))
        lines = ["# Fault detection matrix\n",
                 f"`rig faults matrix --seeds {args.seeds} --trials {args.trials} --jobs {args.jobs}` — "
                 f"{len(rows)} runs in {wall:.0f} s on this 2-core machine (time scale 10). "
                 "P pass, F fail, I inconclusive, - not run; **bold** = a requirement the defect is mapped to; "
                 "F° = a collateral FAIL, justified below; F! = a NEW collateral FAIL, not justified.\n",
                 "| table | " + " | ".join(req_ids) + " | result | collateral FAIL |", "|---" * (len(req_ids) + 3) + "|"]
        for r in rows:
            mapped = CATALOGUE[r["fault"]].requirements if r["fault"] else ()

            def cell(x):
                mark = SHORT.get(r["verdicts"].get(x, "NOT RUN"))
                if covers(mapped, x):
                    return f"**{mark}**"
                return mark + ("!" if x in r["new_collateral"] else "°" if x in r["collateral"] else "")
            coll = ", ".join(r["collateral"]) + (f" NEW: {', '.join(r['new_collateral'])}" if r["new_collateral"] else "")
            lines.append(f"| {r['label']} | " + " | ".join(cell(x) for x in req_ids) + f" | {r['outcome']} | {coll or '—'} |")
        lines += ["", "## Why each collateral FAIL is right", "",
                  "A defect that breaks more than the requirement it is mapped to makes those FAIL too; each such FAIL "
                  "below is a finding of its own, not a check blaming a requirement the table met "
                  "(`rigs/emulator/faults.py`, `collateral=`).", ""]
        for name in sorted(CATALOGUE):
            for rid, why in CATALOGUE[name].collateral.items():
                lines.append(f"- `{name}` → **{rid}**: {why}")
        out.with_suffix(".md").write_text("\n".join(lines) + "\n")
        console.print(f"saved {out.with_suffix('.md')} and {out.with_suffix('.json')}")
    return 0 if ok else 1
