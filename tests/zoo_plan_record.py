"""Writes tests/data/zoo_plans.json: the zoo's fixed presets and derived plans for several shapes, budgets and
speeds, as recorded from the code before the zoo became a table of entries (tests/test_zoo_plan.py compares).
Run: PYTHONPATH=src python tests/zoo_plan_record.py > tests/data/zoo_plans.json"""

import json
from dataclasses import asdict

from genmodels.zoo import PRESETS, derive_plan, rescaled_epochs

SHAPES = [((1, 8, 8), 1437, 360), ((1, 28, 28), 60_000, 10_000), ((3, 32, 32), 50_000, 10_000),
          ((1, 12, 12), 300, 80), ((3, 16, 16), 40, 12), ((1, 1, 3), 500, 100), ((4, 64, 48), 2000, 500)]
CASES = [(0.05, True, 1.0), (1, True, 1.0), (10, True, 1.0), (10, False, 2.5), (45, True, 0.3), (240, False, 1.0)]


def plans() -> list[dict]:
    out = []
    for shape, n_train, n_test in SHAPES:
        for budget, labelled, speed in CASES:
            plan = derive_plan(shape, n_train, n_test, budget, labelled, speed)
            spent = {"gan": plan.train_seconds["gan"] * 1.7}
            out.append({"args": [list(shape), n_train, n_test, budget, labelled, speed],
                        "presets": {n: asdict(p) for n, p in plan.presets.items()}, "evaluate": plan.evaluate,
                        "seconds": plan.seconds, "budget": plan.budget, "feature_epochs": plan.feature_epochs,
                        "train_seconds": plan.train_seconds, "epoch_seconds": plan.epoch_seconds,
                        "lines": plan.lines(),
                        "rescaled": {n: rescaled_epochs(plan, n, plan.budget * 60 * 0.6, spent)
                                     for n in plan.presets if n in plan.train_seconds and n != "gan"}})
    return out


if __name__ == "__main__":
    fixed = {data: {n: asdict(p) for n, p in presets.items()} for data, presets in PRESETS.items()}
    # One plan a line: a change shows as the lines of the plans it touched.
    print('{"fixed": ' + json.dumps(fixed) + ',\n "plans": [\n' + ",\n".join(map(json.dumps, plans())) + "]}")
