"""Who may use the labeling app: a token on every request when it is reachable from other
machines, and only the loopback host names when it is not (so that a web page elsewhere
cannot reach it through DNS rebinding)."""

from __future__ import annotations

import hmac
import ipaddress

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

COOKIE = "scoretag_label_token"
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "[::1]", "::1"]


def needs_token(host: str) -> bool:
    """True unless `host` is a loopback address: anything else is reachable by others."""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


class TokenGate:
    """Every request must carry the token: `Authorization: Bearer T`, or the cookie that
    opening any page with `?token=T` once sets (so <img> tags and the page's fetches carry it).
    401 when none is offered, 403 when the one offered is wrong."""

    def __init__(self, app: ASGIApp, token: str):
        self.app, self.token = app, token.encode()

    def matches(self, offered: str) -> bool:
        return hmac.compare_digest(offered.encode(), self.token)

    def refusal(self, request: Request) -> Response | None:
        offered = request.headers.get("authorization", "")
        offered = offered[7:] if offered.lower().startswith("bearer ") else None
        offered = offered if offered is not None else request.cookies.get(COOKIE)
        if offered is None:
            return JSONResponse(
                {
                    "error": "a token is required: open /?token=T once, "
                    "or send Authorization: Bearer T"
                },
                status_code=401,
            )
        if not self.matches(offered):
            return JSONResponse({"error": "wrong token"}, status_code=403)
        return None

    def login(self, request: Request, offered: str) -> Response:
        if not self.matches(offered):
            return JSONResponse({"error": "wrong token"}, status_code=403)
        # Redirect to the same page without the token, so it stays out of history and logs.
        response = RedirectResponse(request.url.remove_query_params("token"), status_code=303)
        response.set_cookie(COOKIE, offered, max_age=30 * 86400, httponly=True, samesite="strict")
        return response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope)
        offered = request.query_params.get("token")
        if offered is not None and request.method == "GET":
            response = self.login(request, offered)
        else:
            response = self.refusal(request)
        if response is None:
            return await self.app(scope, receive, send)
        return await response(scope, receive, send)
