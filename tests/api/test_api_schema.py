"""Property-based checks of the whole OpenAPI schema with schemathesis: no input makes a 500.

Runs against a live server (real HTTP) with a bounded number of examples per
operation. URL fetching is fenced to this machine: name resolution only knows
loopback names, so generated URLs can never reach another host.
"""

from __future__ import annotations

import io
import socket
import types

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.support.embedders import TinyEmbedder
from tests.support.images import gradient_image
from tests.support.live import LiveServer
from visualsearch.api import create_app
from visualsearch.config import Settings

pytestmark = pytest.mark.slow  # property-based, the whole schema, ~10 s

EXAMPLES_PER_OPERATION = 25


def _loopback_only_socket():
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host in ("127.0.0.1", "localhost", "::1"):
            return real(host, *args, **kwargs)
        raise socket.gaierror(socket.EAI_NONAME, "name resolution is fenced in this test")

    return types.SimpleNamespace(**{**vars(socket), "getaddrinfo": getaddrinfo})


@pytest.fixture(scope="module")
def live_api(tmp_path_factory):
    from visualsearch.ingest import fetch

    root = tmp_path_factory.mktemp("schema")
    (root / "allowed").mkdir()
    settings_ = Settings.from_env(
        root / "lib", batch_size=4, decode_workers=1, rate_limit_per_minute=0, folder_roots=(root / "allowed",)
    )
    app = create_app(settings_, embedder=TinyEmbedder(), require_keys=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fetch, "socket", _loopback_only_socket())
        with LiveServer(app) as live:
            live.wait_ready()
            with live.client() as client:
                for i in range(3):
                    buf = io.BytesIO()
                    gradient_image(i).save(buf, "PNG")
                    client.post("/api/assets", files={"files": (f"g{i}.png", buf.getvalue(), "image/png")})
            yield live


def _openapi_document() -> dict:
    """The schema the server publishes at /openapi.json, built once at collection time."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        app = create_app(Settings.from_env(folder), embedder=TinyEmbedder(), require_keys=False)
        document = app.openapi()
        app.state.server.library.close()
    return document


schema = schemathesis.openapi.from_dict(_openapi_document())


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_makes_a_server_error(case, live_api):
    response = case.call(base_url=live_api.url, timeout=30)
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}"
    )
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), response.text[:500]
