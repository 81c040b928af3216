"""The bench panel in a real browser: headless Chromium (the Debian package) driven by
Playwright, against `rig run --panel` on the emulated table, with no terminal at all.

The person at the bench is this test: it reads the questions in the page, types a name,
presses the answer buttons, and presses and releases the emulated table's e-stop button
through the stimulus module when the page asks for it. The run record, not the page, is
then asked who answered what and where. A screenshot of the page is kept as an artifact
(artifacts/panel/ or $TRACTION_RIG_ARTIFACTS). Every wait is bounded; nothing asserts on
timing. Without Chromium the test is skipped, unless TRACTION_RIG_REQUIRE_CHROMIUM=1
(CI sets it), where a missing browser is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from drivers.stimulus import StimulusModule
from drivers.tcm1 import StimulusCoil
from reports.panel.chromium import ARGS as CHROMIUM_ARGS
from reports.panel.chromium import find as chromium_find
from reports.record import RECORD_NAME, read_record

REPO = Path(__file__).resolve().parent.parent
TESTS = "test_static_force_accuracy or estop_button_pressed_by_hand"
OP_TEST = "suites/test_operator_checks.py::test_estop_button_pressed_by_hand"
NAME = "Dana Bench"
STEP_S = 120.0  # bound of every wait for the run (a loaded 2-core machine, the whole force-accuracy test)
PAGE_MS = 15_000  # bound of every wait for the page to show something


def chromium() -> str:
    path = chromium_find()
    required = os.environ.get("TRACTION_RIG_REQUIRE_CHROMIUM") == "1"
    why = None
    if path is None:
        why = "no Chromium (apt-get install chromium, or TRACTION_RIG_CHROMIUM=/path)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            why = "Playwright for Python is not installed (pip install -e '.[test]')"
    if why is None:
        return path
    if required:
        pytest.fail(f"TRACTION_RIG_REQUIRE_CHROMIUM=1 but {why}")
    pytest.skip(why)


def artifacts_dir() -> Path:
    d = Path(os.environ.get("TRACTION_RIG_ARTIFACTS") or REPO / "artifacts") / "panel"
    d.mkdir(parents=True, exist_ok=True)
    return d


class PanelRun:
    """`rig run --panel` on the emulated table, with stdin from /dev/null (no terminal)."""

    def __init__(self, tmp: Path) -> None:
        self.runs = tmp / "runs"
        self.log_path = tmp / "rig-run.log"
        env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST")}
        env["CI"] = "1"  # a CI machine: only the page can make the operator test run
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rigcli", "run", "--panel", "--panel-port", "0", "--panel-linger", "60",
             "--no-history", "--run-dir", str(self.runs), "-k", TESTS],
            cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True)
        self.lines: list[str] = []
        self._url = threading.Event()
        self.url = ""
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        with open(self.log_path, "w", encoding="utf-8") as log:
            for line in self.process.stdout:
                log.write(line)
                log.flush()
                self.lines.append(line)
                found = re.match(r"panel: (http://\S+/)\s*$", line)
                if found and not self.url:
                    self.url = found.group(1)
                    self._url.set()

    def output(self) -> str:
        return "".join(self.lines)[-6000:]

    def wait_url(self) -> str:
        assert self._url.wait(STEP_S), f"rig run --panel printed no 'panel: URL' line:\n{self.output()}"
        return self.url

    def run_dir(self) -> Path:
        deadline = time.monotonic() + STEP_S
        while True:
            found = list(self.runs.glob(f"*/{RECORD_NAME}"))
            if found:
                return found[0].parent
            assert self.process.poll() is None, f"rig run ended before its run directory existed:\n{self.output()}"
            assert time.monotonic() < deadline, "no run directory"
            time.sleep(0.1)

    def stimulus(self) -> StimulusModule:
        deadline = time.monotonic() + STEP_S
        while True:
            start = next((e for e in read_record(self.run_dir()) if e["event"] == "run-start"), None)
            if start is not None:
                ep = start["emulator"]["stimulus"]
                return StimulusModule(ep["host"], ep["port"], ep["unit_id"]).connect()
            assert time.monotonic() < deadline, "no run-start line"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait(10)
        self.reader.join(10)


def answer(page, step: str, value: str, run: PanelRun) -> None:
    """Wait until the page asks `step`, then answer it as NAME."""
    ask = wait_asked(page, step, run)
    page.locator(f'#question-buttons button[data-answer="{value}"]').click(timeout=PAGE_MS)
    try:  # the run's console took it: the step is in the page's list of closed steps
        page.locator(f'#answers li[data-ask="{ask}"]').wait_for(timeout=STEP_S * 1000)
    except Exception:
        raise AssertionError(f"the answer {value!r} to {step!r} was not recorded: "
                             f"{page.locator('#question-result').inner_text()}\n{run.output()}") from None


def wait_asked(page, step: str, run: PanelRun) -> str:
    """The ask id once the page shows `step` as an open question."""
    question = page.locator(f'#question[data-step="{step}"][data-state="open"]')
    try:
        question.wait_for(state="visible", timeout=STEP_S * 1000)
    except Exception:
        raise AssertionError(f"the page never asked {step!r}:\n{run.output()}") from None
    return question.get_attribute("data-ask")


@pytest.mark.timeout(600)
def test_the_panel_follows_a_run_and_takes_its_operator_steps(tmp_path):
    from playwright.sync_api import sync_playwright

    executable = chromium()
    run = PanelRun(tmp_path)
    stim = None
    try:
        url = run.wait_url()
        assert url.startswith("http://127.0.0.1:")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.set_default_timeout(PAGE_MS)
                # the force trace: what the page shows is kept from its first paint, so a short
                # force-accuracy test is seen on a fast machine as well as on a slow one
                page.add_init_script("""
                    window.seen = {newest: new Set(), gauge: new Set(), actual: new Set()};
                    document.addEventListener('DOMContentLoaded', () => {
                        const keep = () => {
                            const plot = document.querySelector('#force-plot');
                            if (plot && plot.dataset.newest) window.seen.newest.add(plot.dataset.newest);
                            window.seen.gauge.add(document.querySelector('#force-gauge').textContent);
                            window.seen.actual.add(document.querySelector('#force-actual').textContent);
                        };
                        new MutationObserver(keep).observe(document.body,
                            {childList: true, characterData: true, subtree: true, attributes: true});
                    });
                """)
                page.goto(url)
                page.locator('#connection[data-state="live"]').wait_for(timeout=PAGE_MS)
                try:  # the trace was appended to several times, and both forces were shown as numbers
                    page.wait_for_function("""() => window.seen.newest.size >= 3
                        && [...window.seen.gauge].some(t => / N$/.test(t))
                        && [...window.seen.actual].some(t => / N$/.test(t))""", timeout=STEP_S * 1000)
                except Exception:
                    seen = page.evaluate("() => Object.fromEntries(Object.entries(window.seen).map(([k, v]) => [k, [...v]]))")
                    raise AssertionError(f"the force trace on the page did not update: {seen}\n{run.output()}") from None
                assert page.locator("#force-plot canvas").count() >= 1
                page.locator('#verdicts tbody tr[data-requirement="FA-STATIC"]').wait_for(timeout=PAGE_MS)

                # a second page that is closed without a word (a closed browser tab): the panel
                # and the run go on, and the first page still gets every event
                other = browser.new_context()
                gone = other.new_page()
                gone.goto(url)
                gone.locator('#connection[data-state="live"]').wait_for(timeout=PAGE_MS)
                other.close()

                # the operator test, answered only in the page
                page.locator("#operator-name").fill(NAME)
                answer(page, "ready", "done", run)
                stim = run.stimulus()
                wait_asked(page, "press-estop", run)
                assert re.search(r"\d+ s left", page.locator("#question-deadline").inner_text())
                page.screenshot(path=str(artifacts_dir() / "operator-question.png"), full_page=True)
                stim.set(StimulusCoil.ESTOP_BUTTON, True)  # the person presses the red button
                answer(page, "cord-slack", "y", run)
                wait_asked(page, "release-estop", run)
                stim.set(StimulusCoil.ESTOP_BUTTON, False)  # twisted out, as the page asks
                answer(page, "release-estop", "done", run)

                # the end: overall verdict and the report links
                page.locator("#report-links a").first.wait_for(timeout=STEP_S * 1000)
                links = page.locator("#report-links a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
                assert any(h.endswith("report/report.html") for h in links), links
                assert page.locator("#overall").inner_text().strip() != ""
                page.screenshot(path=str(artifacts_dir() / "run-ended.png"), full_page=True)
                report = page.request.get(url.rstrip("/") + next(h for h in links if h.endswith("report.html")))
                assert report.status == 200 and "ER-HALF" in report.text()
            finally:
                browser.close()
        run.stop()
        record = read_record(run.run_dir())
        steps = [e for e in record if e["event"] == "operator-step" and e["test"] == OP_TEST]
        assert [s["step"] for s in steps][:4] == ["ready", "press-estop", "cord-slack", "release-estop"], steps
        for s in steps:
            if s["step"] == "press-estop":
                assert s["where"] == "table" and s["answered"], s  # the table's latch ended the action
            else:
                assert s["where"] == "page" and s["operator"] == NAME and s["answered"], s
                assert s["client"].startswith("127.0.0.1:"), s
        slack = next(s for s in steps if s["step"] == "cord-slack")
        assert slack["answer"] == "y"
        ends = {e["test"]: e["outcome"] for e in record if e["event"] == "test-end" and e.get("when") == "call"}
        assert ends.get(OP_TEST) == "passed", (ends, run.output())
        assert not [e for e in record if e["event"] == "operator-answer-refused"]
        assert "Traceback" not in "".join(run.lines), run.output()
    finally:
        if stim is not None:
            try:  # the run may have ended and taken the stimulus module with it
                stim.set(StimulusCoil.ESTOP_BUTTON, False)
            except Exception:  # noqa: BLE001
                pass
            stim.close()
        run.stop()
        if run.log_path.exists():
            shutil.copy(run.log_path, artifacts_dir() / "rig-run.log")
