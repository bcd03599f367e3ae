"""`genmodels explore RUN [RUN ...]`: a local web page to touch the latent space of trained runs
(docs/ARCHITECTURE.md, "Explorer"). latent.py does the model's work, server.py answers the page,
static/ holds the page itself (plain HTML, CSS and JavaScript: no build step, nothing from the internet)."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import warnings
from pathlib import Path

from ..errors import GenmodelsError
from ..models import families_that
from ..runs import load_run

STOP_WITHIN = 2  # seconds Ctrl-C gives requests in flight before the explorer stops without them


def run_names(paths: list[Path]) -> list[str]:
    """Short distinct names for runs: the folder's name, with its parent's where two share one."""
    names = [Path(p).resolve().name for p in paths]
    return [f"{Path(p).resolve().parent.name}/{n}" if names.count(n) > 1 else n for p, n in zip(paths, names)]


def load_runs(paths: list[Path], device: str = "cpu", say=None) -> list:
    """Each run loaded with its data and its map worked out. A run that cannot be explored (it does not load,
    has no latent space, or its model gives numbers that are not finite) is left out with a warning that says
    why, so the others can still be explored; when none can, the first reason is the error."""
    if len(set(Path(p).resolve() for p in paths)) != len(paths):
        raise GenmodelsError("The same run is given twice; give each run directory once.")
    explored, failures = [], []
    for i, (path, name) in enumerate(zip(paths, run_names(paths))):
        if say:
            say(f"loading {path}")
        try:
            explored.append(_explored(path, str(i), name, device))
        except GenmodelsError as err:
            failures.append((path, err))
    if not explored:
        raise failures[0][1]
    for path, reason in failures:
        warnings.warn(f"{path} is left out of the explorer: {reason}", stacklevel=2)
    return explored


def _explored(path: Path, key: str, name: str, device: str):
    """One run, loaded and worked out for the explorer; GenmodelsError when it cannot be explored."""
    from .latent import ExploredRun

    run = load_run(path, device)
    if not run.model.decodes:
        families = families_that("encodes", "samples")
        raise GenmodelsError(f"The {run.config.family} run in {path} has no latent space to explore; "
                             f"give runs of families that encode or sample ({families}).")
    return ExploredRun(run, key, name)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: a free one), with a warning when it is reachable from
    other machines; a one-sentence error when the address cannot be used."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        warnings.warn(f"--host {host} lets other machines reach the explorer and decode with your models; "
                      "use 127.0.0.1 unless you mean to share it.", stacklevel=2)
    if not 0 <= port <= 65535:
        raise GenmodelsError(f"--port must be from 0 (a free port) to 65535, got {port}.")
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(info[0], socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Each answer goes out in two writes (headers, body): without TCP_NODELAY, which the connections
        # accepted here inherit, Nagle's algorithm holds the body for the browser's delayed ACK, and every
        # request on a kept-alive connection waits 40 ms (benchmarks/explore_latency.py measured it).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(info[4])
        sock.listen(128)
    except OSError as err:
        raise GenmodelsError(f"Cannot listen on {host}:{port} ({(err.strerror or str(err)).lower()}); "
                             "choose another --port (0 picks a free one) or --host.") from None
    return sock


class _Quiet(logging.Filter):
    """Leaves out of uvicorn's log what stopping the server does to requests still in flight (their tasks are
    cancelled: a traceback each, and a line counting them): the user pressed Ctrl-C and expects nothing else."""

    def filter(self, record: logging.LogRecord) -> bool:
        cancelled = record.exc_info is not None and isinstance(record.exc_info[1], asyncio.CancelledError)
        return not cancelled and not str(record.msg).startswith("Cancel %s running task")


def serve(paths: list[Path], host: str = "127.0.0.1", port: int = 0, device: str = "cpu") -> None:
    """Load the runs, then serve the explorer until interrupted (Ctrl-C)."""
    import uvicorn

    from .server import Explorer, build_app

    sock = bind(host, port)
    quiet, log = _Quiet(), logging.getLogger("uvicorn.error")
    explorer = None
    try:
        explorer = Explorer(load_runs(paths, device, say=lambda line: print(line, flush=True)))
        # limit_concurrency: past that many open connections and tasks, uvicorn answers 503 itself.
        # timeout_graceful_shutdown: Ctrl-C lets requests in flight finish for that long, then drops them (a
        # client still sending would otherwise hold the server open); no lifespan: the app has no start-up.
        config = uvicorn.Config(build_app(explorer, host), log_level="warning", limit_concurrency=512,
                                timeout_keep_alive=30, timeout_graceful_shutdown=STOP_WITHIN, lifespan="off")
        log.addFilter(quiet)
        address = sock.getsockname()
        shown = f"[{address[0]}]" if ":" in address[0] else address[0]
        print(f"genmodels explore: open http://{shown}:{address[1]}/ (Ctrl-C stops it)", flush=True)
        uvicorn.Server(config).run(sockets=[sock])  # until Ctrl-C (SIGINT) or SIGTERM
    except KeyboardInterrupt:  # uvicorn shuts down cleanly, then raises the signal it caught again
        pass
    finally:
        log.removeFilter(quiet)
        if explorer is not None:  # requests still waiting for the model are dropped, not run before exit
            explorer.pool.shutdown(wait=False, cancel_futures=True)
        sock.close()
