"""LLM-as-judge: pairwise with position swapping, or pointwise scores.

Pairwise asks the judge twice, with the answers in both orders; a version wins a case only when the judge
prefers it in both orders, and anything else (the judge always picking the first slot, say) is a tie — so a
judge's position bias cancels instead of deciding. Pointwise asks for a 1-10 score. The judge is any chat
model (a function from prompt to reply): the small embedded model by default, which follows simple rubrics
but is a weak judge — use a stronger configured model when the verdict matters.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

Judge = Callable[[str, str], Awaitable[str]]  # (system rubric, user content) → reply
Verdict = Literal["a", "b", "tie"]

PAIRWISE = (
    "You compare two answers to the same request. {rubric}\n"
    "Reply with exactly one letter: A if answer A is better, B if answer B is better."
)
POINTWISE = (
    "You grade an answer to a request. {rubric}\nReply with one whole number from 1 (worst) to 10 (best)."
)
_LETTER = re.compile(r"\b([AB])\b")
_NUMBER = re.compile(r"\b(10|[1-9])\b")


def _pair_prompt(request: str, first: str, second: str) -> str:
    return (
        f"Request:\n{request}\n\nAnswer A:\n{first}\n\nAnswer B:\n{second}\n\nWhich answer is better, A or B?"
    )


def _letter(reply: str) -> str | None:
    m = _LETTER.search(reply.strip().upper())
    return m.group(1) if m else None


@dataclass(slots=True, frozen=True)
class PairResult:
    verdict: Verdict  # which of (a, b) is better once both orders agree
    first: str | None  # the judge's letter with a in slot A
    swapped: str | None  # the judge's letter with b in slot A


async def pairwise(judge: Judge, rubric: str, request: str, a: str, b: str) -> PairResult:
    system = PAIRWISE.format(rubric=rubric)
    first = _letter(await judge(system, _pair_prompt(request, a, b)))
    swapped = _letter(await judge(system, _pair_prompt(request, b, a)))
    if first == "A" and swapped == "B":
        return PairResult("a", first, swapped)
    if first == "B" and swapped == "A":
        return PairResult("b", first, swapped)
    return PairResult("tie", first, swapped)


async def pointwise(judge: Judge, rubric: str, request: str, answer: str) -> int | None:
    """The judge's 1-10 score (None when its reply holds no number)."""
    reply = await judge(
        POINTWISE.format(rubric=rubric), f"Request:\n{request}\n\nAnswer:\n{answer}\n\nScore:"
    )
    m = _NUMBER.search(reply)
    return int(m.group(1)) if m else None
