"""Load test: realistic traffic from many API keys through one gateway (``make loadtest``).

Mix per user (weights): chat completions (JSON), streamed chat, embeddings, repeated prompts that the exact
cache answers, the model list; and a few "noisy" users on a key with a tight per-minute limit, for whom a
429 with ``Retry-After`` is the correct answer. Every answer is checked (shape, ``[DONE]`` at the end of a
stream, the cache header on repeats); anything else is a failure.

The gateway needs ``auth.admin_key_env`` set: at start the test creates its keys through ``/admin/keys``
with the admin key in ``LOADTEST_ADMIN_KEY`` (10 ordinary keys with limits and budgets, 1 tight one).
Run through ``bench/loadtest.sh`` (which starts the mock and the gateway), or against your own gateway:

    LOADTEST_ADMIN_KEY=... locust -f bench/locustfile.py --host http://127.0.0.1:8090 \\
        --headless -u 100 -r 20 -t 60s
"""

from __future__ import annotations

import itertools
import json
import os
import random
from typing import Any

from locust import FastHttpUser, between, events, task
from locust.env import Environment

CHAT_MODEL = os.environ.get("LOADTEST_CHAT_MODEL", "chat-model")
EMBED_MODEL = os.environ.get("LOADTEST_EMBED_MODEL", "embed-model")
ORDINARY_KEYS = 10

PROMPTS = [
    "Summarise the main causes of the French Revolution in three bullet points.",
    "Write a polite email asking a colleague to review my pull request by Friday.",
    "What is the difference between a process and a thread?",
    "Translate 'the meeting is moved to Thursday afternoon' into German.",
    "Give me a short recipe for a vegetarian lentil soup.",
    "Explain what an index does in a relational database, for a beginner.",
    "List five questions to ask in a job interview for a data engineer.",
    "Rewrite this sentence to sound more formal: we gotta ship this asap.",
]
REPEATED = [  # asked again and again at temperature 0: the exact cache answers after the first time
    "What are your opening hours?",
    "How do I reset my password?",
    "Which payment methods do you accept?",
]
DOCS = [
    "Invoices are sent on the first working day of each month.",
    "Refunds are processed within five business days.",
    "Our support team answers in English, French and German.",
]

_keys: list[str] = []
_tight: list[str] = []
_next_key = itertools.count()


def _admin(environment: Environment, path: str, body: dict[str, Any]) -> dict[str, Any]:
    import urllib.request

    admin = os.environ["LOADTEST_ADMIN_KEY"]
    req = urllib.request.Request(
        (environment.host or "").rstrip("/") + path,
        data=json.dumps(body).encode(),
        headers={"authorization": f"Bearer {admin}", "content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        out: dict[str, Any] = json.loads(r.read())
        return out


@events.test_start.add_listener
def _create_keys(environment: Environment, **_: Any) -> None:
    """Keys with limits well above what one user sends (a 429 there is a failure), and one tight key."""
    for i in range(ORDINARY_KEYS):
        k = _admin(
            environment,
            "/admin/keys",
            {
                "name": f"loadtest-{i}",
                "team": f"team-{i % 3}",
                "user": f"user-{i}",
                "rpm": 6000,
                "tpm": 10_000_000,
                "daily_usd": 50,
                "models": [CHAT_MODEL, EMBED_MODEL],
            },
        )
        _keys.append(k["key"])
    _tight.append(_admin(environment, "/admin/keys", {"name": "loadtest-tight", "rpm": 30})["key"])


class ApiUser(FastHttpUser):
    """An application calling the gateway with one of the ordinary keys."""

    weight = 19
    wait_time = between(0.5, 1.5)

    def on_start(self) -> None:
        self.key = _keys[next(_next_key) % len(_keys)]
        self.headers = {"authorization": f"Bearer {self.key}"}

    def _chat(self, name: str, body: dict[str, Any], expect_cache: bool = False) -> None:
        with self.client.post(
            "/v1/chat/completions", json=body, headers=self.headers, name=name, catch_response=True
        ) as r:
            if r.status_code != 200:
                r.failure(f"status {r.status_code}: {(r.text or '')[:200]}")
                return
            text = r.text or ""
            if body.get("stream"):
                if not text.rstrip().endswith("data: [DONE]"):
                    r.failure("stream did not end with [DONE]")
                    return
            else:
                out = json.loads(text)
                if not out["choices"][0]["message"]["content"]:
                    r.failure("empty answer")
                    return
            if expect_cache and r.headers.get("x-tollhouse-cache") not in ("hit", "miss"):
                r.failure(f"cache header {r.headers.get('x-tollhouse-cache')!r}")
                return
            r.success()

    @task(10)
    def chat(self) -> None:
        prompt = random.choice(PROMPTS)
        body = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": prompt}], "max_tokens": 128}
        self._chat("chat", body)

    @task(4)
    def chat_stream(self) -> None:
        body = {
            "model": CHAT_MODEL,
            "messages": [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": random.choice(PROMPTS)},
            ],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        self._chat("chat stream", body)

    @task(3)
    def cache_repeat(self) -> None:
        body = {
            "model": CHAT_MODEL,
            "messages": [{"role": "user", "content": random.choice(REPEATED)}],
            "temperature": 0,
        }
        self._chat("chat repeat (cache)", body, expect_cache=True)

    @task(2)
    def embeddings(self) -> None:
        with self.client.post(
            "/v1/embeddings",
            json={"model": EMBED_MODEL, "input": random.sample(DOCS, 2)},
            headers=self.headers,
            name="embeddings",
            catch_response=True,
        ) as r:
            if r.status_code != 200 or len(json.loads(r.text or "{}").get("data", [])) != 2:
                r.failure(f"status {r.status_code}: {(r.text or '')[:200]}")
            else:
                r.success()

    @task(1)
    def models(self) -> None:
        self.client.get("/v1/models", headers=self.headers, name="models")


class NoisyUser(FastHttpUser):
    """A client on a key limited to 30 requests a minute, sending far more: beyond the limit it must get
    429 with Retry-After in OpenAI's envelope, never a slow answer or a 5xx."""

    weight = 1
    wait_time = between(0.2, 0.4)

    @task
    def chat(self) -> None:
        headers = {"authorization": f"Bearer {_tight[0]}"}
        body = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "ping"}], "max_tokens": 8}
        with self.client.post(
            "/v1/chat/completions", json=body, headers=headers, name="chat (tight key)", catch_response=True
        ) as r:
            if r.status_code == 200:
                r.success()
            elif r.status_code == 429 and r.headers.get("retry-after"):
                code = json.loads(r.text or "{}").get("error", {}).get("code")
                if code:
                    r.success()
                else:
                    r.failure("429 without an error code")
            else:
                r.failure(f"status {r.status_code}: {(r.text or '')[:200]}")
