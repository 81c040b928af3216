"""Operator steps answered in the panel's page: the console reads answers.jsonl beside its
terminal, the first valid answer wins whichever face gave it, and every other answer is
on the record as refused. In process, on a real run record; the page is played by
appending lines exactly as a panel does (docs/panel-protocol.md). No timing asserts."""

from __future__ import annotations

import concurrent.futures
import json
import os
import time

import pexpect.fdpexpect
import pytest

from fixtures.operator import OPERATOR_DID_IT, Operator, OperatorAborted, OperatorConsole, OperatorNoAnswer, Terminal
from reports.rundir import ANSWERS_NAME, PageAnswers
from reports.record import RunRecord, read_record

TEST = "suites/test_x.py::test_x"
WAIT_S = 10.0


def events(run_dir, kind: str) -> list[dict]:
    return [e for e in read_record(run_dir) if e["event"] == kind]


class Page:
    """A person at the panel: waits for the question in the record, appends an answer."""

    def __init__(self, run_dir) -> None:
        self.dir = run_dir

    def question(self, n: int = 1) -> dict:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            asks = events(self.dir, "operator-ask")
            if len(asks) >= n:
                return asks[n - 1]
            time.sleep(0.01)
        raise AssertionError(f"no operator-ask #{n} within {WAIT_S} s")

    def answer(self, ask: str, answer: str, operator: str = "Pat Page", client: str = "127.0.0.1:5000 (panel pid 1)"):
        line = {"ask": ask, "answer": answer, "operator": operator, "where": "page", "client": client,
                "utc": "2026-12-02T12:00:00.000+00:00"}
        with open(self.dir / ANSWERS_NAME, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")


@pytest.fixture
def setup(tmp_path):
    run_dir = tmp_path / "run"
    record = RunRecord(run_dir)
    pool = concurrent.futures.ThreadPoolExecutor(1)
    yield run_dir, record, pool, Page(run_dir)
    pool.shutdown(wait=True)
    record.close()


def page_console(record, run_dir, terminal=None, name=None) -> OperatorConsole:
    return OperatorConsole(terminal, record, name, WAIT_S, page=PageAnswers(run_dir), page_offered=True,
                           run_operator="run-user")


def test_page_answers_a_confirm_and_the_record_says_who_and_where(setup):
    run_dir, record, pool, page = setup
    op = Operator(page_console(record, run_dir), TEST, ["ER-RESIDUAL"])
    result = pool.submit(op.confirm, "ER-RESIDUAL", "cord-slack", "Has the cord gone slack?")
    q = page.question()
    assert q["choices"] == ["y", "n"] and q["channels"] == ["page"] and q["step"] == "cord-slack"
    page.answer(q["ask"], "y")
    assert result.result(WAIT_S) is True
    (step,) = events(run_dir, "operator-step")
    assert (step["ask"], step["answer"], step["where"], step["operator"]) == (q["ask"], "y", "page", "Pat Page")
    assert step["client"].startswith("127.0.0.1:5000") and step["answered"] is True
    assert op.name == "Pat Page"


def test_first_answer_wins_and_the_second_page_is_refused_on_the_record(setup):
    run_dir, record, pool, page = setup
    console = page_console(record, run_dir)
    op = Operator(console, TEST, ["ER-LATCH"])
    result = pool.submit(op.done, "ER-LATCH", "release-estop", "Twist the button out")
    q = page.question()
    page.answer(q["ask"], "done", operator="First")
    page.answer(q["ask"], "abort", operator="Second")  # the same instant, a second page
    assert result.result(WAIT_S).operator == "First"
    console.close()  # reads what came after: nothing a person sent is lost
    (refused,) = events(run_dir, "operator-answer-refused")
    assert refused["operator"] == "Second" and "answered already" in refused["why"] and "First" in refused["why"]


def test_wrong_question_bad_answer_and_no_name_are_refused_then_a_good_answer_counts(setup):
    run_dir, record, pool, page = setup
    op = Operator(page_console(record, run_dir), TEST, ["ER-RESIDUAL"])
    result = pool.submit(op.confirm, "ER-RESIDUAL", "cord-slack", "Slack?")
    q = page.question()
    page.answer("999", "y")
    page.answer(q["ask"], "maybe")
    page.answer(q["ask"], "n", operator="")
    page.answer(q["ask"], "n")
    assert result.result(WAIT_S) is False
    whys = [r["why"] for r in events(run_dir, "operator-answer-refused")]
    assert len(whys) == 3
    assert "not the open question" in whys[0] and "'maybe' is not an answer" in whys[1] and "no operator name" in whys[2]
    assert events(run_dir, "operator-step")[0]["answer"] == "n"


def test_abort_in_the_page_fails_the_step(setup):
    run_dir, record, pool, page = setup
    op = Operator(page_console(record, run_dir), TEST, ["ER-LATCH"])
    result = pool.submit(op.done, "ER-LATCH", "ready", "Ready?")
    page.answer(page.question()["ask"], "abort")
    with pytest.raises(OperatorAborted, match="aborted in the page"):
        result.result(WAIT_S)
    (step,) = events(run_dir, "operator-step")
    assert step["outcome"] == "aborted" and step["where"] == "page" and step["answered"] is False


def test_nobody_in_the_page_is_no_answer(setup):
    run_dir, record, pool, page = setup
    console = OperatorConsole(None, record, None, 0.3, page=PageAnswers(run_dir), page_offered=True)
    with pytest.raises(OperatorNoAnswer):
        Operator(console, TEST, ["ER-LATCH"]).done("ER-LATCH", "ready", "Ready?")
    (step,) = events(run_dir, "operator-step")
    assert step["outcome"] == "no answer" and step["where"] is None


def test_an_action_done_in_the_page_or_reported_by_the_table(setup):
    run_dir, record, pool, page = setup
    op = Operator(page_console(record, run_dir), TEST, ["IL-OVERFORCE"])
    seen = []
    first = pool.submit(op.await_action, "IL-OVERFORCE", "pull", "Pull", lambda: seen[0] if seen else None)
    q = page.question()
    assert q["prompt"] == "action" and q["choices"] == ["done"]
    page.answer(q["ask"], "done")
    assert first.result(WAIT_S).answer == OPERATOR_DID_IT
    second = pool.submit(op.await_action, "IL-OVERFORCE", "pull-again", "Pull", lambda: seen[0] if seen else None)
    page.question(2)
    seen.append("tripped (OVERFORCE_TRIPPED)")
    step = second.result(WAIT_S)
    assert step.answer == "tripped (OVERFORCE_TRIPPED)" and step.where == "table"


def test_terminal_and_page_are_one_mechanism_the_terminal_first(setup):
    run_dir, record, pool, page = setup
    master, slave = os.openpty()
    try:
        person = pexpect.fdpexpect.fdspawn(master, encoding="utf-8", timeout=WAIT_S)
        console = page_console(record, run_dir, terminal=Terminal(slave, owned=False), name="Terry")
        op = Operator(console, TEST, ["ER-LATCH"])
        result = pool.submit(op.done, "ER-LATCH", "ready", "Ready when you are")
        q = page.question()
        assert q["channels"] == ["terminal", "page"]
        person.expect("Type done when done")
        person.sendline("done")
        step = result.result(WAIT_S)
        assert (step.where, step.operator) == ("terminal", "Terry")
        page.answer(q["ask"], "done", operator="Late")  # the page was a moment too slow
        result = pool.submit(op.done, "ER-LATCH", "again", "Once more")
        q2 = page.question(2)
        page.answer(q2["ask"], "done")
        person.expect("answered in the page by Pat Page")
        assert result.result(WAIT_S).where == "page"
        late = events(run_dir, "operator-answer-refused")
        assert [r["operator"] for r in late] == ["Late"] and "in the terminal by Terry" in late[0]["why"]
    finally:
        os.close(slave)
        os.close(master)
