"""The page's answers to operator questions, written to the run's answers.jsonl.

The run's operator console is the one arbiter of which answer counts: it reads this file
beside its terminal and takes the first valid answer from either face. The panel only
keeps its own pages from sending what could never count — an answer to a question that is
not open, a second answer to one question, an answer without a name — and says why in one
sentence, so the person at the page knows at once instead of waiting for a refusal line.
Each answer is one line in one write, appended under an exclusive flock: several panels
(or pages) on one run cannot interleave their lines.
"""

from __future__ import annotations

import fcntl
import json
import os

from reports.panel.follower import RunFollower, utc_now

ANSWERS_NAME = "answers.jsonl"
#: the longest operator name the console accepts (fixtures/operator.py MAX_NAME)
MAX_NAME = 80
ABORT = "abort"


class AnswerRefused(Exception):
    """An answer the panel does not send: `status` is the HTTP status, the message one sentence."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _closed_how(step: dict) -> str:
    if step.get("answered"):
        who = f" by {step['operator']}" if step.get("operator") else ""
        return f"answered already ({step.get('answer')}) in the {step.get('where') or 'terminal'}{who}" + (
            f" at {step['answered_utc']}" if step.get("answered_utc") else "")
    return f"closed ({step.get('outcome') or 'no answer'})" + (
        f" at {step['answered_utc']}" if step.get("answered_utc") else "")


def check_answer(follower: RunFollower, ask, answer, operator) -> tuple[str, str, str]:
    """(ask, answer, operator) cleaned, or AnswerRefused: 422 for what the sender must fix,
    409 for a question that cannot take an answer (any more)."""
    operator = operator.strip() if isinstance(operator, str) else ""
    if not operator or len(operator) > MAX_NAME:
        raise AnswerRefused(422, f"Give your name (1 to {MAX_NAME} characters) so the record says who answered.")
    ask = str(ask).strip() if isinstance(ask, (str, int)) and not isinstance(ask, bool) else ""
    answer = answer.strip().lower() if isinstance(answer, str) else ""
    if follower.end is not None:
        raise AnswerRefused(409, f"The run ended at {follower.end.get('utc') or 'an unknown time'}; "
                                 "questions are closed and nothing was sent.")
    question = follower.asks.get(ask)
    if question is None:
        raise AnswerRefused(409, f"No question {ask or '(none)'} is open in this run; nothing was sent.")
    step = follower.steps.get(ask)
    if step is not None:
        raise AnswerRefused(409, f"Question {ask} ({question.get('step')}) is {_closed_how(step)}; "
                                 "nothing was sent.")
    sent = follower.sent.get(ask)
    if sent is not None:
        raise AnswerRefused(409, f"Question {ask} was answered already from a page of this panel "
                                 f"({sent['answer']} by {sent['operator']} at {sent['utc']}); nothing was sent.")
    choices = [str(c).lower() for c in question.get("choices") or []]
    if answer not in [*choices, ABORT]:
        raise AnswerRefused(422, f"{answer or '(nothing)'!r} is not an answer to this step: give one of "
                                 f"{', '.join([*choices, ABORT])}.")
    return ask, answer, operator


def append_answer(follower: RunFollower, ask: str, answer: str, operator: str, client: str) -> dict:
    """Append the answer line exactly as docs/panel-protocol.md says; the line written."""
    line = {"ask": ask, "answer": answer, "operator": operator, "where": "page", "client": client, "utc": utc_now()}
    data = (json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8")
    fd = os.open(follower.dir / ANSWERS_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
    follower.note_sent(ask, line)
    return line


def client_label(host: str | None, port: int | None) -> str:
    """Who sent an answer, as the record keeps it: "host:port (panel pid N)"."""
    return f"{host or '?'}:{port if port is not None else '?'} (panel pid {os.getpid()})"
