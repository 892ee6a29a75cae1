"""The prompt registry: every prompt in memory (no store read on the request path), reloaded when the store
changes; renders a request's prompt reference; counts each finished request per version and, on a timer,
adds the counts to the shared counters and applies the rollback policy.

Several gateway processes may share one store and one set of counters: each reloads on the store's change
token, each adds only its own counts, and a label move made by one (an admin's or a rollback) is a
conditional write, so two processes rolling back the same label at once move it once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Coroutine
from typing import Any

from tollhouse.errors import InvalidRequest, NotFound, StoreUnavailable
from tollhouse.outage import Outage, cause
from tollhouse.prompts import metrics
from tollhouse.prompts.drafts import draft_version
from tollhouse.prompts.experiments import Experiment
from tollhouse.prompts.notify import Webhook
from tollhouse.prompts.template import bind, check_template, render
from tollhouse.settings import PromptsSettings
from tollhouse.stores.prompt_counters import PromptCounters, VersionKey
from tollhouse.stores.prompts import LabelEvent, Prompt, PromptConflict, PromptStore, PromptVersion
from tollhouse.tasks import cancel, every
from tollhouse.types import ChatResponse, Message, PromptRef, RenderedPrompt, RequestContext

log = logging.getLogger("tollhouse.prompts")

DEFAULT_LABEL = "production"
MAX_SHADOWS = 16  # shadow runs in flight per process; a sampled request beyond that runs none
SHADOW_ANSWERS = 100  # the latest shadow answers kept per prompt, for comparison


class PromptRegistry:
    def __init__(self, cfg: PromptsSettings, store: PromptStore, counters: PromptCounters) -> None:
        self.cfg = cfg
        self.store = store
        self.counters = counters
        self._prompts: dict[str, Prompt] = {}
        self._experiments: dict[str, Experiment] = {}
        self._token: str | None = None
        self._pending: dict[VersionKey, dict[str, int]] = {}
        self._answered: dict[str, VersionKey] = {}
        self._shadow_spent: dict[VersionKey, int] = {}  # micro-USD, as last read plus this process's since
        self._rng = random.Random()
        self._tasks: list[asyncio.Task[None]] = []
        self._flush_lock = asyncio.Lock()
        self._shadows: set[asyncio.Task[None]] = set()
        self.shadow_answers: dict[str, deque[dict[str, Any]]] = {}
        self.webhook = Webhook(cfg.rollback.webhook_url)
        self.rollbacks = 0
        self.store_outage = Outage("prompt store", log, "serving the prompts loaded last")
        self.counters_outage = Outage(
            "prompt counters", log, "counts are kept in this process and added when it is back; no rollbacks"
        )

    # ---- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.store.open()
        await self.reload()
        self._tasks = [
            every(self.cfg.reload_interval_s, self._poll, "prompts-reload", log),
            every(self.cfg.rollback.check_interval_s, self._tick, "prompts-flush", log),
        ]

    async def aclose(self) -> None:
        for task in [*self._tasks, *self._shadows]:
            await cancel(task)
        try:
            await self.flush()
        except Exception:
            log.warning("prompt counters lost at shutdown", exc_info=True)
        await self.webhook.aclose()
        await self.counters.aclose()
        await self.store.aclose()

    async def reload(self) -> None:
        token = await self.store.token()
        prompts = await self.store.load()
        experiments = {}
        for pid, p in prompts.items():
            for number, version in list(p.versions.items()):
                try:  # hand-written files are checked as a push is
                    for i, (_, source) in enumerate(version.messages):
                        check_template(source, f"{pid} version {number} messages.{i}.content")
                except InvalidRequest as exc:
                    log.warning("prompt version ignored: %s", exc.message)
                    del p.versions[number]
            if p.experiment:
                try:
                    experiments[pid] = Experiment.parse(p.experiment, set(p.versions))
                except InvalidRequest as exc:
                    log.warning("prompt %s: experiment ignored: %s", pid, exc.message)
        self._prompts, self._experiments, self._token = prompts, experiments, token

    async def _poll(self) -> None:
        try:
            if await self.store.token() != self._token:
                await self.reload()
        except Exception as exc:
            self.store_outage.failed(exc)
            return
        self.store_outage.ok()

    # ---- the request path ----------------------------------------------------------------------------

    def render(self, ctx: RequestContext, ref: PromptRef, user: str | None) -> RenderedPrompt:
        """The version ``ref`` names (or its experiment assigns), rendered with its variables. Sets the
        prompt id and version on ``ctx``. An unknown prompt, version or label, or bad variables: a 4xx."""
        prompt = self._prompts.get(ref.id)
        if prompt is None:
            raise NotFound(f"Unknown prompt '{ref.id}'.", param="prompt.id")
        version = self._pick(ctx, prompt, ref, user)
        ctx.prompt_template, ctx.prompt_version = prompt.id, str(version.version)
        out = self._render(version, ref.variables)
        exp = self._experiments.get(prompt.id)
        if exp is not None and exp.shadow is not None and ctx.endpoint != "shadow" and exp.sampled(self._rng):
            out.shadow = self._shadow(prompt, exp.shadow.version, exp.shadow.budget_usd, ref)
        return out

    def _pick(self, ctx: RequestContext, prompt: Prompt, ref: PromptRef, user: str | None) -> PromptVersion:
        if ref.version is not None:
            version = prompt.versions.get(ref.version)
            if version is None:
                raise NotFound(f"Prompt '{prompt.id}' has no version {ref.version}.", param="prompt.version")
            return version
        label = ref.label or DEFAULT_LABEL
        exp = self._experiments.get(prompt.id)
        if exp is not None and exp.label == label:
            arm = exp.pick(prompt.id, self._unit(ctx, exp, ref, user))
            if arm is not None:
                return prompt.versions[arm]
        number = prompt.labels.get(label)
        if number is None:
            if ref.label is not None:
                raise NotFound(f"Prompt '{prompt.id}' has no label '{label}'.", param="prompt.label")
            number = prompt.latest  # no production label yet: the newest version
        return prompt.versions[number]

    @staticmethod
    def _unit(ctx: RequestContext, exp: Experiment, ref: PromptRef, user: str | None) -> str:
        if ref.unit:
            return ref.unit
        p = ctx.principal
        if exp.unit == "user":
            return user or p.user or p.key_id or ctx.request_id
        if exp.unit == "key":
            return p.key_id or user or p.user or ctx.request_id
        return ctx.request_id

    def _render(self, version: PromptVersion, given: dict[str, Any]) -> RenderedPrompt:
        values = bind(version.variables, given)
        budget = self.cfg.max_output_chars
        messages = []
        for role, source in version.messages:
            text = render(source, values, budget)
            budget -= len(text)
            messages.append(Message(role=role, content=text))
        return RenderedPrompt(
            version.prompt_id, version.version, messages, version.model, dict(version.params)
        )

    def _shadow(
        self, prompt: Prompt, number: int, budget_usd: float, ref: PromptRef
    ) -> RenderedPrompt | None:
        version = prompt.versions.get(number)
        if version is None or self._shadow_spent.get((prompt.id, number), 0) >= budget_usd * 1_000_000:
            return None
        try:
            return self._render(version, ref.variables)
        except InvalidRequest:
            return None  # the candidate takes other variables: nothing to compare on this request

    def observe(self, ctx: RequestContext) -> None:
        """Count a finished request (a shadow run's counters are kept apart, prefixed ``s_``)."""
        if ctx.prompt_template is None or ctx.prompt_version is None or ctx.endpoint == "eval":
            return  # evaluation runs are not live traffic
        key = (ctx.prompt_template, int(ctx.prompt_version))
        shadow = ctx.endpoint == "shadow"
        counts = self._pending.setdefault(key, {})
        for name, n in metrics.deltas(ctx, "s_" if shadow else "").items():
            counts[name] = counts.get(name, 0) + n
        if shadow:
            self._shadow_spent[key] = self._shadow_spent.get(key, 0) + counts.get("s_cost_micros", 0)
        else:
            self._answered[ctx.request_id] = key

    def detach(self, run: Coroutine[Any, Any, None]) -> None:
        if len(self._shadows) >= MAX_SHADOWS:
            run.close()
            return
        task = asyncio.create_task(self._bounded(run))
        self._shadows.add(task)
        task.add_done_callback(self._shadows.discard)

    async def _bounded(self, run: Coroutine[Any, Any, None]) -> None:
        try:
            await asyncio.wait_for(run, self.cfg.shadow_timeout_s)
        except TimeoutError:
            log.info("shadow run cut after %.0f s", self.cfg.shadow_timeout_s)

    def shadow_answer(self, parent: RequestContext, ctx: RequestContext, answer: object) -> None:
        if ctx.prompt_template is None:
            return
        text = None
        if isinstance(answer, ChatResponse) and answer.choices:
            content = answer.choices[0].message.content
            text = content if isinstance(content, str) else None
        ring = self.shadow_answers.setdefault(ctx.prompt_template, deque(maxlen=SHADOW_ANSWERS))
        ring.append(
            {
                "request_id": parent.request_id,
                "live_version": None if parent.prompt_version is None else int(parent.prompt_version),
                "shadow_version": None if ctx.prompt_version is None else int(ctx.prompt_version),
                "answer": text,
                "at": time.time(),
            }
        )

    async def rate(self, request_id: str, score: float) -> bool:
        """Count a rating of an earlier request answered with a stored prompt (False: not one, or the
        counters are unreachable — the rating is then lost, and the outage logged)."""
        try:
            await self.flush()  # the request may still be waiting in this process's counts
            key = await self.counters.answered_by(request_id)
            if key is None:
                return False
            await self.counters.add({key: metrics.rating(score)})
        except Exception as exc:
            self.counters_outage.failed(exc)
            return False
        return True

    # ---- counters and rollback -----------------------------------------------------------------------

    async def flush(self) -> None:
        """Add this process's counts to the shared counters, then check the labels of the prompts counted.
        Raises when the counters are unreachable (the counts are kept for the next flush)."""
        try:
            await self._flush()
        except Exception as exc:
            self.counters_outage.failed(exc)
            raise
        self.counters_outage.ok()

    async def _tick(self) -> None:
        """The periodic flush: an outage is logged once by ``flush``, not once per tick."""
        with contextlib.suppress(Exception):
            await self.flush()

    async def _flush(self) -> None:
        async with self._flush_lock:
            pending, self._pending = self._pending, {}
            answered, self._answered = self._answered, {}
            if pending:
                try:
                    await self.counters.add(pending)
                except BaseException:
                    for key, counts in pending.items():  # kept for the next flush
                        mine = self._pending.setdefault(key, {})
                        for name, n in counts.items():
                            mine[name] = mine.get(name, 0) + n
                    self._answered.update(answered)
                    raise
            if answered:
                await self.counters.remember(answered)
            touched = {pid for pid, _ in pending}
            shadows = [k for k, c in pending.items() if "s_requests" in c]
            if shadows:
                for key, counts in (await self.counters.read(shadows)).items():
                    self._shadow_spent[key] = counts.get("s_cost_micros", 0)
        if self.cfg.rollback.enabled:
            for pid in sorted(touched):
                await self._check(pid)

    async def _check(self, pid: str) -> None:
        prompt = self._prompts.get(pid)
        if prompt is None:
            return
        for label, current in sorted(prompt.labels.items()):
            last = _last_move(prompt, label)
            if last is None or last.actor == "rollback":
                continue  # never moved, or already moved back (a rollback is not rolled back)
            previous = _previous(prompt, label, current)
            if previous is None:
                continue
            counts = await self.counters.read([(pid, current), (pid, previous)])
            why = metrics.should_roll_back(counts[(pid, current)], counts[(pid, previous)], self.cfg.rollback)
            if why is None:
                continue
            event = LabelEvent(label, previous, current, time.time(), "rollback", why)
            try:
                await self.store.move_label(pid, event, expect=current)
            except PromptConflict:
                continue  # someone (another replica) moved it first
            self.rollbacks += 1
            log.warning(
                "prompt rollback: %s label %s moved back from version %d to %d: %s",
                pid,
                label,
                current,
                previous,
                why,
                extra={"prompt": pid, "label": label, "from_version": current, "to_version": previous},
            )
            self.webhook.send({"event": "prompt.rollback", "prompt": pid, **event.to_dict(), "from": current})
            await self.reload()

    # ---- admin -----------------------------------------------------------------------------------------

    def all(self) -> list[Prompt]:
        return [self._prompts[k] for k in sorted(self._prompts)]

    def get(self, pid: str) -> Prompt:
        prompt = self._prompts.get(pid)
        if prompt is None:
            raise NotFound(f"Unknown prompt '{pid}'.", param="id")
        return prompt

    async def push(self, pid: str, body: dict[str, Any], author: str | None = None) -> PromptVersion:
        version = await self.store.push(draft_version(pid, body, author))
        await self.reload()
        return version

    async def move_label(
        self, pid: str, label: str, number: int, actor: str, reason: str = "", expect: int | None = None
    ) -> LabelEvent:
        prompt = self.get(pid)
        if number not in prompt.versions:
            raise NotFound(f"Prompt '{pid}' has no version {number}.", param="version")
        event = LabelEvent(label, number, prompt.labels.get(label), time.time(), actor, reason)
        try:
            await self.store.move_label(pid, event, expect=expect)
        except PromptConflict as exc:
            raise InvalidRequest(str(exc), param="label") from None
        await self.reload()
        return event

    async def roll_back(self, pid: str, label: str, actor: str) -> LabelEvent:
        """Move ``label`` back to the version it pointed to before its last move."""
        prompt = self.get(pid)
        current = prompt.labels.get(label)
        if current is None:
            raise NotFound(f"Prompt '{pid}' has no label '{label}'.", param="label")
        previous = _previous(prompt, label, current)
        if previous is None:
            raise InvalidRequest(
                f"Label '{label}' of '{pid}' has no earlier version to go back to.", param="label"
            )
        return await self.move_label(pid, label, previous, actor, "manual rollback", expect=current)

    async def set_experiment(self, pid: str, data: dict[str, Any] | None) -> None:
        prompt = self.get(pid)
        if data is not None:
            Experiment.parse(data, set(prompt.versions))
        await self.store.set_experiment(pid, data)
        await self.reload()

    async def add_evaluation(self, pid: str, result: dict[str, Any]) -> None:
        self.get(pid)
        await self.store.add_evaluation(pid, result)
        await self.reload()

    async def version_metrics(self, pid: str, number: int, against: int | None = None) -> dict[str, Any]:
        """A version's figures (live and shadow), and its comparison with ``against`` (default: the
        version before it)."""
        prompt = self.get(pid)
        if number not in prompt.versions:
            raise NotFound(f"Prompt '{pid}' has no version {number}.", param="version")
        other = (
            against if against is not None else max((v for v in prompt.versions if v < number), default=None)
        )
        keys: list[VersionKey] = [(pid, number)] + ([(pid, other)] if other is not None else [])
        try:
            await self.flush()
            counts = await self.counters.read(keys)
        except Exception as exc:
            raise StoreUnavailable("prompt counters", cause(exc)) from None
        mine = counts[(pid, number)]
        out: dict[str, Any] = {
            "prompt": pid,
            "version": number,
            "labels": sorted(k for k, v in prompt.labels.items() if v == number),
            **metrics.summary(mine),
            "shadow": metrics.summary(mine, "s_"),
            "evaluations": [e for e in prompt.evaluations if str(number) in (e.get("versions") or {})],
        }
        if other is not None:
            out["compared_with"] = {"version": other, **metrics.compare(mine, counts[(pid, other)])}
        return out


def _last_move(prompt: Prompt, label: str) -> LabelEvent | None:
    return next((e for e in reversed(prompt.history) if e.label == label), None)


def _previous(prompt: Prompt, label: str, current: int) -> int | None:
    """The version ``label`` pointed to before it last moved to ``current`` (None: it never moved)."""
    event = _last_move(prompt, label)
    if event is None or event.version != current or event.previous == current:
        return None
    return event.previous
