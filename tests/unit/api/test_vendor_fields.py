"""Which request fields travel as vendor extras: top-level fields OpenAI does not define (what the openai
SDK's ``extra_body`` merges in), never the OpenAI parameters the gateway relays itself."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tollhouse.api.openai.protocol import ChatCompletionRequest, CompletionCreateRequest

VENDOR = {"top_k": 5, "repetition_penalty": 1.1, "chat_template_kwargs": {"enable_thinking": False}}


def test_unknown_chat_fields_are_vendor_extras_and_openai_ones_are_not() -> None:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "frequency_penalty": 0.5,
        "parallel_tool_calls": False,
        **VENDOR,
    }
    req = ChatCompletionRequest.model_validate(body).to_internal()
    assert req.vendor == VENDOR
    assert req.extra == {"frequency_penalty": 0.5, "parallel_tool_calls": False}


def test_completions_keep_relayed_openai_fields_out_of_the_extras() -> None:
    body = {"model": "m", "prompt": "hi", "best_of": 2, "suffix": "!", "min_p": 0.1}
    req = CompletionCreateRequest.model_validate(body).to_internal()
    assert req.vendor == {"min_p": 0.1}
    assert req.extra == {"best_of": 2, "suffix": "!"}


def test_a_request_without_extras_has_none() -> None:
    req = ChatCompletionRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": "x"}]})
    assert req.to_internal().vendor == {}


def test_extras_must_be_encodable() -> None:
    with pytest.raises(ValidationError, match="64-bit"):
        ChatCompletionRequest.model_validate(
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "top_k": 2**70}
        )
