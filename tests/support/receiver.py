"""A real Back-Channel Logout receiver: an HTTP server on 127.0.0.1 that records the logout tokens POSTed to it,
and answers as the test tells it (200, 500, too slow, or not at all until released)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet

EVENT = "http://schemas.openid.net/event/backchannel-logout"


@dataclass
class Receiver:
    """What the job board's endpoint saw; `answers` is consumed one per request (then 200)."""

    port: int = 0
    tokens: list[str] = field(default_factory=list)  # logout tokens of requests answered 2xx
    tries: int = 0
    answers: list[str] = field(default_factory=list)  # "500", "hang" (never answer in time), "block"
    release: threading.Event = field(default_factory=threading.Event)  # what a "block" answer waits for
    blocked: threading.Event = field(default_factory=threading.Event)  # set when a "block" request arrived
    server: ThreadingHTTPServer | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}/backchannel-logout"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                receiver.tries += 1
                answer = receiver.answers.pop(0) if receiver.answers else "200"
                if answer == "hang":
                    receiver.release.wait(30)
                    return
                if answer == "block":
                    receiver.blocked.set()
                    receiver.release.wait(30)
                    answer = "200"
                status = int(answer)
                if status == 200:
                    assert self.headers["Content-Type"] == "application/x-www-form-urlencoded"
                    receiver.tokens.extend(parse_qs(body)["logout_token"])
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Down: the port refuses connections (until `start` again, on the same port)."""
        assert self.server is not None
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.server = None


@contextmanager
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.start()
    try:
        yield r
    finally:
        if r.server is not None:
            r.stop()


def validate_logout_token(token: str, jwks: dict[str, Any], *, issuer: str, client_id: str) -> dict[str, Any]:
    """OIDC Back-Channel Logout 1.0 §2.6, as a job board checks it, with joserfc against idp's published JWKS."""
    decoded = jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["RS256", "ES256"])
    assert decoded.header["typ"] == "logout+jwt"
    assert decoded.header["kid"] in {k["kid"] for k in jwks["keys"]}
    claims = dict(decoded.claims)
    assert claims["iss"] == issuer
    assert claims["aud"] == client_id
    assert isinstance(claims["iat"], int)
    assert isinstance(claims["exp"], int)
    assert claims["exp"] > claims["iat"]
    assert isinstance(claims["jti"], str)
    assert len(claims["jti"]) >= 16
    assert claims["events"] == {EVENT: {}}
    assert "nonce" not in claims
    assert set(claims) == {"iss", "aud", "iat", "exp", "jti", "sub", "sid", "events"}
    return claims


async def published_jwks(client: httpx.AsyncClient) -> dict[str, Any]:
    return dict((await client.get("/jwks")).json())
