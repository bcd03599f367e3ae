"""The explorer's web server: a Starlette app (served by uvicorn) that answers the page's JSON requests
by asking explore/latent.py, for one or several runs loaded once at start-up (docs/ARCHITECTURE.md, "Explorer").

Requests carry codes, map points and test-image indices, never file paths. A request addressed to a host
name the explorer does not serve (DNS rebinding), or a POST from another site's page, is refused with 403.
Every body is read up to a limit and parsed by a strict pydantic model, so a malformed request gets a 4xx
with one sentence and the server goes on; a client that leaves mid-body is let go without a word. The
model runs on one worker thread, one request at a time (torch uses every core for each), and at most
MAX_PENDING requests may wait for it: past that the server answers 503 at once.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import socket
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import Annotated, Literal, TypeVar, cast

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import GenmodelsError
from ..models import families_that
from .latent import ExploredRun

MAX_JSON = 64 * 1024  # a request's JSON body: 64 codes of 100 numbers fit many times over
MAX_UPLOAD = 8 * 1024 * 1024  # a dropped image file
MAX_CODES = 64  # codes decoded by one request
MAX_STEPS = 32  # images on one interpolation path
MAX_SAMPLES = 64  # images of one sample grid
MAX_PENDING = 64  # requests waiting for the model at once; more get 503 (the rate bound)
PAGE = {"index.html": "text/html", "explore.css": "text/css", "vectors.js": "text/javascript",
        "classes.js": "text/javascript", "map.js": "text/javascript", "explore.js": "text/javascript"}  # static/
MAX_VALUE = 1e4  # a code's entries: far beyond any trained code, small enough to stay finite through a net

MAX_UNITS = 1e15  # a vector's entries in the data's own units (any finite number a table holds)

Number = Annotated[float, Field(allow_inf_nan=False, ge=-MAX_VALUE, le=MAX_VALUE)]
Units = Annotated[float, Field(allow_inf_nan=False, ge=-MAX_UNITS, le=MAX_UNITS)]
Index = Annotated[int, Field(ge=0, le=2**31)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Target(Strict):
    """One place in latent space: a code, a point of the map, the code of a test image, or the code of a vector
    in the data's units (a point clicked on a vector run's data plane)."""

    code: list[Number] | None = Field(None, max_length=4096)
    point: list[Number] | None = Field(None, min_length=2, max_length=2)
    index: Index | None = None
    vector: list[Units] | None = Field(None, max_length=4096)

    @model_validator(mode="after")
    def _one(self) -> Target:
        if sum(v is not None for v in (self.code, self.point, self.index, self.vector)) != 1:
            raise ValueError("give exactly one of code, point, index or vector")
        return self


StrictT = TypeVar("StrictT", bound=Strict)


class Decode(Strict):
    targets: list[Target] = Field(min_length=1, max_length=MAX_CODES)
    # A conditional run's class for every target (one label) or for each (one per target); none: its default.
    labels: list[Index] | None = Field(None, min_length=1, max_length=MAX_CODES)


class Walk(Strict):
    a: Target
    b: Target
    steps: int = Field(10, ge=2, le=MAX_STEPS)
    mode: Literal["linear", "slerp"] = "linear"
    label: Index | None = None


class Sample(Strict):
    seed: int = Field(0, ge=0, le=2**63 - 1)
    n: int = Field(16, ge=1, le=MAX_SAMPLES)
    label: Index | None = None


class RequestError(Exception):
    """A bad request: its HTTP status and the one sentence the page shows."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Explorer:
    """The loaded runs and the one thread their models run on."""

    def __init__(self, runs: list[ExploredRun]):
        self.runs = {r.key: r for r in runs}
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="genmodels-model")
        self.pending = 0
        static = resources.files("genmodels.explore") / "static"
        self.static = {name: (static / name).read_bytes() for name in PAGE}

    async def work(self, fn, *args):
        """fn(*args) on the model's thread; 503 when MAX_PENDING requests already wait."""
        if self.pending >= MAX_PENDING:
            raise RequestError(503, f"The explorer is busy with {MAX_PENDING} requests; try again in a moment.")
        self.pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)
        finally:
            self.pending -= 1

    def run(self, request: Request) -> ExploredRun:
        key = request.path_params["key"]
        if key not in self.runs:
            raise RequestError(404, f"There is no run {key[:40]!r} in this explorer; reload the page.")
        return self.runs[key]

    def labels(self, run: ExploredRun, given: list[int] | None, n: int) -> torch.Tensor | None:
        """The classes (n,) a conditional run decodes n codes under: one label for all, one each, or (None) the
        run's default; None for a run that is not conditional, which refuses labels."""
        if run.classes is None:
            if given is not None:
                raise RequestError(400, f"The {run.name} run is not conditional, so it takes no class; "
                                        "send no label.")
            return None
        if given is None:
            return None
        if len(given) not in (1, n):
            raise RequestError(400, f"{len(given)} labels were sent for {n} codes; send one for all or one each.")
        if max(given) >= len(run.classes):
            raise RequestError(400, f"Class {max(given)} is outside the {run.name} run's classes "
                                    f"0..{len(run.classes) - 1}; pick one of those.")
        return torch.tensor(given * n if len(given) == 1 else given, dtype=torch.long)

    def codes(self, run: ExploredRun, targets: list[Target], labels: torch.Tensor | None = None) -> torch.Tensor:
        """The codes (B, D) that targets name, each checked against the run (a vector encoded under its label)."""
        rows = []
        for i, t in enumerate(targets):
            if t.vector is not None:
                rows.append(self._vector_code(run, t.vector, None if labels is None else labels[i : i + 1]))
                continue
            if t.code is not None:
                if len(t.code) != run.dim:
                    raise RequestError(400, f"A code has {len(t.code)} numbers but the {run.name} run's codes have "
                                            f"{run.dim}; send codes of that length.")
                rows.append(torch.tensor(t.code, dtype=torch.float32))
            elif t.point is not None:
                if run.projection is None:
                    raise RequestError(400, f"The {run.name} run has no map (its model does not encode); "
                                            "send codes instead of points.")
                rows.append(run.points_to_codes(torch.tensor([t.point]))[0])
            else:
                index = cast(int, t.index)  # Target's validator lets exactly one of code, point and index through
                if index >= len(run.test):
                    raise RequestError(400, f"Test image {index} does not exist: the {run.name} run's test split "
                                            f"holds {len(run.test)} images.")
                if not run.run.model.encodes:
                    raise RequestError(400, f"The {run.name} run cannot encode images; send codes instead.")
                rows.append(run.code_of(index))
        return torch.stack(rows)

    def _vector_code(self, run: ExploredRun, vector: list[float], label: torch.Tensor | None) -> torch.Tensor:
        """The code of one vector in the data's units, checked against the run."""
        if not run.vectors:
            raise RequestError(400, f"The {run.name} run was trained on images; send codes, points or test indices.")
        if not run.run.model.encodes:
            raise RequestError(400, f"The {run.name} run cannot encode; send codes instead.")
        if len(vector) != run.model.shape[0]:
            raise RequestError(400, f"A vector has {len(vector)} numbers but the {run.name} run's data have "
                                    f"{run.model.shape[0]} columns; send vectors of that length.")
        return run.encode_vectors(torch.tensor([vector], dtype=torch.float32), label)[0]


def outputs(run: ExploredRun, decoded: list) -> dict:
    """Decoded outputs under the name the page reads: images (PNG data URLs) or vectors (data units)."""
    return {"vectors" if run.vectors else "images": decoded}


async def _body(request: Request, limit: int, what: str) -> bytes:
    """The request's body, refused with 413 past `limit` bytes (read no further than that)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise RequestError(413, f"The {what} is larger than the {limit // 1024:,} KiB the explorer accepts; "
                                "send a smaller one.")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise RequestError(413, f"The {what} is larger than the {limit // 1024:,} KiB the explorer "
                                        "accepts; send a smaller one.")
            chunks.append(chunk)
    except ClientDisconnect:  # the page closed or the user left: nobody is there to read an answer or a traceback
        raise RequestError(400, f"The {what} was cut off before its end; send it again.") from None
    return b"".join(chunks)


async def _parse(request: Request, model: type[StrictT]) -> StrictT:
    """The request's JSON body as `model`, or a 400 naming the first thing wrong with it."""
    body = await _body(request, MAX_JSON, "request")
    try:
        return model.model_validate(json.loads(body))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise RequestError(400, "The request is not valid JSON; send a JSON object.") from None
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise RequestError(400, f"The request's {where} is wrong ({first['msg'].lower()}); "
                                f"see the explorer's page for what it sends.") from None


class Routes:
    """The explorer's routes, one method each; every answer to /api is JSON or a PNG."""

    def __init__(self, explorer: Explorer):
        self.explorer = explorer

    def table(self) -> list[Route]:
        """Every route: the page's files, then the API."""
        return [Route("/", self.index),
                *[Route(f"/{name}", self.page_file) for name in PAGE if name != "index.html"],
                Route("/api/runs", self.runs),
                Route("/api/runs/{key}/images/{index:int}", self.image),
                Route("/api/runs/{key}/decode", self.decode, methods=["POST"]),
                Route("/api/runs/{key}/interpolate", self.interpolate, methods=["POST"]),
                Route("/api/runs/{key}/sample", self.sample, methods=["POST"]),
                Route("/api/runs/{key}/upload", self.upload, methods=["POST"])]

    def _file(self, name: str) -> Response:
        """One of the page's files, read once at start-up."""
        return Response(self.explorer.static[name], media_type=f"{PAGE[name]}; charset=utf-8")

    async def index(self, request: Request) -> Response:
        return self._file("index.html")

    async def page_file(self, request: Request) -> Response:
        return self._file(request.url.path.lstrip("/"))

    async def runs(self, request: Request) -> Response:
        return JSONResponse({"runs": [r.describe() for r in self.explorer.runs.values()],
                             "limits": {"codes": MAX_CODES, "steps": MAX_STEPS, "samples": MAX_SAMPLES,
                                        "upload": MAX_UPLOAD}})

    async def image(self, request: Request) -> Response:
        run = self.explorer.run(request)
        index = request.path_params["index"]
        if index >= len(run.test):
            raise RequestError(404, f"Test image {index} does not exist: the split holds {len(run.test)}.")
        return JSONResponse({"vector" if run.vectors else "image": await self.explorer.work(run.test_image, index)})

    async def decode(self, request: Request) -> Response:
        run = self.explorer.run(request)
        req = await _parse(request, Decode)
        labels = self.explorer.labels(run, req.labels, len(req.targets))
        codes = await self.explorer.work(self.explorer.codes, run, req.targets, labels)
        decoded = await self.explorer.work(run.decode, codes, labels)
        return JSONResponse({**outputs(run, decoded), "codes": codes.tolist(), "points": run.to_map(codes)})

    async def interpolate(self, request: Request) -> Response:
        run = self.explorer.run(request)
        req = await _parse(request, Walk)
        label = self.explorer.labels(run, None if req.label is None else [req.label], 2)
        a, b = await self.explorer.work(self.explorer.codes, run, [req.a, req.b], label)
        path = run.walk(a, b, req.steps, req.mode)
        decoded = await self.explorer.work(run.decode, path, None if label is None else label[:1].repeat(len(path)))
        return JSONResponse({**outputs(run, decoded), "codes": path.tolist(), "points": run.to_map(path)})

    async def sample(self, request: Request) -> Response:
        run = self.explorer.run(request)
        if not run.run.model.samples:
            raise RequestError(400, f"The {run.name} run ({run.run.config.family}) has no prior to sample from; "
                                    f"pick a run of a family that samples ({families_that('samples')}).")
        req = await _parse(request, Sample)
        self.explorer.labels(run, None if req.label is None else [req.label], 1)  # checked
        codes, decoded = await self.explorer.work(run.draw, req.n, req.seed, req.label)  # None: the run's default
        return JSONResponse({**outputs(run, decoded), "codes": codes, "points": run.to_map(torch.tensor(codes))})

    async def upload(self, request: Request) -> Response:
        run = self.explorer.run(request)
        invert = request.query_params.get("invert", "auto")
        if invert not in ("auto", "yes", "no"):
            raise RequestError(400, "invert must be auto, yes or no.")
        if run.vectors:
            raise RequestError(400, f"The {run.name} run was trained on vectors, not images; it takes no image file.")
        given = request.query_params.get("label")
        if given is not None and not given.isdigit():
            raise RequestError(400, "label must be a class index (0, 1, ...).")
        label = self.explorer.labels(run, None if given is None else [int(given)], 1)
        data = await _body(request, MAX_UPLOAD, "image file")
        if not data:
            raise RequestError(400, "The file is empty; drop a PNG or JPEG image.")
        try:
            return JSONResponse(await self.explorer.work(run.own_image, data, invert,
                                                         None if label is None else int(label[0])))
        except GenmodelsError as err:
            raise RequestError(400, str(err)) from None


async def refused(request: Request, exc: Exception) -> Response:
    """A RequestError's answer: its status and its one sentence (Starlette types every handler's error as
    Exception, so the status is narrowed here)."""
    status = exc.status if isinstance(exc, RequestError) else 500
    return JSONResponse({"error": str(exc)}, status_code=status)


async def failed(request: Request, exc: Exception) -> Response:
    """Any other error is a bug: one sentence, never a traceback."""
    return JSONResponse({"error": f"The explorer failed on this request ({type(exc).__name__}); "
                                  "try another, and report the bug if it repeats."}, status_code=500)


def build_app(explorer: Explorer, host: str = "127.0.0.1") -> _Headers:
    """The explorer's ASGI app: its routes, the answers to refused and failed requests, requests addressed to
    anything but `host` (the --host it listens on) refused, the same headers on all."""
    app = Starlette(routes=Routes(explorer).table(), exception_handlers={RequestError: refused, Exception: failed})
    return _Headers(_Guard(app, Hosts(host)))


_AUTHORITY = re.compile(r"(?:\[(?P<v6>[0-9a-f:.]+)\]|(?P<name>[a-z0-9._-]+))(?::(?P<port>\d{1,5}))?")


def authority(text: str, default_port: int = 80) -> tuple[str, int] | None:
    """A Host header's (or an origin's) host name, lower-case and without a final dot, and its port; None when it
    is not a host name or an IP address."""
    found = _AUTHORITY.fullmatch(text.strip().lower())
    if found is None:
        return None
    name = found["v6"] or found["name"].removesuffix(".")
    if found["v6"] and not _is_ip(name):
        return None
    return name, int(found["port"] or default_port)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class Hosts:
    """The names a request may be addressed to: localhost, the --host the explorer listens on, and any IP address.
    A page of another site reaches the explorer through DNS rebinding only under its own domain name, which the
    browser sends as the Host; a bare address is the explorer's own origin (or a client that is not a browser).
    Listening on every address (0.0.0.0, ::), the explorer also answers to this machine's own names."""

    def __init__(self, host: str):
        self.names = {"localhost", host.lower().strip("[]").removesuffix(".")}
        if host in ("0.0.0.0", "::", ""):
            self.names |= {socket.gethostname().lower(), socket.getfqdn().lower()}

    def allow(self, name: str) -> bool:
        return name in self.names or _is_ip(name)


class _Guard:
    """ASGI middleware refusing what a web page of another site could make a browser send: a request addressed to
    a host name the explorer does not serve (DNS rebinding: the page's domain now resolves here), and a
    state-changing request (POST) whose Origin is not the explorer's own page (cross-site requests)."""

    SAFE = ("GET", "HEAD", "OPTIONS")

    def __init__(self, app: ASGIApp, hosts: Hosts):
        self.app, self.hosts = app, hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = self.check(scope) if scope["type"] == "http" else None
        if error is None:
            await self.app(scope, receive, send)
        else:
            await JSONResponse({"error": error}, status_code=403)(scope, receive, send)

    def check(self, scope: Scope) -> str | None:
        """Why the request is refused, in one sentence; None when it is not."""
        headers: dict[str, list[str]] = {}
        for key, value in scope["headers"]:
            headers.setdefault(key.decode("latin-1").lower(), []).append(value.decode("latin-1"))
        served = None  # a browser always sends one Host: a request without one is no web page's
        for host in headers.get("host", []):
            served = authority(host)
            if served is None or not self.hosts.allow(served[0]):
                return (f"The explorer answers only requests addressed to this machine (localhost, an IP address "
                        f"or its --host), not to {host[:80]!r}; open the address it printed when it started.")
        for origin in headers.get("origin", []) if scope["method"] not in self.SAFE else []:
            scheme, _, rest = origin.partition("://")
            sent = authority(rest, 443 if scheme == "https" else 80) if scheme in ("http", "https") else None
            if sent is None or not self.hosts.allow(sent[0]) or (served is not None and sent != served):
                return (f"The explorer takes requests only from its own page, not from one at {origin[:80]!r}; "
                        "use the page at the address it printed when it started.")
        return None


class _Headers:
    """ASGI middleware adding the same headers to every response: nothing is fetched from elsewhere (the
    page works offline, and no injected script could run), and nothing is cached (a run may be retrained)."""

    HEADERS = [(b"content-security-policy", b"default-src 'self'; img-src 'self' data: blob:; object-src 'none'; "
                                            b"frame-ancestors 'none'"),
               (b"x-content-type-options", b"nosniff"), (b"cache-control", b"no-store")]

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self.HEADERS]}
            await send(message)

        await self.app(scope, receive, with_headers if scope["type"] == "http" else send)
