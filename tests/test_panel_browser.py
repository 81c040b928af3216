"""The bench panel in a real browser: headless Chromium (the Debian package) driven by
Playwright, against `rig run --panel` on the emulated table, with no terminal at all.

The person at the bench is this test: it reads the questions in the page, types a name,
presses the answer buttons, and presses and releases the emulated table's e-stop button
through the stimulus module when the page asks for it. The run record, not the page, is
then asked who answered what and where. While the first question is open, a page of
another origin in the same browser (and the same browser context) tries to answer it and
to read the run — by form, by fetch, without and even with the run's key, and under a
rebound host name — and the panel must refuse every attempt (no answer of it reaches the
record). A screenshot of the page is kept as an artifact
(artifacts/panel/ or $TRACTION_RIG_ARTIFACTS). Every wait is bounded; nothing asserts on
timing. Without Chromium the test is skipped, unless TRACTION_RIG_REQUIRE_CHROMIUM=1
(CI sets it), where a missing browser is a failure.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import signal
import threading
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from drivers.stimulus import StimulusModule
from drivers.tcm1 import StimulusCoil
from reports.panel.chromium import ARGS as CHROMIUM_ARGS
from reports.panel.chromium import find as chromium_find
from reports.rundir import ANSWERS_NAME, Event
from tests.child_run import REPO, rig_run_argv

TESTS = "test_static_force_accuracy or estop_button_pressed_by_hand"
OP_TEST = "suites/test_operator_checks.py::test_estop_button_pressed_by_hand"
NAME = "Dana Bench"
FORGER = "Mallory Forge"
REBOUND = "rebind.test"  # a name the browser resolves to 127.0.0.1: a DNS-rebinding page
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
    """`rig run --panel` on the emulated table (tests/child_run.py), with stdin from
    /dev/null and no terminal."""

    def __init__(self, child_run) -> None:
        self.run = child_run(lambda runs: rig_run_argv("--panel", "--panel-port", "0", "--panel-linger", "60",
                                                       "--no-history", "--run-dir", str(runs), "-k", TESTS),
                             env={"CI": "1"},  # a CI machine: only the page can make the operator test run
                             wait_s=STEP_S, name="rig run --panel")

    def output(self) -> str:
        return self.run.tail()

    def wait_url(self) -> str:
        return self.run.wait_output(r"^panel: (http://\S+/)\s*$").group(1)

    def run_dir(self) -> Path:
        return self.run.wait_run_dir()

    def stimulus(self) -> StimulusModule:
        return self.run.stimulus()

    def stop(self) -> None:
        """SIGTERM to the run's process group: the panel lingers for its page otherwise."""
        self.run.end_group(signal.SIGTERM, 30.0)


FORGING_PAGE = """<!doctype html><html><head><title>a page of another origin</title></head><body>
<iframe name="sink1"></iframe><iframe name="sink2"></iframe>
<form id="with-key" method="POST" action="%(keyed)sanswer" enctype="text/plain" target="sink1">
<input name='%(form_name)s' value='"}'></form>
<form id="without-key" method="POST" action="%(root)sanswer" enctype="text/plain" target="sink2">
<input name='%(form_name)s' value='"}'></form>
<script>
window.results = {};
const body = %(body)s;
async function attempt(name, fn) {
  try { const r = await fn(); window.results[name] = typeof r === "string" ? "read: " + r.slice(0, 80)
                                                                          : `${r.type} ${r.status}`; }
  catch (e) { window.results[name] = "failed: " + e.message; }
}
(async () => {
  document.getElementById("with-key").submit();
  document.getElementById("without-key").submit();
  await attempt("post-json", () => fetch("%(keyed)sanswer", {method: "POST",
      headers: {"content-type": "application/json"}, body}));
  await attempt("post-text", () => fetch("%(keyed)sanswer", {method: "POST", mode: "no-cors",
      headers: {"content-type": "text/plain"}, body}));
  await attempt("post-without-key", () => fetch("%(root)sanswer", {method: "POST", mode: "no-cors", body}));
  await attempt("state", () => fetch("%(keyed)sstate").then((r) => r.text()));
  await attempt("state-no-cors", () => fetch("%(keyed)sstate", {mode: "no-cors"}));
  await attempt("state-without-key", () => fetch("%(root)sstate").then((r) => r.text()));
  await attempt("state-rebound", () => fetch("%(rebound)sstate").then((r) => r.text()));
  await new Promise((done) => {
    const es = new EventSource("%(keyed)sevents");
    es.onopen = () => { window.results.events = "open"; es.close(); done(); };
    es.onerror = () => { window.results.events = "failed"; es.close(); done(); };
  });
  await new Promise((r) => setTimeout(r, 500));  // the two forms' posts
  window.finished = true;
})();
</script></body></html>"""


class ForgingSite:
    """A web server on another ephemeral port: the page of another origin (a tab open in the
    operator's browser) that tries to answer the run's question and to read the run."""

    def __init__(self, page_html: str) -> None:
        body = page_html.encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 — the stdlib's name
                self.send_response(200)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def forge(context, url: str, ask: str) -> tuple[dict, list[tuple[str, str, int]]]:
    """Open the forging page in the operator's browser context while question `ask` is open:
    what its scripts could see, and every response the panel gave it (method, URL, status)."""
    parts = urlsplit(url)
    root = f"http://{parts.netloc}/"
    forged = {"run": 0, "ask": ask, "answer": "done", "operator": FORGER}
    text = json.dumps(forged)
    page_html = FORGING_PAGE % {
        "keyed": url, "root": root, "rebound": f"http://{REBOUND}:{parts.port}{parts.path}",
        "body": json.dumps(text), "form_name": text[:-1] + ',"x":"'}  # text/plain form: the body is JSON
    site = ForgingSite(page_html)
    seen: list[tuple[str, str, int]] = []
    try:
        evil = context.new_page()
        evil.on("response", lambda r: seen.append((r.request.method, r.url, r.status))
                if urlsplit(r.url).port == parts.port else None)
        evil.goto(site.url)
        evil.wait_for_function("() => window.finished === true", timeout=PAGE_MS)
        results = evil.evaluate("() => window.results")
        rebound = evil.goto(f"http://{REBOUND}:{parts.port}{parts.path}")  # the page itself, under a rebound name
        seen.append(("GET (top level)", rebound.url, rebound.status))
        evil.close()
    finally:
        site.close()
    return results, seen


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
def test_the_panel_follows_a_run_and_takes_its_operator_steps(child_run):
    from playwright.sync_api import sync_playwright

    executable = chromium()
    run = PanelRun(child_run)
    stim = None
    try:
        url = run.wait_url()
        assert url.startswith("http://127.0.0.1:")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=executable, headless=True,
                                         args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {REBOUND} 127.0.0.1"])
            try:
                context = browser.new_context(viewport={"width": 1400, "height": 1000})  # the forging page's too
                page = context.new_page()
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

                # the operator test, answered only in the page; first, while "ready" is open (a
                # "done" would make the table pull), a page of another origin tries to answer it
                page.locator("#operator-name").fill(NAME)
                ask = wait_asked(page, "ready", run)
                results, seen = forge(context, url, ask)
                key = urlsplit(url).path.split("/")[2]
                (artifacts_dir() / "forged-requests.json").write_text(json.dumps(  # the key is this run's only
                    {"scripts_saw": results, "panel_answered": [(m, u.replace(key, "KEY"), st) for m, u, st in seen]},
                    indent=1))
                assert results["post-json"].startswith("failed"), results  # its CORS preflight was refused
                for name in ("state", "state-without-key", "state-rebound", "events"):
                    assert results[name].startswith("failed"), (name, results)  # nothing of the run was read
                assert {s for _, _, s in seen} <= {401, 403, 421}, seen  # the panel refused each, not only CORS
                posts = [(m, u) for m, u, _ in seen if m in ("POST", "OPTIONS")]
                assert len(posts) >= 4, seen  # two forms, the no-cors posts, the JSON post's preflight
                assert any(u.endswith(f"/p/{urlsplit(url).path.split('/')[2]}/state") and s == 403
                           for _, u, s in seen), seen
                assert ("GET (top level)", f"http://{REBOUND}:{urlsplit(url).port}{urlsplit(url).path}", 421) in seen
                answers_file = run.run_dir() / ANSWERS_NAME
                assert not answers_file.exists() or FORGER not in answers_file.read_text(), answers_file.read_text()
                assert page.locator(f'#question[data-ask="{ask}"][data-state="open"]').count() == 1
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
                report = page.request.get(urljoin(url, next(h for h in links if h.endswith("report.html"))))
                assert report.status == 200 and "ER-HALF" in report.text()
            finally:
                browser.close()
        run.stop()
        record = run.run.record()
        steps = [e for e in record.of(Event.OPERATOR_STEP) if e["test"] == OP_TEST]
        assert [s["step"] for s in steps][:4] == ["ready", "press-estop", "cord-slack", "release-estop"], steps
        for s in steps:
            if s["step"] == "press-estop":
                assert s["where"] == "table" and s["answered"], s  # the table's latch ended the action
            else:
                assert s["where"] == "page" and s["operator"] == NAME and s["answered"], s
                assert s["client"].startswith("127.0.0.1:"), s
        slack = next(s for s in steps if s["step"] == "cord-slack")
        assert slack["answer"] == "y"
        ends = {e["test"]: e["outcome"] for e in record.of(Event.TEST_END) if e.get("when") == "call"}
        assert ends.get(OP_TEST) == "passed", (ends, run.output())
        assert not record.of(Event.OPERATOR_ANSWER_REFUSED)
        assert FORGER not in (run.run_dir() / ANSWERS_NAME).read_text()  # the forged answer never reached the run
        assert not [e for e in record.events if e.get("operator") == FORGER]
        assert "Traceback" not in run.run.output(), run.output()
    finally:
        if stim is not None:
            try:  # the run may have ended and taken the stimulus module with it
                stim.set(StimulusCoil.ESTOP_BUTTON, False)
            except Exception:  # noqa: BLE001
                pass
            stim.close()
        run.stop()
        if run.run.log_path.exists():
            shutil.copy(run.run.log_path, artifacts_dir() / "rig-run.log")
