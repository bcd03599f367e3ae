"""The explorer's routes, each called on its own (no server, no model): the route table, the page's files,
the run list and its limits, a refused request's answer and the headers on every response. The answers
that need a trained run are tests/test_explore.py's."""

import asyncio
import json
from importlib import resources

import pytest
from starlette.requests import Request

from genmodels.explore import server
from genmodels.explore.server import Explorer, RequestError, Routes


@pytest.fixture
def routes():
    explorer = Explorer([])
    yield Routes(explorer)
    explorer.pool.shutdown()


def _request(path: str, method: str = "GET", path_params: dict | None = None) -> Request:
    return Request({"type": "http", "method": method, "path": path, "headers": [], "query_string": b"",
                    "path_params": path_params or {}})


def test_the_route_table_is_the_pages_files_and_the_api(routes):
    table = [(r.path, sorted(r.methods or [])) for r in routes.table()]
    get, post = ["GET", "HEAD"], ["POST"]
    assert table == [("/", get), ("/explore.css", get), ("/vectors.js", get), ("/classes.js", get), ("/map.js", get),
                     ("/explore.js", get), ("/api/runs", get),
                     ("/api/runs/{key}/images/{index:int}", get), ("/api/runs/{key}/decode", post),
                     ("/api/runs/{key}/interpolate", post), ("/api/runs/{key}/sample", post),
                     ("/api/runs/{key}/upload", post)]


def test_each_page_file_is_served_as_read_with_its_type(routes):
    static = resources.files("genmodels.explore") / "static"
    script = "text/javascript; charset=utf-8"
    for name, kind in (("index.html", "text/html; charset=utf-8"), ("explore.js", script), ("vectors.js", script),
                       ("classes.js", script), ("map.js", script), ("explore.css", "text/css; charset=utf-8")):
        endpoint = routes.index if name == "index.html" else routes.page_file
        answer = asyncio.run(endpoint(_request("/" if name == "index.html" else f"/{name}")))
        assert answer.body == (static / name).read_bytes() and answer.headers["content-type"] == kind


def test_the_run_list_carries_the_limits(routes):
    answer = asyncio.run(routes.runs(_request("/api/runs")))
    assert json.loads(answer.body) == {"runs": [], "limits": {"codes": server.MAX_CODES, "steps": server.MAX_STEPS,
                                                              "samples": server.MAX_SAMPLES,
                                                              "upload": server.MAX_UPLOAD}}


def test_an_unknown_run_is_refused_with_404_and_one_sentence(routes):
    request = _request("/api/runs/nope/images/0", path_params={"key": "nope", "index": 0})
    with pytest.raises(RequestError) as caught:
        asyncio.run(routes.image(request))
    answer = asyncio.run(server.refused(request, caught.value))
    assert answer.status_code == 404
    assert json.loads(answer.body) == {"error": "There is no run 'nope' in this explorer; reload the page."}


def test_a_bug_is_a_500_with_one_sentence_and_no_traceback():
    answer = asyncio.run(server.failed(_request("/api/runs"), KeyError("secret")))
    assert answer.status_code == 500 and "secret" not in answer.body.decode()
    assert json.loads(answer.body)["error"].startswith("The explorer failed on this request (KeyError)")


def test_every_response_carries_the_security_and_cache_headers(routes):
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/api/runs/nope/images/3", "raw_path": b"/api/runs/nope/images/3",
             "root_path": "", "scheme": "http", "query_string": b"", "headers": [], "server": ("test", 80)}
    asyncio.run(server.build_app(routes.explorer)(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    headers = dict(start["headers"])
    assert start["status"] == 404
    assert headers[b"cache-control"] == b"no-store" and headers[b"x-content-type-options"] == b"nosniff"
    assert headers[b"content-security-policy"].startswith(b"default-src 'self'")
