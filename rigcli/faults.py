"""`rig faults matrix`: the suites against the nominal table and against every defect.

Each cell is the verdict of one requirement on one table. A defect must be caught
(FAIL) by at least one of the requirements it is mapped to; the nominal table must
pass every requirement on every seed (no FAIL, no INCONCLUSIVE). A defect that is not
caught is a defect of the suites. Runs `rig run` in parallel worker processes.
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

from reports.verdicts import summarise
from rigs.emulator.faults import CATALOGUE
from suites.spec import SPECS_DIR

ROOT = Path(__file__).resolve().parent.parent
SHORT = {"PASS": "P", "FAIL": "F", "INCONCLUSIVE": "I", "NOT RUN": "-"}


def _spec_copy(trials: int, workdir: Path) -> Path:
    data = yaml.safe_load((SPECS_DIR / "lumbar.yaml").read_text())
    data["plan"]["emergency"]["trials"] = trials
    path = workdir / f"lumbar-{trials}-trials.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _run_one(label: str, fault: str | None, seed: int, spec: Path, workdir: Path) -> dict:
    run_root = workdir / label
    cmd = [sys.executable, "-m", "rigcli", "run", "--no-report", "--run-dir", str(run_root),
           "--seed", str(seed), "--spec", str(spec)]
    if fault:
        cmd += ["--fault", fault]
    started = time.perf_counter_ns()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=1800)
    wall = (time.perf_counter_ns() - started) / 1e9
    runs = sorted(run_root.glob("*")) if run_root.exists() else []
    if not runs:
        return {"label": label, "fault": fault, "seed": seed, "exit": proc.returncode, "wall_s": wall,
                "verdicts": {}, "error": (proc.stderr or proc.stdout).strip().splitlines()[-1:]}
    summary = summarise(runs[-1])
    return {"label": label, "fault": fault, "seed": seed, "exit": proc.returncode, "wall_s": wall,
            "verdicts": {r.id: r.verdict for r in summary.results}, "run": str(runs[-1])}


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
    ok = True
    rows = []
    for res in results:
        fault = res["fault"]
        v = res["verdicts"]
        if fault is None:
            good = bool(v) and all(x == "PASS" for x in v.values())
            outcome = "all PASS" if good else "FALSE FAIL"
        else:
            mapped = CATALOGUE[fault].requirements
            good = any(v.get(r) == "FAIL" for r in mapped)
            outcome = f"caught by {', '.join(r for r in mapped if v.get(r) == 'FAIL')}" if good else "NOT CAUGHT"
        ok &= good
        cells = []
        for rid in req_ids:
            mark = SHORT.get(v.get(rid, "NOT RUN"), "?")
            if fault and rid in CATALOGUE[fault].requirements:
                mark = f"[bold]{mark}*[/]"
            cells.append(mark)
        table.add_row(res["label"], *cells, f"[{'green' if good else 'red'}]{outcome}[/]")
        rows.append({**res, "outcome": outcome, "good": good})
    console.print(table)
    console.print("P pass, F fail, I inconclusive, - not run; * = a requirement the defect is mapped to")
    nominal = [r for r in rows if r["fault"] is None]
    console.print(f"nominal: {sum(r['good'] for r in nominal)}/{len(nominal)} seeds all PASS "
                  f"(false-fail rate {sum(not r['good'] for r in nominal)}/{len(nominal)}); "
                  f"defects caught: {sum(r['good'] for r in rows if r['fault'])}/{len(rows) - len(nominal)}; "
                  f"wall {wall:.0f} s with {args.jobs} workers")
    if args.save:
        out = Path(args.save)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".json").write_text(json.dumps({"trials": args.trials, "wall_s": wall, "jobs": args.jobs,
                                                        "requirements": req_ids, "runs": rows}, indent=1))
        lines = ["# Fault detection matrix\n",
                 f"`rig faults matrix --seeds {args.seeds} --trials {args.trials} --jobs {args.jobs}` — "
                 f"{len(rows)} runs in {wall:.0f} s on this 2-core machine (time scale 10). "
                 "P pass, F fail, I inconclusive, - not run; **bold** = a requirement the defect is mapped to.\n",
                 "| table | " + " | ".join(req_ids) + " | result |", "|---" * (len(req_ids) + 2) + "|"]
        for r in rows:
            mapped = CATALOGUE[r["fault"]].requirements if r["fault"] else ()
            cells = [(f"**{SHORT.get(r['verdicts'].get(x, 'NOT RUN'))}**" if x in mapped
                      else SHORT.get(r["verdicts"].get(x, "NOT RUN"))) for x in req_ids]
            lines.append(f"| {r['label']} | " + " | ".join(cells) + f" | {r['outcome']} |")
        out.with_suffix(".md").write_text("\n".join(lines) + "\n")
        console.print(f"saved {out.with_suffix('.md')} and {out.with_suffix('.json')}")
    return 0 if ok else 1
