"""The lesson on greedy layer-wise pretraining (`greedy-pretraining`): a stacked denoising autoencoder pretrained
layer by layer, then fine-tuned on few labels, against the same network from random initialisation."""

from __future__ import annotations

from typing import cast

import torch

from ..data import load_data, write_idx
from ..dataset import Dataset, DataSplits
from ..errors import GenmodelsError
from ..models import StackedDenoisingAutoEncoder
from .lesson import Context, Lesson, Outcome
from .pictures import line_plot

PER_CLASS, SEEDS = (10, 50), (0, 1, 2)
NETWORK = {"layers": [128, 64, 8], "corrupt": ["mask:0.25"], "finetune": "supervised"}
PRETRAIN_EPOCHS = 50
TRAIN = {"epochs": 200, "batch_size": 32, "lr": 2e-3}


def _labelled(ctx: Context, per_class: int) -> DataSplits:
    """The first `per_class` training images of each class (in a seeded order) beside the whole test split,
    written once as an IDX folder in the lesson's folder, so the runs name data every command can load."""
    train = ctx.data.train
    if train.labels is None:
        raise GenmodelsError("greedy-pretraining needs labelled training images; give --data with labels.")
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(ctx.seed))
    labels = train.labels[order]
    rows = torch.cat([order[labels == c][:per_class] for c in labels.unique().tolist()])
    wanted = train.labels[rows]
    subset = DataSplits(Dataset(train.batch(rows), wanted, f"{per_class} per class"), ctx.data.test,
                        f"{ctx.data.source}, {per_class} labels per class")
    folder = ctx.folder / f"data-{per_class}-per-class"
    if not folder.exists():
        write_idx(subset, folder)
    loaded = load_data(str(folder))
    kept = loaded.train.batch(slice(0, len(loaded.train)))
    same = (len(loaded.train) == len(rows) and len(loaded.test) == len(ctx.data.test)
            and loaded.train.labels is not None and torch.equal(loaded.train.labels, wanted)
            and float((kept - subset.train.images).abs().max()) <= 0.5 / 255 + 1e-6)  # IDX keeps bytes
    if not same:
        raise GenmodelsError(f"{folder} holds other images than the lesson's subset; remove it and run again.")
    return loaded


def _test_error(ctx: Context, model: StackedDenoisingAutoEncoder, data: DataSplits) -> float:
    test = data.test
    with torch.no_grad():
        return model.evaluate(test.batch(slice(0, len(test))), test.labels)["test_error"]


def greedy_pretraining(ctx: Context) -> Outcome:
    errors: dict[str, list[list[float]]] = {"pretrained": [], "random": []}
    for n in PER_CLASS:
        data = _labelled(ctx, n)
        for name, pretrain in (("pretrained", PRETRAIN_EPOCHS), ("random", 0)):
            runs = [ctx.train(f"{name}-{n}-seed{s}", StackedDenoisingAutoEncoder.family,
                              {**NETWORK, "pretrain_epochs": pretrain}, {**TRAIN, "seed": s}, data=data)
                    for s in SEEDS]
            errors[name].append([_test_error(ctx, cast(StackedDenoisingAutoEncoder, r.model.eval()), data)
                                 for r in runs])
    means = {k: [sum(v) / len(v) for v in per_n] for k, per_n in errors.items()}
    spread = {k: [float(torch.tensor(v).std()) for v in per_n] for k, per_n in errors.items()}
    picture = line_plot(ctx.picture("error"), PER_CLASS, {f"{k} (mean of {len(SEEDS)} seeds)": (means[k], spread[k])
                                                           for k in errors},
                        "labels per class", "test error", log_x=True)
    numbers = {"labels_per_class": list(PER_CLASS), "seeds": list(SEEDS),
               **{f"{k}_test_error": [[round(e, 4) for e in v] for v in per_n] for k, per_n in errors.items()},
               **{f"{k}_mean_test_error": [round(e, 4) for e in v] for k, v in means.items()}}
    wins = [p < r for p, r in zip(means["pretrained"], means["random"])]
    reason = "; ".join(f"{n} labels per class: {p:.3f} pretrained against {r:.3f} from random initialisation"
                       for n, p, r in zip(PER_CLASS, means["pretrained"], means["random"]))
    return Outcome(numbers, all(wins), reason, [("test error against labels per class (bars: std over seeds)",
                                                 picture)])


LESSONS = (
    Lesson("greedy-pretraining",
           "Greedy layer-wise denoising pretraining, then supervised fine-tuning, classifies better than the same "
           "network trained from random initialisation when labels are few.",
           "Vincent et al. 2010, Stacked denoising autoencoders, section 7",
           f"The mean test error over {len(SEEDS)} seeds is lower with pretraining than without, at both "
           f"{' and '.join(map(str, PER_CLASS))} labels per class.",
           f"A stacked denoising autoencoder 64-128-64-8 with a softmax head: {PRETRAIN_EPOCHS} denoising epochs per "
           "layer then supervised fine-tuning, against no pretraining, on the labelled subset (the family pretrains "
           "on the images it fine-tunes on, so pretraining here sees the labelled images only).",
           greedy_pretraining, seconds=100),
)
