"""The compliance report of a run: `RUN/report/report.html` (self-contained: CSS inline,
plots as data: URIs) and `RUN/report/report.pdf` (the same HTML rendered by WeasyPrint),
rendered from the run directory alone (`record.jsonl` and `series/*.csv`).

Order of writing, and what the manifest covers:
1. if `RUN/MANIFEST.sha256` exists (a report was rendered before), the run's files
   outside the report folder are checked against it first; a run whose files changed
   since is refused (re-rendering must not re-seal edited evidence);
2. the SHA-256 of every file of the run (outside the report folder) is computed and
   listed in the report's appendix, so the report names the exact data it shows;
3. report.html and report.pdf are written;
4. `RUN/MANIFEST.sha256` is (re)written over every file under RUN except itself (and
   its signature) — the record, the series and the report inside RUN. `rig verify RUN`
   recomputes it;
5. with a signing key (the lab config's signing.private_key), the manifest is signed:
   `RUN/MANIFEST.sha256.sig` (reports/signing.py). Without one, a signature left from
   an earlier rendering is removed, since it no longer matches the new manifest.

A report written elsewhere (`--out DIR` outside RUN) is not covered by the manifest.
"""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

import jinja2
from markupsafe import Markup, escape

from reports import plots
from reports.manifest import ManifestError, hash_files, run_files, verify_manifest, write_manifest
from reports.rundir import (MANIFEST_NAME, NOT_APPLICABLE, RECORD_NAME, REPORT_DIR, SIGNATURE_NAME, U_DIGITS, Event,
                            RunStart, closeness, limit_text, number_text, parse_stamp, u_text, value_text,
                            write_atomic)
from reports.verdicts import ORDER, RunSummary, summarise, verdict_rows
from verification.spec import quantity_id

TEMPLATES = Path(__file__).resolve().parent / "templates"
MAX_PLOTS = 3  # force/time plots per requirement: its worst measurements that have a series


class ReportError(Exception):
    """The run directory cannot be reported (not a run, or changed since it was sealed)."""


# ---------------------------------------------------------------- formatting

def condition_text(value) -> str:
    """A measurement's condition as the report lists it: a measured number as every number
    of the report (4 significant digits), a count, a name or a flag as recorded."""
    if isinstance(value, float):
        return number_text(value)
    return str(value)


def conditions_of(m: dict, limit: int | None = None, leave_out: tuple[str, ...] = ()) -> dict[str, str]:
    """The plain conditions of a measurement (not the nested ones), shown."""
    shown = {k: condition_text(v) for k, v in (m.get("conditions") or {}).items()
             if not isinstance(v, (dict, list)) and k not in leave_out}
    return dict(list(shown.items())[:limit]) if limit else shown


def by_test_function(tests: list[str], unfinished=()) -> list[dict]:
    """The tests of a matrix row, one per test function: a test run once per parameter set
    (test_emergency_release[estop_coil], [...]) is one entry with how many sets ran, so a
    row never lists every parametrisation; a function run once keeps its full id."""
    groups: dict[str, list[str]] = {}
    for t in tests:
        groups.setdefault(t.split("[", 1)[0], []).append(t)
    out = []
    for function, ids in groups.items():
        single = len(ids) == 1
        out.append({"test": ids[0] if single else function, "count": len(ids),
                    "unfinished": sum(t in unfinished for t in ids)})
    return out


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _day(utc: str | None) -> str:
    try:
        at = parse_stamp(utc)
    except ValueError:
        return utc
    return "—" if at is None else at.strftime("%Y-%m-%d %H:%M:%S UTC")


# ---------------------------------------------------------------- context

def _is_summary(m: dict) -> bool:
    return bool((m.get("conditions") or {}).get("summary"))


def _grounds(m: dict) -> str:
    """What a FAIL stands on: the preconditions that held, and what was measured — so a
    reader can tell a primary finding from a consequence of another one."""
    held = [f"{p['what']} ({p['observed']})" for p in m.get("preconditions") or [] if p.get("held")]
    measured = conditions_of(m, limit=10, leave_out=("summary",))
    text = ""
    if held:
        text += ". Preconditions held: " + "; ".join(held)
    if measured:
        text += ". Measured under: " + ", ".join(f"{k} = {v}" for k, v in measured.items())
    return text


def _trial_key(m: dict) -> tuple | None:
    """(test, trigger, trial) of a measurement that is one requirement of a repeated trial."""
    c = m.get("conditions") or {}
    if _is_summary(m) or "trial" not in c or "trigger" not in c:
        return None
    return m.get("test"), c["trigger"], c["trial"]


def _trial_table(measurements: list[dict], req_order: list[str]) -> dict | None:
    """One row per trial with every requirement it measured: the repeated trials (each
    emergency release is judged on five requirements) read across, not five times down.
    Each cell keeps the measurement's value, U, verdict and a TUR < 4 flag."""
    rows: dict[tuple, dict] = {}
    limits: dict[str, str] = {}
    reasons: dict[str, int] = {}  # why a cell is N/A -> its note number
    for m in measurements:
        key = _trial_key(m)
        if key is None:
            continue
        c = m.get("conditions") or {}
        row = rows.setdefault(key, {"trigger": c["trigger"], "trial": c["trial"], "phase": c.get("phase", "—"),
                                    "force": c.get("force_n"), "f0": c.get("force_at_trigger_n"), "cells": {}})
        rid = quantity_id(m["requirement"], m.get("quantity"))
        v = m.get("value")
        note = None
        if m["verdict"] == NOT_APPLICABLE:
            reason = m.get("not_applicable") or "a precondition did not hold"
            note = reasons.setdefault(reason, len(reasons) + 1)
            text = NOT_APPLICABLE
        elif m.get("decision_rule") != "boolean" and isinstance(v, (int, float)):
            text = f"{number_text(v)} {u_text(m)}"
        else:
            text = value_text(m)
        row["cells"][rid] = {"text": text, "verdict": m["verdict"], "tur_below_4": m.get("tur_below_4"), "note": note}
        limits.setdefault(rid, limit_text(m))
    if not rows:
        return None
    columns = [r for r in req_order if r in limits]
    return {"columns": [{"id": r, "limit": limits[r]} for r in columns], "rows": list(rows.values()),
            "notes": [{"n": n, "reason": reason} for reason, n in reasons.items()]}


def _instruments(start: RunStart) -> list[dict]:
    gauge, cal = start.gauge, start.gauge.calibration
    return [{
        "role": "reference force gauge (all force and time evidence)",
        "model": gauge.model or "—",
        "serial": gauge.serial or "—",
        "certificate": cal.certificate or "—",
        "date": cal.date or "—",
        "due": cal.due or "—",
        "uncertainty": (f"± {number_text(cal.expanded_uncertainty_n, 'N', U_DIGITS)} "
                        f"(k={number_text(2 if cal.coverage_factor is None else cal.coverage_factor)})"
                        if cal.expanded_uncertainty_n is not None else "—"),
        "resolution": number_text(gauge.resolution_n, "N") if gauge.resolution_n is not None else "—",
        "status": "EXPIRED at the run (overridden with --allow-expired-calibration)" if cal.expired else "valid at the run",
        "expired": cal.expired,
    }]


def _unfinished_tests(events: list[dict]) -> list[str]:
    started = [e["test"] for e in events if e["event"] == Event.TEST_START]
    ended = {e["test"] for e in events if e["event"] == Event.TEST_END}
    return [t for t in dict.fromkeys(started) if t not in ended]


def _series_for(ms: list[dict]) -> dict[tuple, list[str]]:
    """(test, name) → the series of that trial, in record order: the trial of ER-NORISE is
    plotted from its ER-HALF sibling's series, a stop's travel from its stop-time's angle."""
    out: dict[tuple, list[str]] = {}
    for m in ms:
        if m.get("series"):
            out.setdefault((m.get("test"), m.get("name")), [])
            if m["series"] not in out[(m.get("test"), m.get("name"))]:
                out[(m.get("test"), m.get("name"))].append(m["series"])
    return out


def _plotted_series(run_dir: Path, m: dict, trial: list[str]) -> tuple[str | None, list[str]]:
    """The series a measurement is drawn on, and the trial's series of other quantities to
    draw below it: its own series, else the trial's first whose column is in the
    measurement's unit (a force rise on the force, a travel on the angle), else the first."""
    own = m.get("series")
    if not trial and not own:
        return None, []
    columns = {rel: plots.value_column(plots.series_header(run_dir, rel)) for rel in trial}
    if own:
        primary = own
    else:
        primary = next((rel for rel in trial if plots.column_unit(columns[rel]) == (m.get("unit") or None)), trial[0])
    column = columns.get(primary) or plots.value_column(plots.series_header(run_dir, primary))
    others = [rel for rel in trial if rel != primary and columns[rel] in plots.COLUMNS and columns[rel] != column]
    return primary, others


def _operator_steps(events: list[dict]) -> list[dict]:
    """Who was asked what and what they answered (fixtures/operator.py), in the order asked."""
    rows = []
    for e in events:
        if e["event"] != Event.OPERATOR_STEP:
            continue
        waited = e.get("waited_s")
        rows.append({
            "test": e.get("test") or "—", "requirements": ", ".join(e.get("requirements") or []) or "—",
            "step": e.get("step") or "—", "instruction": e.get("instruction") or "",
            "answer": e.get("answer") if e.get("answered") else f"{(e.get('outcome') or 'no answer').upper()}",
            "answered": bool(e.get("answered")), "operator": e.get("operator") or "—",
            "asked": _day(e.get("asked_utc")), "answered_at": _day(e.get("answered_utc")) if e.get("answered_utc") else "—",
            "waited": "—" if waited is None else f"{waited:.1f} s", "timeout": e.get("timeout_s"),
        })
    return rows


def build_context(run_dir: Path, summary: RunSummary, file_hashes: dict[str, str], max_plots: int = MAX_PLOTS) -> dict:
    start, events = summary.start, summary.events
    spec = start["specification"]
    reqs = {r["id"]: r for r in spec["requirements"]}
    measurements = [e for e in events if e["event"] == Event.MEASUREMENT]
    series_of = _series_for(measurements)
    residual = spec.get("residual_force_n")
    covering: dict[str, list[str]] = {}
    for e in events:
        if e["event"] == Event.TEST_START:
            for rid in e.get("requirements") or []:
                covering.setdefault(rid, [])
                if e["test"] not in covering[rid]:
                    covering[rid].append(e["test"])
    unfinished = _unfinished_tests(events)
    complete = summary.complete
    last_utc = events[-1].get("utc") if events else None

    matrix, sections = [], []
    for row in verdict_rows(summary.results):
        rid, title, r, requirement, key = row.id, row.title, row.tally, row.requirement.id, row.key
        req = reqs.get(requirement, {})
        if key is not None:  # a further quantity: its own text, unit and limit from `also:`
            req = {**req, **next((q for q in req.get("also") or [] if q.get("key") == key), {})}
        tests = sorted(r.tests) or covering.get(requirement, [])
        matrix.append({
            "id": rid, "title": title, "source": req.get("source", ""), "tests": by_test_function(tests, unfinished),
            "worst": value_text(r.worst), "limit": limit_text(r.worst, req), "u": u_text(r.worst),
            "verdict": r.verdict, "n": r.measurements, "tur_flags": r.tur_flags, "na": r.not_applicable,
        })
        own = [m for m in measurements if m.get("requirement") == requirement and m.get("quantity") == key]
        trials = [m for m in own if not _is_summary(m) and m["verdict"] != NOT_APPLICABLE] or \
            [m for m in own if m["verdict"] != NOT_APPLICABLE]  # judged measurements: a check that was N/A has no value
        listed = [m for m in own if _trial_key(m) is None]  # the trials' own rows are the trial table's
        stats = plots.statistics(trials) if trials else None
        images = []
        if trials:
            if plots.has_values_plot(trials):
                images.append({"plot": ("values_plot", rid, trials),
                               "caption": f"{rid}: every measured value against its limit"})
            ranked = sorted(
                (m for m in trials if m.get("decision_rule") != "boolean"
                 and (m.get("series") or series_of.get((m.get("test"), m.get("name"))))),
                key=lambda m: (ORDER[m["verdict"]], -closeness(m)))
            for m in ranked[:max_plots]:
                rel, others = _plotted_series(run_dir, m, series_of.get((m.get("test"), m.get("name")), []))
                if not (run_dir / rel).is_file():
                    images.append({"uri": None, "caption": f"{m['name']}: series {rel} is missing"})
                    continue
                others = [o for o in others if (run_dir / o).is_file()]
                # the test's other measurements of this quantity read on the same series (each move of a treatment)
                companions = [c for c in trials if c is not m and c.get("test") == m.get("test")
                              and not c.get("series") and (c.get("test"), c.get("name")) not in series_of]
                images.append({"plot": ("series_plot", run_dir, m, rel, residual, companions, others),
                               "caption": f"{m['name']} — {', '.join([rel, *others])}"})
        worst = r.worst
        sections.append({
            "id": rid, "title": title, "source": req.get("source", ""), "verdict": r.verdict,
            "quantity": req.get("quantity", ""), "spec_limit": limit_text(None, req),
            "decision_rule": req.get("decision_rule", "guard-banded"), "tests": tests,
            "stats": stats, "images": images,
            "worst": worst and {"name": worst.get("name"), "value": value_text(worst), "limit": limit_text(worst),
                                "u": u_text(worst), "tur": worst.get("tur"), "budget": worst.get("budget") or [],
                                "conditions": conditions_of(worst),
                                "note": worst.get("note")},
            "rows": [{"name": m.get("name"), "value": value_text(m), "limit": limit_text(m), "u": u_text(m),
                      "tur": m.get("tur"), "tur_below_4": m.get("tur_below_4"), "verdict": m["verdict"],
                      "summary": _is_summary(m), "not_applicable": m.get("not_applicable")} for m in listed],
            "in_trial_table": len(own) - len(listed),
            "not_applicable": {"count": r.not_applicable, "reasons": r.not_applicable_reasons},
        })

    pending = [img for s in sections for img in s["images"] if "plot" in img]
    for img, png in zip(pending, plots.render_all([img.pop("plot") for img in pending])):
        img["uri"] = _data_uri(png)

    # deviations and incomplete items
    deviations = []
    identity = summary.run_start
    calibration = identity.gauge.calibration
    if calibration.expired:
        deviations.append(("calibration", f"The reference gauge's calibration was expired at the run (due "
                                          f"{calibration.due}); the run was started with "
                                          "--allow-expired-calibration."))
    if not complete:
        if summary.end is None:
            deviations.append(("incomplete", f"The record has no run-end line: the run was cut (crash, kill or power "
                                             f"loss) after its last recorded event at {_day(last_utc)}."))
        else:
            deviations.append(("incomplete", f"The run ended abnormally (pytest exit status {summary.end.get('exitstatus')})."))
    for t in unfinished:
        deviations.append(("incomplete", f"Test started but not finished: {t}"))
    for d in summary.damage:  # skipped, never the end of the record: whatever the line held is missing
        deviations.append(("record damaged", f"record damaged at {d}: the line was skipped; a measurement it held is "
                                             "missing from this report, so the overall verdict cannot be PASS."))
    for t, outcome in summary.tests.items():
        if outcome not in ("passed", "skipped"):
            deviations.append(("test", f"Test {outcome} on its measurements' verdicts (above): {t}" if t in summary.judged
                                   else f"Test {outcome} before it could judge everything it verifies: {t}"))
    for r in summary.results:
        unmeasured = [q.id for q in r.quantities if q.verdict == "NOT RUN"]
        if r.verdict == "NOT RUN" and r.measurements > r.not_applicable and unmeasured:
            deviations.append(("not run", f"{r.id} ({r.title}): {', '.join(unmeasured)} has no measurement in this "
                                          "run; the requirement is not verified."))
        elif r.verdict == "NOT RUN":
            deviations.append(("not run", f"{r.id} ({r.title}): " + ("every check was not applicable (below)."
                                                                      if r.not_applicable else "no measurement in this run.")))
        elif r.verdict in ("FAIL", "INCONCLUSIVE"):
            deviations.append((r.verdict.lower(), f"{quantity_id(r.id, r.worst.get('quantity'))}: worst {value_text(r.worst)} vs {limit_text(r.worst)} "
                                                  f"(U {u_text(r.worst)}) — {r.worst.get('name')}"
                                                  + _grounds(r.worst)))
        if r.not_applicable:
            deviations.append(("not applicable", f"{r.id}: {r.not_applicable} check(s) not judged — "
                                                 + "; ".join(r.not_applicable_reasons[:3])
                                                 + (f" (and {len(r.not_applicable_reasons) - 3} more reasons)"
                                                    if len(r.not_applicable_reasons) > 3 else "")))
        if r.tur_flags:
            deviations.append(("TUR < 4", f"{r.id}: {r.tur_flags} measurement(s) with a test uncertainty ratio below 4."))
    operator_steps = _operator_steps(events)
    for row in operator_steps:
        if not row["answered"]:
            deviations.append(("operator", f"{row['test']}: step {row['step']} ({row['requirements']}) — "
                                           f"{row['answer'].lower()} after {row['waited']} (operator {row['operator']}); "
                                           "an unanswered step is not a pass."))
    for e in events:
        if e["event"] == Event.OPERATOR_NAME and not e.get("answered"):
            deviations.append(("operator", f"{_day(e.get('asked_utc'))}: nobody gave a name at the first operator "
                                           f"prompt within {e.get('timeout_s')} s."))
    for e in events:
        if e["event"] == Event.TRIAL_REPEATED:
            deviations.append(("repeated", f"{e.get('trigger')} trial {e.get('trial')} repeated: {e.get('reason')}"))
        elif e["event"] == Event.SAFE_STATE and e.get("problems"):
            deviations.append(("safe state", f"{_day(e.get('utc'))} ({e.get('reason')}): {'; '.join(map(str, e['problems']))}"))
    rig = identity.rig
    emulated = identity.emulation
    if emulated:
        deviations.append(("emulated", f"The table under test is emulated (seed {emulated.get('seed')}, faults "
                                        f"{', '.join(emulated.get('faults') or []) or 'none'}): not evidence for a real table."))
    software = identity.software
    if software.get("git_dirty"):
        deviations.append(("software", "The rig software had uncommitted changes (git_dirty)."))

    overall = summary.overall
    table = identity.table
    return {
        "run_dir": str(run_dir), "run_name": run_dir.name,
        "spec": spec, "spec_file": identity.spec_file,
        "rig": rig, "rig_file": identity.rig_file, "emulated": emulated,
        "table": table, "table_model": identity.table.model or identity.table.kind or "—",
        "firmware": identity.table.firmware_text or "—",
        "operator": identity.operator or "—", "software": software,
        "profile": identity.profile,  # absent in records from before run profiles
        "started": _day(identity.utc),
        "ended": _day(summary.end.get("utc")) if summary.end else f"— (cut; last event {_day(last_utc)})",
        "generated": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "overall": overall, "complete": complete, "unfinished": unfinished, "damage": summary.damage_text,
        "calibration_expired": calibration.expired,
        "instruments": _instruments(identity),
        "matrix": matrix, "sections": sections, "deviations": deviations, "operator_steps": operator_steps,
        "tests": [{"test": t, "outcome": o} for t, o in summary.tests.items()]
                 + [{"test": t, "outcome": "not finished"} for t in unfinished],
        # requirements judged, not the verdict table's rows (ER-NORISE.rise is a quantity of ER-NORISE)
        "n_requirements": len(summary.results),
        "counts": {v: sum(1 for r in summary.results if r.verdict == v) for v in ("PASS", "FAIL", "INCONCLUSIVE", "NOT RUN")},
        "files": file_hashes, "manifest_name": MANIFEST_NAME,
        "trial_table": _trial_table(measurements, [row.id for row in verdict_rows(summary.results)]),
        "n_measurements": len(measurements),
        "history": _history(run_dir),
    }


def _history(run_dir: Path) -> dict | None:
    """The run against its table's history, as `rig run` reviewed it (history.json), or
    None when the run was not recorded in a results database."""
    from reports.history.review import read_history

    h = read_history(run_dir)
    if h is None:
        return None
    rows = []
    for r in h.get("requirements", []):
        unit = r.get("unit") or ""
        mean = r.get("history_mean")
        rows.append({"id": r["requirement"], "runs": r["runs"], "value": number_text(r["value"], unit),
                     "u": "± " + number_text(r["uncertainty"], unit, U_DIGITS),
                     "mean": "—" if mean is None else number_text(mean, unit),
                     "verdict": r.get("verdict"), "warnings": " + ".join(r.get("warnings") or []) or "—"})
    return {"error": h.get("error"), "database": h.get("database"), "serial": h.get("serial"),
            "runs": h.get("runs_of_table"), "horizon": h.get("horizon_runs"), "rows": rows,
            "warnings": h.get("warnings", [])}


# ---------------------------------------------------------------- rendering

def _css_string(value) -> Markup:
    """Text inside a CSS string in <style> (raw text: HTML escapes would show literally)."""
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("<", "\\3C ").replace("\n", " ")
    return Markup(text)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             autoescape=jinja2.select_autoescape(["html", "j2"]),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["g4"] = lambda v: "—" if v is None else number_text(v)
    env.filters["css"] = _css_string
    env.filters["nodeid"] = lambda t: Markup(str(escape(t)).replace("::", "::<wbr>").replace("/", "/<wbr>").replace("[", "<wbr>["))
    return env


def render_html(context: dict) -> str:
    return _environment().get_template("report.html.j2").render(**context)


def render_report(run_dir, out_dir=None, max_plots: int = MAX_PLOTS, pdf: bool = True,
                  signing_key: Path | None = None) -> list[Path]:
    """Write report.html, report.pdf, RUN/MANIFEST.sha256 and, with `signing_key` (a PEM
    Ed25519 private key), RUN/MANIFEST.sha256.sig; returns the paths written."""
    run_dir = Path(run_dir).resolve()
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir}: no such run directory")
    if not (run_dir / RECORD_NAME).is_file():
        raise ReportError(f"{run_dir}: no {RECORD_NAME}: not a traction-rig run directory")
    out = Path(out_dir).resolve() if out_dir else run_dir / REPORT_DIR
    try:
        inside = out.relative_to(run_dir).as_posix() + "/"
    except ValueError:
        inside = None
    if signing_key is not None:  # a bad key file must fail before anything is re-written
        from reports.signing import load_private_key

        load_private_key(signing_key)
    if (run_dir / MANIFEST_NAME).is_file():
        try:
            problems = verify_manifest(run_dir, ignore_prefix=inside)
        except ManifestError as exc:
            raise ReportError(str(exc)) from None
        if problems:
            raise ReportError(f"{run_dir}: files changed since the run was sealed, refusing to re-seal: "
                              + "; ".join(problems))
    try:
        summary = summarise(run_dir)
    except (ValueError, KeyError) as exc:
        raise ReportError(f"{run_dir}: cannot read the run record: {exc}") from None
    own = [p for p in run_files(run_dir) if not (inside and p.startswith(inside))]
    context = build_context(run_dir, summary, hash_files(run_dir, own), max_plots=max_plots)
    html = render_html(context)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    html_path = out / "report.html"
    write_atomic(html_path, html.encode("utf-8"))
    written.append(html_path)
    if pdf:
        import weasyprint

        pdf_path = out / "report.pdf"
        data = weasyprint.HTML(string=html, base_url=str(out)).write_pdf()
        write_atomic(pdf_path, data)
        written.append(pdf_path)
    written.append(write_manifest(run_dir))
    if signing_key is not None:
        from reports.signing import sign_manifest

        written.append(sign_manifest(run_dir, signing_key))
    else:
        # A signature from an earlier rendering signed the old manifest: it can no longer
        # match the one just written, and left in place it would make `rig verify` report
        # this honest re-rendering as "edited and re-sealed". The run is now unsigned.
        (run_dir / SIGNATURE_NAME).unlink(missing_ok=True)
    return written

