"""The zoo's presets as one table of entries: the fixed digits and Fashion-MNIST presets and every derived plan
(settings, epochs, estimates, the printed lines, the re-split epochs) equal those recorded in
tests/data/zoo_plans.json (tests/zoo_plan_record.py wrote it from the code before the table)."""

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from genmodels.zoo import ENTRIES, PRESETS, derive_plan, rescaled_epochs

RECORDED = json.loads((Path(__file__).parent / "data" / "zoo_plans.json").read_text())


def test_the_fixed_presets_are_the_recorded_ones():
    assert {data: {n: asdict(p) for n, p in presets.items()} for data, presets in PRESETS.items()} == RECORDED["fixed"]
    for presets in PRESETS.values():
        assert list(presets) == [entry.name for entry in ENTRIES]


@pytest.mark.parametrize("case", RECORDED["plans"], ids=lambda c: "-".join(map(str, c["args"])).replace(" ", ""))
def test_a_derived_plan_is_the_recorded_one(case):
    shape, n_train, n_test, budget, labelled, speed = case["args"]
    plan = derive_plan(tuple(shape), n_train, n_test, budget, labelled, speed)
    assert list(plan.presets) == list(case["presets"])  # the order the zoo trains them in
    assert {n: asdict(p) for n, p in plan.presets.items()} == case["presets"]
    assert plan.evaluate == case["evaluate"] and plan.budget == case["budget"]
    assert plan.feature_epochs == case["feature_epochs"]
    assert (plan.seconds, plan.train_seconds, plan.epoch_seconds) == (
        case["seconds"], case["train_seconds"], case["epoch_seconds"])  # exact floats: the same sums in the same order
    assert list(plan.seconds) == list(case["seconds"]) and plan.lines() == case["lines"]
    spent = {"gan": plan.train_seconds["gan"] * 1.7}
    assert {n: rescaled_epochs(plan, n, plan.budget * 60 * 0.6, spent) for n in case["rescaled"]} == case["rescaled"]
