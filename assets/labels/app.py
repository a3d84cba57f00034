"""The labeling web app: one image at a time, keys 1-5 to rate it, labels into the store.

JSON API (all errors are `{"error": "..."}` with a 4xx status):

- `GET /api/next?labeler=NAME[&exclude=K1,K2]`: the next post for NAME, as
  `{"post_key", "site", "post_id", "stratum", "rating", "round", "image_url", "post_url"}`;
  `exclude` lists posts the client already holds. When nothing new is left (outside
  `exclude`) it answers 200 `{"done": true}`.
- `POST /api/labels` `{"post_key", "labeler", "value": 1-5 | "skip"[, "client"]}`: answers
  200 `{"ok": true, "id"}` only once the label is on disk; 404 for a post not in the pool.
- `POST /api/undo` `{"labeler"}`: undoes NAME's latest label or skip; 200
  `{"undone": {...}, "item": {...}}`, or 409 when there is nothing to undo.
- `GET /api/progress?labeler=NAME`, `GET /api/stats` (see stats.py), `GET /api/health`.

POST bodies must be `Content-Type: application/json`: a page on another site cannot send
that without a CORS preflight, which this app never grants. Images are served by post key
only (`/images/<post_key>`), from the pool row's path under the image root.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from assets.labels import queue, stats
from assets.labels.gate import LOOPBACK_HOSTS, TokenGate
from assets.labels.sources import EventCache, PoolFile
from assets.labels.store import LabelStore, LabelStoreError

STATIC = Path(__file__).parent / "static"
PAGES = {"/": "index.html", "/stats": "stats.html"}
ASSETS = {"app.js": "text/javascript", "style.css": "text/css"}
POST_URLS = {
    "danbooru": "https://danbooru.donmai.us/posts/{id}",
    "e621": "https://e621.net/posts/{id}",
    "derpibooru": "https://derpibooru.org/images/{id}",
    "gelbooru": "https://gelbooru.com/index.php?page=post&s=view&id={id}",
}
MAX_NAME = 64


@dataclass(frozen=True)
class AppConfig:
    """Where the app reads and writes, and how it hands out posts."""

    pool_path: Path
    image_root: Path
    store_path: Path
    token: str | None = None  # required on every request when set
    repeat_share: float = 0.05
    order_seed: int = 0  # the shuffle within each round: the same for every labeler
    rng_seed: int | None = None  # when hidden repeats come (tests fix it)


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def item(row: dict) -> dict:
    """What the client gets for one post (never whether it is a repeat)."""
    template = POST_URLS.get(row["site"])
    return {
        "post_key": row["post_key"],
        "site": row["site"],
        "post_id": row["post_id"],
        "stratum": row["stratum"],
        "rating": row["rating"],
        "round": row["round"],
        "image_url": "/images/" + quote(row["post_key"], safe=":"),
        "post_url": template.format(id=row["post_id"]) if template else None,
    }


def client_of(request: Request, session: object) -> str:
    """Who sent an event: the client's address, and the page session's id if it gave one."""
    address = request.client.host if request.client else "unknown"
    return f"{address} {session[:64]}" if isinstance(session, str) and session else address


def labeler_name(value: object) -> str:
    name = value.strip() if isinstance(value, str) else ""
    if not name:
        raise ApiError(422, "labeler is missing: give a non-empty name")
    if len(name) > MAX_NAME or not name.isprintable():
        raise ApiError(422, f"labeler must be at most {MAX_NAME} printable characters")
    return name


async def json_body(request: Request) -> dict:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise ApiError(415, "send the body as JSON with Content-Type: application/json")
    try:
        body = await request.json()
    except ValueError:
        raise ApiError(400, "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


class Labeling:
    """The app's state and its request handlers."""

    def __init__(self, config: AppConfig):
        self.config = config
        self.pool = PoolFile(config.pool_path, config.order_seed)
        self.store = LabelStore(config.store_path)
        self.cache = EventCache(self.store)
        self.rng = random.Random(config.rng_seed)
        self.image_root = Path(config.image_root).resolve()

    def pick(self, labeler: str, exclude: set[str]) -> dict:
        pool = self.pool.current()
        past = queue.history(self.cache.events(), labeler)
        chosen = queue.next_item(pool.order, past, exclude, self.config.repeat_share, self.rng)
        return {"done": True} if chosen is None else item(pool.rows[chosen.post_key])

    async def next(self, request: Request) -> Response:
        labeler = labeler_name(request.query_params.get("labeler"))
        exclude = {k for k in request.query_params.get("exclude", "").split(",") if k}
        return JSONResponse(await run_in_threadpool(self.pick, labeler, exclude))

    async def label(self, request: Request) -> Response:
        body = await json_body(request)
        labeler = labeler_name(body.get("labeler"))
        key, value = body.get("post_key"), body.get("value")
        if not isinstance(key, str) or not key:
            raise ApiError(422, "post_key is missing")
        if key not in self.pool.current().rows:
            raise ApiError(404, f"unknown post_key {key!r}: not in the rating pool")
        if value is None:
            raise ApiError(422, 'value is missing: give 1 to 5, or "skip"')
        client = client_of(request, body.get("client"))
        request_id = body.get("request_id")
        if request_id is not None and (not isinstance(request_id, str) or len(request_id) > 64):
            raise ApiError(422, "request_id must be a string of at most 64 characters")
        try:
            event = await run_in_threadpool(
                self.store.add, key, labeler, value, client, None, "app", request_id
            )
        except LabelStoreError as e:
            raise ApiError(422, str(e)) from None
        return JSONResponse({"ok": True, "id": event, "post_key": key, "value": value})

    async def undo(self, request: Request) -> Response:
        body = await json_body(request)
        labeler = labeler_name(body.get("labeler"))
        undone = await run_in_threadpool(
            self.store.undo, labeler, client_of(request, body.get("client"))
        )
        if undone is None:
            raise ApiError(409, f"nothing to undo for {labeler!r}")
        row = self.pool.current().rows.get(undone["post_key"])
        return JSONResponse({"undone": undone, "item": item(row) if row else None})

    def _progress(self, labeler: str) -> dict:
        keys = self.pool.current().rows.keys()
        return stats.progress(self.cache.events(), labeler, keys, datetime.now(UTC))

    async def progress(self, request: Request) -> Response:
        labeler = labeler_name(request.query_params.get("labeler"))
        return JSONResponse(await run_in_threadpool(self._progress, labeler))

    def _stats(self) -> dict:
        return stats.summary(self.cache.events(), len(self.pool.current().rows))

    async def stats(self, request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(self._stats))

    async def health(self, request: Request) -> Response:
        return JSONResponse({"ok": True, "pool": len(self.pool.current().rows)})

    async def image(self, request: Request) -> Response:
        row = self.pool.current().rows.get(request.path_params["post_key"])
        path = (self.image_root / row["image_path"]).resolve() if row else None
        if path is None or not path.is_relative_to(self.image_root) or not path.is_file():
            raise ApiError(404, "no image for this post key")
        return FileResponse(path, headers={"Cache-Control": "private, max-age=86400"})

    async def page(self, request: Request) -> Response:
        name = PAGES.get(request.url.path) or request.path_params.get("name", "")
        if name not in (*PAGES.values(), *ASSETS):
            raise ApiError(404, "no such page")
        media = ASSETS.get(name, "text/html")
        return FileResponse(STATIC / name, media_type=media, headers={"Cache-Control": "no-cache"})


async def api_error(request: Request, exc: Exception) -> Response:
    """Every refusal as `{"error": ...}`, Starlette's own 404 and 405 included."""
    if isinstance(exc, HTTPException):
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)
    return JSONResponse({"error": exc.message}, status_code=exc.status)


def create_app(config: AppConfig) -> Starlette:
    """The app for one pool, image root and label store (the pool file must exist)."""
    app = Labeling(config)
    routes = [
        Route("/api/next", app.next),
        Route("/api/labels", app.label, methods=["POST"]),
        Route("/api/undo", app.undo, methods=["POST"]),
        Route("/api/progress", app.progress),
        Route("/api/stats", app.stats),
        Route("/api/health", app.health),
        Route("/images/{post_key}", app.image),
        Route("/", app.page),
        Route("/stats", app.page),
        Route("/static/{name}", app.page),
    ]
    middleware = (
        [Middleware(TokenGate, token=config.token)]
        if config.token
        else [Middleware(TrustedHostMiddleware, allowed_hosts=LOOPBACK_HOSTS)]
    )
    handlers = {ApiError: api_error, HTTPException: api_error}

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        app.store.close()

    starlette = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers=handlers,
        lifespan=lifespan,
        max_body_size=64 * 1024,
    )
    starlette.state.labeling = app
    return starlette
