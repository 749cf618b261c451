"""Scoring a generation against a task's answer, with each task's own scorer and generation budget.

Scorers (``SCORERS``; each returns a score in [0, 1] for one example):

- ``string_match_all``   RULER (``scripts/eval/synthetic/constants.py``): the share of the reference
  strings found in the generation, both lower-cased (partial credit); a task's score is the mean x 100.
- ``string_match_part``  RULER (qa): 1 if any reference string is found (lower-cased), else 0.
- ``substring_nocase``   Lost in the Middle / CREAM (``evaluate_kv_responses.py``):
  ``value.lower() in generation.lower()``.
- ``first_integer_numeric``  CREAM's LongChat-Lines: the first run of digits (``\\d+``) of the
  generation, as an integer, equals the answer (a leading ``-`` or ``0`` is ignored, as there).
- ``all_strings_exact``  creamviz's strict rule for its byte-scaled RULER-style sets: 1 only if every
  required string is found, case-sensitive (all-or-nothing; *not* RULER's metric).
- ``substring_exact``    the byte-scaled key-value task: the value occurs in the generation, case-sensitive.
- ``first_number_exact`` creamviz's byte-scaled Lines / passkey / NIAH and chat passkey / NIAH: the
  first number of the generation (sign and decimals included) is an integer equal to the answer
  ("-48213" and "48213.5" are wrong for 48213, "048213" is right).

Every task has a spec (``TASK_SPECS``): its mode (which peer's rules it follows, or "byte-scaled"), its
scorer and its generation budget (new tokens; ``None`` = the answer's tokens + 2, the byte-scaled
tasks' short budget). An empty or blank answer is refused: it would score every generation correct.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from creamviz.tasks.byte import TASKS
from creamviz.tasks.real import CHAT_TASKS
from creamviz.tasks.ruler import KV_MQ_SEP, RULER_TASKS
from creamviz.tasks.ruler_verbatim import RULER_ANSWER_SEP, RULER_VERBATIM_TASKS, ruler_budget
from creamviz.validation import check_choice

# ----------------------------------------------------------------------------- scorers (pure)
_DIGITS = re.compile(r"\d+")
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


def _refs(refs) -> list[str]:
    refs = [refs] if isinstance(refs, str) else list(refs)
    if not refs or any(not isinstance(r, str) or not r.strip() for r in refs):
        raise ValueError(f"answer={refs!r} has an empty or blank reference string; valid is at least one "
                         "non-blank string (a blank one would score every generation correct)")
    return refs


def string_match_all(generated: str, refs) -> float:
    """RULER's ``string_match_all`` for one example: share of ``refs`` in ``generated``, lower-cased."""
    refs = _refs(refs)
    return sum(r.lower() in generated.lower() for r in refs) / len(refs)


def string_match_part(generated: str, refs) -> float:
    """RULER's ``string_match_part`` for one example: 1.0 if any of ``refs`` is in ``generated``."""
    return float(max(r.lower() in generated.lower() for r in _refs(refs)))


def substring_nocase(generated: str, refs) -> float:
    """Lost in the Middle: the value, lower-cased, in the generation, lower-cased."""
    return float(_refs(refs)[0].strip().lower() in generated.lower())


def first_integer_numeric(generated: str, refs) -> float:
    """CREAM's LongChat-Lines: ``int(re.findall(r"\\d+", generated)[0]) == int(answer)``."""
    answer = int(_refs(refs)[0].strip())
    m = _DIGITS.search(generated)
    return float(m is not None and int(m.group()) == answer)


def all_strings_exact(generated: str, refs) -> float:
    """creamviz's strict rule: 1.0 only if every string of ``refs`` occurs (case-sensitive)."""
    return float(all(r in generated for r in _refs(refs)))


def substring_exact(generated: str, refs) -> float:
    return float(_refs(refs)[0].strip() in generated)


def first_number_exact(generated: str, refs) -> float:
    """The first number (sign and decimals included) is an integer equal to the answer."""
    answer = int(_refs(refs)[0].strip())
    m = _NUMBER.search(generated)
    return float(m is not None and "." not in m.group() and int(m.group()) == answer)


SCORERS: dict[str, Callable[[str, object], float]] = {
    "string_match_all": string_match_all, "string_match_part": string_match_part,
    "substring_nocase": substring_nocase, "first_integer_numeric": first_integer_numeric,
    "all_strings_exact": all_strings_exact, "substring_exact": substring_exact,
    "first_number_exact": first_number_exact,
}


# ----------------------------------------------------------------------------- task specs

@dataclass(frozen=True)
class TaskSpec:
    """How a task is scored and how many tokens its answer may use."""

    mode: str  # whose rules: "RULER verbatim", "LitM verbatim", "CREAM LongChat-Lines", "byte-scaled", ...
    scorer: str  # a key of SCORERS
    max_new_tokens: int | None  # generation budget; None = the answer's tokens + 2 (byte-scaled)
    min_new_tokens: int = 0  # CREAM's LongChat-Lines asks for at least 5


BYTE_MODE = "byte-scaled (tiny model)"
TASK_SPECS: dict[str, TaskSpec] = {
    "kv": TaskSpec(BYTE_MODE, "substring_exact", None),
    "lines": TaskSpec(BYTE_MODE, "first_number_exact", None),
    "passkey": TaskSpec(BYTE_MODE, "first_number_exact", None),
    "niah": TaskSpec(BYTE_MODE, "first_number_exact", None),
    **{t: TaskSpec("byte-scaled RULER-style", "all_strings_exact", None) for t in RULER_TASKS},
    "kv_uuid": TaskSpec("LitM template, fill the budget", "substring_nocase", 100),
    "passkey_chat": TaskSpec("creamviz chat", "first_number_exact", 10),
    "niah_chat": TaskSpec("creamviz chat", "first_number_exact", 12),
    **{t: TaskSpec("RULER verbatim", "string_match_part" if t.startswith("qa_") else "string_match_all",
                   ruler_budget(t)) for t in RULER_VERBATIM_TASKS},
    "litm_kv": TaskSpec("LitM verbatim", "substring_nocase", 100),
    "longchat_lines": TaskSpec("CREAM LongChat-Lines", "first_integer_numeric", 35, 5),
}
PEER_BUDGETS = {"litm": 100, "cream_litm": 50, "cream_lines": 35}  # LitM / CREAM's scripts


def task_spec(task: str) -> TaskSpec:
    return TASK_SPECS[check_choice("task", task, tuple(TASK_SPECS))]


def required_strings(task: str, answer: str) -> list[str]:
    """The reference strings of ``answer`` (RULER-style and RULER verbatim tasks; else the answer)."""
    if task == "kv_multiquery":
        return [s for s in answer.split(KV_MQ_SEP) if s]
    if task in RULER_VERBATIM_TASKS:
        return [s for s in answer.split(RULER_ANSWER_SEP) if s]
    if task in RULER_TASKS:
        return answer.split()
    task_spec(task)
    return [answer]


def score_value(task: str, generated: str, answer: str, scorer: str | None = None) -> float:
    """The score in [0, 1] of one generation with the task's scorer (or ``scorer``)."""
    name = task_spec(task).scorer if scorer is None else check_choice("scorer", scorer, tuple(SCORERS))
    return SCORERS[name](generated, required_strings(task, answer))


def score(task: str, generated: str, answer: str) -> bool:
    """Is ``generated`` fully correct under the task's own scorer (score == 1)?"""
    if task not in TASK_SPECS:
        raise ValueError(f"task={task!r}; valid: {', '.join(TASKS + CHAT_TASKS + RULER_TASKS + RULER_VERBATIM_TASKS)}"
                         ", litm_kv, longchat_lines")
    return score_value(task, generated, answer) == 1.0


def ruler_partial_score(task: str, generated: str, answer: str) -> float:
    """RULER's ``string_match_all`` for one example of a RULER-style or verbatim task (lower-cased share
    of the required strings found)."""
    return string_match_all(generated, required_strings(task, answer))


def all_strings_score(task: str, generated: str, answer: str) -> bool:
    """creamviz's strict all-or-nothing, case-sensitive rule (the byte-scaled RULER-style sets' own)."""
    return all_strings_exact(generated, required_strings(task, answer)) == 1.0
