"""Sticky assignment: the same unit always gets the same arm, and arms get their weights' shares."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from tollhouse.errors import InvalidRequest
from tollhouse.prompts.experiments import Experiment


def test_assignment_is_stable_and_matches_the_weights_on_10000_units() -> None:
    exp = Experiment.parse({"arms": {"3": 70, "4": 20, "5": 10}, "unit": "user"})
    units = [f"user-{i}" for i in range(10_000)]
    first = [exp.pick("support-answer", u) for u in units]
    again = [Experiment.parse({"arms": {"5": 10, "3": 70, "4": 20}}).pick("support-answer", u) for u in units]
    assert first == again  # stable, and the order the arms are listed in does not matter
    shares = Counter(first)
    for version, weight in ((3, 0.7), (4, 0.2), (5, 0.1)):
        assert abs(shares[version] / 10_000 - weight) < 0.02, shares


def test_units_are_assigned_independently_across_prompts() -> None:
    exp = Experiment.parse({"arms": {"1": 50, "2": 50}})
    a = [exp.pick("prompt-a", f"u{i}") for i in range(2000)]
    b = [exp.pick("prompt-b", f"u{i}") for i in range(2000)]
    same = sum(x == y for x, y in zip(a, b, strict=True)) / 2000
    assert 0.4 < same < 0.6


def test_changing_one_weight_moves_only_some_units() -> None:
    before = Experiment.parse({"arms": {"1": 90, "2": 10}})
    after = Experiment.parse({"arms": {"1": 80, "2": 20}})
    moved = [u for u in (f"u{i}" for i in range(5000)) if before.pick("p", u) != after.pick("p", u)]
    assert all(after.pick("p", u) == 2 for u in moved)  # only towards the arm that grew
    assert 0.07 < len(moved) / 5000 < 0.13


def test_shadow_sampling_draws_its_share() -> None:
    exp = Experiment.parse({"arms": {"1": 1}, "shadow": {"version": 2, "sample": 0.25, "budget_usd": 1}})
    rng = random.Random(7)
    assert abs(sum(exp.sampled(rng) for _ in range(10_000)) / 10_000 - 0.25) < 0.02


@pytest.mark.parametrize(
    ("data", "param"),
    [
        ({"arms": {"9": 1}}, "experiment.arms"),
        ({"arms": {"1": -1}}, "experiment.arms"),
        ({"arms": {"1": 1}, "unit": "planet"}, "experiment.unit"),
        ({"arms": {"1": 1}, "shadow": {"version": 9}}, "experiment.shadow"),
        ({"arms": {"1": 1}, "shadow": {"version": 2, "sample": 2}}, "experiment.shadow"),
        ({"arms": {"1": 1}, "split": 1}, "experiment"),
    ],
)
def test_bad_experiments_are_refused_naming_the_field(data: dict[str, object], param: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        Experiment.parse(data, {1, 2})
    assert err.value.param == param
