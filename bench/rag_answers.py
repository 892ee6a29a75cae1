"""Answer quality with and without retrieval, for the embedded chat model (SmolLM2-135M), by exact facts.

A handbook of invented facts (the model cannot know them) is ingested into a collection; each question is
asked twice through the gateway in process — plainly, then with ``retrieval`` — and an answer counts as
right when it contains the expected fact. Prints one JSON line per question and the two accuracies.
Run: ``PYTHONPATH=src python bench/rag_answers.py`` (loads the embedded model; about a minute).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from fastapi.testclient import TestClient

from tollhouse.app import create_app
from tollhouse.settings import Settings

HANDBOOK = {
    "leave": "# Leave\nEvery Larkspur Labs employee gets 27 days of paid leave per year. Unused days expire "
    "in April.",
    "office": "# The office\nThe office Wi-Fi network is called heron-5g. Larkspur Labs has its headquarters "
    "in Tromsø. A parking permit costs 14 euros per month. Visitors wear an orange badge.",
    "people": "# People\nThe CEO of Larkspur Labs is Mirela Vance. The team chats in a tool called Quokka. "
    "The annual hackathon takes place in October.",
    "it": "# Equipment\nLaptops are replaced every 38 months. On-call shifts last 9 days.",
    "money": "# Expenses\nExpense reports are due on the 4th working day of each month.",
    "pets": "# Pets\nDogs under 12 kg may come to the office. Cats are not allowed.",
}
QUESTIONS = [
    ("How many days of paid leave does a Larkspur Labs employee get per year?", ["27"]),
    ("What is the office Wi-Fi network called?", ["heron"]),
    ("Where are the headquarters of Larkspur Labs?", ["troms"]),
    ("How much does a parking permit cost per month?", ["14"]),
    ("What colour badge do visitors wear?", ["orange"]),
    ("Who is the CEO of Larkspur Labs?", ["vance"]),
    ("What is the name of the team's chat tool?", ["quokka"]),
    ("In which month is the annual hackathon?", ["october"]),
    ("How often are laptops replaced?", ["38"]),
    ("How long does an on-call shift last?", ["9 days", "nine"]),
    ("When are expense reports due?", ["4th", "fourth"]),
    ("Which dogs may come to the office?", ["12"]),
]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.model_validate(
            {
                "embedded": {"chat": True, "embeddings": False},
                "keys": {"sqlite_path": str(Path(tmp) / "keys.db")},
                "ledger": {"enabled": False},
                "cache": {"mode": "off"},
                "rag": {"sqlite_path": str(Path(tmp) / "rag.db")},
            }
        )
        with TestClient(create_app(settings)) as c:
            assert c.post("/v1/collections", json={"name": "handbook"}).status_code == 201
            for doc_id, text in HANDBOOK.items():
                assert (
                    c.post(
                        "/v1/collections/handbook/documents",
                        json={"id": doc_id, "text": text, "kind": "markdown"},
                    ).status_code
                    == 201
                )
            right = {"without": 0, "with": 0, "retrieved": 0}
            for question, facts in QUESTIONS:
                row: dict[str, object] = {"question": question}
                hits = c.post("/v1/collections/handbook/search", json={"query": question, "k": 2}).json()[
                    "data"
                ]
                found = any(
                    f in h["text"].lower() for h in hits for f in facts
                )  # the fact was in the context
                right["retrieved"] += found
                row["fact_retrieved"] = found
                for mode in ("without", "with"):
                    body: dict[str, object] = {
                        "model": "local",
                        "temperature": 0,
                        "max_tokens": 48,
                        "messages": [{"role": "user", "content": question}],
                    }
                    if mode == "with":
                        body["retrieval"] = {"collection": "handbook", "k": 2}
                    r = c.post("/v1/chat/completions", json=body)
                    r.raise_for_status()
                    answer = r.json()["choices"][0]["message"]["content"] or ""
                    ok = any(f in answer.lower() for f in facts)
                    right[mode] += ok
                    row[mode] = {"ok": ok, "answer": answer.strip()[:160]}
                print(json.dumps(row, ensure_ascii=False))
            n = len(QUESTIONS)
            print(
                json.dumps(
                    {
                        "questions": n,
                        "accuracy_without": right["without"] / n,
                        "accuracy_with": right["with"] / n,
                        "fact_retrieved": right["retrieved"] / n,
                    }
                )
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
