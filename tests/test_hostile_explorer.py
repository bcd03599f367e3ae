"""The explorer against hostile pages, odd codes, broken runs and impatient users: requests addressed to another
host name (DNS rebinding) or posted from another site's page are refused with one sentence; slerp between zero,
equal or opposite codes is a finite path; a run whose weights are NaN is left out with a warning, never a 500; a
client that leaves mid-request and Ctrl-C with a request in flight stop nothing and print no traceback."""

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from genmodels import GenmodelsError, build_run_config
from genmodels.explore import load_runs
from genmodels.explore.latent import ExploredRun
from genmodels.explore.server import Explorer, build_app
from genmodels.models import build_model
from genmodels.rundir import RunDir
from genmodels.runs import Run, path_between


def _call(app, method: str, path: str, headers: dict | None = None, body: bytes = b"") -> tuple[int, dict]:
    """One request through the explorer's ASGI app, no server: its status and JSON answer."""
    sent = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "http_version": "1.1", "method": method, "path": path, "raw_path": path.encode(),
             "root_path": "", "scheme": "http", "query_string": b"", "server": ("127.0.0.1", 8000),
             "client": ("127.0.0.1", 50000),
             "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]}
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], json.loads(b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"))


def _explored(tmp_path, digits, family="ae", nan=False) -> ExploredRun:
    """An untrained tiny model on digits, explored from memory (no training, no files)."""
    arch = {"arch": "mlp"} if family == "gan" else {}
    config = build_run_config({"family": family, "model": {"latent_dim": 2, "hidden": [8], **arch}})
    model = build_model(family, config.model, digits.shape).eval()
    if nan:
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(float("nan"))
    run = Run(RunDir(tmp_path), config, model)
    run.data = digits  # the data the run would name, given in memory
    return ExploredRun(run, "0", "ae")


@pytest.fixture
def app():
    explorer = Explorer([])
    yield build_app(explorer)
    explorer.pool.shutdown()


# -- case 5: DNS rebinding and cross-site posts ------------------------------------------------------------------
@pytest.mark.parametrize("host", ["evil.example.com", "evil.example.com:8000", "localhost.evil.example.com",
                                  "127.0.0.1.evil.example.com", "a b", "[not-an-address]"])
def test_a_request_addressed_to_another_host_name_is_refused_with_one_sentence(app, host):
    status, answer = _call(app, "GET", "/api/runs", {"host": host})
    assert status == 403 and "runs" not in answer
    assert answer["error"].startswith("The explorer answers only requests addressed to this machine")
    assert repr(host) in answer["error"] and answer["error"].count(". ") == 0


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "127.0.0.1", "localhost:8000", "LOCALHOST", "localhost.",
                                  "[::1]:8000", "[::1]", "192.168.1.20:8000"])
def test_the_explorers_own_addresses_are_answered(app, host):
    """Loopback names with or without a port (an ssh tunnel's too), and bare IP addresses: a page of another site
    sends its own domain name as the Host, never an address."""
    assert _call(app, "GET", "/api/runs", {"host": host})[0] == 200


def test_the_host_given_is_served_and_a_wildcard_serves_the_machines_name():
    explorer = Explorer([])
    try:
        named = build_app(explorer, "explorer.lan")
        assert _call(named, "GET", "/api/runs", {"host": "explorer.lan:8000"})[0] == 200
        assert _call(named, "GET", "/api/runs", {"host": "other.lan:8000"})[0] == 403
        everywhere = build_app(explorer, "0.0.0.0")
        assert _call(everywhere, "GET", "/api/runs", {"host": f"{socket.gethostname()}:8000"})[0] == 200
        assert _call(everywhere, "GET", "/api/runs", {"host": "evil.example.com"})[0] == 403
    finally:
        explorer.pool.shutdown()


@pytest.mark.parametrize("origin", ["http://evil.example.com", "http://localhost:8000", "http://127.0.0.1:9999",
                                    "null", "http://127.0.0.1:8000/", "file://", "https://evil.example.com:8000"])
def test_a_post_from_another_pages_origin_is_refused(app, origin):
    body = json.dumps({"seed": 0, "n": 1}).encode()
    status, answer = _call(app, "POST", "/api/runs/0/sample", {"host": "127.0.0.1:8000", "origin": origin}, body)
    assert status == 403
    assert answer["error"].startswith("The explorer takes requests only from its own page") and repr(origin) in \
        answer["error"]


def test_a_post_from_its_own_page_or_with_no_origin_passes_the_check(app):
    """The page's own origin, or none (curl, scripts), reach the routes: here the 404 of a run that is not there;
    a GET is never refused for its Origin (another site cannot read the answer)."""
    body = json.dumps({"seed": 0, "n": 1}).encode()
    for headers in ({"host": "127.0.0.1:8000", "origin": "http://127.0.0.1:8000"}, {"host": "127.0.0.1:8000"},
                    {"host": "localhost", "origin": "http://localhost"}):
        assert _call(app, "POST", "/api/runs/nope/sample", headers, body)[0] == 404
    assert _call(app, "GET", "/api/runs", {"host": "127.0.0.1:8000", "origin": "http://evil.example.com"})[0] == 200


# -- case 8: slerp where the arc is not defined ------------------------------------------------------------------
def test_slerp_between_zero_equal_or_opposite_codes_is_the_straight_line_and_finite(tmp_path, digits):
    explored = _explored(tmp_path, digits)
    line = lambda a, b: explored.walk(torch.tensor(a), torch.tensor(b), 5, "linear")  # noqa: E731
    arc = lambda a, b: explored.walk(torch.tensor(a), torch.tensor(b), 5, "slerp")  # noqa: E731
    for a, b in (([0.0, 0.0], [1.0, 2.0]), ([1.0, 2.0], [0.0, 0.0]), ([0.0, 0.0], [0.0, 0.0]),
                 ([1e-30, 0.0], [1.0, 1.0]), ([1e-8, -1e-8], [3.0, 1.0]),  # near zero: no direction in float32
                 ([1.0, 0.0], [1.0, 0.0]), ([3.0, 4.0], [3.0, 4.0]), ([1.0, 0.0], [2.0, 1e-5]),  # the same way
                 ([1.0, 0.0], [-1.0, 0.0]), ([2.0, 1.0], [-4.0, -2.0])):  # opposite ways
        path = arc(a, b)
        assert torch.isfinite(path).all(), (a, b, path)
        torch.testing.assert_close(path, line(a, b))
        torch.testing.assert_close(path[0], torch.tensor(a))
        torch.testing.assert_close(path[-1], torch.tensor(b))
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])  # a defined arc: slerp's closed form at 90 degrees
    t = torch.linspace(0, 1, 5)[:, None]
    expected = torch.sin((1 - t) * torch.pi / 2) * a + torch.sin(t * torch.pi / 2) * b
    torch.testing.assert_close(explored.walk(a, b, 5, "slerp"), expected)


def test_interpolate_slerps_each_row_and_takes_the_line_only_where_its_arc_is_undefined():
    """runs.slerp, which `genmodels interpolate --mode slerp` and the explorer share, on a batch mixing rows."""
    a = torch.tensor([[1.0, 0.0], [0.0, 0.0], [3.0, 4.0], [1.0, 0.0]])
    b = torch.tensor([[0.0, 2.0], [1.0, 1.0], [3.0, 4.0], [-1.0, 0.0]])
    t = torch.linspace(0, 1, 5)
    path = path_between(a, b, t, "slerp")
    line = path_between(a, b, t, "linear")
    assert torch.isfinite(path).all()
    torch.testing.assert_close(path[1:], line[1:])  # zero, equal and opposite codes: the straight line
    arc = torch.sin((1 - t[:, None]) * torch.pi / 2) * a[0] + torch.sin(t[:, None] * torch.pi / 2) * b[0]
    torch.testing.assert_close(path[0], arc)
    assert not torch.allclose(path[0], line[0])


def test_the_interpolate_route_answers_slerp_from_a_zero_code(tmp_path, digits):
    explorer = Explorer([_explored(tmp_path, digits)])
    try:
        body = json.dumps({"a": {"code": [0.0, 0.0]}, "b": {"code": [1.0, 1.0]}, "steps": 3, "mode": "slerp"})
        status, answer = _call(build_app(explorer), "POST", "/api/runs/0/interpolate",
                               {"host": "127.0.0.1:8000"}, body.encode())
    finally:
        explorer.pool.shutdown()
    assert status == 200, answer
    assert answer["codes"] == [[0.0, 0.0], [0.5, 0.5], [1.0, 1.0]] and len(answer["images"]) == 3


# -- case 9: a run that cannot be explored -----------------------------------------------------------------------
def test_a_model_with_nan_weights_is_refused_in_one_sentence(tmp_path, digits):
    for family in ("ae", "gan"):  # one whose test codes are NaN, one that only decodes NaN images
        with pytest.raises(GenmodelsError, match=r"computes numbers that are not finite \(NaN or infinity\)"):
            _explored(tmp_path, digits, family, nan=True)


def _nan_run(done_run, folder):
    """A copy of a finished run whose model.safetensors holds NaN everywhere (its header kept)."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    shutil.copytree(Path(done_run.run_dir), folder)
    path = folder / "model.safetensors"
    with safe_open(path, "pt") as f:
        meta = f.metadata()
    save_file({k: torch.full_like(v, float("nan")) for k, v in load_file(path).items()}, path, metadata=meta)
    return folder


def test_a_run_with_nan_weights_is_left_out_with_a_warning_and_the_list_answers(done_run, tmp_path):
    nan = _nan_run(done_run, tmp_path / "nan")
    missing = tmp_path / "missing"
    with pytest.warns(UserWarning) as caught:
        explored = load_runs([Path(done_run.run_dir), nan, missing])
    assert [e.name for e in explored] == [Path(done_run.run_dir).name]
    said = [str(w.message) for w in caught]
    assert len(said) == 2 and said[0].startswith(f"{nan} is left out of the explorer: ") and str(missing) in said[1]
    explorer = Explorer(explored)
    try:
        status, answer = _call(build_app(explorer), "GET", "/api/runs", {"host": "127.0.0.1:8000"})
    finally:
        explorer.pool.shutdown()
    assert status == 200 and [r["name"] for r in answer["runs"]] == [Path(done_run.run_dir).name]


def test_explore_with_only_a_nan_run_refuses_in_one_sentence(done_run, tmp_path, capsys, monkeypatch):
    import uvicorn

    from genmodels.cli import main

    def serving(self, sockets=None):
        raise AssertionError("the explorer served a run whose weights are NaN")

    monkeypatch.setattr(uvicorn.Server, "run", serving)
    nan = _nan_run(done_run, tmp_path / "nan")
    assert main(["explore", str(nan), "--port", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("genmodels: error: ") and "\n" not in err and str(nan) in err


# -- the real server: a foreign Host, aborted clients, Ctrl-C ----------------------------------------------------
def _start(*runs):
    """`python -m genmodels explore RUN...` on a free port: (process, port)."""
    proc = subprocess.Popen([sys.executable, "-m", "genmodels", "explore", *map(str, runs), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("genmodels explore: open"):
            break
    found = re.search(r"http://127\.0\.0\.1:(\d+)/", "".join(lines))
    assert found, ("".join(lines), proc.stderr.read() if proc.poll() is not None else "")
    return proc, int(found.group(1))


def _send(port: int, request: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(request)
    return sock


def _get(port: int, path: str, host: str) -> tuple[int, bytes]:
    sock = _send(port, f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    return int(data.split(b" ", 2)[1]), data.split(b"\r\n\r\n", 1)[1]


def _upload_in_flight(port: int) -> socket.socket:
    """A client that has sent the start of a 100 kB upload and then waits, as a slow or stalled one does."""
    sock = _send(port, b"POST /api/runs/0/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n"
                 + b"x" * 1000)
    time.sleep(0.5)  # the server is now reading the body
    return sock


def _stopped(proc, within: float) -> str:
    """Waits for the process to end (within seconds), and gives its stderr."""
    try:
        assert proc.wait(timeout=within) == 0
    finally:
        proc.kill()
    return proc.stderr.read()


@pytest.mark.slow  # the explorer's server in a subprocess
def test_the_real_explorer_refuses_rebinding_and_leaves_out_a_nan_run(done_run, tmp_path):
    proc, port = _start(Path(done_run.run_dir), _nan_run(done_run, tmp_path / "nan"))
    try:
        status, body = _get(port, "/api/runs", "evil.example.com")
        assert status == 403 and b"addressed to this machine" in body and b"runs" not in body
        status, body = _get(port, "/api/runs", f"127.0.0.1:{port}")
        assert status == 200 and [r["name"] for r in json.loads(body)["runs"]] == [Path(done_run.run_dir).name]
        proc.send_signal(signal.SIGINT)
        stderr = _stopped(proc, within=20)
    finally:
        proc.kill()
    assert "left out of the explorer" in stderr and "Traceback" not in stderr, stderr


@pytest.mark.slow  # the explorer's server in a subprocess
def test_clients_that_leave_and_ctrl_c_with_a_request_in_flight_stop_the_explorer_promptly_and_quietly(done_run):
    proc, port = _start(Path(done_run.run_dir))
    try:
        for _ in range(3):  # clients that leave mid-upload
            _upload_in_flight(port).close()
        stalled = _upload_in_flight(port)  # and one that stays, sending nothing more
        asked = time.monotonic()
        proc.send_signal(signal.SIGINT)  # Ctrl-C: the stalled request is given a moment, then dropped
        stderr = _stopped(proc, within=20)
        assert time.monotonic() - asked < 20
        stalled.close()
    finally:
        proc.kill()
    for word in ("Traceback", "ClientDisconnect", "CancelledError", "ERROR"):
        assert word not in stderr, stderr


@pytest.mark.slow  # the explorer's server in a subprocess
def test_a_second_ctrl_c_stops_the_explorer_at_once_without_tracebacks(done_run):
    proc, port = _start(Path(done_run.run_dir))
    try:
        stalled = _upload_in_flight(port)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)  # the impatient user's second Ctrl-C
        stderr = _stopped(proc, within=15)
        stalled.close()
    finally:
        proc.kill()
    for word in ("Traceback", "CancelledError", "ERROR"):
        assert word not in stderr, stderr
