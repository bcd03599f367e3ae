"""The explorer's decode round trip: what a slider move or a map click waits for, through the real server.

Two runs on Fashion-MNIST (28x28): the default MLP VAE (784-512-16) and the DCGAN (`gan --arch conv`),
each trained --epochs epochs on the first --train images (the time of a decode does not depend on the
weights). `python -m genmodels explore VAE GAN --port 0` serves them in a subprocess, as a user starts it;
clients in this process, each on its own keep-alive HTTP connection, POST one code per request to
/api/runs/KEY/decode, as the page does, and time the answer (JSON with a PNG data URL) until it is read.
The clients' sockets are TCP_NODELAY, as browsers' are (else each request waits for a delayed ACK).

One client sends --requests requests in turn; then 32 clients send --requests each, all at once. The
floor: the same decode of one code in this process (model.decode under inference mode and the PNG),
no HTTP, the median of --requests; each latency line prints its ratio to it.

Targets (issue 17), for the MLP VAE with 32 concurrent clients on the 2-core CPU: p50 under 50 ms and
p95 under 250 ms; the script prints PASS or MISS beside each.

    .venv/bin/python benchmarks/explore_latency.py [--requests 200] [--epochs 1] [--train 2000]

About a minute on two cores. Time it on a quiet machine: the clients and the server share the cores.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from genmodels import build_run_config, load_run, train
from genmodels.data import FASHION_MNIST_DIR
from genmodels.datafiles import read_idx
from genmodels.explore.latent import png_url

CLIENTS = 32


def fashion_subset(folder: Path, n_train: int) -> Path:
    """The first n_train training images and the 10,000 test images of Fashion-MNIST, as one .npz."""
    src = Path(FASHION_MNIST_DIR)
    arrays = {
        "x_train": read_idx(src / "train-images-idx3-ubyte.gz", (3,))[:n_train],
        "y_train": read_idx(src / "train-labels-idx1-ubyte.gz", (1,))[:n_train],
        "x_test": read_idx(src / "t10k-images-idx3-ubyte.gz", (3,)),
        "y_test": read_idx(src / "t10k-labels-idx1-ubyte.gz", (1,)),
    }
    path = folder / "fashion_subset.npz"
    np.savez(path, **arrays)
    return path


def start_explorer(runs: list[Path]) -> tuple[subprocess.Popen, str, int]:
    proc = subprocess.Popen([sys.executable, "-m", "genmodels", "explore", *map(str, runs), "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    for line in proc.stdout:
        found = re.search(r"http://([\d.]+):(\d+)/", line)
        if found:
            return proc, found.group(1), int(found.group(2))
    raise SystemExit(f"the explorer did not start (exit code {proc.wait()})")


def client(host: str, port: int, key: str, codes: np.ndarray, out: list[float], start: threading.Barrier) -> None:
    """Decode each code in turn on one keep-alive connection, appending each round trip's seconds."""
    conn = http.client.HTTPConnection(host, port, timeout=120)
    conn.connect()
    # As a browser does: http.client sends the headers and the body in two writes, and without this
    # Nagle's algorithm holds the body until the server's delayed ACK, 40 ms later on Linux (the server
    # sets the same on its side: explore.bind).
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    start.wait()
    for code in codes:
        body = json.dumps({"targets": [{"code": [round(float(v), 5) for v in code]}]})
        t0 = time.perf_counter()
        conn.request("POST", f"/api/runs/{key}/decode", body=body, headers={"content-type": "application/json"})
        response = conn.getresponse()
        answer = json.loads(response.read())
        out.append(time.perf_counter() - t0)
        if response.status != 200 or len(answer["images"]) != 1:
            raise SystemExit(f"a decode failed: {response.status} {answer}")
    conn.close()


def latencies(host: str, port: int, key: str, dim: int, clients: int, requests: int) -> tuple[np.ndarray, float]:
    """Each round trip's milliseconds, and the decodes answered per second while all clients ran."""
    rng = np.random.default_rng(0)
    results = [[] for _ in range(clients)]
    barrier = threading.Barrier(clients)
    threads = [threading.Thread(target=client, args=(host, port, key, rng.normal(size=(requests, dim)), results[i],
                                                     barrier)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return np.array([x for r in results for x in r]) * 1000, clients * requests / wall


def floor_ms(run_dir: Path, requests: int) -> float:
    """The same decode in this process, no HTTP: the median of `requests` single codes."""
    model = load_run(run_dir).model
    rng = np.random.default_rng(1)
    times = []
    for i in range(requests + 10):  # the first 10: warm-up, not kept
        z = torch.tensor(rng.normal(size=(1, model.latent_dim)), dtype=torch.float32)
        t0 = time.perf_counter()
        with torch.inference_mode():
            png_url(model.decode(z)[0])
        if i >= 10:
            times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=200, help="requests per client (default 200)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--train", type=int, default=2000, help="training images (default 2000)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = str(fashion_subset(root, args.train))
        configs = {"mlp-vae": {"family": "vae"}, "dcgan": {"family": "gan", "model": {"arch": "conv"}}}
        for name, values in configs.items():
            config = build_run_config({**values, "data": {"source": data}, "train": {"epochs": args.epochs}})
            with warnings.catch_warnings():  # a one-epoch model warns about its samples: true, not measured here
                warnings.simplefilter("ignore")
                train(config, root / name, progress=False)
        proc, host, port = start_explorer([root / name for name in configs])
        try:
            conn = http.client.HTTPConnection(host, port)
            conn.request("GET", "/api/runs")
            runs = {r["name"]: r for r in json.loads(conn.getresponse().read())["runs"]}
            conn.close()
            print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.requests} requests a client")
            for name in configs:
                key, dim = runs[name]["key"], runs[name]["dim"]
                latencies(host, port, key, dim, 1, 20)  # warm-up
                floor = floor_ms(root / name, args.requests)
                print(f"{name}: in-process decode floor {floor:.2f} ms")
                for clients in (1, CLIENTS):
                    ms, rate = latencies(host, port, key, dim, clients, args.requests)
                    p50, p95 = np.percentile(ms, 50), np.percentile(ms, 95)
                    line = (f"{name} {clients:>2} client{'s' if clients > 1 else ' '}: p50 {p50:7.2f} ms "
                            f"({p50 / floor:5.1f}x floor), p95 {p95:7.2f} ms ({p95 / floor:5.1f}x floor), "
                            f"{rate:6.0f} decodes/s")
                    if name == "mlp-vae" and clients == CLIENTS:
                        line += (f"  target p50 < 50 ms: {'PASS' if p50 < 50 else 'MISS'}, "
                                 f"p95 < 250 ms: {'PASS' if p95 < 250 else 'MISS'}")
                    print(line, flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
