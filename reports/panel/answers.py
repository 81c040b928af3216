"""The page's answers to operator questions, written to the run's answers.jsonl.

The run's operator console is the one arbiter of which answer counts: it reads this file
beside its terminal and takes the first valid answer from either face. The panel only
keeps its own pages from sending what could never count — an answer to a question that is
not open, a second answer to one question, an answer without a name — and says why in one
sentence, so the person at the page knows at once instead of waiting for a refusal line.
What makes an answer count (a name, one of the step's choices) and how it is written are
the page-answer protocol of reports/rundir.py, which the console reads by as well.
"""

from __future__ import annotations

import os

from reports import rundir
from reports.panel.follower import RunFollower


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
    operator = rundir.operator_name(operator)
    if operator is None:
        raise AnswerRefused(422, f"Give your name (1 to {rundir.MAX_NAME} characters) so the record says who answered.")
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
    refusal = rundir.answer_refusal(answer, operator, question.get("choices") or [])
    if refusal is not None:
        raise AnswerRefused(422, f"{refusal[0].upper()}{refusal[1:]}; nothing was sent.")
    return ask, answer, operator


def append_answer(follower: RunFollower, ask: str, answer: str, operator: str, client: str) -> dict:
    """Append the answer line (reports.rundir.append_answer); the line written."""
    line = rundir.append_answer(follower.dir, ask, answer, operator, client)
    follower.note_sent(ask, line)
    return line


def client_label(host: str | None, port: int | None) -> str:
    """Who sent an answer, as the record keeps it: "host:port (panel pid N)"."""
    return f"{host or '?'}:{port if port is not None else '?'} (panel pid {os.getpid()})"
