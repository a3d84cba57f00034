"""A storage root with a rating pool and its images, and the labeling app serving it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import polars as pl
import pytest

from assets.pool.schema import POOL
from scoretag.demo.labeling import free_port

SCORETAG = Path(sys.executable).parent / "scoretag"
SITES = ("danbooru", "e621", "derpibooru", "gelbooru")


@pytest.fixture(scope="session")
def demo_images(tmp_path_factory) -> tuple[Path, list[tuple[str, int, str]]]:
    """A small demo build: its image folder, and (site, post_id, file name) of posts that
    have a usable image."""
    from orchestration.settings import DemoSettings
    from orchestration.storage import Layout
    from scoretag.demo.build import build_demo

    home = tmp_path_factory.mktemp("labels-demo")
    build_demo(Layout(home=home), DemoSettings(images=60, posts=200))
    posts = (
        pl.read_parquet(home / "demo" / "posts.parquet")
        .filter("has_image", ~pl.col("superseded"))
        .unique(["site", "post_id"])
    )
    images = pl.read_parquet(home / "demo" / "images.parquet").filter("usable")
    joined = posts.join(images.select("md5", "file_name"), on="md5").sort("site", "post_id")
    return home / "images", list(joined.select("site", "post_id", "file_name").iter_rows())


def pool_frame(posts: list[tuple[str, int, str]], size: int) -> pl.DataFrame:
    """`size` pool rows: the demo's posts first, then made-up posts reusing their images."""
    rows = []
    for i in range(size):
        site, post_id, file_name = (
            posts[i] if i < len(posts) else (SITES[i % 4], 900_000 + i, posts[i % len(posts)][2])
        )
        rows.append(
            {
                "post_key": f"{site}:{post_id}",
                "site": site,
                "post_id": post_id,
                "image_key": file_name.split(".")[0],
                "image_path": file_name,
                "rating": "g",
                "norm_score": 0.5,
                "decile": i % 10,
                "style": "other",
                "stratum": f"{site}/g/d{i % 10}/other",
                "round": 1,
                "round_kind": "stratified",
                "reason": "test",
                "selected_at": datetime.now(UTC),
            }
        )
    return pl.DataFrame(rows, schema=POOL)


def make_home(root: Path, demo_images, size: int) -> Path:
    """A storage root whose pool has `size` posts, its image root the demo's images."""
    images, posts = demo_images
    home = root / "home"
    (home / "data" / "rating_pool").mkdir(parents=True)
    (home / "images").symlink_to(images, target_is_directory=True)
    pool_frame(posts, size).write_parquet(home / "data" / "rating_pool" / "pool.parquet")
    return home


@pytest.fixture
def home(tmp_path, demo_images) -> Path:
    return make_home(tmp_path, demo_images, size=600)


@dataclass
class Server:
    """`scoretag label serve` in a subprocess."""

    home: Path
    token: str | None = None
    port: int = 0
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def start(self) -> Server:
        self.port = self.port or free_port()
        command = [
            str(SCORETAG),
            "--home",
            str(self.home),
            "label",
            "serve",
            "--port",
            str(self.port),
        ]
        env = {**os.environ, "SCORETAG_LABEL_TOKEN": self.token or ""}
        self.process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self._wait_until_up()
        return self

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.process.stdout.read().decode()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/api/health", headers=self.headers).is_success:
                    return
            time.sleep(0.1)
        raise RuntimeError("server did not come up in 30 s")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=10)


@pytest.fixture
def serve():
    """Start servers with `serve(home, token=None)`; every one is stopped after the test."""
    started: list[Server] = []

    def start(home: Path, token: str | None = None) -> Server:
        started.append(Server(home, token).start())
        return started[-1]

    yield start
    for server in started:
        server.kill(signal.SIGTERM)


def client_for(home: Path, **config):
    """An in-process client of the app for the storage root `home`."""
    from starlette.testclient import TestClient

    from assets.labels.app import AppConfig, create_app

    app = create_app(
        AppConfig(
            pool_path=home / "data" / "rating_pool" / "pool.parquet",
            image_root=home / "images",
            store_path=home / "labels.sqlite",
            **config,
        )
    )
    return TestClient(app, base_url="http://127.0.0.1")


def store_events(home: Path) -> pl.DataFrame:
    from assets.labels.store import LabelStore

    with LabelStore(home / "labels.sqlite", read_only=True) as store:
        return store.events()


@pytest.fixture
def api(home) -> Iterator:
    with client_for(home, rng_seed=7) as client:
        yield client


# Pictures in every layout the app serves: loose files (a pool from before tar members, with
# paths relative to the image root; or absolute paths with offset -1) and members of a
# webdataset tar shard (absolute shard path, the member's data offset and length).
LAYOUTS = ("loose-relative", "loose-absolute", "tar")
ROTATED_SIZE = (1600, 900)  # stored; EXIF orientation 6 shows it 900 x 1600


def pictures() -> dict[str, tuple[str, bytes]]:
    """name -> (extension, bytes): a JPEG stored sideways with EXIF orientation 6 (its
    stored left quarter red, the rest blue: shown upright, the top is red), a wide RGBA PNG
    (transparent on the left), a small PNG that fits any preview, and a truncated JPEG."""
    import io

    import numpy as np
    from PIL import Image

    def saved(img: Image.Image, fmt: str, **options) -> bytes:
        out = io.BytesIO()
        img.save(out, fmt, **options)
        return out.getvalue()

    rotated = Image.new("RGB", ROTATED_SIZE, (0, 0, 255))
    rotated.paste((255, 0, 0), (0, 0, ROTATED_SIZE[0] // 4, ROTATED_SIZE[1]))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to show
    wide = Image.new("RGBA", (2000, 500), (0, 128, 0, 255))
    wide.paste((0, 0, 0, 0), (0, 0, 500, 500))
    noise = np.random.default_rng(0).integers(0, 255, (700, 700, 3), dtype=np.uint8)
    whole = saved(Image.fromarray(noise), "JPEG", quality=90)
    return {
        "rotated": ("jpg", saved(rotated, "JPEG", quality=90, exif=exif)),
        "wide": ("png", saved(wide, "PNG")),
        "small": ("png", saved(Image.new("RGB", (300, 200), (200, 100, 50)), "PNG")),
        "truncated": ("jpg", whole[: len(whole) // 2]),
    }


def picture_rows(images: Path, layout: str, files: dict[str, tuple[str, bytes]]) -> pl.DataFrame:
    """Write `files` under `images` in `layout`; the pool rows pointing at them (post keys
    `danbooru:1`, `danbooru:2`, ... in the order of `files`)."""
    import io
    import json
    import tarfile

    rows = []
    shard = images / "shards" / "00000.tar"
    if layout == "tar":
        shard.parent.mkdir(parents=True)
        with tarfile.open(shard, "w") as tar:
            for name, (ext, data) in files.items():
                for member, content in (
                    (f"{name}.{ext}", data),
                    (f"{name}.json", json.dumps({"key": name}).encode()),
                ):
                    info = tarfile.TarInfo(member)
                    info.size = len(content)
                    tar.addfile(info, io.BytesIO(content))
        with tarfile.open(shard) as tar:
            members = {m.name: m for m in tar.getmembers()}
    for i, (name, (ext, data)) in enumerate(files.items(), 1):
        row = {"post_key": f"danbooru:{i}", "site": "danbooru", "post_id": i}
        row |= {"image_key": name, "rating": "g", "stratum": "danbooru/g/d0/other", "round": 1}
        if layout == "tar":
            member = members[f"{name}.{ext}"]
            row |= {"image_path": str(shard), "image_offset": member.offset_data}
            row["image_length"] = member.size
        else:
            (images / "loose").mkdir(parents=True, exist_ok=True)
            (images / "loose" / f"{name}.{ext}").write_bytes(data)
            if layout == "loose-relative":
                row["image_path"] = f"loose/{name}.{ext}"
            else:
                row |= {"image_path": str(images / "loose" / f"{name}.{ext}"), "image_offset": -1}
                row["image_length"] = -1
        rows.append(row)
    return pl.DataFrame(rows)


def picture_home(root: Path, layout: str, files: dict[str, tuple[str, bytes]]) -> Path:
    """A storage root whose pool is `files` in `layout`."""
    home = root / "home"
    (home / "data" / "rating_pool").mkdir(parents=True)
    frame = picture_rows(home / "images", layout, files)
    frame.write_parquet(home / "data" / "rating_pool" / "pool.parquet")
    return home


def acknowledged_until_killed(server: Server, path: str, bodies: list[dict]) -> list[dict]:
    """POST `bodies` to `path` from four clients at once and SIGKILL the server, requests in
    flight, once KILL_AFTER have been answered: the bodies it acknowledged with a 200."""
    acked: list[dict] = []
    lock = threading.Lock()

    def post_until_refused(offset: int) -> None:
        with httpx.Client(base_url=server.url, timeout=5) as client:
            for body in bodies[offset::4]:
                try:
                    response = client.post(path, json=body)
                except httpx.HTTPError:
                    return
                if response.status_code == 200:
                    with lock:
                        acked.append(body)

    threads = [threading.Thread(target=post_until_refused, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    while len(acked) < KILL_AFTER:
        time.sleep(0.005)
    server.kill()  # SIGKILL, with requests in flight
    for thread in threads:
        thread.join()
    return acked


KILL_AFTER = 150
