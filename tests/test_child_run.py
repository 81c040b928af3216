"""The child-process harness (tests/child_run.py) itself: what it promises the slow tests
that lean on it — everything a child started ends with it, a wait that runs out says
what it waited for and what the child last said, the child sees this checkout and none
of this session's pytest variables. Small Python children, no table: fast."""

from __future__ import annotations

import json
import os
import signal
import sys

import pytest

from tests.child_run import REPO, ChildRun, alive

#: a child that starts a sleeper in its own process group and one in a session of its own
#: (as the emulator and the panel are started), says their pids, and ignores SIGTERM
FAMILY = """
import json, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
sleep = [sys.executable, "-c", "import time; time.sleep(120)"]
group = subprocess.Popen(sleep)
session = subprocess.Popen(sleep, start_new_session=True)
print(json.dumps({"group": group.pid, "session": session.pid}), flush=True)
time.sleep(120)
"""


def family(tmp_path) -> tuple[ChildRun, dict]:
    child = ChildRun(tmp_path, [sys.executable, "-c", FAMILY], name="family", end_s=0.5, wait_s=30.0)
    pids = json.loads(child.wait_output(r"^\{.*\}$").group(0))
    return child, pids


def test_a_child_that_will_not_end_and_all_it_started_end_at_close(tmp_path):
    child, pids = family(tmp_path)
    assert alive(child.pid) and alive(pids["group"]) and alive(pids["session"])
    child.close()
    assert child.poll() == -signal.SIGKILL  # SIGTERM ignored: it was killed
    for pid in pids.values():
        assert not alive(pid), pid


def test_what_a_sigkilled_child_left_running_ends_at_close(tmp_path):
    child, pids = family(tmp_path)
    assert child.kill() == -signal.SIGKILL
    assert alive(pids["group"]) and alive(pids["session"])  # orphaned, as an emulator is
    child.close()
    for pid in pids.values():
        assert not alive(pid), pid


def test_a_stopped_child_is_ended_too(tmp_path):
    child, pids = family(tmp_path)
    child.pause()
    child.close()
    assert child.poll() == -signal.SIGKILL and not alive(pids["group"])


def test_a_wait_that_runs_out_says_what_it_waited_for_and_the_childs_last_lines(tmp_path):
    script = "import time\nfor i in range(100): print(f'line {i}', flush=True)\ntime.sleep(60)"
    child = ChildRun(tmp_path, [sys.executable, "-c", script], name="talker", end_s=0.5)
    try:
        child.wait_output(r"^line 99$", 30.0)
        with pytest.raises(AssertionError) as failed:
            child.wait_for(lambda: None, "the moon", 0.2)
        text = str(failed.value)
        assert text.startswith("the moon: not within 0.2 s\n--- talker (still running), its last 40 output lines ---")
        assert "line 99" in text and "line 60" in text and "line 59\n" not in text
    finally:
        child.close()


def test_a_child_that_ends_first_fails_the_wait_with_its_exit_status(tmp_path):
    child = ChildRun(tmp_path, [sys.executable, "-c", "print('bye'); raise SystemExit(3)"], name="quitter")
    try:
        with pytest.raises(AssertionError, match=r"(?s)quitter ended before the moon\n.*exit status 3.*bye"):
            child.wait_for(lambda: None, "the moon", 30.0)
    finally:
        child.close()


def test_the_child_sees_this_checkout_no_pytest_variables_and_no_terminal(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTEST_ADDOPTS", "-x")
    monkeypatch.setenv("CI", "1")
    script = ("import json, os, sys; print(json.dumps({'path': sys.path[1], 'addopts': os.environ.get('PYTEST_ADDOPTS'),"
              " 'ci': os.environ.get('CI'), 'current': os.environ.get('PYTEST_CURRENT_TEST'), 'tty': os.isatty(0),"
              " 'session': os.getsid(0) == os.getpid()}))")
    child = ChildRun(tmp_path, [sys.executable, "-c", script], drop_env=("CI",), name="env")
    try:
        assert child.wait(30.0) == 0
        seen = json.loads(child.output())
    finally:
        child.close()
    assert seen == {"path": str(REPO), "addopts": None, "ci": None, "current": None, "tty": False, "session": True}
    assert os.environ["CI"] == "1"  # this session's own environment untouched


def test_a_terminal_child_is_typed_at(tmp_path):
    script = "import os, sys; name = input('Your name: '); print(f'hello {name}', os.isatty(0))"
    child = ChildRun(tmp_path, [sys.executable, "-c", script], terminal=True, name="greeter", wait_s=30.0)
    try:
        child.answer("Your name: ", "Ada")
        child.expect(r"hello Ada True")
        assert child.wait() == 0
    finally:
        child.close()
