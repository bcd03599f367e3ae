"""`genmodels explore`: the real command serves three tiny runs on a free port; its API decodes what the
models decode, refuses bad requests with one sentence and stays up; the page works in headless Chromium."""

import base64
import hashlib
import http.client
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genmodels import GenmodelsError, build_run_config, load_run, train
from genmodels.explore import bind, load_runs
from genmodels.explore.latent import Projection, fit_image
from genmodels.explore.server import MAX_PENDING, Explorer, RequestError

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="module")
def runs(tmp_path_factory, digits):
    """A 2-d VAE, a 2-d AE (the same code size: side by side) and an 8-d MLP GAN, on digits, in seconds."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("explore")
    configs = {
        "vae": {"family": "vae", "model": {"latent_dim": 2, "hidden": [32]}, "train": {"epochs": 8, "lr": 3e-3}},
        "ae": {"family": "ae", "model": {"latent_dim": 2, "hidden": [32]}, "train": {"epochs": 4, "lr": 3e-3}},
        "gan": {"family": "gan", "model": {"latent_dim": 8, "arch": "mlp", "hidden": [32]}, "train": {"epochs": 1}},
    }
    with warnings.catch_warnings():  # so short a training warns that its samples look alike: true, and not tested here
        warnings.simplefilter("ignore", RuntimeWarning)
        for name, values in configs.items():
            train(build_run_config(values), root / name, progress=False, data=digits)
    torch.set_num_threads(before)
    return {name: root / name for name in configs}


def _fingerprint(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def server(runs):
    """`python -m genmodels explore RUN...` on a free port; yields (host, port, process). On the way out
    it checks the run directories were only read and the process was still alive to be stopped."""
    before = {name: _fingerprint(path) for name, path in runs.items()}
    proc = subprocess.Popen([sys.executable, "-m", "genmodels", "explore", *map(str, runs.values()), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    lines = []
    for line in proc.stdout:  # it prints a line per run loaded, then the address
        lines.append(line)
        if line.startswith("genmodels explore: open"):
            break
    found = re.search(r"http://([\d.]+):(\d+)/", "".join(lines))
    assert found, ("".join(lines), proc.stderr.read() if proc.poll() is not None else "")
    yield found.group(1), int(found.group(2)), proc
    assert proc.poll() is None, "the explorer died during the tests"
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    assert proc.wait(timeout=30) == 0
    stderr = proc.stderr.read()
    assert "Traceback" not in stderr, stderr
    assert {name: _fingerprint(path) for name, path in runs.items()} == before


def _request(server, method, path, body=None, headers=None, raw=False):
    conn = http.client.HTTPConnection(server[0], server[1], timeout=60)
    if body is not None and not isinstance(body, bytes):
        body, headers = json.dumps(body).encode(), {"content-type": "application/json", **(headers or {})}
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data if raw else json.loads(data)


def _keys(server) -> dict:
    status, answer = _request(server, "GET", "/api/runs")
    assert status == 200
    return {r["name"]: r for r in answer["runs"]}


def _pixels(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as im:
        return np.asarray(im).astype(int)


def _expected(model, codes) -> np.ndarray:
    with torch.inference_mode():
        x = model.decode(torch.tensor(codes, dtype=torch.float32))
    return (x.clamp(0, 1) * 255).round()[:, 0].numpy().astype(int)


def _png(pixels: np.ndarray, fmt="PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


# -- the API does the models' work ------------------------------------------------------------------------------
@pytest.mark.slow  # the explorer's server in a subprocess
def test_runs_describe_map_sliders_and_comparable_spaces(server, runs):
    info = _keys(server)
    assert set(info) == {"vae", "ae", "gan"}
    vae, gan = info["vae"], info["gan"]
    model = load_run(runs["vae"]).model
    test = load_run(runs["vae"]).data.test
    assert vae["dim"] == info["ae"]["dim"] == 2 and vae["shape"] == [1, 8, 8]
    assert len(vae["map"]["points"]) == len(vae["map"]["labels"]) == len(test) == vae["map"]["of"]
    with torch.inference_mode():  # a 2-d code is drawn as it is: the map's points are the test codes
        codes = model.encode(test.batch(slice(0, 5))).numpy()
    np.testing.assert_allclose(vae["map"]["points"][:5], codes, atol=1e-4)
    assert "as they are" in vae["map"]["note"]
    assert "map" not in gan and gan["samples"] and gan["ema"] and gan["ranges"] == [[-3.0, 3.0]] * 8
    assert sorted(vae["sliders"]) == [0, 1] and all(lo < c < hi for c, (lo, hi) in zip(vae["centre"], vae["ranges"]))


@pytest.mark.slow  # the explorer's server in a subprocess
def test_decode_codes_and_points_gives_the_models_own_images(server, runs):
    key = _keys(server)["vae"]["key"]
    codes = [[0.5, -1.0], [2.0, 0.25]]
    status, answer = _request(server, "POST", f"/api/runs/{key}/decode",
                              {"targets": [{"code": codes[0]}, {"point": codes[1]}, {"index": 7}]})
    assert status == 200 and len(answer["images"]) == 3
    model, test = load_run(runs["vae"]).model, load_run(runs["vae"]).data.test
    with torch.inference_mode():
        code7 = model.encode(test.batch(slice(7, 8)))[0].tolist()
    np.testing.assert_allclose(answer["codes"], [*codes, code7], atol=1e-5)  # a 2-d map point is the code itself
    expected = _expected(model, answer["codes"])
    for url, want in zip(answer["images"], expected):
        assert np.abs(_pixels(url) - want).max() <= 1  # one grey level: another process's float rounding
    status, answer = _request(server, "GET", f"/api/runs/{key}/images/7")
    assert status == 200
    np.testing.assert_array_equal(_pixels(answer["image"]), (test.batch(slice(7, 8))[0, 0] * 255).round().numpy())


@pytest.mark.slow  # the explorer's server in a subprocess
def test_interpolation_ends_at_both_images_and_slerp_differs(server):
    key = _keys(server)["vae"]["key"]
    body = {"a": {"index": 3}, "b": {"index": 40}, "steps": 6, "mode": "linear"}
    _, line = _request(server, "POST", f"/api/runs/{key}/interpolate", body)
    _, ends = _request(server, "POST", f"/api/runs/{key}/decode", {"targets": [{"index": 3}, {"index": 40}]})
    _, arc = _request(server, "POST", f"/api/runs/{key}/interpolate", {**body, "mode": "slerp"})
    assert len(line["images"]) == len(arc["images"]) == 6
    np.testing.assert_allclose([line["codes"][0], line["codes"][-1]], ends["codes"], atol=1e-6)
    np.testing.assert_allclose([arc["codes"][0], arc["codes"][-1]], ends["codes"], atol=1e-5)
    middle = np.array(line["codes"][1:-1])
    steps = np.diff(np.array(line["codes"]), axis=0)
    np.testing.assert_allclose(steps, steps[:1].repeat(5, 0), atol=1e-5)  # evenly spaced on a straight line
    assert not np.allclose(np.array(arc["codes"][1:-1]), middle, atol=1e-3)  # the arc leaves the line
    assert line["images"][0] == ends["images"][0] and line["images"][-1] == ends["images"][1]


@pytest.mark.slow  # the explorer's server in a subprocess
def test_samples_repeat_with_their_seed_and_are_the_models_own(server, runs):
    key = _keys(server)["gan"]["key"]
    _, first = _request(server, "POST", f"/api/runs/{key}/sample", {"n": 9, "seed": 5})
    _, again = _request(server, "POST", f"/api/runs/{key}/sample", {"n": 9, "seed": 5})
    _, other = _request(server, "POST", f"/api/runs/{key}/sample", {"n": 9, "seed": 6})
    assert first["images"] == again["images"] and first["images"] != other["images"]
    assert first["points"] is None and np.array(first["codes"]).shape == (9, 8)
    model = load_run(runs["gan"]).model
    assert model.generator_ema is not None
    want = _expected(model, first["codes"])  # GAN.decode: the averaged generator where there is one
    assert max(np.abs(_pixels(u) - w).max() for u, w in zip(first["images"], want)) <= 1


@pytest.mark.slow  # the explorer's server in a subprocess
def test_own_image_is_fitted_encoded_and_placed_on_the_map(server, runs):
    key = _keys(server)["vae"]["key"]
    run = load_run(runs["vae"])
    digit = (run.data.test.batch(slice(11, 12))[0, 0] * 255).round().numpy().astype(np.uint8)
    big = np.kron(digit, np.ones((6, 6), np.uint8))  # 48x48, as a user's larger picture of the same digit
    paper = 255 - big  # dark ink on white paper
    status, answer = _request(server, "POST", f"/api/runs/{key}/upload?invert=auto", _png(paper),
                              {"content-type": "image/png"})
    assert status == 200 and answer["inverted"]  # the data are light on dark: auto inverts it
    seen = _pixels(answer["input"]).astype(float)
    assert seen.shape == (8, 8) and np.abs(seen - digit).mean() < 25  # shrunk back to the digit
    assert answer["point"] == pytest.approx(answer["code"]) and len(answer["code"]) == 2
    with torch.inference_mode():
        code = run.model.encode(torch.tensor(seen / 255, dtype=torch.float32)[None, None])[0]
    np.testing.assert_allclose(answer["code"], code.numpy(), atol=0.02)  # the PNG rounds the input to 8 bits
    status, jpeg = _request(server, "POST", f"/api/runs/{key}/upload?invert=no", _png(digit, "JPEG"))
    assert status == 200 and not jpeg["inverted"] and len(jpeg["code"]) == 2


# -- the API refuses bad requests with one sentence and stays up ------------------------------------------------
def _refused(server, method, path, body=None, headers=None) -> tuple[int, str]:
    status, answer = _request(server, method, path, body, headers)
    message = answer["error"]
    assert 400 <= status < 500, (status, message)
    assert "\n" not in message and "Traceback" not in message and message.endswith(".") and len(message) < 300
    return status, message


@pytest.mark.slow  # the explorer's server in a subprocess
def test_malformed_requests_get_one_sentence_and_the_server_stays_up(server):
    info = _keys(server)
    vae, gan = info["vae"]["key"], info["gan"]["key"]
    decode = f"/api/runs/{vae}/decode"
    cases = [
        (("POST", decode, b"{bad json", {"content-type": "application/json"}), 400, "not valid JSON"),
        (("POST", decode, b"\xff\xfe", {}), 400, "not valid JSON"),
        (("POST", decode, {"targets": [{"code": [0.1]}]}), 400, "has 1 numbers but"),
        (("POST", decode, {"targets": [{"code": [0.1] * 500}]}), 400, "has 500 numbers"),
        (("POST", decode, b'{"targets": [{"code": [NaN, 1]}]}', {}), 400, "finite number"),
        (("POST", decode, {"targets": [{"code": [1e30, 1]}]}), 400, "less than or equal"),
        (("POST", decode, {"targets": [{"code": ["1", 2]}]}), 400, "code"),
        (("POST", decode, {"targets": []}), 400, "targets"),
        (("POST", decode, {"targets": [{"code": [0, 0]}] * 65}), 400, "targets"),
        (("POST", decode, {"targets": [{"code": [0, 0], "point": [0, 0]}]}), 400, "targets"),
        (("POST", decode, {"targets": [{"index": 10**6}]}), 400, "does not exist"),
        (("POST", decode, {"targets": [{"code": [0, 0]}], "path": "/etc/passwd"}), 400, "path"),
        (("POST", decode, []), 400, "body"),
        (("POST", "/api/runs/99/decode", {"targets": [{"code": [0, 0]}]}), 404, "no run"),
        (("GET", f"/api/runs/{vae}/images/99999"), 404, "does not exist"),
        (("POST", f"/api/runs/{gan}/decode", {"targets": [{"point": [0, 0]}]}), 400, "has no map"),
        (("POST", f"/api/runs/{info['ae']['key']}/sample", {"n": 4, "seed": 0}), 400, "no prior"),
        (("POST", f"/api/runs/{gan}/sample", {"n": 0, "seed": 0}), 400, "n"),
        (("POST", f"/api/runs/{gan}/sample", {"n": 4, "seed": -1}), 400, "seed"),
        (("POST", f"/api/runs/{vae}/interpolate", {"a": {"index": 0}, "b": {"index": 1}, "steps": 1}), 400, "steps"),
        (("POST", f"/api/runs/{vae}/interpolate", {"a": {"index": 0}, "b": {"index": 1}, "mode": "x"}), 400, "mode"),
        (("POST", decode, b"x" * (200 * 1024), {"content-type": "application/json"}), 413, "larger than"),
        (("POST", f"/api/runs/{vae}/upload", b"just some text, not an image"), 400, "could not be read as an image"),
        (("POST", f"/api/runs/{vae}/upload", _png(np.zeros((8, 8), np.uint8))[:40]), 400, "could not be read"),
        (("POST", f"/api/runs/{vae}/upload", b""), 400, "empty"),
        (("POST", f"/api/runs/{vae}/upload?invert=maybe", _png(np.zeros((8, 8), np.uint8))), 400, "invert"),
        (("POST", f"/api/runs/{vae}/upload", b"\0" * (9 * 1024 * 1024)), 413, "larger than"),
    ]
    for args, status, words in cases:
        got, message = _refused(server, *args)
        assert got == status and words in message, (args[:2], got, message)
    # a huge PNG header (a decompression bomb) is refused before it is decoded
    bomb = io.BytesIO()
    Image.new("1", (20000, 20000)).save(bomb, format="PNG")
    _, message = _refused(server, "POST", f"/api/runs/{vae}/upload", bomb.getvalue())
    assert "4096x4096" in message
    # a body without a declared length is cut off at the limit too
    conn = http.client.HTTPConnection(server[0], server[1], timeout=60)
    conn.request("POST", decode, body=iter([b"[" * 4096] * 40), encode_chunked=True,
                 headers={"content-type": "application/json", "transfer-encoding": "chunked"})
    response = conn.getresponse()
    assert response.status == 413 and "larger than" in json.loads(response.read())["error"]
    conn.close()
    # still up, still right
    status, answer = _request(server, "POST", decode, {"targets": [{"code": [0, 0]}]})
    assert status == 200 and len(answer["images"]) == 1
    assert server[2].poll() is None


@pytest.mark.slow  # the explorer's server in a subprocess
def test_32_concurrent_clients_all_get_their_own_answer(server):
    key = _keys(server)["vae"]["key"]

    def one(i):
        status, answer = _request(server, "POST", f"/api/runs/{key}/decode", {"targets": [{"code": [i / 10, 0.0]}]})
        return status, answer["codes"][0][0]

    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(one, range(64)))
    assert [s for s, _ in results] == [200] * 64
    assert [c for _, c in results] == pytest.approx([i / 10 for i in range(64)])


def test_a_full_queue_is_refused_with_503_not_held(runs):
    explorer = Explorer(load_runs([runs["ae"]]))
    explorer.pending = MAX_PENDING
    import asyncio

    with pytest.raises(RequestError, match="busy") as err:
        asyncio.run(explorer.work(lambda: None))
    assert err.value.status == 503


# -- pieces checked on their own ---------------------------------------------------------------------------------
def test_projection_is_pca_and_a_map_point_returns_to_itself():
    g = torch.Generator().manual_seed(0)
    codes = torch.randn(500, 6, generator=g) * torch.tensor([5.0, 0.1, 3.0, 0.1, 0.1, 0.1]) + 2
    p = Projection.fit(codes)
    axes = p.axes.abs()
    assert axes[0, 0] > 0.99 and axes[1, 2] > 0.99  # the two directions of largest spread, in order
    np.testing.assert_allclose(p.axes @ p.axes.T, np.eye(2), atol=1e-10)
    points = torch.randn(20, 2, generator=g, dtype=torch.float64)
    np.testing.assert_allclose(p.to_map(p.to_code(points)), points, atol=1e-10)
    share = p.explained[0] + p.explained[1]
    variances = codes.double().var(0)
    assert share == pytest.approx(float((variances[0] + variances[2]) / variances.sum()), rel=0.02)
    assert "principal axes" in p.note
    two = Projection.fit(codes[:, :2])
    np.testing.assert_array_equal(two.to_map(codes[:, :2]), codes[:, :2].double())


def test_fit_image_pads_to_the_aspect_and_keeps_the_colour_count():
    tall = np.zeros((40, 20), np.uint8)
    tall[:, 5:15] = 255  # a white bar in the middle of a black image twice as tall as wide
    x = fit_image(tall, (1, 8, 8))
    assert x.shape == (1, 1, 8, 8) and x.dtype == torch.float32
    assert x[0, 0, :, :2].max() < 0.05 and x[0, 0, :, 3:5].min() > 0.9  # padded with black at the sides
    rgb = fit_image(np.stack([tall] * 3, -1), (3, 8, 8))
    assert rgb.shape == (1, 3, 8, 8)
    grey_of_rgb = fit_image(np.stack([tall] * 3, -1), (1, 8, 8))
    np.testing.assert_allclose(grey_of_rgb, x, atol=1 / 255)


def test_bind_warns_beyond_loopback_and_refuses_a_taken_port():
    taken = bind("127.0.0.1", 0)
    # without it every answer on a kept-alive connection waits 40 ms for a delayed ACK (Nagle)
    assert taken.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    try:
        with pytest.raises(GenmodelsError, match="choose another --port"):
            bind("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()
    with pytest.raises(GenmodelsError, match="from 0"):
        bind("127.0.0.1", 70000)
    with pytest.warns(UserWarning, match="other machines"):
        bind("0.0.0.0", 0).close()


def test_cli_refuses_a_missing_run_and_the_same_run_twice(runs, tmp_path, capsys):
    from genmodels.cli import main

    assert main(["explore", str(tmp_path / "nothing")]) != 0
    assert "nothing" in capsys.readouterr().err
    with pytest.raises(GenmodelsError, match="twice"):
        load_runs([runs["vae"], runs["vae"]])


# -- the page in a real browser ---------------------------------------------------------------------------------
def _browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("chromium and chromium-driver are not installed (make test installs them as root: "
                    "apt-get install chromium chromium-driver)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1366,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


def _until(check, what, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow  # the explorer's server and headless Chromium
def test_the_page_in_headless_chromium(server, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    d = _browser()
    try:
        d.get(f"http://{server[0]}:{server[1]}/")
        js = d.execute_script
        _until(lambda: js("return document.body.dataset.ready") == "1", "the page to load its runs")
        idle = lambda: js("return document.body.dataset.pending") == "0"  # noqa: E731
        status = lambda: (d.find_element(By.ID, "status").text, d.find_element(By.ID, "status").get_attribute("class"))  # noqa: E731
        decoded = lambda: [i.get_attribute("src") for i in d.find_elements(By.CSS_SELECTOR, "#decoded img")]  # noqa: E731
        _until(lambda: idle() and decoded(), "the first decoded image")
        Select(d.find_element(By.ID, "run")).select_by_visible_text(
            next(o.text for o in Select(d.find_element(By.ID, "run")).options if o.text.startswith("vae")))
        _until(idle, "the vae run")

        # click the map: the decoded image changes
        first = decoded()
        canvas = d.find_element(By.ID, "map")
        ActionChains(d).move_to_element_with_offset(canvas, 150, -150).click().perform()
        _until(lambda: idle() and decoded() != first, "the map click to decode a new image")
        after_click = decoded()

        # the same code side by side in the other run with 2-d codes
        d.find_element(By.CSS_SELECTOR, "#compare input[type=checkbox]").click()
        captions = lambda: [c.text for c in d.find_elements(By.CSS_SELECTOR, "#decoded figcaption")]  # noqa: E731
        _until(lambda: idle() and captions()[-2:] == ["vae", "ae"], "the ae run's image beside the vae's")
        after_click = decoded()

        # move a slider: the image changes again
        slider = d.find_elements(By.CSS_SELECTOR, "#sliders input[type=range]")[0]
        slider.send_keys(*[Keys.ARROW_LEFT] * 40)
        _until(lambda: idle() and decoded() != after_click, "the slider to decode a new image")

        # hover the map until the pointer is over a dot: that test image shows beside it
        tip = d.find_element(By.ID, "tip")
        for x in range(-200, 201, 8):
            ActionChains(d).move_to_element_with_offset(canvas, x, 0).perform()
            if tip.is_displayed():
                break
        assert tip.is_displayed(), "no dot found along the map's middle line"
        _until(lambda: (d.find_element(By.ID, "tipimg").get_attribute("src") or "").startswith("data:image/png"),
               "the hovered test image")
        # A and B from two places, then the walk between them
        d.find_element(By.ID, "seta").click()
        ActionChains(d).move_to_element_with_offset(canvas, -180, 160).click().perform()
        _until(lambda: idle() and decoded() != after_click, "a second map click")
        d.find_element(By.ID, "setb").click()
        steps = d.find_element(By.ID, "steps")
        steps.clear()
        steps.send_keys("7")
        Select(d.find_element(By.ID, "mode")).select_by_value("slerp")
        d.find_element(By.ID, "walk").click()
        path = _until(lambda: idle() and d.find_elements(By.CSS_SELECTOR, "#path img"), "the interpolation path")
        srcs = [i.get_attribute("src") for i in path]
        assert len(srcs) == 7 and srcs[0] != srcs[-1] and len(set(srcs)) > 3

        # samples from a seed, again the same, another seed different
        def samples(seed):
            box = d.find_element(By.ID, "seed")
            box.clear()
            box.send_keys(str(seed))
            old = [i.get_attribute("src") for i in d.find_elements(By.CSS_SELECTOR, "#samples img")]
            d.find_element(By.ID, "sample").click()
            return _until(lambda: idle() and (s := [i.get_attribute("src") for i in
                                                    d.find_elements(By.CSS_SELECTOR, "#samples img")]) and
                          (s != old or seed == 3) and s, f"samples of seed {seed}")
        a, b, a2 = samples(3), samples(4), samples(3)
        assert len(a) == 16 and a == a2 and a != b

        # drop a file (a real drop event carrying a PNG): its input, reconstruction and place on the map
        digit = np.zeros((24, 24), np.uint8)
        digit[4:20, 10:14] = 255  # a white "1" on black, larger than the run's 8x8
        data = base64.b64encode(_png(digit)).decode()
        js("""const bytes = Uint8Array.from(atob(arguments[0]), c => c.charCodeAt(0));
              const t = new DataTransfer(); t.items.add(new File([bytes], 'one.png', {type: 'image/png'}));
              document.getElementById('drop').dispatchEvent(
                  new DragEvent('drop', {dataTransfer: t, bubbles: true}));""",
           data)
        own = _until(lambda: idle() and d.find_elements(By.CSS_SELECTOR, "#own img"), "the dropped image's answer")
        assert len(own) >= 2 and all(i.get_attribute("src").startswith("data:image/png") for i in own)
        text, cls = status()
        assert "error" not in (cls or ""), text

        d.save_screenshot(str(tmp_path / "explore.png"))
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copy(tmp_path / "explore.png", ARTIFACTS / "explore.png")
        with Image.open(tmp_path / "explore.png") as im:
            grey = np.asarray(im.convert("L"))
        assert len(np.unique(grey)) > 20 and 0.02 < (grey < 200).mean() < 0.9  # drawn on, not blank or black

        # a file that is not an image: one sentence on the page, and the page still works
        bad = tmp_path / "notes.png"
        bad.write_text("this is text, not a picture")
        d.find_element(By.ID, "file").send_keys(str(bad))
        _until(lambda: "error" in (status()[1] or ""), "the error sentence")
        text = status()[0]
        assert "could not be read as an image" in text and "Traceback" not in text and "\n" not in text
        before = decoded()
        ActionChains(d).move_to_element_with_offset(canvas, 40, 40).click().perform()
        _until(lambda: idle() and decoded() != before, "a map click after the error")
        assert "error" not in (status()[1] or "")

        # the GAN: no map, but sliders and samples
        Select(d.find_element(By.ID, "run")).select_by_visible_text(
            next(o.text for o in Select(d.find_element(By.ID, "run")).options if o.text.startswith("gan")))
        _until(lambda: idle() and not d.find_element(By.ID, "mapbox").is_displayed(), "the GAN run")
        assert len(d.find_elements(By.CSS_SELECTOR, "#sliders input[type=range]")) == 8
        assert len(samples(3)) == 16

        severe = [e["message"] for e in d.get_log("browser") if e["level"] == "SEVERE"]
        expected = [m for m in severe if "/upload" in m and "400" in m]  # the bad file's answer, shown above
        assert severe == expected, severe
    finally:
        d.quit()


@pytest.mark.parametrize("prior, ema, ranges", [("uniform", 0.0, [-1.0, 1.0]), ("normal", 0.999, [-3.0, 3.0])])
def test_the_sliders_span_the_prior_the_model_declares_and_say_when_samples_are_averaged(tmp_path, digits, prior,
                                                                                        ema, ranges):
    """A GAN's sliders run over its prior as the model declares it (GenerativeModel.prior_bounds: a uniform prior's
    [-1, 1], else SPAN standard deviations), and the page says whether it draws from the averaged weights
    (samples_from_average), with no training and no server."""
    from genmodels.explore.latent import ExploredRun
    from genmodels.models import build_model
    from genmodels.rundir import RunDir
    from genmodels.runs import Run

    config = build_run_config({"family": "gan", "model": {"latent_dim": 3, "arch": "mlp", "hidden": [8],
                                                          "prior": prior, "ema": ema}})
    model = build_model("gan", config.model, digits.shape).eval()
    run = Run(RunDir(tmp_path), config, model)
    run.data = digits  # the data the run would name, given in memory
    info = ExploredRun(run, "gan", "gan").describe()
    assert info["ranges"] == [ranges] * 3
    assert info["ema"] is (ema > 0)
