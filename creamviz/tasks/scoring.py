"""Scoring a generation against a task's answer."""

from __future__ import annotations

import re

from creamviz.tasks.byte import TASKS
from creamviz.tasks.real import CHAT_TASKS, FIRST_INTEGER_SCORED, SUBSTRING_SCORED
from creamviz.tasks.ruler import KV_MQ_SEP, RULER_TASKS

# ----------------------------------------------------------------------------- scoring

_INT = re.compile(r"\d+")


def score(task: str, generated: str, answer: str) -> bool:
    """Is ``generated`` (the decoded continuation) correct? kv: the value appears in it (kv_uuid:
    case-insensitive); lines / passkey / niah (and their chat forms): the first integer in it equals
    the answer's; RULER-style tasks: every required string of the answer occurs in it
    (:func:`ruler_score`)."""
    if task in RULER_TASKS:
        return ruler_score(task, generated, answer)
    if task == "kv":
        return answer.strip() in generated
    if task in SUBSTRING_SCORED:
        return answer.strip().lower() in generated.lower()
    if task in ("lines", "passkey", "niah") or task in FIRST_INTEGER_SCORED:
        m = _INT.search(generated)
        return m is not None and m.group() == answer.strip()
    raise ValueError(f"task={task!r}; valid: {', '.join(TASKS + CHAT_TASKS)}")


def required_strings(task: str, answer: str) -> list[str]:
    """The strings a generation must contain to be scored correct (RULER-style tasks)."""
    if task == "kv_multiquery":
        return [s for s in answer.split(KV_MQ_SEP) if s]
    if task in RULER_TASKS:
        return answer.split()
    raise ValueError(f"task={task!r}; valid: {', '.join(RULER_TASKS)}")


def ruler_score(task: str, generated: str, answer: str) -> bool:
    """RULER scoring: every required string of ``answer`` occurs in ``generated``."""
    return all(s in generated for s in required_strings(task, answer))


def ruler_partial_score(task: str, generated: str, answer: str) -> float:
    """Share of the required strings of ``answer`` that occur in ``generated`` (RULER's
    ``string_match_all`` per example: partial credit; :func:`ruler_score` asks for all of them)."""
    req = required_strings(task, answer)
    return sum(s in generated for s in req) / len(req)


