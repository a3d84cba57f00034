"""The tar header reader against the standard library's tarfile, on archives tarfile
writes in each of its formats."""

import io
import tarfile

import pytest

from assets.images.tarheaders import _number, read_members

FORMATS = {"ustar": tarfile.USTAR_FORMAT, "gnu": tarfile.GNU_FORMAT, "pax": tarfile.PAX_FORMAT}


def _archive(path, fmt: int) -> None:
    deep = "/".join(["folder"] * 12)  # 83 characters: ustar splits it into prefix + name
    names = [
        "00/0123456789abcdef0123456789abcdef.jpg",
        "shard/123.json",
        f"{deep}/abc.png",
        "éàü/ünïcode.webp",
    ]
    if fmt != tarfile.USTAR_FORMAT:
        names.append("x" * 150 + "/" + "y" * 120 + ".jpg")  # beyond ustar's fields
    with tarfile.open(path, "w", format=fmt) as tar:
        folder = tarfile.TarInfo("a-folder")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        for i, name in enumerate(names):
            body = bytes([i]) * (i * 700 + 1)
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
        link = tarfile.TarInfo("link.jpg")
        link.type = tarfile.SYMTYPE
        link.linkname = names[0]
        tar.addfile(link)


@pytest.mark.parametrize("fmt", FORMATS)
def test_members_match_tarfile(tmp_path, fmt):
    path = tmp_path / f"{fmt}.tar"
    _archive(path, FORMATS[fmt])
    with tarfile.open(path) as tar:
        expected = [(m.name, m.offset_data, m.size, m.isfile()) for m in tar]
    got = [tuple(m) for m in read_members(path)]
    assert got == expected
    assert sum(1 for m in got if m[3]) == (4 if fmt == "ustar" else 5)
    with path.open("rb") as f:  # the offsets point at the bytes tarfile extracts
        for name, offset, size, is_file in got:
            if is_file:
                f.seek(offset)
                with tarfile.open(path) as tar:
                    assert f.read(size) == tar.extractfile(name).read()


@pytest.mark.parametrize("value", [0, 7, 8**11 - 1, 8**11, 10**12, 2**40 + 5])
def test_numbers_as_tarfile_writes_them(value):
    assert _number(tarfile.itn(value, 12, tarfile.GNU_FORMAT)) == value


def test_corrupt_and_truncated_shards_raise(tmp_path):
    path = tmp_path / "a.tar"
    _archive(path, tarfile.GNU_FORMAT)
    data = path.read_bytes()
    bad = tmp_path / "bad.tar"
    bad.write_bytes(data[:600] + b"\xff" * 512 + data[1112:])  # a header's bytes changed
    with pytest.raises(tarfile.ReadError):
        read_members(bad)
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[:1600])
    with pytest.raises(tarfile.ReadError):
        read_members(cut)
    html = tmp_path / "page.tar"
    html.write_bytes(b"<html>not a tar</html>" * 40)
    with pytest.raises(tarfile.ReadError):
        read_members(html)
