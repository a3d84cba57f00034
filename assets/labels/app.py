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
- `GET /api/progress?labeler=NAME`, `GET /api/stats` (see stats.py; its `pairs` holds
  pair_stats.summary), `GET /api/health`.

Compare mode (`/compare`; pairs drawn as pairing.py says):

- `GET /api/pairs/next?labeler=NAME[&exclude=A|B,C|D]`: `{"left": item, "right": item}`
  (items as above), or `{"done": true}`; `exclude` lists pairs the client already holds.
- `POST /api/pairs` `{"left_key", "right_key", "labeler", "choice": "left" | "right" | "tie"
  | "skip"[, "client", "request_id"]}`: 200 `{"ok": true, "id"}` only once it is on disk; the
  same request_id again answers with the first judgment's id.
- `POST /api/pairs/undo` `{"labeler"}`: undoes NAME's latest choice or skip; 200
  `{"undone": {...}, "left": item, "right": item}` (the pair as it was shown), or 409.
- `GET /api/pairs/progress?labeler=NAME`, `GET /api/pairs/stats` (see pair_stats.py).

POST bodies must be `Content-Type: application/json`: a page on another site cannot send
that without a CORS preflight, which this app never grants.

Images are served by post key only: `/images/<post_key>` the original (a loose file, or a tar
shard's member streamed from its offset), `/previews/<post_key>` a downscaled preview (see
preview.py; the original when previews are off or the image already fits). A pool row is
trusted only for files under the image root and the configured image sources (images.py).
An image that cannot be decoded gets a placeholder (422, `X-Image-Error: <reason>`); it can
still be rated or skipped.
"""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from urllib.parse import quote

import numpy as np
import polars as pl
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from assets.images.decode import DEFAULT_MAX_PIXELS, Unusable
from assets.labels import pair_stats, pairing, queue, stats
from assets.labels.gate import LOOPBACK_HOSTS, TokenGate
from assets.labels.images import ImageSources, Located
from assets.labels.preview import Previews
from assets.labels.sources import EventCache, PairEventCache, Pool, PoolFile
from assets.labels.store import LabelStore, LabelStoreError

STATIC = Path(__file__).parent / "static"
PAGES = {"/": "index.html", "/stats": "stats.html", "/compare": "compare.html"}
ASSETS = {
    "common.js": "text/javascript",
    "app.js": "text/javascript",
    "compare.js": "text/javascript",
    "style.css": "text/css",
}
ISSUED = 10_000  # pairs handed out whose source the server remembers until they are judged
POST_URLS = {
    "danbooru": "https://danbooru.donmai.us/posts/{id}",
    "e621": "https://e621.net/posts/{id}",
    "derpibooru": "https://derpibooru.org/images/{id}",
    "gelbooru": "https://gelbooru.com/index.php?page=post&s=view&id={id}",
}
MAX_NAME = 64
# Image responses: cached by the browser, never sniffed into another type, and sandboxed
# when opened on their own (an image cannot run a script on the app's origin).
IMAGE_HEADERS = {
    "Cache-Control": "private, max-age=86400",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
    "sandbox",
}


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
    image_sources: tuple[Path, ...] = ()  # served besides the image root (relative: under it)
    preview_dir: Path | None = None  # the preview cache; None or a long side of 0: originals
    preview_long_side: int = 0
    preview_format: str = "webp"  # or "jpeg"
    preview_cache_bytes: int = 2 << 30
    max_pixels: int = DEFAULT_MAX_PIXELS  # bigger pictures get the placeholder
    random_pair_share: float = 0.2  # compare mode: pairs drawn uniformly from the pool
    near_duplicate_cosine: float = 0.95  # compare mode: posts this similar are never paired
    pair_scores: pl.DataFrame | None = None  # post_key, score: the active head's predictions
    pair_vectors: tuple[list[str], np.ndarray] | None = None  # post keys, unit image vectors


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def item(row: dict, previews: bool = False) -> dict:
    """What the client gets for one post (never whether it is a repeat)."""
    template = POST_URLS.get(row["site"])
    key = quote(row["post_key"], safe=":")
    return {
        "post_key": row["post_key"],
        "site": row["site"],
        "post_id": row["post_id"],
        "stratum": row["stratum"],
        "rating": row["rating"],
        "round": row["round"],
        "image_url": f"/images/{key}",
        "preview_url": f"/previews/{key}" if previews else f"/images/{key}",
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


def request_id_of(body: dict) -> str | None:
    request_id = body.get("request_id")
    if request_id is not None and (not isinstance(request_id, str) or len(request_id) > 64):
        raise ApiError(422, "request_id must be a string of at most 64 characters")
    return request_id


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
        self.pair_cache = PairEventCache(self.store)
        self._pair_pool: tuple[Pool, pairing.PairPool] | None = None
        self._pair_inputs = (config.pair_scores, config.pair_vectors)
        self.issued: dict[tuple[str, str, str], str] = {}  # (labeler, left, right) -> source
        self._issued_lock = threading.Lock()
        self.rng = random.Random(config.rng_seed)
        self.sources = ImageSources(config.image_root, config.image_sources)
        self.previews = (
            Previews(
                config.preview_dir,
                config.preview_long_side,
                fmt=config.preview_format,
                max_bytes=config.preview_cache_bytes,
                max_pixels=config.max_pixels,
            )
            if config.preview_dir is not None and config.preview_long_side > 0
            else None
        )

    def item(self, row: dict) -> dict:
        return item(row, previews=self.previews is not None)

    def pick(self, labeler: str, exclude: set[str]) -> dict:
        pool = self.pool.current()
        past = queue.history(self.cache.events(), labeler)
        chosen = queue.next_item(pool.order, past, exclude, self.config.repeat_share, self.rng)
        return {"done": True} if chosen is None else self.item(pool.rows[chosen.post_key])

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
        request_id = request_id_of(body)
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
        return JSONResponse({"undone": undone, "item": self.item(row) if row else None})

    def _progress(self, labeler: str) -> dict:
        keys = self.pool.current().rows.keys()
        return stats.progress(self.cache.events(), labeler, keys, datetime.now(UTC))

    async def progress(self, request: Request) -> Response:
        labeler = labeler_name(request.query_params.get("labeler"))
        return JSONResponse(await run_in_threadpool(self._progress, labeler))

    def _stats(self) -> dict:
        summary = stats.summary(self.cache.events(), len(self.pool.current().rows))
        return {**summary, "pairs": self._pair_stats()}

    async def stats(self, request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(self._stats))

    def pairs_of(self, pool: Pool) -> pairing.PairPool:
        """The pool indexed for pairing, rebuilt when the pool file changes."""
        cached = self._pair_pool
        if cached is None or cached[0] is not pool:
            frame = pl.DataFrame(
                {
                    "post_key": list(pool.rows),
                    "stratum": [row["stratum"] for row in pool.rows.values()],
                }
            )
            cached = (pool, pairing.pair_pool(frame, *self._pair_inputs))
            self._pair_pool = cached
        return cached[1]

    def attach(self, scores: pl.DataFrame | None, vectors: tuple | None) -> None:
        """Predicted scores and image vectors found after the app started (see
        scoretag/cli/pair_inputs.py): the next pair is drawn with them."""
        self._pair_inputs = (scores, vectors)
        self._pair_pool = None

    def pick_pair(self, labeler: str, exclude: set[frozenset[str]]) -> dict:
        pool = self.pool.current()
        past = pairing.pair_history(self.pair_cache.events(), labeler)
        chosen = pairing.next_pair(
            self.pairs_of(pool),
            past,
            self.rng,
            exclude,
            random_share=self.config.random_pair_share,
            repeat_share=self.config.repeat_share,
            max_cosine=self.config.near_duplicate_cosine,
        )
        if chosen is None:
            return {"done": True}
        with self._issued_lock:
            if len(self.issued) >= ISSUED:
                self.issued.pop(next(iter(self.issued)))
            self.issued[(labeler, chosen.left_key, chosen.right_key)] = chosen.source
        return {
            "left": self.item(pool.rows[chosen.left_key]),
            "right": self.item(pool.rows[chosen.right_key]),
        }

    async def next_pair(self, request: Request) -> Response:
        labeler = labeler_name(request.query_params.get("labeler"))
        held = request.query_params.get("exclude", "").split(",")
        exclude = {frozenset(p.split("|")) for p in held if p.count("|") == 1}
        return JSONResponse(await run_in_threadpool(self.pick_pair, labeler, exclude))

    async def choose(self, request: Request) -> Response:
        body = await json_body(request)
        labeler = labeler_name(body.get("labeler"))
        left, right, choice = body.get("left_key"), body.get("right_key"), body.get("choice")
        rows = self.pool.current().rows
        for side, key in (("left_key", left), ("right_key", right)):
            if not isinstance(key, str) or not key:
                raise ApiError(422, f"{side} is missing")
            if key not in rows:
                raise ApiError(404, f"unknown {side} {key!r}: not in the rating pool")
        if choice is None:
            raise ApiError(422, 'choice is missing: give "left", "right", "tie" or "skip"')
        request_id = request_id_of(body)
        with self._issued_lock:
            source = self.issued.pop((labeler, left, right), "app")
        client = client_of(request, body.get("client"))
        try:
            event = await run_in_threadpool(
                self.store.add_pair, left, right, labeler, choice, client, source, request_id
            )
        except LabelStoreError as e:
            raise ApiError(422, str(e)) from None
        return JSONResponse({"ok": True, "id": event, "choice": choice})

    async def undo_pair(self, request: Request) -> Response:
        body = await json_body(request)
        labeler = labeler_name(body.get("labeler"))
        undone = await run_in_threadpool(
            self.store.undo_pair, labeler, client_of(request, body.get("client"))
        )
        if undone is None:
            raise ApiError(409, f"no choice to undo for {labeler!r}")
        rows = self.pool.current().rows
        left, right = rows.get(undone["left_key"]), rows.get(undone["right_key"])
        shown = {"left": self.item(left), "right": self.item(right)} if left and right else {}
        return JSONResponse({"undone": undone, **shown})

    async def pair_progress(self, request: Request) -> Response:
        labeler = labeler_name(request.query_params.get("labeler"))
        return JSONResponse(await run_in_threadpool(self._pair_progress, labeler))

    def _pair_progress(self, labeler: str) -> dict:
        return pair_stats.progress(self.pair_cache.events(), labeler, datetime.now(UTC))

    def _pair_stats(self) -> dict:
        return pair_stats.summary(self.pair_cache.events(), datetime.now(UTC))

    async def pair_stats(self, request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(self._pair_stats))

    async def health(self, request: Request) -> Response:
        return JSONResponse({"ok": True, "pool": len(self.pool.current().rows)})

    def _located(self, request: Request) -> Located:
        row = self.pool.current().rows.get(request.path_params["post_key"])
        image = self.sources.locate(row) if row else None
        if image is None:
            raise ApiError(404, "no image for this post key")
        return image

    async def image(self, request: Request) -> Response:
        """The original: a loose file as it is, a tar member streamed from its offset."""
        image = await run_in_threadpool(self._located, request)
        headers = {**IMAGE_HEADERS, "ETag": image.etag, "Last-Modified": image.last_modified}
        if not_modified(request, image.etag):
            return Response(status_code=304, headers=headers)
        if not image.member:
            return FileResponse(image.path, media_type=image.media_type, headers=headers)
        headers["Content-Length"] = str(image.length)
        return StreamingResponse(image.chunks(), media_type=image.media_type, headers=headers)

    async def preview(self, request: Request) -> Response:
        """The preview (made once, then from the cache), or the original when it is its own."""
        if self.previews is None:
            return await self.image(request)
        image = await run_in_threadpool(self._located, request)
        etag = self.previews.etag(image)
        headers = {**IMAGE_HEADERS, "ETag": etag, "Last-Modified": image.last_modified}
        if not_modified(request, etag):
            return Response(status_code=304, headers=headers)
        try:
            data = await run_in_threadpool(self.previews.get, image)
        except Unusable as e:
            return placeholder(e.reason)
        if data is None:
            return await self.image(request)
        return Response(data, media_type=self.previews.media_type, headers=headers)

    async def page(self, request: Request) -> Response:
        name = PAGES.get(request.url.path) or request.path_params.get("name", "")
        if name not in (*PAGES.values(), *ASSETS):
            raise ApiError(404, "no such page")
        media = ASSETS.get(name, "text/html")
        return FileResponse(STATIC / name, media_type=media, headers={"Cache-Control": "no-cache"})


def not_modified(request: Request, etag: str) -> bool:
    """Whether the browser's cached copy (If-None-Match) is still this image."""
    given = request.headers.get("if-none-match", "")
    return given.strip() == "*" or etag in (t.strip() for t in given.split(","))


def placeholder(reason: str) -> Response:
    """What an image Pillow cannot decode shows instead (the labeler can still skip it)."""
    text = escape(reason.replace("_", " "))
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="640" height="360" viewBox="0 0 640 360">'
        '<rect width="640" height="360" fill="#3a3a3a"/>'
        '<g font-family="sans-serif" fill="#eee" text-anchor="middle">'
        '<text x="320" y="160" font-size="28">This image cannot be shown</text>'
        f'<text x="320" y="200" font-size="20">({text})</text>'
        '<text x="320" y="240" font-size="18">press s to skip it, or f to open the original'
        "</text></g></svg>"
    )
    headers = {**IMAGE_HEADERS, "Cache-Control": "no-store", "X-Image-Error": reason}
    return Response(svg, status_code=422, media_type="image/svg+xml", headers=headers)


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
        Route("/api/pairs/next", app.next_pair),
        Route("/api/pairs", app.choose, methods=["POST"]),
        Route("/api/pairs/undo", app.undo_pair, methods=["POST"]),
        Route("/api/pairs/progress", app.pair_progress),
        Route("/api/pairs/stats", app.pair_stats),
        Route("/images/{post_key}", app.image),
        Route("/previews/{post_key}", app.preview),
        Route("/", app.page),
        Route("/stats", app.page),
        Route("/compare", app.page),
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
