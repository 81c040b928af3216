"""The compliance report and the run's SHA-256 manifest: rendered from the run directory
alone (synthetic runs written with RunRecord, fast), read back from the PDF's text; the
manifest names every edited, added or removed file; a cut run is reported incomplete.
One slow end-to-end test SIGKILLs a real run mid-suite and reports it."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pypdf import PdfReader

from reports.manifest import MANIFEST_NAME, verify_manifest
from reports.record import read_record, run_dirs
from reports.render import ReportError, render_report
from rigcli.main import main as rig_main
from verification.spec import load_spec
from tests.synthetic_run import TABLE_SERIAL, build_run

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENT_IDS = [r.id for r in load_spec("lumbar").requirements]
RUN_REQUIREMENTS = {"ER-NORISE", "ER-HALF", "ER-RESIDUAL", "ER-SNAP", "ER-LATCH", "FA-STATIC", "FA-CELL", "IL-OVERFORCE"}


def pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(path).pages)


def matrix_rows(html: str) -> dict[str, str]:
    """requirement id → the text of its row in the traceability matrix."""
    section = html.split('id="matrix"', 1)[1].split("</section>", 1)[0]
    rows = re.findall(r'<tr id="row-([A-Z-]+)">(.*?)</tr>', section, re.S)
    return {rid: re.sub(r"<[^>]+>", " ", body.replace("<wbr>", "")) for rid, body in rows}


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory):
    """A complete synthetic run with one failing requirement, reported once for the module."""
    run = build_run(tmp_path_factory.mktemp("runs") / "run-fail", fail=True)
    written = render_report(run, max_plots=2)
    return run, written


def test_report_files_written_and_sealed(failed_run):
    run, written = failed_run
    assert [p.name for p in written] == ["report.html", "report.pdf", MANIFEST_NAME]
    assert all(p.is_file() and p.stat().st_size > 0 for p in written)
    assert written[0].parent == run / "report"
    assert verify_manifest(run) == []
    listed = [line.split("  ", 1)[1] for line in (run / MANIFEST_NAME).read_text().splitlines()]
    assert "record.jsonl" in listed and "report/report.pdf" in listed and "report/report.html" in listed
    assert sum(name.startswith("series/") for name in listed) == 6


def test_html_is_self_contained_with_every_requirement_in_the_matrix(failed_run):
    run, _ = failed_run
    html = (run / "report" / "report.html").read_text(encoding="utf-8")
    assert "<img" in html and 'src="http' not in html and "<link" not in html and "<script" not in html
    assert all(src.startswith("data:image/png;base64,") for src in re.findall(r'<img src="([^"]+)"', html))
    rows = matrix_rows(html)
    assert list(rows) == REQUIREMENT_IDS  # every requirement of the specification, in its order
    for rid, text in rows.items():
        expected = ("FAIL" if rid == "ER-HALF" else "PASS") if rid in RUN_REQUIREMENTS else "NOT RUN"
        assert expected in text, (rid, text)
    assert "suites/test_emergency_release.py::" in rows["ER-HALF"]
    assert "YY 0697 cl. 4.3" in rows["FA-STATIC"]  # the source clause
    assert "≤ 0.5 s" in rows["ER-HALF"] and "0.626 s" in rows["ER-HALF"]  # limit, worst value


def test_pdf_text_has_matrix_serial_and_verdicts(failed_run):
    run, _ = failed_run
    text = pdf_text(run / "report" / "report.pdf")
    flat = " ".join(text.split())
    assert TABLE_SERIAL in flat
    assert "Overall verdict: FAIL" in flat
    matrix = flat.split("1. Traceability matrix", 1)[1].split("2. Instruments", 1)[0]
    for rid in REQUIREMENT_IDS:
        assert rid in matrix, rid
    assert matrix.count("NOT RUN") == len(REQUIREMENT_IDS) - len(RUN_REQUIREMENTS)
    assert "FAIL" in matrix and "PASS" in matrix
    # each requirement also has its own section, instruments and sign-off are there
    for heading in ("2. Instruments", "3. Deviations and incomplete items", "4. Operator steps", "5. History of this table", "6. Sign-off", "G-7781", "SYN-CAL-001",
                    "Tested by", "Approved by"):
        assert heading in flat, heading
    assert "RUN INCOMPLETE" not in flat


def test_verify_names_edited_added_and_removed_files(failed_run, tmp_path, capsys):
    run, _ = failed_run
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    assert rig_main(["verify", str(copy)]) == 0
    out = capsys.readouterr().out
    assert re.search(r": \d+ files verified", out)
    series = sorted((copy / "series").iterdir())
    with open(series[0], "a") as f:
        f.write("0,0\n")
    (copy / "x.txt").write_text("added")
    series[1].unlink()
    problems = verify_manifest(copy)
    assert problems == sorted(problems, key=lambda p: p.split(": ", 1)[1])
    assert f"edited: series/{series[0].name}" in problems
    assert f"removed: series/{series[1].name}" in problems
    assert "added: x.txt" in problems
    assert len(problems) == 3
    assert rig_main(["verify", str(copy)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert sorted(out) == sorted(problems)
    # the report refuses to re-seal edited evidence
    with pytest.raises(ReportError, match=f"edited: series/{series[0].name}"):
        render_report(copy, max_plots=0, pdf=False)


def test_verify_bad_paths(tmp_path, capsys):
    assert rig_main(["verify", str(tmp_path / "nope")]) == 2
    assert "no such run directory" in capsys.readouterr().err
    assert rig_main(["verify", str(tmp_path)]) == 1  # a directory without a manifest
    assert MANIFEST_NAME in capsys.readouterr().err
    assert rig_main(["report", str(tmp_path / "nope")]) == 2
    assert "no such run directory" in capsys.readouterr().err
    assert rig_main(["report", str(tmp_path)]) == 2
    assert "not a traction-rig run directory" in capsys.readouterr().err


def test_report_cli_prints_paths_and_rerender_reseals(tmp_path, capsys):
    run = build_run(tmp_path / "run")
    assert rig_main(["report", str(run), "--max-plots", "0"]) == 0
    paths = capsys.readouterr().out.split()
    assert [Path(p).name for p in paths] == ["report.html", "report.pdf", MANIFEST_NAME]
    render_report(run, max_plots=0, pdf=False)  # re-rendering the report is allowed and re-seals it
    assert verify_manifest(run) == []
    html = (run / "report" / "report.html").read_text(encoding="utf-8")
    assert "Overall verdict: INCONCLUSIVE" in html  # requirements NOT RUN: never PASS
    assert "RUN INCOMPLETE" not in html


def test_report_elsewhere_leaves_run_sealed(tmp_path):
    run = build_run(tmp_path / "run")
    written = render_report(run, out_dir=tmp_path / "out", max_plots=0, pdf=False)
    assert written[0] == tmp_path / "out" / "report.html"
    assert not (run / "report").exists()
    assert verify_manifest(run) == []


def test_expired_calibration_on_the_cover(tmp_path):
    run = build_run(tmp_path / "run", calibration_expired=True)
    render_report(run, max_plots=0)
    flat = " ".join(pdf_text(run / "report" / "report.pdf").split())
    cover = flat.split("1. Traceability matrix", 1)[0]
    assert "CALIBRATION EXPIRED" in cover and "2025-01-10" in cover
    assert "--allow-expired-calibration" in cover
    assert "EXPIRED at the run" in flat  # and the instruments table says so


def test_incomplete_run_reported_as_incomplete(tmp_path):
    run = build_run(tmp_path / "run", complete=False)
    assert read_record(run)[-1]["event"] == "test-start"  # the torn line is skipped
    render_report(run, max_plots=0)
    html = (run / "report" / "report.html").read_text(encoding="utf-8")
    flat = " ".join(pdf_text(run / "report" / "report.pdf").split())
    cover = flat.split("1. Traceability matrix", 1)[0]
    assert "RUN INCOMPLETE" in cover
    assert "Overall verdict: PASS" not in cover and "Overall verdict: INCONCLUSIVE" in cover
    assert "suites/test_ramps.py::test_ramp[slow]" in cover.replace(" ", "")
    assert "Test started but not finished" in flat
    # every measurement taken before the cut is in the report
    rows = matrix_rows(html)
    for rid in ("ER-HALF", "FA-STATIC", "IL-OVERFORCE"):
        assert "PASS" in rows[rid]
    assert "(not finished)" in rows["RA-RATE"]
    assert verify_manifest(run) == []


# ------------------------------------------------------------------ end to end

def _measurements(run_dir: Path, test_part: str) -> list[dict]:
    try:
        return [e for e in read_record(run_dir) if e["event"] == "measurement" and test_part in e.get("test", "")]
    except FileNotFoundError:
        return []


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sigkilled_run_is_reported_incomplete_with_its_measurements(tmp_path):
    """A real run against the emulated table, SIGKILLed once the ESTOP-coil trials have
    recorded a measurement: the report says incomplete and shows what was measured."""
    spec = tmp_path / "lumbar-short.yaml"
    spec.write_text((ROOT / "suites/specs/lumbar.yaml").read_text(encoding="utf-8").replace("trials: 20", "trials: 4"))
    runs = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "rigcli", "run", "--run-dir", str(runs), "--spec", str(spec),
                             "-k", "emergency and estop_coil"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    emulator_pid = None
    try:
        deadline = time.monotonic() + 240
        run_dir = None
        while time.monotonic() < deadline and proc.poll() is None:
            found = [p for p in runs.glob("*") if (p / "record.jsonl").is_file()] if runs.is_dir() else []
            if found:
                run_dir = found[0]
                if _measurements(run_dir, "estop_coil"):
                    break
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before it could be killed"
        assert run_dir is not None and _measurements(run_dir, "estop_coil"), "no measurement within the deadline"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if run_dir is not None:
            start = next((e for e in read_record(run_dir) if e["event"] == "run-start"), {})
            emulator_pid = (start.get("emulator") or {}).get("pid")
        if emulator_pid:  # the orphaned emulator: only if that pid is still an emulator
            try:
                cmdline = Path(f"/proc/{emulator_pid}/cmdline").read_bytes()
            except OSError:
                cmdline = b""
            if b"emulate" in cmdline:
                os.kill(emulator_pid, signal.SIGKILL)
    before = _measurements(run_dir, "estop_coil")
    events = read_record(run_dir)
    assert not any(e["event"] == "run-end" for e in events)
    assert rig_main(["report", str(run_dir), "--max-plots", "2"]) == 0
    assert verify_manifest(run_dir) == []
    flat = " ".join(pdf_text(run_dir / "report" / "report.pdf").split())
    cover = flat.split("1. Traceability matrix", 1)[0]
    assert "RUN INCOMPLETE" in cover and "Overall verdict: PASS" not in cover
    assert "test_emergency_release[estop_coil]" in cover.replace(" ", "")
    html = (run_dir / "report" / "report.html").read_text(encoding="utf-8")
    for m in before:  # every measurement taken before the kill is in the report
        assert m["name"] in html, m["name"]
        assert m["requirement"] in flat
    assert json.dumps(before[0]["name"])[1:-1] in html or before[0]["name"] in html


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.skipif(shutil.which("npx") is None, reason="the Allure 3 CLI comes from npm: Node.js (npx) is not installed")
def test_allure_single_file_report(tmp_path):
    """`rig report RUN --allure` with the real Allure 3 CLI, from a real short run."""
    runs = tmp_path / "runs"
    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-m", "rigcli", "run", "--run-dir", str(runs), "-k", "interlocks and limit"],
                   cwd=root, capture_output=True, timeout=300, stdin=subprocess.DEVNULL)
    run_dir = next(run_dirs(runs))
    proc = subprocess.run([sys.executable, "-m", "rigcli", "report", str(run_dir), "--allure"], cwd=root,
                          capture_output=True, text=True, timeout=500, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-2000:]
    index = run_dir / "report" / "allure" / "index.html"
    assert index.exists() and index.stat().st_size > 100_000
    verify = subprocess.run([sys.executable, "-m", "rigcli", "verify", str(run_dir)], cwd=root,
                            capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stdout
