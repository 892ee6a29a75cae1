"""The judge's position swap, with deterministic fake judges: a judge that always picks the first slot
decides nothing; a consistent judge decides the same way whichever order the answers come in."""

from __future__ import annotations

import re

from tollhouse.evals.judge import pairwise, pointwise


async def always_first(system: str, user: str) -> str:
    return "A"


def _answers(user: str) -> tuple[str, str]:
    m = re.search(r"Answer A:\n(.*)\n\nAnswer B:\n(.*)\n\nWhich", user, re.S)
    assert m is not None and "A or B" in user
    return m.group(1), m.group(2)


async def prefers_longer(system: str, user: str) -> str:
    a, b = _answers(user)
    return "Answer: A" if len(a) > len(b) else "B is better."


async def test_a_position_biased_judge_only_ever_ties() -> None:
    for a, b in [("short", "a much longer answer"), ("x" * 50, "y")]:
        result = await pairwise(always_first, "rubric", "request", a, b)
        assert result.verdict == "tie" and (result.first, result.swapped) == ("A", "A")


async def test_a_consistent_judge_decides_in_both_orders() -> None:
    r = await pairwise(prefers_longer, "Prefer detail.", "q", "a detailed answer", "short")
    assert r.verdict == "a" and (r.first, r.swapped) == ("A", "B")
    r = await pairwise(prefers_longer, "Prefer detail.", "q", "short", "a detailed answer")
    assert r.verdict == "b" and (r.first, r.swapped) == ("B", "A")


async def test_the_rubric_reaches_the_judge_and_unreadable_replies_tie() -> None:
    seen: list[str] = []

    async def mumbles(system: str, user: str) -> str:
        seen.append(system)
        return "hmm, hard to say"

    r = await pairwise(mumbles, "Prefer answers in French.", "q", "a", "b")
    assert r.verdict == "tie" and r.first is None
    assert all("Prefer answers in French." in s for s in seen) and len(seen) == 2


async def test_pointwise_reads_the_score() -> None:
    async def seven(system: str, user: str) -> str:
        assert "1 (worst) to 10 (best)" in system and "Answer:\nhello" in user
        return "Score: 7/10"

    async def ten(system: str, user: str) -> str:
        return "10"

    async def none(system: str, user: str) -> str:
        return "no idea"

    assert await pointwise(seven, "r", "q", "hello") == 7
    assert await pointwise(ten, "r", "q", "hello") == 10
    assert await pointwise(none, "r", "q", "hello") is None
