"""The image members of one tar shard, and the keys that join them to posts.

A member's key is its name without extensions (`<folder>/<key>.<ext>`, webdataset layout).
The key names an md5 or sha512 (`auto`, `md5` layouts) or a post id (`post_id` layout,
danbooru2023's `data-NNNN.tar`). Else its `<key>.json` sidecar may give `md5`, `sha512`,
`post_key` (`danbooru:123`), or `site` and `post_id`: img2dataset writes the first when asked
to compute it and the others with `save_additional_columns`. Under `auto`, a member still
without md5, sha512 or post key (img2dataset's default sidecar carries only a sha256) is
hashed once here, so its md5 and sha512 come from its bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import polars as pl

from assets.images.names import IMAGE_EXTS
from assets.images.tarheaders import read_members

MEMBER: dict[str, pl.DataType] = {
    "member": pl.String,
    "offset": pl.Int64,
    "length": pl.Int64,
    "file_ext": pl.String,
    "md5": pl.String,
    "sha512": pl.String,
    "post_key": pl.String,
}
_MD5 = re.compile(r"^[0-9a-f]{32}$")
_SHA512 = re.compile(r"^[0-9a-f]{128}$")
_DIGITS = re.compile(r"^[0-9]+$")


def _hex(value: object, pattern: re.Pattern) -> str | None:
    text = str(value or "").lower()
    return text if pattern.match(text) else None


def _sidecar(body: bytes) -> tuple[str | None, ...]:
    """md5, sha512 and post_key a `.json` sidecar gives."""
    try:
        meta = json.loads(body)
    except ValueError:
        return None, None, None
    if not isinstance(meta, dict):
        return None, None, None
    post_key = meta.get("post_key")
    if not post_key and meta.get("site") and _DIGITS.match(str(meta.get("post_id", ""))):
        post_key = f"{meta['site']}:{int(meta['post_id'])}"
    post_key = str(post_key) if post_key and ":" in str(post_key) else None
    return _hex(meta.get("md5"), _MD5), _hex(meta.get("sha512"), _SHA512), post_key


def _name_keys(key: str, layout: str, site: str) -> tuple[str | None, ...]:
    if layout == "post_id":
        return None, None, (f"{site}:{int(key)}" if _DIGITS.match(key) else None)
    key = key.lower()
    return _hex(key, _MD5), _hex(key, _SHA512), None


def digests(f, offset: int, length: int) -> tuple[str, str]:
    """md5 and sha512 of `length` bytes at `offset` of an open binary file, in one read."""
    md5, sha512 = hashlib.md5(usedforsecurity=False), hashlib.sha512()
    f.seek(offset)
    left = length
    while left > 0:
        chunk = f.read(min(left, 1 << 20))
        if not chunk:
            break
        md5.update(chunk)
        sha512.update(chunk)
        left -= len(chunk)
    return md5.hexdigest(), sha512.hexdigest()


def read_tar(
    path: Path, layout: str = "auto", site: str = "", keep_unkeyed: bool = False
) -> list[tuple]:
    """MEMBER rows of each image member of the tar shard at `path`, in the shard's order;
    members nothing keys are left out unless `keep_unkeyed`."""
    images: dict[str, list] = {}
    sidecars: dict[str, tuple[int, int]] = {}
    for member in read_members(path):
        if not member.is_file:
            continue
        folder, _, base = member.name.rpartition("/")
        key, _, exts = base.partition(".")
        ext = exts.rpartition(".")[2].lower()
        if ext in IMAGE_EXTS:
            keys = _name_keys(key, layout, site)
            images[f"{folder}/{key}"] = [member.name, member.offset, member.size, ext, *keys]
        elif ext == "json" and layout != "post_id":
            sidecars[f"{folder}/{key}"] = (member.offset, member.size)
    rows = []
    with path.open("rb") as f:
        for key_path, row in images.items():
            if not any(row[4:]) and key_path in sidecars:
                offset, size = sidecars[key_path]
                f.seek(offset)
                row[4:] = _sidecar(f.read(size))
            if not any(row[4:]) and layout == "auto":
                row[4:6] = digests(f, row[1], row[2])
            if keep_unkeyed or any(row[4:]):
                rows.append(tuple(row))
    return rows


def tar_frame(
    path: Path, layout: str = "auto", site: str = "", keep_unkeyed: bool = False
) -> pl.DataFrame:
    return pl.DataFrame(read_tar(path, layout, site, keep_unkeyed), schema=MEMBER, orient="row")
