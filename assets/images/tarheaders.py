"""The members of a tar shard, read from its 512-byte headers alone.

Why not `tarfile`: the index needs only each member's name, type, data offset and size, and
`tarfile` builds a full TarInfo per member (owner, mode, times, checksum variants), which is
about five times slower: at a scan's 5,000 new members that was most of a rescan
(`scoretag bench images`). This reader follows the same rules (POSIX ustar with its name
prefix, GNU long names, PAX `path` and `size` records, base-256 sizes, checksums) and is
tested against `tarfile` on archives `tarfile` writes in each format.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

BLOCK = 512
_ZEROS = bytes(BLOCK)
_REGULAR = frozenset({b"0", b"\0", b"7"})  # file, old-style file, contiguous file
_USTAR = b"ustar\x0000"  # POSIX: the name prefix field holds the leading folders


class Member(NamedTuple):
    name: str
    offset: int  # where its data starts
    size: int
    is_file: bool


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _number(field: bytes) -> int:
    """A numeric header field: octal text, or base-256 when the first byte has 0x80 set."""
    if field[0] & 0x80:
        value = int.from_bytes(field[1:], "big")
        return value - (1 << (8 * len(field) - 8)) if field[0] == 0xFF else value
    text = field.split(b"\0", 1)[0].strip(b" ")
    try:
        return int(text or b"0", 8)
    except ValueError:
        raise tarfile.ReadError(f"invalid number field {field!r}") from None


def _checked(block: bytes, at: int) -> None:
    stored = _number(block[148:156])
    unsigned = sum(block) - sum(block[148:156]) + 8 * 0x20
    if stored != unsigned:  # old writers summed signed bytes
        signed = unsigned - 0x100 * sum(1 for b in block if b > 0x7F)
        if stored != signed:
            raise tarfile.ReadError(f"bad header checksum at byte {at}")


def _pax(data: bytes) -> dict[str, str]:
    """The `length key=value\\n` records of a PAX extended header."""
    records, pos = {}, 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            break
        length = int(data[pos:space])
        if length <= 0:
            break
        key, _, value = data[space + 1 : pos + length - 1].partition(b"=")
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return records


def members(f: BinaryIO) -> Iterator[Member]:
    """Every member of the tar archive open in `f`, in order (GNU and PAX name records are
    applied to the member they precede, not returned)."""
    pos = 0
    long_name: str | None = None
    pax: dict[str, str] = {}
    while True:
        f.seek(pos)
        block = f.read(BLOCK)
        if block == _ZEROS or (not block and pos > 0):
            return
        if len(block) < BLOCK:
            raise tarfile.ReadError(f"truncated header at byte {pos}")
        _checked(block, pos)
        kind = block[156:157]
        size = int(pax["size"]) if "size" in pax else _number(block[124:136])
        data = pos + BLOCK
        pos = data + -(-size // BLOCK) * BLOCK
        if kind in (b"L", b"x", b"g", b"K"):
            body = f.read(size)
            if len(body) < size:
                raise tarfile.ReadError(f"truncated extended header at byte {data}")
            if kind == b"L":
                long_name = _text(body)
            elif kind == b"x":
                pax = _pax(body)
            continue  # `g` (global) and `K` (long link target) name nothing we keep
        name = _text(block[0:100])
        if block[257:265] == _USTAR and block[345] != 0:
            name = f"{_text(block[345:500])}/{name}"
        name = pax.get("path") or long_name or name
        if kind == b"5":
            name = name.rstrip("/")  # as tarfile names folders
        long_name, pax = None, {}
        yield Member(name, data, size, kind in _REGULAR)


def read_members(path: Path) -> list[Member]:
    """The members of the tar shard at `path`; a truncated or corrupt one raises ReadError."""
    with path.open("rb") as f:
        found = list(members(f))
        end = f.seek(0, 2)
    if found and found[-1].offset + found[-1].size > end:
        raise tarfile.ReadError(f"{path} is truncated inside {found[-1].name}")
    return found
