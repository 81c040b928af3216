"""Does the framework's own timing hold, idle and under load? The main job again and again.

Runs, as a new user would (`rig run`, the embedded emulated lumbar table, report included):
  main      the default main job N times back to back (default 10)
  loaded    the main job N times while two busy-loop processes, one per core, at normal
            priority, load the machine (default 5)
  parallel  `rig run --workers 2` at time scale 10, N times (default 5)
  panel     `rig run --panel` N times (default 3) with a headless Chromium page following
            the whole run (Playwright, the system browser), operator steps off
            (`--no-operator`: nobody answers); its figures beside `main` are the panel's cost
  panel-loaded  the same under the two busy loops, beside `loaded`
  idle      an emulated table doing nothing at time scale 10 for 20 s
and prints, per scenario: how many runs PASS, wall time, the largest heartbeat gap and
beat round trip (table and wall seconds; the goal is a gap of at most a third of the
watchdog period), the emulator's CPU seconds per wall second, and its reply latency
(request read -> reply written, p99 and p99.9, Modbus and gauge). Every run's record
stays in benchmarks/out/stability/; the figures also go to a JSON file beside them.
Asserts nothing: these are figures, not tests.

    python benchmarks/bench_stability.py [--main 10] [--loaded 5] [--parallel 5] [--panel 3] [--only main,loaded,...]
                                         [--rig emulated-flexion-distraction]

The heartbeat process and the emulator ask for nice -10 where the OS permits it (root,
CAP_SYS_NICE); TRACTION_RIG_DEVICE_NICENESS=0 runs them at normal priority, as an
ordinary user gets them. Each scenario line says what they got.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reports.record import read_record  # noqa: E402
from rigs.config import load_rig  # noqa: E402
from rigs.rig import EmulatorProcess  # noqa: E402

OUT = ROOT / "benchmarks" / "out" / "stability"
WATCHDOG_S = 3.0  # the specification's watchdog period (table s); the goal is a gap <= 1/3 of it
IDLE_S = 20.0


def busy_loops(n: int) -> list[subprocess.Popen]:
    """n pure-Python busy loops at normal priority: one per core."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL)
            for _ in range(n)]


def rig_run(run_dir: Path, extra: list[str], page: bool = False) -> dict:
    started = time.perf_counter_ns()
    cmd = [sys.executable, "-m", "rigcli", "run", "--run-dir", str(run_dir), *extra]
    if page:
        code, stdout, seen = run_with_page(cmd)
    else:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        code, stdout, seen = proc.returncode, proc.stdout, None
    wall = (time.perf_counter_ns() - started) / 1e9
    verdicts = re.findall(r"^overall: (\w+)", stdout, re.MULTILINE)
    problems = [line.strip() for line in stdout.splitlines()
                if re.search(r"│ (FAIL|INCONCLUSIVE|NOT RUN)", line) or "did not complete" in line]
    tables = [table_figures(d) for d in sorted(p for p in run_dir.iterdir() if p.is_dir())]
    return {"wall_s": wall, "exit": code, "verdicts": verdicts, "problems": problems, "tables": tables, "page": seen,
            "passed": code == 0 and bool(verdicts) and all(v == "PASS" for v in verdicts)}


def run_with_page(cmd: list[str]) -> tuple[int, str, dict]:
    """`rig run --panel` with a headless Chromium page open on it from its URL to its end:
    what a bench with the panel on a screen costs. Returns what the page received too."""
    from playwright.sync_api import sync_playwright

    from reports.panel.chromium import ARGS, find

    browser_path = find()
    if browser_path is None:
        raise SystemExit("bench_stability: the panel scenarios need Chromium (apt-get install chromium)")
    proc = subprocess.Popen([*cmd[:4], "--panel", "--panel-port", "0", *cmd[4:], "--", "--no-operator"], cwd=ROOT,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    url = None
    for line in proc.stdout:  # until the panel serves
        lines.append(line)
        found = re.match(r"panel: (http://\S+/)\s*$", line)
        if found:
            url = found.group(1)
            break
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    seen = {"opened": False, "trace_updates": 0, "verdict_rows": 0, "report_links": 0}
    if url is not None:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=browser_path, headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            seen["opened"] = True
            page.evaluate("""() => { window.traceUpdates = 0; const plot = document.querySelector('#force-plot');
                new MutationObserver(() => window.traceUpdates++).observe(plot, {attributes: true,
                    attributeFilter: ['data-newest']}); }""")
            while proc.poll() is None:
                page.wait_for_timeout(500)  # the page keeps drawing; this thread only waits
            seen["trace_updates"] = page.evaluate("() => window.traceUpdates")
            seen["verdict_rows"] = page.locator("#verdicts tbody tr").count()
            seen["report_links"] = page.locator("#report-links a").count()
            browser.close()
    proc.wait()
    reader.join(10)
    return proc.returncode, "".join(lines), seen


def table_figures(run_dir: Path) -> dict:
    """What one table's run record says about the framework's own timing."""
    events = read_record(run_dir)
    hb = next((e for e in events if e["event"] == "heartbeat"), {})
    emu = next((e for e in events if e["event"] == "emulator"), {})
    replies = emu.get("replies", {})
    ended = hb.get("max_gap_ended_utc")
    # the test that ran when the longest gap ended: the last one started before then
    during = [e["test"] for e in events if e["event"] == "test-start" and ended and e["utc"] <= ended]
    return {
        "run": run_dir.name,
        "gap_table_s": hb.get("max_gap_table_s"), "gap_wall_s": hb.get("max_gap_wall_s"),
        "gap_during": during[-1] if during else None,
        "rtt_table_s": hb.get("max_round_trip_table_s"), "rtt_wall_s": hb.get("max_round_trip_wall_s"),
        "beat_errors": hb.get("errors"), "beat_niceness": hb.get("niceness"), "emulator_niceness": emu.get("niceness"),
        "emulator_cpu_per_wall": emu.get("cpu_s_per_wall_s"),
        "modbus": replies.get("modbus"), "gauge": replies.get("gauge"),
    }


def worst(runs: list[dict], key: str, sub: str | None = None) -> float | None:
    values = []
    for run in runs:
        for table in run["tables"]:
            v = table.get(key)
            if sub is not None:
                v = (v or {}).get(sub)
            if v is not None:
                values.append(v)
    return max(values) if values else None


def summary_line(name: str, runs: list[dict]) -> str:
    n, ok = len(runs), sum(r["passed"] for r in runs)
    walls = [r["wall_s"] for r in runs]

    def f(v, fmt):
        return "—" if v is None else format(v, fmt)

    gap_t, gap_w = worst(runs, "gap_table_s"), worst(runs, "gap_wall_s")
    at = next((t.get("gap_during") for r in runs for t in r["tables"] if t.get("gap_wall_s") == gap_w), None)
    first = runs[0]["tables"][0] if runs and runs[0]["tables"] else {}
    nice = f"nice: heartbeat {first.get('beat_niceness')}, emulator {first.get('emulator_niceness')}"
    return (f"  {name:<12} {ok}/{n} PASS   wall {min(walls):.0f}–{max(walls):.0f} s (median {statistics.median(walls):.0f}); {nice}\n"
            f"            heartbeat: largest gap {f(gap_t, '.2f')} s table ({f(gap_w and gap_w * 1e3, '.0f')} ms wall), "
            f"goal <= {WATCHDOG_S / 3:.1f} s table{f' (during {at})' if at else ''}; largest beat round trip {f(worst(runs, 'rtt_table_s'), '.3f')} s table "
            f"({f(worst(runs, 'rtt_wall_s') and worst(runs, 'rtt_wall_s') * 1e3, '.1f')} ms wall); beat errors "
            f"{f(worst(runs, 'beat_errors'), 'd')}\n"
            f"            emulator: CPU {f(worst(runs, 'emulator_cpu_per_wall'), '.1%')} of a core during the suite; "
            f"replies p99 / p99.9 / max: Modbus {f(worst(runs, 'modbus', 'p99_us'), '.0f')} / "
            f"{f(worst(runs, 'modbus', 'p999_us'), '.0f')} / {f(worst(runs, 'modbus', 'max_us'), '.0f')} µs, "
            f"gauge {f(worst(runs, 'gauge', 'p99_us'), '.0f')} / {f(worst(runs, 'gauge', 'p999_us'), '.0f')} / "
            f"{f(worst(runs, 'gauge', 'max_us'), '.0f')} µs (worst run)")


def scenario(name: str, count: int, extra: list[str], stamp: str, load: int = 0, page: bool = False) -> list[dict]:
    runs = []
    loops = busy_loops(load) if load else []
    try:
        for i in range(count):
            run = rig_run(OUT / f"{stamp}-{name}-{i + 1:02d}", extra, page)
            runs.append(run)
            shown = run["page"]
            print(f"    {name} {i + 1}/{count}: {'PASS' if run['passed'] else 'NOT PASS'} "
                  f"({', '.join(run['verdicts']) or 'no verdict'}, exit {run['exit']}) in {run['wall_s']:.0f} s"
                  + (f"; the page drew the trace {shown['trace_updates']} times, {shown['verdict_rows']} verdict rows, "
                     f"{shown['report_links']} report links" if shown else "")
                  + "".join(f"\n        {p}" for p in run["problems"][:6]), flush=True)
    finally:
        for p in loops:
            p.kill()
            p.wait()
    return runs


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (and its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_emulator(time_scale: float = 10.0, kind: str = "lumbar") -> dict:
    """CPU of an emulated table left alone, from after it started (its start-up is not idling)."""
    emu = EmulatorProcess.start(kind, seed=1, time_scale=time_scale)
    try:
        time.sleep(1.0)
        pid, t0 = emu.process.pid, time.perf_counter_ns()
        cpu0 = cpu_seconds(pid)
        time.sleep(IDLE_S)
        cpu = cpu_seconds(pid) - cpu0
        wall = (time.perf_counter_ns() - t0) / 1e9
    finally:
        emu.stop()
    return {"time_scale": time_scale, "wall_s": wall, "cpu_s": cpu, "cpu_s_per_wall_s": cpu / wall}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--main", type=int, default=10, help="main jobs back to back (default 10)")
    parser.add_argument("--loaded", type=int, default=5, help="main jobs under two busy loops (default 5)")
    parser.add_argument("--parallel", type=int, default=5, help="rig run --workers 2 runs (default 5)")
    parser.add_argument("--panel", type=int, default=3, help="rig run --panel runs with a page open, idle and loaded "
                                                                "each (default 3)")
    parser.add_argument("--only", default="idle,main,loaded,parallel,panel,panel-loaded",
                        help="scenarios to run, comma-separated")
    parser.add_argument("--rig", help="an embedded emulated rig or rig file instead of the default lumbar one "
                                      "(e.g. emulated-flexion-distraction); `idle` serves its table kind")
    args = parser.parse_args()
    rig = ["--rig", args.rig] if args.rig else []
    OUT.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    only = set(args.only.split(","))
    cores = os.cpu_count() or 2
    print(f"framework timing on this machine ({cores} cores), {time.strftime('%Y-%m-%d')}"
          f"{f', rig {args.rig}' if args.rig else ''}; records in {OUT}")
    results: dict = {"date": time.strftime("%Y-%m-%d"), "cores": cores, "rig": args.rig or "emulated-lumbar"}
    if "idle" in only:
        idle = idle_emulator(kind=load_rig(args.rig).table.kind if args.rig else "lumbar")
        results["idle"] = idle
        print(f"  idle      emulated table at K = 10, nothing asked of it for {IDLE_S:.0f} s: "
              f"CPU {idle['cpu_s_per_wall_s']:.1%} of a core (goal <= 5 %)", flush=True)
    plan = [("main", args.main, [], 0, False), ("loaded", args.loaded, [], cores, False),
            ("parallel", args.parallel, ["--workers", "2"], 0, False), ("panel", args.panel, [], 0, True),
            ("panel-loaded", args.panel, [], cores, True)]
    for name, count, extra, load, page in plan:
        if name not in only or count <= 0:
            continue
        print(f"  {name}: {count} run(s){f' under {load} busy loops' if load else ''} ...", flush=True)
        runs = scenario(name, count, rig + extra, stamp, load, page)
        results[name] = runs
        print(summary_line(name, runs), flush=True)
    path = OUT / f"stability-{stamp}.json"
    path.write_text(json.dumps(results, indent=1))
    print(f"figures: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
