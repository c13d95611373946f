"""A reproducible zip writer whose large members are deflated by zopfli.

A wheel is a zip archive, and what a device downloads is its deflate streams. zopfli (Google's
exhaustive deflate encoder, PyPI's ``zopfli``) writes standard deflate streams about 3 %
smaller than zlib's level 9 (docs/benchmarks.md measures it on the TFLite wheels), which any
unzip, pip or installer reads. It is much slower (seconds per megabyte), so only members of at
least ``ZOPFLI_MIN_SIZE`` bytes (the shared libraries) get it; the rest get zlib's level 9.

The standard library's ``zipfile`` cannot store a stream it did not compress itself, hence this
writer. It writes what a wheel needs and nothing else: deflated members, Unix
permission bits, one fixed timestamp, no zip64 (a member or archive of 4 GiB or more, or more
than 65,535 members, is refused). Archives it writes read back with ``zipfile`` (the tests do).
"""

from __future__ import annotations

import stat
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

import zopfli.zopfli

from .errors import ConfigError

#: Members at least this large are deflated by zopfli (below it zlib level 9 is as good).
ZOPFLI_MIN_SIZE = 64 * 1024
#: zopfli's iterations: 1 gives nearly all of the gain (the TFLite x86_64 library: 3.0 % smaller
#: than zlib -9 with 1 iteration in 8.5 s; 3.3 % with 15 in 19 s).
ZOPFLI_ITERATIONS = 1
_VERSION = 20  # 2.0: deflate
_MADE_BY = (3 << 8) | _VERSION  # Unix, so the external attributes carry permission bits
_UTF8 = 0x800
_LIMIT = 0xFFFFFFFF
_DEFLATED = 8


def deflate(data: bytes) -> bytes:
    """``data`` as a raw deflate stream (zopfli from ``ZOPFLI_MIN_SIZE`` bytes, else zlib -9)."""
    if len(data) >= ZOPFLI_MIN_SIZE:
        # a zlib stream: a 2-byte header (no preset dictionary) and the 4-byte Adler-32 around
        # the raw deflate stream
        return bytes(zopfli.zopfli.compress(data, numiterations=ZOPFLI_ITERATIONS)[2:-4])
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def dos_date_time(date_time: Sequence[int]) -> tuple[int, int]:
    """(date, time) in MS-DOS format from (year, month, day, hour, minute, second)."""
    year, month, day, hour, minute, second = date_time[:6]
    if not 1980 <= year <= 2107:
        raise ConfigError(f"a zip archive cannot hold the year {year} (1980-2107)")
    return ((year - 1980) << 9 | month << 5 | day), (hour << 11 | minute << 5 | second // 2)


@dataclass(frozen=True)
class _Written:
    name: bytes
    flags: int
    method: int
    crc: int
    compressed: int
    size: int
    mode: int
    offset: int


class ZipWriter:
    """Writes members to a binary file in the order given; ``close`` writes the directory."""

    def __init__(self, out: BinaryIO, date_time: Sequence[int]) -> None:
        self._out = out
        self._date, self._time = dos_date_time(date_time)
        self._written: list[_Written] = []
        self._offset = 0

    def _write(self, chunk: bytes) -> None:
        self._out.write(chunk)
        self._offset += len(chunk)

    def add(self, name: str, data: bytes, mode: int = 0o644) -> None:
        """A regular file ``name`` with ``data`` and permission bits ``mode``."""
        encoded = name.encode("utf-8")
        flags = 0 if name.isascii() else _UTF8
        compressed = deflate(data)
        method = _DEFLATED
        if (len(data) > _LIMIT or self._offset > _LIMIT or len(self._written) >= 0xFFFF
                or len(encoded) > 0xFFFF):
            raise ConfigError(f"{name}: the archive would need zip64 (a member or archive of "
                              "4 GiB or more, or 65,535 members), which this writer does not write")
        crc = zlib.crc32(data)
        self._written.append(_Written(encoded, flags, method, crc, len(compressed), len(data),
                                      mode, self._offset))
        self._write(struct.pack("<4s5H3I2H", b"PK\x03\x04", _VERSION, flags, method, self._time,
                                self._date, crc, len(compressed), len(data), len(encoded), 0))
        self._write(encoded)
        self._write(compressed)

    def close(self) -> None:
        start = self._offset
        if start > _LIMIT:
            raise ConfigError("the archive would need zip64 (4 GiB or more), which this writer "
                              "does not write")
        for w in self._written:
            self._write(struct.pack(
                "<4s6H3I5H2I", b"PK\x01\x02", _MADE_BY, _VERSION, w.flags, w.method, self._time,
                self._date, w.crc, w.compressed, w.size, len(w.name), 0, 0, 0, 0,
                (stat.S_IFREG | w.mode) << 16, w.offset))
            self._write(w.name)
        size = self._offset - start
        self._write(struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, len(self._written),
                                len(self._written), size, start, 0))
