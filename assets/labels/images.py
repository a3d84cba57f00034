"""Where the labeling app finds a pool post's image, and whether it may serve it.

A pool row names its image by `image_path` (absolute, or relative to the image root) and,
for a member of a tar shard, `image_offset` and `image_length` (the member's data inside the
shard; an offset of -1, or no such column, is the whole file). A row is trusted only for a
regular file under one of the configured image sources (the image root and each
`[images] sources` path), after symlinks are resolved: nothing the request or the pool says
can reach another file.
"""

from __future__ import annotations

import hashlib
import stat
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path

# What a browser may show inline, by extension. Anything else (SVG above all: it runs
# scripts) goes out as application/octet-stream.
MEDIA_TYPES = {
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "jpe": "image/jpeg",
    "jfif": "image/jpeg",
    "png": "image/png",
    "apng": "image/apng",
    "gif": "image/gif",
    "webp": "image/webp",
    "avif": "image/avif",
    "bmp": "image/bmp",
    "jxl": "image/jxl",
    "tif": "image/tiff",
    "tiff": "image/tiff",
}
UNKNOWN = "application/octet-stream"
CHUNK = 64 * 1024  # bytes read and sent at a time: memory stays bounded for any image


@dataclass(frozen=True)
class Located:
    """One image's bytes: a whole file, or `length` bytes at `offset` in a tar shard."""

    path: Path  # resolved: the image file, or the tar shard holding it
    offset: int  # -1: the whole file
    length: int  # the bytes served
    file_size: int
    mtime_ns: int
    media_type: str

    @property
    def member(self) -> bool:
        return self.offset >= 0

    @property
    def identity(self) -> str:
        """What changes whenever the bytes may have: path, offset, size and modification."""
        return f"{self.path}\0{self.offset}\0{self.length}\0{self.file_size}\0{self.mtime_ns}"

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.identity.encode()).hexdigest()[:32]

    @property
    def etag(self) -> str:
        return f'"{self.digest}"'

    @property
    def last_modified(self) -> str:
        return formatdate(self.mtime_ns / 1e9, usegmt=True)

    def read(self) -> bytes:
        """Every byte of the image (for decoding a preview)."""
        return b"".join(self.chunks())

    def chunks(self) -> Iterator[bytes]:
        """The image's bytes, CHUNK at a time (a file that shrank meanwhile ends early)."""
        with self.path.open("rb") as f:
            f.seek(max(self.offset, 0))
            left = self.length
            while left > 0:
                data = f.read(min(CHUNK, left))
                if not data:
                    return
                left -= len(data)
                yield data


class ImageSources:
    """The folders (and shards) the app may serve from, and pool rows resolved within them."""

    def __init__(self, image_root: Path, sources: Iterable[Path] = ()):
        self.image_root = Path(image_root).resolve()
        roots = [self.image_root]
        for source in sources:
            source = Path(source).expanduser()
            roots.append((self.image_root / source).resolve())
        self.roots = tuple(dict.fromkeys(roots))

    def allowed(self, path: Path) -> bool:
        return any(path.is_relative_to(root) for root in self.roots)

    def locate(self, row: dict) -> Located | None:
        """The row's image, or None when it is missing, out of bounds or outside the sources."""
        raw = row.get("image_path")
        if not isinstance(raw, str) or not raw or "\0" in raw:
            return None
        try:
            path = (self.image_root / raw).resolve()  # an absolute path stays itself
            if not self.allowed(path):
                return None
            st = path.stat()
        except (OSError, RuntimeError, ValueError):
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        offset = _int(row.get("image_offset"), -1)
        if offset < 0:
            media = MEDIA_TYPES.get(path.suffix.lstrip(".").lower()) or _sniffed(path, 0)
            return Located(path, -1, st.st_size, st.st_size, st.st_mtime_ns, media)
        length = _int(row.get("image_length"), -1)
        if length < 0 or offset + length > st.st_size:
            return None
        media = _member_type(path, offset)
        return Located(path, offset, length, st.st_size, st.st_mtime_ns, media)


def _int(value: object, default: int) -> int:
    return default if value is None else int(value)


def _member_type(path: Path, offset: int) -> str:
    """A tar member's type from its name's extension (its header is the 512 bytes before its
    data), else from its first bytes."""
    if offset >= tarfile.BLOCKSIZE:
        try:
            with path.open("rb") as f:
                f.seek(offset - tarfile.BLOCKSIZE)
                header = tarfile.TarInfo.frombuf(
                    f.read(tarfile.BLOCKSIZE), tarfile.ENCODING, "surrogateescape"
                )
            media = MEDIA_TYPES.get(Path(header.name).suffix.lstrip(".").lower())
            if media:
                return media
        except (OSError, tarfile.TarError):
            pass  # not a plain header block (or a long name cut short): look at the bytes
    return _sniffed(path, offset)


_SIGNATURES = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
    (b"\xff\x0a", "image/jxl"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "image/jxl"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)


def _sniffed(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            head = f.read(16)
    except OSError:
        return UNKNOWN
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:12] in (b"ftypavif", b"ftypavis"):
        return "image/avif"
    return next((media for magic, media in _SIGNATURES if head.startswith(magic)), UNKNOWN)
