"""``tollhouse eval cache`` (``run_cache_eval``) on a small pair file: table shape, computed rates, the
chosen default and the error paths."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

from tollhouse.caching.semantic import CHECKS
from tollhouse.evals.cache import CacheEval, Pair, embed_pairs, load_pairs, run_cache_eval

PAIRS = [
    ("How do I reset my password?", "How can I reset my password?", 1, "qa"),
    ("What is the capital of France?", "Which city is the capital of France?", 1, "qa"),
    ("What major events happened in 1994?", "What major events happened in 1995?", 0, "qa"),
    ("How do I bake sourdough bread?", "What is the tallest mountain in Africa?", 0, "news"),
    ("China stocks close lower on Friday", "China stocks close higher on Friday", 0, "news"),
    ("A man is cutting an onion.", "A man cuts an onion.", 1, "news"),
]


@pytest.fixture
def datasets(tmp_path: Path) -> Path:
    folder = tmp_path / "paraphrase"
    folder.mkdir()
    rows = [{"q1": a, "q2": b, "duplicate": d, "source": s} for a, b, d, s in PAIRS]
    (folder / "dev.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return tmp_path


@pytest.fixture(scope="module")
def evaluation() -> CacheEval:
    pairs = [Pair(a, b, bool(d), s) for a, b, d, s in PAIRS]
    return CacheEval(pairs, embed_pairs(pairs))


def test_rates_are_computed_from_the_pairs(evaluation: CacheEval) -> None:
    sim = evaluation.similarity
    assert sim.shape == (len(PAIRS),)
    assert sim[0] > 0.9  # the known duplicate pair
    assert sim[2] > 0.85  # a look-alike the embedding cannot separate
    assert sim[3] < 0.3
    t = 0.85
    bare = evaluation.rates(t, ())
    assert bare.false_hit == pytest.approx(float(np.mean(sim[[2, 3, 4]] >= t)))
    assert bare.dup_hit == pytest.approx(float(np.mean(sim[[0, 1, 5]] >= t)))
    checked = evaluation.rates(t)
    assert checked.false_hit == 0.0  # numbers and antonyms reject the look-alikes
    assert checked.dup_hit == bare.dup_hit  # and leave the duplicates alone
    assert evaluation.fails["numbers"].tolist() == [False, False, True, False, False, False]
    assert evaluation.fails["antonyms"][4]
    assert evaluation.rates(t, source="news").false_hit == 0.0
    assert evaluation.rates(0.0, ()).false_hit == 1.0


def test_default_is_the_lowest_threshold_within_the_false_hit_limit(evaluation: CacheEval) -> None:
    t = evaluation.default_threshold()
    assert t is not None
    assert evaluation.rates(t).false_hit <= 0.009
    assert evaluation.rates(round(t - 0.0025, 4)).false_hit > 0.009 or t == 0.80


def test_run_cache_eval_prints_the_tables(datasets: Path) -> None:
    out = io.StringIO()
    assert run_cache_eval(datasets, [0.85, 0.9], out) == 0
    text = out.getvalue()
    assert "6 pairs (3 duplicates, 3 non-duplicates; news 3, qa 3)" in text
    header = next(line for line in text.splitlines() if line.strip().startswith("t "))
    assert header.split().count("FH") == 6  # overall + two sources, without and with checks
    assert header.count("news FH") == 2 and header.count("qa DH") == 2
    rows = [line for line in text.splitlines() if re.match(r"\s+0\.\d{3}\s", line)]
    assert [r.split()[0] for r in rows] == ["0.850", "0.900"]
    cells = rows[1].replace("|", " ").split()
    assert len(cells) == 1 + 2 * 6
    assert float(cells[1]) > 0.0  # without checks, the 1994/1995 pair is a false hit at 0.9
    assert float(cells[7]) == 0.0  # with checks, none
    assert float(cells[8]) == pytest.approx(100.0)  # every duplicate still hits at 0.9
    assert re.search(r"Default threshold \(with checks.*\): 0\.\d{4} -> FH", text)
    assert re.search(r"^  all +FH \d+/3 [\d.]+ \[", text, re.M)
    assert "Cross-validated (5 folds" in text
    for check in CHECKS:
        assert re.search(rf"^{check}\s+\d+\s+\d+", text, re.M), check


def test_missing_dataset_is_a_clear_error(tmp_path: Path) -> None:
    out = io.StringIO()
    assert run_cache_eval(tmp_path / "nowhere", None, out) == 2
    assert str(tmp_path / "nowhere") in out.getvalue()
    assert "paraphrase" in out.getvalue()


def test_malformed_line_names_the_file_and_line(datasets: Path) -> None:
    path = datasets / "paraphrase" / "dev.jsonl"
    path.write_text(path.read_text() + '{"q1": "only one side"}\n')
    out = io.StringIO()
    assert run_cache_eval(datasets / "paraphrase", None, out) == 2
    assert f"{path}:7" in out.getvalue()
    with pytest.raises(ValueError, match=":7"):
        load_pairs(path)


def test_summary_counts_and_intervals(evaluation: CacheEval) -> None:
    hit = evaluation.hits(0.9, ())
    line = evaluation.summary(hit)
    fh = int((hit & ~evaluation.duplicate).sum())
    dh = int((hit & evaluation.duplicate).sum())
    assert line.startswith(f"FH {fh}/3 ")
    assert f"DH {dh}/3 " in line
    lo, hi = (float(x) for x in re.findall(r"DH \d+/3 [\d.]+ \[([\d.]+)-([\d.]+)\]", line)[0])
    assert lo <= dh / 3 <= hi and hi - lo > 0.3  # three pairs: a wide interval
    assert evaluation.summary(hit, "news").startswith("FH ")


def test_cross_validation_serves_each_fold_at_a_threshold_picked_without_it() -> None:
    # 40 pairs of one source; five of the 20 non-duplicates look like repeats (cosine 0.99). A fold holds 4
    # non-duplicates, so every fold's training part holds at least one look-alike and picks a threshold above
    # it; a fold served at a threshold picked on itself would not hold the others out.
    pairs = [Pair(f"q{i}", f"q{i}", i % 2 == 0, "s") for i in range(40)]
    sim = np.where(np.arange(40) % 2 == 0, 0.995, 0.5).astype(np.float32)
    sim[[1, 3, 5, 7, 9]] = 0.99
    ev = CacheEval(pairs, sim)
    hit, picked = ev.cross_validated(folds=5)
    assert len(picked) == 5 and all(t is not None for t in picked)
    assert hit[ev.duplicate].all()  # 0.995 is above every pick
    assert all(t is not None and t > 0.99 for t in picked)  # 1 of 16 training non-duplicates > 0.9 %
    assert not hit[~ev.duplicate].any()


def test_the_encoder_is_named_and_changes_the_similarities(datasets: Path) -> None:
    outs = {}
    for kind in ("int8", "exact"):
        out = io.StringIO()
        assert run_cache_eval(datasets, [0.9], out, encoder=kind) == 0
        outs[kind] = out.getvalue()
        assert f"(encoder {kind})" in outs[kind]
    pairs = [Pair(a, b, bool(d), s) for a, b, d, s in PAIRS]
    int8, exact = embed_pairs(pairs, encoder="int8"), embed_pairs(pairs, encoder="exact")
    assert not np.array_equal(int8, exact)
    assert np.abs(int8 - exact).max() < 0.05  # the same model, quantised
