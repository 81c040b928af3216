"""The panel shows a flexion-distraction table's section angles beside the distraction
force: the live feed carries the FDC-1 controller's angles on its status lines (a
traction status line stays byte for byte what it was), the follower keeps them as a trace,
and the page draws them (headless Chromium, skipped without it as tests/test_panel_browser.py)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from fixtures.live_feed import LiveFeed
from reports.panel.follower import RunFollower
from reports.panel.runs import RunSet
from reports.panel.server import bind, guard_for, make_server, url_of
from reports.panel.guard import new_token
from reports.rundir import LIVE_NAME
from tests.synthetic_fd_run import build_fd_run

WAIT_S = 15.0


def _status(**angles):
    """A controller status as the feed taps it (the fields it reads), with or without angles."""
    return SimpleNamespace(host_ns=10**12, force_n=249.96, phase=SimpleNamespace(name="MOVING_OUT"),
                           estop_latched=False, fault_code=SimpleNamespace(name="NONE"), overforce_tripped=False,
                           **angles)


def _feed_lines(tmp_path: Path, status) -> list[str]:
    feed = LiveFeed(tmp_path, 10.0)
    feed.t0_ns = 10**12 - 1_500_000_000  # the status 1.5 wall s after the feed's start
    feed.status(status)
    feed.close()
    return (tmp_path / LIVE_NAME).read_text(encoding="utf-8").splitlines()[1:]


def test_a_traction_status_line_is_unchanged_and_an_fd_one_carries_its_angles(tmp_path):
    (tmp_path / "tcm").mkdir()
    (tmp_path / "fdc").mkdir()
    assert _feed_lines(tmp_path / "tcm", _status()) == [
        '{"k":"status","t":1.5,"force_n":249.96,"phase":"MOVING_OUT","estop":false,"fault":"NONE","tripped":false}']
    assert _feed_lines(tmp_path / "fdc", _status(flexion_deg=12.34567, lateral_deg=-0.1)) == [
        '{"k":"status","t":1.5,"force_n":249.96,"phase":"MOVING_OUT","estop":false,"fault":"NONE","tripped":false,'
        '"flexion_deg":12.346,"lateral_deg":-0.1}']


def _write_live(run_dir: Path, n: int = 40, angles: bool = True) -> None:
    lines = [{"k": "start", "utc": "2026-12-05T04:00:00.000+00:00", "time_scale": 10.0, "pid": 1}]
    for i in range(n):
        line = {"k": "status", "t": 0.1 * i, "force_n": 250.0, "phase": "MOVING_OUT", "estop": False,
                "fault": "NONE", "tripped": False}
        if angles:
            line.update(flexion_deg=round(0.5 * i, 3), lateral_deg=0.0)
        lines.append(line)
    (run_dir / LIVE_NAME).write_text("".join(json.dumps(x, separators=(",", ":")) + "\n" for x in lines))


def test_the_follower_keeps_the_angle_trace_beside_the_force(tmp_path):
    run = build_fd_run(tmp_path / "fd")
    _write_live(run)
    f = RunFollower(run, 0)
    trace = dict(f.poll())["trace"]
    assert trace["angle"]["t"] == trace["status"]["t"] and len(trace["angle"]["t"]) == 40
    assert trace["angle"]["flexion_deg"][-1] == 19.5 and trace["latest"]["flexion_deg"] == 19.5
    assert f.snapshot()["trace"]["angle"]["flexion_deg"][:3] == [0.0, 0.5, 1.0]

    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "record.jsonl").write_bytes((run / "record.jsonl").read_bytes())
    _write_live(plain, angles=False)
    trace = dict(RunFollower(plain, 0).poll())["trace"]
    assert trace["angle"]["t"] == [] and len(trace["status"]["t"]) == 40  # no angles: nothing to draw


@pytest.mark.timeout(120)
def test_the_page_draws_the_angle_trace(tmp_path):
    from tests.test_panel_browser import chromium

    executable = chromium()
    from playwright.sync_api import sync_playwright

    run = build_fd_run(tmp_path / "fd")
    _write_live(run)
    sock = bind("127.0.0.1", 0)
    started = threading.Event()
    key = new_token()
    server = make_server(RunSet([run]), guard_for(sock, "127.0.0.1", key), on_started=started.set, poll_s=0.05,
                         keepalive_s=0.3)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        assert started.wait(WAIT_S), "the panel did not start"
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=executable, headless=True)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.set_default_timeout(WAIT_S * 1000)
                page.goto(url_of(sock, "127.0.0.1", key))
                page.wait_for_selector("#angle", state="visible")
                deadline = time.monotonic() + WAIT_S
                while page.get_attribute("#angle-plot", "data-points") != "40":
                    assert time.monotonic() < deadline, "the angle plot never drew the 40 points"
                    time.sleep(0.1)
                assert page.text_content("#angle-flexion") == "19.5°"
                assert page.locator("#angle-plot canvas").count() == 1
            finally:
                browser.close()
    finally:
        server.should_exit = True
        thread.join(WAIT_S)
        sock.close()
