"""A real HTTP server on 127.0.0.1 for the download tests, serving demo images, and a Danbooru
API page whose posts point at it.

Each path answers from a plan: one behaviour per request in turn, the last one repeated. It
records every request (path, monotonic time, User-Agent) for the tests to measure.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from scoretag.demo.images import plan_image, render_file

TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif"}


@dataclass(frozen=True)
class Hit:
    path: str
    at: float  # time.monotonic() when the request arrived
    user_agent: str


@dataclass
class Route:
    body: bytes
    content_type: str = "image/jpeg"
    plan: list[str] = field(default_factory=lambda: ["ok"])
    retry_after: str = "1"
    delay: float = 1.0  # "slow": seconds before the headers

    def next(self) -> str:
        return self.plan.pop(0) if len(self.plan) > 1 else self.plan[0]


class ImageServer:
    """`ok`, `slow`, `404`, `429`, `503`, `truncate` (half the declared body, then the socket
    closes), `dribble` (half the body, `delay` seconds, the rest), `html` (an error page with
    status 200)."""

    def __init__(self):
        self.routes: dict[str, Route] = {}
        self.hits: list[Hit] = []
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ImageServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, path: str, body: bytes, *plan: str, **options) -> str:
        ext = path.rpartition(".")[2]
        route = Route(body, TYPES.get(ext, "application/octet-stream"), list(plan or ["ok"]))
        for name, value in options.items():
            setattr(route, name, value)
        self.routes[path] = route
        return self.base + path

    def hits_of(self, path: str) -> list[Hit]:
        with self.lock:
            return [hit for hit in self.hits if hit.path == path]

    def _handler(server):  # noqa: N805 (the handler class closes over its server)
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                with server.lock:
                    server.hits.append(Hit(self.path, time.monotonic(), self.headers["User-Agent"]))
                route = server.routes.get(self.path)
                if route is None:
                    return self._send(404, b"not found", "text/plain")
                try:
                    self._answer(route, route.next())
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            def _answer(self, route: Route, how: str) -> None:
                if how == "slow":
                    time.sleep(route.delay)
                    how = "ok"
                if how in ("404", "429", "503"):
                    extra = {"Retry-After": route.retry_after} if how != "404" else {}
                    return self._send(int(how), b"no", "text/plain", extra)
                if how == "html":
                    return self._send(200, b"<html><body>rate limited</body></html>", "text/html")
                if how == "dribble":  # half the body, a pause, then the rest
                    self.send_response(200)
                    self.send_header("Content-Type", route.content_type)
                    self.send_header("Content-Length", str(len(route.body)))
                    self.end_headers()
                    half = len(route.body) // 2
                    self.wfile.write(route.body[:half])
                    self.wfile.flush()
                    time.sleep(route.delay)
                    self.wfile.write(route.body[half:])
                    return None
                if how == "truncate":
                    self.send_response(200)
                    self.send_header("Content-Type", route.content_type)
                    self.send_header("Content-Length", str(len(route.body)))
                    self.end_headers()
                    self.wfile.write(route.body[: len(route.body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return None
                return self._send(200, route.body, route.content_type)

            def _send(self, status: int, body: bytes, kind: str, extra=None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                for name, value in (extra or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

        return Handler


@dataclass(frozen=True)
class DemoFile:
    image_id: int
    md5: str
    sha512: str
    ext: str
    data: bytes
    width: int
    height: int

    @property
    def path(self) -> str:
        return f"/original/{self.md5[:2]}/{self.md5[2:4]}/{self.md5}.{self.ext}"


def demo_files(n: int, folder: Path, seed: int = 0) -> list[DemoFile]:
    """`n` usable demo images (the generator's odd files left out), rendered into `folder`."""
    files, image_id = [], 0
    while len(files) < n:
        row = render_file(plan_image(seed, image_id), folder)
        image_id += 1
        if not row["usable"] or row["special"]:
            continue
        data = (folder / row["file_name"]).read_bytes()
        assert hashlib.md5(data).hexdigest() == row["md5"]
        files.append(
            DemoFile(
                row["image_id"],
                row["md5"],
                row["sha512"],
                row["file_ext"],
                data,
                row["width"],
                row["height"],
            )  # fmt: skip
        )
    return files


def danbooru_record(post_id: int, file: DemoFile, base: str, age_days: int = 400) -> dict:
    """One post as Danbooru's /posts.json gives it, its file on the local server."""
    now = datetime.now(UTC)
    created = (now - timedelta(days=age_days)).isoformat(timespec="milliseconds")
    tags = ["1girl", "solo", f"motif_{post_id % 5}"]
    return {
        "id": post_id,
        "created_at": created,
        "updated_at": now.isoformat(timespec="milliseconds"),  # the page was taken now
        "uploader_id": 1,
        "score": post_id % 17,
        "source": "",
        "md5": file.md5,
        "rating": "gsqe"[post_id % 4],
        "image_width": file.width,
        "image_height": file.height,
        "tag_string": " ".join([*tags, "artist_a", "original"]),
        "tag_string_general": " ".join(tags),
        "tag_string_artist": "artist_a",
        "tag_string_character": "",
        "tag_string_copyright": "original",
        "tag_string_meta": "",
        "fav_count": post_id % 11,
        "file_ext": file.ext,
        "parent_id": None,
        "file_size": len(file.data),
        "up_score": post_id % 17,
        "down_score": 0,
        "is_pending": False,
        "is_flagged": False,
        "is_deleted": False,
        "is_banned": False,
        "has_large": False,
        "file_url": base + file.path,
        "large_file_url": base + file.path,
        "preview_file_url": f"{base}/180x180/{file.md5}.jpg",
    }
