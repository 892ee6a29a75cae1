"""OpenAI JSON the gateway must relay exactly: client request bodies (plain, content parts of every kind,
tools, tool choices, response formats, tool-call conversations, odd shapes), upstream responses and stream
chunks. ``tests/unit/wire`` checks cache keys and wire bytes for these against values recorded before the
internal types were typed."""

from __future__ import annotations

IMG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"

SYS = {"role": "system", "content": "Be   brief.\n"}

REQUESTS = {
    "plain": {
        "model": "m",
        "messages": [SYS, {"role": "user", "content": "What is  the capital\nof France? "}],
    },
    "parts_text": {
        "model": "m",
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": " Hello  there "}, {"type": "text", "text": "again"}],
            }
        ],
    },
    "parts_image": {
        "model": "m",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this image?"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://example.com/a.png", "detail": "high"},
                    },
                    {"type": "image_url", "image_url": {"url": "https://example.com/b.png"}},
                    {"type": "image_url", "image_url": {"url": IMG, "detail": "low"}},
                ],
            }
        ],
    },
    "parts_audio_file": {
        "model": "m",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
                    {"type": "file", "file": {"file_id": "file-abc"}},
                    {
                        "type": "file",
                        "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"},
                    },
                ],
            }
        ],
    },
    "parts_odd": {
        "model": "m",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}},
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://e.com/c.png", "detail": "auto", "foo": 1},
                    },
                    {"type": "image_url", "image_url": {"url": "https://e.com/n.png", "detail": None}},
                    {"type": "future_part", "future_part": {"a": [1, 2]}},
                    {"type": "input_audio", "input_audio": {"data": "AAA=", "format": "mp3", "extra": True}},
                    {"type": "file", "file": {}},
                    {"type": "text", "text": "y", "extra_null": None},
                ],
            }
        ],
    },
    "tools": {
        "model": "m",
        "messages": [{"role": "user", "content": "weather?"}],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Weather for a city",
                    "parameters": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}},
                        "required": ["city"],
                    },
                    "strict": True,
                },
            },
            {"type": "function", "function": {"name": "noargs"}},
            {
                "type": "function",
                "function": {"name": "f2", "parameters": {}},
                "cache_control": {"type": "ephemeral"},
            },
            {
                "type": "function",
                "function": {"name": "f3", "description": None, "strict": False, "x-custom": 1},
            },
            {"type": "custom", "custom": {"name": "grammar", "format": {"type": "text"}}},
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
    },
    "tool_choice_named": {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
    },
    "tool_choice_none": {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "tool_choice": "none",
    },
    "tool_choice_required": {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "tool_choice": "required",
    },
    "tool_choice_allowed": {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "tool_choice": {
            "type": "allowed_tools",
            "allowed_tools": {"mode": "auto", "tools": [{"type": "function", "function": {"name": "f"}}]},
        },
    },
    "conversation_tools": {
        "model": "m",
        "messages": [
            SYS,
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    },
                    {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "18C  sunny"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "12:00"}]},
            {"role": "assistant", "content": "It is sunny.", "refusal": None, "tool_calls": []},
            {"role": "user", "content": "thanks", "name": "bob"},
        ],
    },
    "conversation_odd_calls": {
        "model": "m",
        "messages": [
            {"role": "user", "content": "x"},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "f", "arguments": "{}"},
                        "extra_key": 1,
                    },
                    {"id": "c2", "type": "custom", "custom": {"name": "g", "input": "raw"}},
                    {"type": "function", "function": {"name": "h", "arguments": "{}"}},
                    {
                        "id": "c4",
                        "type": "function",
                        "function": {"name": "k", "arguments": {"not": "a string"}},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "ok"},
        ],
    },
    "response_formats_text": {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "response_format": {"type": "text"},
    },
    "response_formats_json": {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "response_format": {"type": "json_object"},
    },
    "response_formats_schema": {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "name": "answer",
                "description": "d",
                "schema": {"type": "object", "properties": {"a": {"type": "integer"}}},
                "strict": True,
            },
        },
    },
    "response_formats_schema_min": {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "answer"}},
    },
    "response_formats_odd": {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "a", "schema": {"type": "object"}, "other": 1},
            "more": True,
        },
    },
    "sampling": {
        "model": "m",
        "messages": [{"role": "developer", "content": "d"}, {"role": "user", "content": "hi"}],
        "temperature": 0,
        "top_p": 0.5,
        "max_completion_tokens": 20,
        "stop": "\n",
        "seed": 3,
        "n": 2,
        "user": "u",
        "frequency_penalty": 0.1,
        "logit_bias": {"50256": -100},
        "metadata": {"a": "b"},
    },
    "msg_extras": {
        "model": "m",
        "messages": [
            {"role": "user", "content": "hi", "weird": {"x": 1}},
            {"role": "assistant", "content": "yo", "audio": {"id": "a1"}},
            {"role": "user", "content": "again"},
        ],
    },
    "functions_legacy": {
        "model": "m",
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": "{}"}},
            {"role": "function", "name": "f", "content": "r"},
        ],
        "functions": [{"name": "f", "parameters": {}}],
        "function_call": "auto",
    },
    "empty_tools": {"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": []},
}

_HI = [{"role": "user", "content": "hi"}]

# Shapes OpenAI refuses, so the gateway does too (a 400 naming the field), though the wire converters
# would relay them: name → (request body, the `param` of the 400).
REJECTED = {
    "image_url_as_string": (
        {
            "model": "m",
            "messages": [
                {"role": "user", "content": [{"type": "image_url", "image_url": "https://e.com/str.png"}]}
            ],
        },
        "messages.0.content.0.image_url",
    ),
    "image_url_without_url": (
        {"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
        "messages.0.content.0.image_url",
    ),
    "image_url_not_a_string": (
        {
            "model": "m",
            "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": 5}}]}],
        },
        "messages.0.content.0.image_url.url",
    ),
    "tool_choice_unknown_mode": ({"model": "m", "messages": _HI, "tool_choice": "something"}, "tool_choice"),
    "response_format_unknown": (
        {"model": "m", "messages": _HI, "response_format": {"type": "grammar", "grammar": "root ::= x"}},
        "response_format.type",
    ),
    "response_format_xml": (
        {"model": "m", "messages": _HI, "response_format": {"type": "xml"}},
        "response_format.type",
    ),
    "json_schema_without_name": (
        {"model": "m", "messages": _HI, "response_format": {"type": "json_schema", "json_schema": {}}},
        "response_format.json_schema.name",
    ),
    "function_tool_without_function": (
        {"model": "m", "messages": _HI, "tools": [{"type": "function"}]},
        "tools.0.function",
    ),
    "function_tool_without_name": (
        {"model": "m", "messages": _HI, "tools": [{"type": "function", "function": {"parameters": {}}}]},
        "tools.0.function.name",
    ),
    "function_name_with_spaces": (
        {"model": "m", "messages": _HI, "tools": [{"type": "function", "function": {"name": "get weather"}}]},
        "tools.0.function.name",
    ),
    "stream_yes": ({"model": "m", "messages": _HI, "stream": "yes"}, "stream"),
    "text_part_without_text": (
        {"model": "m", "messages": [{"role": "user", "content": [{"type": "text"}]}]},
        "messages.0.content.0.text",
    ),
    "audio_part_without_format": (
        {
            "model": "m",
            "messages": [
                {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AA=="}}]}
            ],
        },
        "messages.0.content.0.input_audio.format",
    ),
}

RESPONSES = {
    "plain": {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 7,
        "model": "up",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hi", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        "system_fingerprint": "fp",
    },
    "tool_calls": {
        "id": "chatcmpl-2",
        "created": 8,
        "model": "up",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_a",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                        },
                        {
                            "id": "call_b",
                            "type": "function",
                            "function": {"name": "get_time", "arguments": ""},
                        },
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {
            "prompt_tokens": 30,
            "completion_tokens": 10,
            "prompt_tokens_details": {"cached_tokens": 5},
        },
    },
    "odd_tool_calls": {
        "id": "x",
        "choices": [
            {
                "message": {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                            "index": 0,
                        },
                        {"id": "c2", "type": "custom", "custom": {"name": "g", "input": "q"}},
                    ],
                    "refusal": "no",
                    "annotations": [],
                },
                "finish_reason": "tool_calls",
            }
        ],
    },
    "parts_content": {
        "id": "x",
        "choices": [
            {
                "message": {"role": "assistant", "content": [{"type": "text", "text": "a"}]},
                "finish_reason": "stop",
            }
        ],
    },
    "empty_tool_calls": {
        "id": "x",
        "choices": [
            {"message": {"role": "assistant", "content": "hey", "tool_calls": []}, "finish_reason": "stop"}
        ],
    },
}

CHUNKS = {
    "role": {
        "id": "c",
        "created": 1,
        "model": "up",
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
    },
    "tc_start": {
        "id": "c",
        "created": 1,
        "choices": [
            {
                "index": 0,
                "delta": {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_a",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": ""},
                        }
                    ]
                },
            }
        ],
    },
    "tc_args": {
        "id": "c",
        "created": 1,
        "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]}}],
    },
    "tc_second": {
        "id": "c",
        "created": 1,
        "choices": [
            {
                "index": 0,
                "delta": {
                    "tool_calls": [
                        {
                            "index": 1,
                            "id": "call_b",
                            "type": "function",
                            "function": {"name": "t", "arguments": "{}"},
                        }
                    ]
                },
            }
        ],
    },
    "tc_odd": {
        "id": "c",
        "created": 1,
        "choices": [
            {
                "index": 0,
                "delta": {
                    "tool_calls": [{"index": 0, "function": {"arguments": "x"}, "extra": 1}, {"id": "q"}]
                },
            }
        ],
    },
    "finish": {
        "id": "c",
        "created": 1,
        "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}],
        "usage": None,
    },
    "usage": {"id": "c", "created": 1, "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2}},
    "refusal": {
        "id": "c",
        "created": 1,
        "choices": [{"index": 0, "delta": {"refusal": "no"}, "logprobs": {"content": []}}],
    },
    "empty_tc": {
        "id": "c",
        "created": 1,
        "choices": [{"index": 0, "delta": {"content": "a", "tool_calls": []}}],
    },
}
