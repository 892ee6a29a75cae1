"""Added latency of the default guardrail chain per request (input + output checks), p50 / p99.

    .venv/bin/python bench/guardrails_overhead.py [--n 500]

Cases: a benign short prompt the cheap layers decide, a prompt that needs the embedding classifier, a
prompt with PII (masked, then restored in the answer), and a 4 kB prompt. Results: docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from tollhouse.config.guardrails import GuardrailSettings
from tollhouse.guardrails.chain import GuardrailChain
from tollhouse.types import ChatRequest, ChatResponse, Choice, Message, RequestContext, Usage

CASES = {
    "benign short (cheap layers decide)": "What is the capital of France?",
    "needs the classifier": "Write a haiku about the sea",
    "PII masked + restored": "Email jane@example.com about card 4111 1111 1111 1111 please",
    "4 kB prompt": "Please summarise the following meeting notes. "
    + "The team discussed the roadmap. " * 128,
}


async def measure(chain: GuardrailChain, text: str, n: int) -> list[float]:
    times: list[float] = []
    for i in range(n + 20):
        ctx = RequestContext(request_id=f"r{i}")
        ctx.model_requested = "m"
        req = ChatRequest(model="m", messages=[Message("system", "You are helpful."), Message("user", text)])
        answer = ChatResponse(
            "id", "m", [Choice(0, Message("assistant", "Sure: <EMAIL_ADDRESS_1>."), "stop")], Usage()
        )
        t0 = time.perf_counter()
        await chain.check_input(ctx, req)
        await chain.check_output(ctx, answer)
        if i >= 20:  # warm-up (first encoder call loads the model)
            times.append((time.perf_counter() - t0) * 1000)
    return times


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=500)
    args = ap.parse_args()
    chain = GuardrailChain(GuardrailSettings())
    print(f"default chain, {args.n} requests per case (input + output checks), ms")
    print(f"{'case':<38} {'p50':>8} {'p99':>8}")
    for name, text in CASES.items():
        t = sorted(await measure(chain, text, args.n))
        p99 = t[min(len(t) - 1, int(len(t) * 0.99))]
        print(f"{name:<38} {statistics.median(t):8.3f} {p99:8.3f}")
    chain.close()


if __name__ == "__main__":
    asyncio.run(main())
