"""Who may talk to the server at all: Host allow-list, same-origin checks and security headers.

Local single-user mode trusts whoever reaches 127.0.0.1. Two kinds of web page
could otherwise reach it through the user's own browser:

- **DNS rebinding**: a page on ``attacker.example`` whose name re-resolves to
  127.0.0.1 becomes *same-origin* with the server. Its requests carry
  ``Host: attacker.example:PORT``, so a Host allow-list (loopback names, the
  address the server listens on, and names the operator adds) refuses them.
- **Cross-site requests**: any page can send a form or a ``fetch`` with
  ``mode: "no-cors"`` to 127.0.0.1 (an upload, a folder job). Browsers say where
  a request comes from in ``Origin`` and ``Sec-Fetch-Site``; every API request
  and every state-changing request must come from the server's own origin (other
  ports on 127.0.0.1 are other origins). Requests without either header are not
  from a browser page (curl, scripts, the CLI) and pass: they cannot be forged
  by a web page.

Every response also carries a Content-Security-Policy (no inline script, no
framing) and the usual hardening headers, so the page cannot be framed for
clickjacking and an injected string cannot run as script.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import error_body

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: ``Sec-Fetch-Site`` values a browser sends for the server's own page, or for a URL the user typed.
_TRUSTED_FETCH_SITES = frozenset({"same-origin", "none"})

#: The page: scripts and styles only from the server itself, no framing, no plugins.
#: Images may come from elsewhere: "search by image URL" shows the reference picture
#: the user linked, and uploaded references are shown from ``blob:`` URLs.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob: http: https:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
#: Swagger UI (bundled, served from /static/docs) styles its widgets with inline styles.
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
_COMMON_HEADERS = [
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


def split_host(value: str) -> tuple[str, int | None]:
    """``host[:port]`` (``[v6]:port`` too) as a lower-case name and an optional port."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return value, None
        name, rest = value[1:end], value[end + 1 :]
        port = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        name, port = value.split(":")
    else:
        name, port = value, ""
    if port and not port.isdigit():
        return "", None
    return name.rstrip("."), int(port) if port else None


def is_loopback_name(name: str) -> bool:
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class HostPolicy:
    """Which ``Host`` header values the server answers.

    ``strict`` (local single-user mode, or names were configured): loopback names,
    the address the server listens on and ``allowed`` names only. Otherwise (keys
    required and nothing configured) any Host is answered: without a key a
    rebinding page gets nothing, and the browser never sends the key cookie to
    another name.
    """

    def __init__(self, allowed: Iterable[str] = (), *, bind_host: str | None = None, strict: bool = True):
        configured = {split_host(a)[0] for a in allowed if a.strip()} - {""}
        names = set(configured)
        if bind_host and bind_host not in ("0.0.0.0", "::", ""):
            names.add(bind_host.strip("[]").lower() if bind_host.count(":") > 1 else split_host(bind_host)[0])
        self.allowed = frozenset(n for n in names if n)
        self.strict = strict or bool(configured)

    def allows(self, host_header: str | None) -> bool:
        if not self.strict:
            return True
        if not host_header:
            return False
        name, _ = split_host(host_header)
        if not name:
            return False
        return is_loopback_name(name) or name in self.allowed


def _same_origin(origin: str, host_header: str | None) -> bool:
    """Does ``Origin`` name this server (as the client reached it through ``Host``)?"""
    if not host_header or origin == "null":
        return False
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    name, port = split_host(host_header)
    origin_port = parts.port or (443 if parts.scheme == "https" else 80)
    if parts.hostname.lower().rstrip(".") != name:
        return False
    # No port in Host: the default port of whatever scheme the client used (a TLS proxy in
    # front of the server may have changed the scheme), so the names must match, and they do.
    return port is None or port == origin_port


class RequestGuard:
    """ASGI middleware: refuse foreign Host names and cross-origin browser requests; add security headers."""

    def __init__(self, app: ASGIApp, hosts: HostPolicy):
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
        host = headers.get("host")
        path: str = scope["path"]
        if not self.hosts.allows(host):
            await _refuse(
                send,
                421 if host else 400,
                "host_not_allowed",
                f"this server does not answer for host {host!r}; add it with "
                "`visualsearch serve --allowed-host NAME` (or VISUALSEARCH_ALLOWED_HOSTS)",
            )
            return
        if path.startswith("/api/") or scope["method"] in UNSAFE_METHODS:
            reason = self._cross_origin(headers, scope)
            if reason:
                await _refuse(send, 403, "cross_origin", reason)
                return

        csp = (DOCS_CSP if path == "/docs" or path.startswith("/static/docs/") else PAGE_CSP).encode()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                existing = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in _COMMON_HEADERS if k not in existing]
                if b"content-security-policy" not in existing:
                    extra.append((b"content-security-policy", csp))
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, send_with_headers)

    @staticmethod
    def _cross_origin(headers: dict[str, str], scope: Scope) -> str | None:
        origin = headers.get("origin")
        if origin is not None and not _same_origin(origin, headers.get("host")):
            return f"requests from another origin ({origin}) are refused"
        site = headers.get("sec-fetch-site")
        if site is not None and site.lower() not in _TRUSTED_FETCH_SITES:
            return f"requests from another site ({site}) are refused"
        return None


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps(error_body(code, message)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *_COMMON_HEADERS,
                (b"content-security-policy", PAGE_CSP.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
