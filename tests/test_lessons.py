"""genmodels lessons: each measurement on a constructed case whose answer is known, the lessons' record and page,
and the command line (--list, --only, a misspelt lesson)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from genmodels import cli
from genmodels.errors import ConfigError
from genmodels.lessons import LESSONS, Lesson, Outcome, choose, run
from genmodels.lessons.measures import (
    agreement,
    generator_gradient_norms,
    gradient_estimates,
    iw_bounds,
    principal_angles,
    total_variance,
)
from genmodels.lessons.pictures import image_rows
from genmodels.runs import load_run

# -- the measurements ------------------------------------------------------------------------------------------


def test_principal_angles_are_zero_for_one_subspace_in_two_bases_and_ninety_for_orthogonal_ones():
    torch.manual_seed(0)
    basis = torch.randn(20, 4, dtype=torch.float64)
    mixed = basis @ torch.randn(4, 4, dtype=torch.float64)  # the same span, another (non-orthogonal) basis
    assert principal_angles(basis, mixed).max() < 1e-4  # degrees: arccos near 1 keeps about 1e-6
    eye = torch.eye(20)
    assert torch.allclose(principal_angles(eye[:, :4], eye[:, 4:8]), torch.full((4,), 90.0, dtype=torch.float64))
    # one shared direction and one at 30 degrees: the angles, smallest first
    c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
    tilted = torch.stack([eye[:, 0], c * eye[:, 1] + s * eye[:, 2]], 1)
    assert principal_angles(eye[:, :2], tilted).tolist() == pytest.approx([0.0, 30.0], abs=1e-6)


def _gaussian_case(kind: str, repeats: int = 4000):
    """E_{z ~ N(mu, exp(logvar))}[-(z - a)^2] = -(mu - a)^2 - exp(logvar): gradient -2(mu - a) over mu and
    -exp(logvar) over logvar."""
    mu = torch.tensor([[0.5, -1.0]], requires_grad=True)
    logvar = torch.tensor([[0.2, -0.5]], requires_grad=True)
    a = torch.tensor([[1.5, 0.0]])
    found = gradient_estimates([mu, logvar], lambda: (mu, logvar), lambda z: -(z - a).pow(2).sum(1), repeats, kind)
    exact = torch.cat([(-2 * (mu - a)).flatten(), (-logvar.exp()).flatten()]).detach().double()
    return found, exact


@pytest.mark.parametrize("kind", ["reparameterised", "score-function"])
def test_both_gradient_estimators_are_unbiased_on_a_gaussian_with_a_closed_form_gradient(kind):
    found, exact = _gaussian_case(kind)
    stderr = found.std(0) / math.sqrt(found.shape[0])
    assert ((found.mean(0) - exact).abs() < 4 * stderr).all(), (found.mean(0), exact, stderr)


def test_the_score_function_estimator_varies_more_and_agrees_with_the_reparameterised_one():
    rep, exact = _gaussian_case("reparameterised")
    score, _ = _gaussian_case("score-function")
    assert total_variance(score) > 5 * total_variance(rep)
    assert agreement(rep, score) == 1.0
    assert agreement(rep, rep + 1.0) == 0.0  # shifted by far more than the standard errors


def test_an_unknown_estimator_is_refused():
    with pytest.raises(ValueError, match="unknown gradient estimator"):
        gradient_estimates([], lambda: (torch.zeros(1, 1), torch.zeros(1, 1)), lambda z: z.sum(1), 1, "pathwise")


def test_the_iw_bound_rises_with_k_to_log_p_x_on_a_linear_gaussian():
    # p(z) = N(0, 1), p(x|z) = N(z, 1): p(x) = N(0, 2); q(z|x) = N(x/2, 1), wider than the true posterior N(x/2, 1/2)
    x = torch.tensor([0.7, -1.2, 2.0])

    def bound(k):
        z = x / 2 + torch.randn(k, len(x))
        log_w = (-0.5 * (x - z) ** 2 - 0.5 * z ** 2 - math.log(2 * math.pi)) - (-0.5 * (z - x / 2) ** 2
                                                                                - 0.5 * math.log(2 * math.pi))
        return torch.logsumexp(log_w, 0) - math.log(k)

    found = iw_bounds(bound, (1, 10, 1000), repeats=20)
    log_px = float((-0.25 * x ** 2 - 0.5 * math.log(4 * math.pi)).mean())
    assert found[1][0] < found[10][0] < found[1000][0] <= log_px + 3 * found[1000][1]
    assert found[1000][0] == pytest.approx(log_px, abs=0.01)
    # the K = 1 bound is the ELBO: log p(x) - KL(q || p(z|x)), KL(N(m, 1) || N(m, 1/2)) = (ln 0.5 + 2 - 1) / 2
    assert found[1][0] == pytest.approx(log_px - (math.log(0.5) + 1) / 2, abs=4 * found[1][1] + 1e-3)


@pytest.mark.parametrize("bias, minimax_smaller", [(-9.0, True), (9.0, False)])
def test_the_minimax_gradient_vanishes_where_d_rejects_the_samples(bias, minimax_smaller):
    torch.manual_seed(0)
    generator, discriminator = nn.Linear(4, 6), nn.Sequential(nn.Linear(6, 1), nn.Flatten(0))
    with torch.no_grad():
        discriminator[0].weight.mul_(0.1)
        discriminator[0].bias.fill_(bias)  # D(G(z)) near 0 (rejected) or near 1 (accepted), by construction
    found = generator_gradient_norms(generator, discriminator, torch.randn(32, 4))
    if minimax_smaller:
        assert found["d_fake"] < 1e-3
        assert found["non-saturating"] > 1000 * found["minimax"]
    else:
        assert found["d_fake"] > 1 - 1e-3
        assert found["minimax"] > 1000 * found["non-saturating"]


# -- choosing, listing, the record -----------------------------------------------------------------------------

def test_only_keeps_the_catalogues_order_and_refuses_a_misspelt_or_waiting_lesson(monkeypatch):
    assert [lesson.name for lesson in choose("minimax-saturates,linear-ae-spans-pca")] == [
        "linear-ae-spans-pca", "minimax-saturates"]
    with pytest.raises(ConfigError, match="did you mean linear-ae-spans-pca"):
        choose("linear-ae-span")
    monkeypatch.setattr(run, "LESSONS", {**LESSONS, "later": run._waiting("later", "a later issue")})
    with pytest.raises(ConfigError, match="waits for a later issue"):
        choose("later")
    with pytest.raises(ConfigError, match="names no lesson"):
        choose(" , ")


def test_the_catalogue_holds_the_issues_sixteen_lessons_and_every_built_one_is_complete():
    assert len(LESSONS) == 16
    for lesson in LESSONS.values():  # all sixteen built: none waits
        assert lesson.run is not None and lesson.waits_for is None, lesson.name
        assert lesson.statement and lesson.paper and lesson.criterion and lesson.experiment, lesson.name


def test_list_names_every_lesson_as_runnable_with_its_statement_and_time(capsys):
    assert cli.main(["lessons", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in LESSONS) and "waits for" not in out
    assert re.search(r"modes-vs-blur\s+On data with separated modes, .* \(~\d+ s\)", out)
    assert re.search(r"bayes-rule\s+A class-conditional VAE is a classifier by Bayes' rule.* \(~\d+ s\)", out)


def test_list_says_what_a_waiting_lesson_waits_for(monkeypatch):
    monkeypatch.setattr(run, "LESSONS", {**LESSONS, "later": run._waiting("later", "a later issue")})
    assert re.search(r"later\s+waits for a later issue", run.listing())


def test_a_misspelt_lesson_is_one_sentence_with_the_closest_name(capsys, tmp_path):
    assert cli.main(["lessons", "--out", str(tmp_path / "l"), "--only", "elbo-is-bound"]) == 2
    err = capsys.readouterr().err
    assert "did you mean elbo-is-a-bound?" in err and "Traceback" not in err
    assert not (tmp_path / "l").exists()


def test_a_budget_that_is_not_positive_is_refused(capsys, tmp_path):
    assert cli.main(["lessons", "--out", str(tmp_path / "l"), "--budget", "0"]) == 2
    assert "--budget must be a positive number of minutes" in capsys.readouterr().err


def _stub(ctx):
    picture = image_rows([torch.rand(3, 1, 8, 8)], ctx.picture("stub"))
    return Outcome({"value": 1.5, "list": [1, 2]}, False, "the stub measured 1.5", [("a stub's picture", picture)])


def test_lessons_json_holds_exactly_the_issues_fields_and_the_page_shows_each_part(tmp_path, monkeypatch):
    stub = Lesson("stub", "A stub states.", "Nobody 2026", "The value is 2.", "Measure it.", _stub, seconds=1)
    monkeypatch.setattr(run, "LESSONS", {"stub": stub, "later": run._waiting("later", "2-D data, later")})
    page, records = run.run_lessons(tmp_path / "out", log=lambda _: None)
    on_disk = json.loads((tmp_path / "out" / "lessons.json").read_text())
    assert on_disk == records
    assert set(on_disk) == {"stub"}
    entry = on_disk["stub"]
    assert set(entry) == {"statement", "criterion", "verdict", "numbers", "runs", "command"}
    assert entry["verdict"] == "does not hold" and entry["numbers"] == {"value": 1.5, "list": [1, 2]}
    assert entry["command"] == f"genmodels lessons --out {tmp_path / 'out'} --only stub"
    html = page.read_text()
    for part in ("A stub states.", "Nobody 2026", "The value is 2.", "Measure it.", "does not hold here",
                 "the stub measured 1.5", "data:image/png;base64,", "waits for 2-D data"):
        assert part in html, part
    assert "http" not in html.replace("http-equiv", "")  # nothing fetched: offline


@pytest.mark.slow  # headless Chromium
def test_the_lessons_page_renders_in_headless_chromium_with_every_picture(tmp_path, monkeypatch):
    import shutil
    import subprocess

    browser = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
                   None)
    if browser is None:
        pytest.skip("chromium is not installed (make test installs it as root with apt-get: apt-get install chromium)")
    stub = Lesson("stub", "A stub states.", "Nobody 2026", "The value is 2.", "Measure it.", _stub, seconds=1)
    monkeypatch.setattr(run, "LESSONS", {"stub": stub, "other": Lesson("other", "B.", "C", "D", "E", _stub)})
    page, _ = run.run_lessons(tmp_path / "out", log=lambda _: None)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--virtual-time-budget=5000"]
    dom = subprocess.run([browser, *flags, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                          page.resolve().as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert 'data-images-loaded="2/2"' in dom, re.findall(r"data-images-loaded=\"[^\"]*\"", dom)
    assert dom.count('<section class="lesson"') == 2


def test_a_short_budget_scales_every_lessons_epochs_and_the_command_repeats_that_scale(tmp_path, monkeypatch):
    seen = {}

    def measure(ctx):
        seen[ctx.lesson] = (ctx.scale, ctx.epochs(100), ctx.epochs(1))
        return _stub(ctx)

    lessons = {"a": Lesson("a", "S.", "P", "C", "E", measure, seconds=60),
               "b": Lesson("b", "S.", "P", "C", "E", measure, seconds=60)}
    monkeypatch.setattr(run, "LESSONS", lessons)
    _, records = run.run_lessons(tmp_path / "out", budget=1.0, log=lambda _: None)  # 120 s of lessons in 60 s
    assert seen == {"a": (0.5, 50, 1), "b": (0.5, 50, 1)}
    assert records["a"]["command"].endswith("--only a --budget 0.5")  # alone, 0.5 minutes give the same scale
    _, records = run.run_lessons(tmp_path / "out", only="a", budget=0.5, log=lambda _: None)
    assert seen["a"] == (0.5, 50, 1)
    run.run_lessons(tmp_path / "out", budget=15, log=lambda _: None)
    assert seen["a"][0] == 1.0 and "--budget" not in json.loads((tmp_path / "out" / "lessons.json").read_text())[
        "a"]["command"]


# -- end to end --------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_two_lessons_run_through_the_command_line_into_real_runs(tmp_path, capsys):
    out = tmp_path / "lessons"
    assert cli.main(["lessons", "--out", str(out), "--only", "linear-ae-spans-pca,elbo-is-a-bound",
                     "--budget", "0.02"]) == 0
    printed = capsys.readouterr().out
    records = json.loads((out / "lessons.json").read_text())
    assert list(records) == ["linear-ae-spans-pca", "elbo-is-a-bound"]
    for name, entry in records.items():
        assert entry["verdict"] in ("holds", "does not hold") and f"{name}  " in printed
        assert "--budget" in entry["command"]  # the short budget is part of what repeats it
        for run_dir in entry["runs"]:
            assert load_run(run_dir).model is not None  # a run directory every other command reads
    angles = records["linear-ae-spans-pca"]["numbers"]["principal_angles_degrees"]
    assert len(angles) == 8 and all(0 <= a <= 90 for a in angles)
    bounds = records["elbo-is-a-bound"]["numbers"]["bound_by_k"]
    assert list(bounds) == ["1", "10", "100", "1000", "5000"]
    assert (out / "lessons.html").read_text().count("class=lesson id=") == 2


def test_the_jacobian_norm_of_a_linear_encoder_is_its_weights_frobenius_norm():
    from genmodels.lessons.regularised import _jacobian_norms

    class Linear(nn.Module):
        def __init__(self):
            super().__init__()
            self.map = nn.Linear(6, 3)

        def encode(self, x):
            return self.map(x.flatten(1))

    model = Linear()
    norms = _jacobian_norms(model, torch.rand(5, 1, 2, 3))
    assert torch.allclose(norms, model.map.weight.norm().detach().expand(5))


def test_off_data_inputs_are_noise_and_the_same_pixels_shuffled():
    from genmodels.lessons.regularised import _off_data

    x = torch.rand(4, 1, 8, 8)
    off = _off_data(x, seed=0)
    assert off["noise"].shape == x.shape and not torch.equal(off["shuffled"], x)
    assert torch.equal(off["shuffled"].flatten(1).sort(1).values, x.flatten(1).sort(1).values)
    assert torch.equal(_off_data(x, seed=0)["noise"], off["noise"])  # seeded


# -- the context: real runs, reused, repeatable by their commands -------------------------------------------------

def test_a_lessons_model_is_a_real_run_reused_by_a_later_lesson_and_its_command_parses(tmp_path):
    import shlex

    from genmodels.data import load_data
    from genmodels.flags import collected, family_flags
    from genmodels.lessons import Context
    from genmodels.lessons.lesson import train_command
    from genmodels.models import PCA, AutoEncoder

    shared: dict = {}
    first = Context(tmp_path, "one", load_data("digits"), shared=shared, log=lambda _: None)
    run_a = first.train("a", PCA.family, {"latent_dim": 2}, {"epochs": 1})
    later = Context(tmp_path, "two", first.data, shared=shared, log=lambda _: None)
    run_b = later.train("b", PCA.family, {"latent_dim": 2}, {"epochs": 1})
    assert run_b.run_dir == run_a.run_dir == tmp_path / "one" / "a" and not (tmp_path / "two" / "b").exists()
    assert later.runs == [run_a.run_dir] and load_run(run_a.run_dir).model.latent_dim == 2
    command = shlex.split(first.commands[0])
    assert command[:5] == ["genmodels", "train", PCA.family, "--out", str(run_a.run_dir)]
    args = cli.build_parser().parse_args(command[1:])
    assert collected(args, family_flags(PCA.family))["model"]["latent_dim"] == 2
    # an empty list (no hidden layer) is typed as an empty word, which the flag reads back as []
    model = {"hidden": [], "code_activation": "sigmoid", "corrupt": ["mask:0.25"]}
    train = {"epochs": 3, "lr_schedule": "cosine", "betas": (0.5, 0.9)}
    words = shlex.split(train_command(AutoEncoder.family, model, train, "digits", tmp_path))
    values = collected(cli.build_parser().parse_args(words[1:]), family_flags(AutoEncoder.family))
    assert {k: values["model"][k] for k in model} == model
    assert {k: values["train"][k] for k in train} == train


def test_the_labelled_subset_has_n_images_per_class_and_is_written_once(tmp_path):
    from genmodels.data import load_data
    from genmodels.lessons import Context
    from genmodels.lessons.pretraining import _labelled

    ctx = Context(tmp_path, "greedy", load_data("digits"), log=lambda _: None)
    subset = _labelled(ctx, 3)
    assert torch.bincount(subset.train.labels).tolist() == [3] * 10
    assert len(subset.test) == len(ctx.data.test)
    again = _labelled(ctx, 3)  # the folder is there: read back and checked, not rewritten
    assert torch.equal(again.train.labels, subset.train.labels)


# -- modes-vs-blur and bayes-rule -----------------------------------------------------------------------------------

def test_a_sampler_covering_exactly_five_of_rings_eight_modes_counts_five_through_the_lessons_measure():
    from genmodels.lessons.classes import mode_numbers, modes_verdict
    from genmodels.toy import TOYS

    ring = TOYS["ring8"]
    gen = torch.Generator().manual_seed(0)
    on_modes = ring.centre_points[torch.arange(4000) % 5] + ring.std * torch.randn(4000, 2, generator=gen).double()
    between = 0.5 * (ring.centre_points[5] + ring.centre_points[6]) + 0.01 * torch.randn(1000, 2, generator=gen)
    found = mode_numbers(torch.cat([on_modes, between]).float(), ring)
    assert found["modes_covered"] == 5 and found["modes_total"] == 8
    # within 3 std of a 2-D isotropic Gaussian's centre: 1 - exp(-9/2) of its points; none of those between modes
    assert found["high_quality_share"] == pytest.approx(0.8 * (1 - math.exp(-4.5)), abs=0.01)
    # the verdict: the VAE must cover every mode, and the GAN be the more often on one
    vae = {"modes_covered": 8, "modes_total": 8, "high_quality_share": 0.37}
    assert modes_verdict({**found, "high_quality_share": 0.9}, vae)
    assert not modes_verdict(found, found)  # the "VAE" dropping three modes
    assert not modes_verdict({**found, "high_quality_share": 0.3}, vae)  # the GAN blurrier than the VAE


def test_the_bayes_lessons_verdict_on_constructed_accuracies():
    from genmodels.lessons.classes import WITHIN, bayes_verdict

    assert bayes_verdict(0.98, 0.97, 10)  # above the probe
    assert bayes_verdict(0.97 - WITHIN + 0.001, 0.97, 10)  # just within
    assert not bayes_verdict(0.97 - WITHIN - 0.001, 0.97, 10)  # just beyond
    assert not bayes_verdict(0.19, 0.1, 10)  # within of a poor probe, but under twice chance


def test_a_toy_lessons_train_command_carries_its_toy_size():
    from genmodels.lessons.lesson import train_command

    tmp = Path("/r/gan")
    words = train_command("gan", {}, {"epochs": 40}, "ring8", tmp, 10_000)
    assert "--data ring8 --toy-size 10000" in words and str(tmp) in words
    assert "--toy-size" not in train_command("gan", {}, {"epochs": 40}, "digits", tmp)
