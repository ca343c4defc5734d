"""Run the API server for real (uvicorn on a loopback port) inside this process (tests and benchmarks)."""

from __future__ import annotations

import socket
import subprocess
import threading
import time

import httpx
import uvicorn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(
    url: str, timeout: float = 60, process: subprocess.Popen[bytes] | None = None, poll: float = 0.05
) -> float:
    """Seconds until ``url``'s ``/readyz`` answers 200; raises after ``timeout`` or if ``process``
    (a server started as a subprocess) exits first."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before it was ready")
        try:
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(poll)
    raise RuntimeError(f"{url} was not ready after {timeout:.0f} s")


class LiveServer:
    """``with LiveServer(app) as server:`` then talk to ``server.url`` over HTTP."""

    def __init__(self, app, port: int | None = None, *, start_timeout: float = 30, thread_name: str = "live-uvicorn"):
        self.app = app
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.start_timeout = start_timeout
        self._server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self._server.run, name=thread_name, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + self.start_timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the API server did not start")
            time.sleep(0.02)
        return self

    def wait_ready(self, timeout: float = 60) -> float:
        """Seconds until ``/readyz`` answers 200 (raises after ``timeout``)."""
        return wait_ready(self.url, timeout)

    def client(self, key: str | None = None, **kwargs) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, **kwargs)

    def __exit__(self, *exc) -> None:
        self._server.should_exit = True
        self.thread.join(timeout=30)


def wait_for_job(api, url: str, timeout: float = 60) -> dict:
    """Poll a job's status URL until it is done or failed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = api.get(url).json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job did not finish: {job}")
