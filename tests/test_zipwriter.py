"""edgeforge.zipwriter: archives zipfile reads back exactly, with zopfli's smaller streams."""

from __future__ import annotations

import io
import random
import stat
import zipfile
import zlib

import pytest

from edgeforge.errors import ConfigError
from edgeforge.zipwriter import ZOPFLI_MIN_SIZE, ZipWriter, deflate, dos_date_time


def _library_like(size: int) -> bytes:
    """Compressible but not trivial: machine-code-like runs of a small alphabet."""
    rng = random.Random(7)
    words = [bytes(rng.randrange(256) for _ in range(rng.randrange(2, 9))) for _ in range(400)]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words)
    return bytes(out[:size])


def test_members_read_back_with_modes_names_and_date() -> None:
    big = _library_like(3 * ZOPFLI_MIN_SIZE)
    members = {"pkg/lib/libbig.so": (big, 0o755), "pkg/__init__.py": (b"x = 1\n", 0o644),
               "pkg/empty.txt": (b"", 0o644), "pkg/d\u00e9j\u00e0.txt": (b"utf-8 name", 0o644)}
    raw = io.BytesIO()
    writer = ZipWriter(raw, (2024, 2, 29, 13, 37, 59))
    for name, (data, mode) in members.items():
        writer.add(name, data, mode)
    writer.close()

    with zipfile.ZipFile(io.BytesIO(raw.getvalue())) as zf:
        assert zf.testzip() is None  # every CRC checks
        assert [i.filename for i in zf.infolist()] == list(members)
        for info in zf.infolist():
            data, mode = members[info.filename]
            assert zf.read(info) == data
            assert info.compress_type == zipfile.ZIP_DEFLATED
            assert info.create_system == 3
            assert stat.S_ISREG(info.external_attr >> 16)
            assert stat.S_IMODE(info.external_attr >> 16) == mode
            assert info.date_time == (2024, 2, 29, 13, 37, 58)  # DOS time: 2-second steps


def test_large_members_are_smaller_than_zlib_best() -> None:
    data = _library_like(2 * ZOPFLI_MIN_SIZE)
    best = zlib.compressobj(9, zlib.DEFLATED, -15)
    zlib_size = len(best.compress(data) + best.flush())
    stream = deflate(data)
    assert zlib.decompress(stream, -15) == data
    assert len(stream) < zlib_size


def test_same_input_same_bytes() -> None:
    def archive() -> bytes:
        raw = io.BytesIO()
        writer = ZipWriter(raw, (1980, 1, 1, 0, 0, 0))
        writer.add("a/lib.so", _library_like(ZOPFLI_MIN_SIZE + 1), 0o755)
        writer.add("a/b.txt", b"b" * 100)
        writer.close()
        return raw.getvalue()

    assert archive() == archive()


@pytest.mark.parametrize("year", [1979, 2108])
def test_a_date_zip_cannot_hold_is_refused(year: int) -> None:
    with pytest.raises(ConfigError, match=f"cannot hold the year {year}"):
        dos_date_time((year, 1, 1, 0, 0, 0))
