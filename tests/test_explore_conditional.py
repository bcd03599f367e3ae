"""The explorer on conditional runs (issue 30): every decode is under the class a request names (the run's commonest
class when it names none) and equals the model's own decode_with / sample(labels=) for that class; one code decoded
under every class at once (the page's "same code, every class" row); bad classes refused in one sentence. Then the
page in headless Chromium, in one browser session, for a conditional run and for vector runs
(tests/test_explore_vectors.py's)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import shutil
import threading
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from genmodels import build_run_config, load_run, train
from genmodels.explore import bind, load_runs
from genmodels.explore.latent import fit_image
from genmodels.explore.server import Explorer, build_app
from test_explore import ARTIFACTS, _browser, _until
from test_explore_vectors import vector_runs  # noqa: F401  (a fixture: the vector runs the page shows too)
from test_hostile_explorer import _call


@pytest.fixture(scope="module")
def conditional_runs(tmp_path_factory, digits):
    """A conditional VAE (2-d code) and a conditional MLP GAN on digits, a second or so each."""
    root = tmp_path_factory.mktemp("explore-conditional")
    configs = {"cvae": {"family": "vae", "model": {"latent_dim": 2, "hidden": [32], "conditional": True},
                        "train": {"epochs": 2, "lr": 3e-3}},
               "cgan": {"family": "gan", "model": {"latent_dim": 4, "arch": "mlp", "hidden": [32], "conditional": True},
                        "train": {"epochs": 1}}}
    with warnings.catch_warnings():  # so short a training warns that its samples look alike: true, not tested here
        warnings.simplefilter("ignore", RuntimeWarning)
        for name, values in configs.items():
            train(build_run_config(values), root / name, progress=False, data=digits)
    return {name: root / name for name in configs}


@pytest.fixture(scope="module")
def app(conditional_runs):
    explorer = Explorer(load_runs(list(conditional_runs.values())))
    yield build_app(explorer), {r.name: r for r in explorer.runs.values()}
    explorer.pool.shutdown()


def _post(app, key: str, route: str, body: dict) -> tuple[int, dict]:
    headers = {"content-type": "application/json"}
    return _call(app, "POST", f"/api/runs/{key}/{route}", headers, json.dumps(body).encode())


def _pixels(urls: list[str]) -> np.ndarray:
    out = []
    for url in urls:
        with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as im:
            out.append(np.asarray(im).astype(int))
    return np.stack(out)


def _as_pixels(x: torch.Tensor) -> np.ndarray:
    return (x.clamp(0, 1) * 255).round()[:, 0].numpy().astype(int)


def _decoded(run_dir, codes, labels) -> np.ndarray:
    model = load_run(run_dir).model
    with torch.inference_mode():
        return _as_pixels(model.decode_with(torch.tensor(codes), torch.tensor(labels)))


def test_a_conditional_run_names_its_classes_and_decodes_under_its_commonest_by_default(app, conditional_runs):
    asgi, runs = app
    status, answer = _call(asgi, "GET", "/api/runs")
    info = {r["name"]: r for r in answer["runs"]}
    counts = json.loads((conditional_runs["cvae"] / "config.json").read_text())["model"]["class_counts"]
    assert status == 200 and info["cvae"]["classes"] == [str(k) for k in range(10)]
    assert info["cvae"]["label"] == info["cgan"]["label"] == counts.index(max(counts))
    code = [[0.4, -0.7]]
    status, plain = _post(asgi, runs["cvae"].key, "decode", {"targets": [{"code": code[0]}]})
    assert status == 200
    assert np.array_equal(_pixels(plain["images"]), _decoded(conditional_runs["cvae"], code, [info["cvae"]["label"]]))


def test_the_class_asked_for_changes_the_image_and_is_the_models_decode_under_it(app, conditional_runs):
    """One code under every class (the page's row): each image is decode_with under that class, and they differ."""
    asgi, runs = app
    code = [0.4, -0.7]
    status, answer = _post(asgi, runs["cvae"].key, "decode", {"targets": [{"code": code}] * 10,
                                                              "labels": list(range(10))})
    assert status == 200
    got = _pixels(answer["images"])
    assert np.array_equal(got, _decoded(conditional_runs["cvae"], [code] * 10, list(range(10))))
    assert len({g.tobytes() for g in got}) == 10  # the class changes the image
    # a test image's code is its encoding given its own label, then decoded under the class asked for
    status, one = _post(asgi, runs["cvae"].key, "decode", {"targets": [{"index": 7}], "labels": [3]})
    test = runs["cvae"].run.data.test
    model = load_run(conditional_runs["cvae"]).model
    with torch.inference_mode():
        z = model.encode_with(test.batch(slice(7, 8)), test.labels[7:8])
    np.testing.assert_allclose(one["codes"], z.numpy(), rtol=1e-5, atol=1e-6)
    assert np.array_equal(_pixels(one["images"]), _decoded(conditional_runs["cvae"], z.tolist(), [3]))


def test_samples_and_walks_of_a_class_are_model_sample_with_that_label(app, conditional_runs):
    asgi, runs = app
    status, answer = _post(asgi, runs["cgan"].key, "sample", {"seed": 9, "n": 5, "label": 6})
    model = load_run(conditional_runs["cgan"]).model
    with torch.inference_mode():
        expected = model.sample(5, generator=torch.Generator().manual_seed(9), labels=torch.full((5,), 6))
    assert status == 200 and np.array_equal(_pixels(answer["images"]), _as_pixels(expected))
    a, b = answer["codes"][0], answer["codes"][4]
    status, walk = _post(asgi, runs["cgan"].key, "interpolate", {"a": {"code": a}, "b": {"code": b}, "steps": 3,
                                                                 "label": 6})
    assert status == 200 and np.array_equal(_pixels(walk["images"])[[0, 2]], _as_pixels(expected)[[0, 4]])


def test_an_uploaded_image_is_encoded_and_decoded_under_the_class_asked_for(app, conditional_runs):
    asgi, runs = app
    digit = np.zeros((16, 16), np.uint8)
    digit[2:14, 7:9] = 255
    buffer = io.BytesIO()
    Image.fromarray(digit).save(buffer, format="PNG")
    status, answer = _call(asgi, "POST", f"/api/runs/{runs['cvae'].key}/upload", {"content-type": "image/png"},
                           buffer.getvalue())
    assert status == 200  # no class: the default one
    sent = _upload(asgi, f"/api/runs/{runs['cvae'].key}/upload", buffer.getvalue(), "label=1")
    model = load_run(conditional_runs["cvae"]).model
    with torch.inference_mode():
        z = model.encode_with(fit_image(digit, (1, 8, 8)), torch.tensor([1]))
    np.testing.assert_allclose(sent["code"], z[0].numpy(), rtol=1e-5, atol=1e-6)
    assert np.array_equal(_pixels([sent["image"]]), _decoded(conditional_runs["cvae"], z.tolist(), [1]))


def _upload(asgi, path: str, body: bytes, query: str) -> dict:
    """An upload with a query string (_call sends none)."""
    sent = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "http_version": "1.1", "method": "POST", "path": path, "raw_path": path.encode(),
             "root_path": "", "scheme": "http", "query_string": query.encode(), "server": ("127.0.0.1", 8000),
             "client": ("127.0.0.1", 50000), "headers": [(b"content-type", b"image/png")]}
    asyncio.run(asgi(scope, receive, send))
    assert next(m for m in sent if m["type"] == "http.response.start")["status"] == 200
    return json.loads(b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"))


def test_a_class_the_run_does_not_have_gets_one_sentence(app):
    asgi, runs = app
    key = runs["cvae"].key
    status, answer = _post(asgi, key, "decode", {"targets": [{"code": [0.0, 0.0]}], "labels": [10]})
    assert status == 400 and answer["error"] == "Class 10 is outside the cvae run's classes 0..9; pick one of those."
    status, answer = _post(asgi, key, "decode", {"targets": [{"code": [0.0, 0.0]}] * 3, "labels": [1, 2]})
    assert status == 400 and answer["error"] == "2 labels were sent for 3 codes; send one for all or one each."
    status, answer = _post(asgi, runs["cgan"].key, "sample", {"seed": 0, "label": 12})
    assert status == 400 and "Class 12 is outside" in answer["error"]


# -- the page in a real browser: one session, a conditional run and vector runs -------------------------------------
@pytest.fixture(scope="module")
def page(conditional_runs, vector_runs):  # noqa: F811  (vector_runs is the fixture imported above)
    """The explorer's app on a free port in this process (the runs load once; no second interpreter to start)."""
    import uvicorn

    explorer = Explorer(load_runs([conditional_runs["cvae"], *vector_runs.values()]))
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(build_app(explorer), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    _until(lambda: server.started, "the explorer to start")
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    server.should_exit = True
    thread.join(timeout=10)
    explorer.pool.shutdown()
    sock.close()


@pytest.mark.slow  # headless Chromium
def test_the_page_shows_classes_and_vectors_in_headless_chromium(page, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    d = _browser()
    try:
        d.get(page)
        js = d.execute_script
        _until(lambda: js("return document.body.dataset.ready") == "1", "the page to load its runs")
        idle = lambda: js("return document.body.dataset.pending") == "0"  # noqa: E731
        shown = lambda css: [e for e in d.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()]  # noqa: E731
        srcs = lambda css: [i.get_attribute("src") for i in d.find_elements(By.CSS_SELECTOR, css)]  # noqa: E731
        status = lambda: d.find_element(By.ID, "status").text  # noqa: E731

        def choose(name):
            select = Select(d.find_element(By.ID, "run"))
            select.select_by_visible_text(next(o.text for o in select.options if o.text.startswith(name + " ")))
            _until(lambda: idle() and d.find_element(By.ID, "currentnote").text.startswith("Current code"), name)

        # The conditional run: a class selector of its ten classes, and the current code under every class.
        _until(lambda: idle() and len(srcs("#every img")) == 10, "the same code under every class")
        klass = Select(d.find_element(By.ID, "klass"))
        assert [o.text for o in klass.options] == [str(k) for k in range(10)]
        row = srcs("#every img")
        captions = [c.text for c in d.find_elements(By.CSS_SELECTOR, "#every figcaption")]
        assert captions == [str(k) for k in range(10)] and len(set(row)) == 10
        klass.select_by_value("3")  # the decoded image becomes the row's image for class 3
        _until(lambda: idle() and srcs("#decoded img")[0] == row[3], "the decoded image under class 3")
        assert d.find_element(By.CSS_SELECTOR, "#every figure.chosen figcaption").text == "3"
        d.find_elements(By.CSS_SELECTOR, "#every figure")[7].click()  # a click on the row chooses that class
        _until(lambda: idle() and srcs("#decoded img")[0] == row[7] and klass.first_selected_option.text == "7",
               "class 7 chosen from the row")
        d.find_element(By.ID, "sample").click()
        _until(lambda: idle() and len(srcs("#samples img")) == 16, "samples of class 7")
        sevens = srcs("#samples img")
        klass.select_by_value("1")
        _until(lambda: idle() and len(srcs("#samples img")) == 16 and srcs("#samples img") != sevens,
               "the samples drawn again under class 1")
        d.save_screenshot(str(tmp_path / "conditional.png"))

        # A 2-d vector run: the data plane instead of images, no image drop (the status says why), no classes.
        choose("vae")
        assert not shown("#classpick") and not shown("#everybox") and not shown("#ownbox")
        assert "image drop is hidden; click the data plane" in status()
        plane = d.find_element(By.ID, "plane")
        picture = lambda: js("return document.getElementById('plane').toDataURL()")  # noqa: E731
        before = picture()
        ActionChains(d).move_to_element_with_offset(plane, 120, -120).click().perform()
        _until(lambda: idle() and "of the data plane" in d.find_element(By.ID, "currentnote").text, "a plane click")
        assert picture() != before and not shown("#decoded canvas")  # a 2-d output is drawn in the plane itself
        numbers = d.find_element(By.CSS_SELECTOR, "#decoded .numbers").text
        assert numbers.startswith("x1 = ") and ", x2 = " in numbers
        d.find_element(By.ID, "sample").click()
        _until(lambda: idle() and len(d.find_elements(By.CSS_SELECTOR, "#samples canvas")) == 16, "16 samples")
        canvas = d.find_element(By.ID, "map")
        d.find_element(By.ID, "seta").click()
        ActionChains(d).move_to_element_with_offset(canvas, -150, 150).click().perform()
        _until(idle, "a map click")
        d.find_element(By.ID, "setb").click()
        d.find_element(By.ID, "walk").click()
        _until(lambda: idle() and len(d.find_elements(By.CSS_SELECTOR, "#path canvas")) == 10, "the walk")
        d.save_screenshot(str(tmp_path / "vectors.png"))

        # A GAN on 2-d data: no test codes, so its map is a slice of z through the current code; a click there moves
        # the generated point in the data plane.
        choose("gan")
        assert shown("#map") and "slice of its 4-d code" in d.find_element(By.ID, "mapnote").text
        before = picture()
        ActionChains(d).move_to_element_with_offset(d.find_element(By.ID, "map"), 150, -100).click().perform()
        _until(lambda: idle() and "in the slice" in d.find_element(By.ID, "currentnote").text, "a click on the slice")
        assert picture() != before
        sliders = [float(i.get_attribute("value")) for i in d.find_elements(By.CSS_SELECTOR, "#sliders input")]
        assert sliders[0] > 0.5 and sliders[1] > 0.5 and sliders[2:] == [0.0, 0.0]  # the two set, the others kept

        # A 5-d vector run: each output a chart over its columns, its numbers on hover, in the data's units.
        choose("ae")
        assert not shown("#plane")
        chart = _until(lambda: shown("#decoded canvas.vector"), "the decoded vector's chart")[0]
        values = [float(part.split(" = ")[1]) for part in chart.get_attribute("title").split(", ")]
        assert len(values) == 5 and all(60 < v < 180 for v in values)  # about 100 + 10 j: not standardised
        typed = d.find_element(By.ID, "vectorin")  # a vector typed in: encoded, shown beside its reconstruction
        typed.send_keys("100, 110, 120, 130, 140\n")
        _until(lambda: idle() and "your vector" in d.find_element(By.ID, "currentnote").text, "the typed vector")
        captions = [c.text for c in d.find_elements(By.CSS_SELECTOR, "#decoded figcaption")]
        assert captions == ["your vector", "ae"], captions
        assert d.find_element(By.CSS_SELECTOR, "#decoded .numbers").text.startswith("x1 = 100.000, x2 = 110.000")
        assert "error" not in (d.find_element(By.ID, "status").get_attribute("class") or "")
        severe = [e["message"] for e in d.get_log("browser") if e["level"] == "SEVERE"]
        assert not severe, severe
        ARTIFACTS.mkdir(exist_ok=True)
        for name in ("conditional.png", "vectors.png"):
            shutil.copy(tmp_path / name, ARTIFACTS / f"explore-{name}")
    finally:
        d.quit()
