"""``tollhouse eval prompt ID --version 4 --against 3 --dataset cases.jsonl``: run every case through the
gateway's own pipeline (in process: the configured models, guardrails and prices) with each version, apply
the checks and the optional judge, print a table, and gate: exit 1 when the candidate regresses.

A case is one JSON line: ``{"id", "variables": {…}, "messages": [...], "expected": "…", "tags": [...],
"checks": [...]}`` (all optional but one of ``variables`` / ``messages``). ``--checks FILE`` adds checks to
every case. Eval requests are recorded in the ledger as the ``eval`` endpoint and kept out of the versions'
live metrics (they must not trigger a rollback).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from tollhouse.errors import TollhouseError
from tollhouse.evals.checks import Check, Embed, Outcome, run_check
from tollhouse.evals.judge import Judge, pairwise, pointwise
from tollhouse.operations import CHAT, EMBEDDINGS
from tollhouse.runtime import Runtime
from tollhouse.settings import Settings
from tollhouse.types import (
    CacheControl,
    ChatRequest,
    EmbeddingRequest,
    Message,
    PromptRef,
    RequestContext,
    new_id,
)


@dataclass(slots=True)
class Case:
    id: str
    variables: dict[str, Any] = field(default_factory=dict)
    messages: list[dict[str, str]] = field(default_factory=list)
    expected: str | None = None
    tags: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    def request_text(self) -> str:
        """The case as a judge sees the request."""
        parts = [json.dumps(self.variables, ensure_ascii=False)] if self.variables else []
        parts += [m["content"] for m in self.messages]
        return "\n".join(parts)


def load_cases(path: Path) -> list[Case]:
    """Read the JSONL dataset. Raises ``ValueError`` naming the line and the field."""
    cases = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path.name} line {n}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise ValueError(f"{where}: a case is a JSON object")
        variables, messages = row.get("variables") or {}, row.get("messages") or []
        if not isinstance(variables, dict):
            raise ValueError(f"{where}: variables must be an object")
        if not isinstance(messages, list) or not all(
            isinstance(m, dict) and isinstance(m.get("content"), str) and isinstance(m.get("role"), str)
            for m in messages
        ):
            raise ValueError(f"{where}: messages must be a list of {{role, content}}")
        expected = row.get("expected")
        if expected is not None and not isinstance(expected, str):
            expected = json.dumps(expected)
        checks = [Check.parse(c, f"{where} checks.{i}") for i, c in enumerate(row.get("checks") or [])]
        cases.append(
            Case(str(row.get("id") or n), variables, messages, expected, list(row.get("tags") or []), checks)
        )
    if not cases:
        raise ValueError(f"{path.name}: no cases")
    return cases


def load_checks(path: Path | None) -> list[Check]:
    if path is None:
        return []
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, list):
        raise ValueError(f"{path.name}: a list of checks")
    return [Check.parse(c, f"{path.name} item {i}") for i, c in enumerate(data)]


@dataclass(slots=True)
class Options:
    prompt: str
    version: int
    against: int | None
    dataset: Path
    checks: Path | None = None
    judge: str | None = None  # a model name; None: no judge
    rubric: str = "Prefer the answer that is correct, complete and follows the instructions."
    mode: str = "pairwise"  # pairwise | pointwise
    embed_model: str = "local-embed"
    max_regression: float = 0.0  # a check's pass rate may fall this much below the baseline's
    min_pass_rate: float | None = None  # every check of the candidate at least this
    concurrency: int = 4
    out: Path | None = None


@dataclass(slots=True)
class VersionRun:
    version: int
    outcomes: list[Outcome]
    passed: dict[str, list[bool]] = field(default_factory=dict)  # check name → results (checks that applied)
    scores: list[int] = field(default_factory=list)  # pointwise judge


async def _answer(rt: Runtime, prompt: str, version: int, case: Case) -> Outcome:
    ctx = RequestContext(new_id("eval"), endpoint="eval")
    req = ChatRequest(
        model="",
        messages=[Message(m["role"], m["content"]) for m in case.messages],
        prompt=PromptRef(prompt, version=version, variables=case.variables),
        cache=CacheControl(no_cache=True, no_store=True),  # each version answers for itself, every run
    )
    try:
        resp = await rt.gateway.handle(ctx, CHAT, req)
    except TollhouseError as exc:
        return Outcome(None, f"{exc.status} {exc.message}", ctx.elapsed(), ctx.cost_usd)
    content = resp.choices[0].message.content if resp.choices else ""
    return Outcome(content if isinstance(content, str) else "", None, ctx.elapsed(), ctx.cost_usd)


def _judge(rt: Runtime, model: str) -> Judge:
    """The judge model, called through the router (retries, fallbacks) but not the guardrails or the cache:
    its prompt quotes both answers, which an input guardrail may well take for an injection."""

    async def ask(system: str, user: str) -> str:
        ctx = RequestContext(new_id("eval"), endpoint="eval")
        req = ChatRequest(
            model=model, messages=[Message("system", system), Message("user", user)], temperature=0
        )
        resp = await CHAT.complete(rt.router, ctx, rt.router.resolve(ctx, req, model), req)
        content = resp.choices[0].message.content if resp.choices else ""
        return content if isinstance(content, str) else ""

    return ask


def _embedder(rt: Runtime, model: str) -> Embed:
    async def embed(texts: list[str]) -> list[list[float]]:
        ctx = RequestContext(new_id("eval"), endpoint="eval")
        resp = await rt.gateway.handle(ctx, EMBEDDINGS, EmbeddingRequest(model=model, input=texts))
        return resp.data

    return embed


async def _run_version(
    rt: Runtime, opts: Options, version: int, cases: list[Case], common: list[Check]
) -> VersionRun:
    sem = asyncio.Semaphore(opts.concurrency)

    async def one(case: Case) -> Outcome:
        async with sem:
            return await _answer(rt, opts.prompt, version, case)

    outcomes = await asyncio.gather(*(one(c) for c in cases))
    run = VersionRun(version, list(outcomes))
    embed = _embedder(rt, opts.embed_model)
    for case, out in zip(cases, outcomes, strict=True):
        for check in [*common, *case.checks]:
            ok = await run_check(check, out, case.expected, embed if check.kind == "similarity" else None)
            if ok is not None:
                run.passed.setdefault(check.name, []).append(ok)
    return run


@dataclass(slots=True)
class Report:
    opts: Options
    cases: list[Case]
    runs: list[VersionRun]
    pairs: dict[str, int] = field(default_factory=dict)  # pairwise: candidate / baseline / tie counts
    failures: list[str] = field(default_factory=list)
    at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "dataset": self.opts.dataset.name,
            "prompt": self.opts.prompt,
            "cases": len(self.cases),
            "versions": {
                str(r.version): {
                    "checks": {k: {"passed": sum(v), "of": len(v)} for k, v in r.passed.items()},
                    "errors": sum(o.error is not None for o in r.outcomes),
                    "latency_p50_s": _p(r, 0.5),
                    "cost_usd": sum(o.cost_usd or 0.0 for o in r.outcomes),
                    "judge_mean": statistics.mean(r.scores) if r.scores else None,
                }
                for r in self.runs
            },
            "pairwise": self.pairs or None,
            "gate": "fail" if self.failures else "pass",
            "failures": self.failures,
        }


def _p(run: VersionRun, q: float) -> float:
    lat = sorted(o.latency_s for o in run.outcomes)
    return lat[min(len(lat) - 1, int(q * len(lat)))]


def _rate(results: list[bool]) -> float:
    return sum(results) / len(results) if results else 1.0


async def evaluate(settings: Settings, opts: Options) -> Report:
    cases = load_cases(opts.dataset)
    common = load_checks(opts.checks)
    async with Runtime.open(settings) as rt:
        if rt.prompts is None:
            raise ValueError("stored prompts are off: set prompts.enabled in the configuration")
        prompt = rt.prompts.get(opts.prompt)
        for v in (opts.version, opts.against):
            if v is not None and v not in prompt.versions:
                raise ValueError(f"prompt {opts.prompt!r} has no version {v}")
        runs = [await _run_version(rt, opts, opts.version, cases, common)]
        if opts.against is not None:
            runs.append(await _run_version(rt, opts, opts.against, cases, common))
        report = Report(opts, cases, runs)
        if opts.judge is not None:
            judge = _judge(rt, opts.judge)
            if opts.mode == "pointwise":
                for run in runs:
                    for case, out in zip(cases, run.outcomes, strict=True):
                        if out.text is not None:
                            score = await pointwise(judge, opts.rubric, case.request_text(), out.text)
                            if score is not None:
                                run.scores.append(score)
            elif len(runs) == 2:
                counts = {"candidate": 0, "baseline": 0, "tie": 0}
                for case, a, b in zip(cases, runs[0].outcomes, runs[1].outcomes, strict=True):
                    result = await pairwise(
                        judge, opts.rubric, case.request_text(), a.text or "", b.text or ""
                    )
                    counts[{"a": "candidate", "b": "baseline", "tie": "tie"}[result.verdict]] += 1
                report.pairs = counts
        _gate(report)
        await rt.prompts.add_evaluation(opts.prompt, report.to_dict())  # kept with the prompt
    return report


def _gate(report: Report) -> None:
    opts, cand = report.opts, report.runs[0]
    base = report.runs[1] if len(report.runs) > 1 else None
    for name, results in sorted(cand.passed.items()):
        rate = _rate(results)
        if opts.min_pass_rate is not None and rate < opts.min_pass_rate:
            report.failures.append(f"{name}: v{cand.version} passes {rate:.1%} < {opts.min_pass_rate:.1%}")
        if base is not None and name in base.passed:
            was = _rate(base.passed[name])
            if rate < was - opts.max_regression - 1e-12:
                allowed = f" - {opts.max_regression:.1%}" if opts.max_regression else ""
                report.failures.append(
                    f"{name}: v{cand.version} passes {rate:.1%} < v{base.version}'s {was:.1%}{allowed}"
                )
    if base is not None:
        errs = [sum(o.error is not None for o in r.outcomes) for r in (cand, base)]
        if errs[0] > errs[1]:
            report.failures.append(f"errors: v{cand.version} has {errs[0]}, v{base.version} {errs[1]}")
    if report.pairs and report.pairs["baseline"] > report.pairs["candidate"]:
        report.failures.append(
            f"judge: v{base.version if base else '?'} preferred in {report.pairs['baseline']} cases, "
            f"v{cand.version} in {report.pairs['candidate']}"
        )


def print_report(report: Report, out: TextIO) -> None:
    opts = report.opts
    names = sorted({n for r in report.runs for n in r.passed})
    head = ["", *(f"v{r.version}" for r in report.runs)]
    rows = [head]
    for n in names:
        rows.append([n, *(_frac(r.passed.get(n)) for r in report.runs)])
    rows.append(["errors", *(str(sum(o.error is not None for o in r.outcomes)) for r in report.runs)])
    rows.append(["latency p50 s", *(f"{_p(r, 0.5):.3f}" for r in report.runs)])
    rows.append(["latency max s", *(f"{max(o.latency_s for o in r.outcomes):.3f}" for r in report.runs)])
    rows.append(["cost usd", *(f"{sum(o.cost_usd or 0.0 for o in r.outcomes):.6f}" for r in report.runs)])
    if any(r.scores for r in report.runs):
        rows.append(
            ["judge score", *(f"{statistics.mean(r.scores):.2f}" if r.scores else "-" for r in report.runs)]
        )
    against = f" against v{opts.against}" if opts.against is not None else ""
    print(f"prompt {opts.prompt}: v{opts.version}{against} on {len(report.cases)} cases", file=out)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip(), file=out)
    if report.pairs:
        p = report.pairs
        print(
            f"judge {opts.judge} (pairwise, both orders): v{opts.version} better {p['candidate']}, "
            f"v{opts.against} better {p['baseline']}, tie or inconsistent {p['tie']}",
            file=out,
        )
    if report.failures:
        print("gate: FAIL", file=out)
        for f in report.failures:
            print(f"  {f}", file=out)
    else:
        print("gate: pass", file=out)


def _frac(results: list[bool] | None) -> str:
    if not results:
        return "-"
    return f"{sum(results)}/{len(results)} ({_rate(results):.0%})"


def run_prompt_eval(settings: Settings, opts: Options, out: TextIO) -> int:
    """The CLI's entry: 0 when the gate passes, 1 when it fails, 2 for a bad dataset or option."""
    try:
        report = asyncio.run(evaluate(settings, opts))
    except (ValueError, OSError, yaml.YAMLError) as exc:
        print(f"tollhouse eval prompt: {exc}", file=out)
        return 2
    except TollhouseError as exc:  # an unknown prompt
        print(f"tollhouse eval prompt: {exc.message}", file=out)
        return 2
    print_report(report, out)
    if opts.out is not None:
        opts.out.write_text(json.dumps(report.to_dict(), indent=2))
    return 1 if report.failures else 0
