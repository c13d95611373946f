"""One member of a big multi-block ``.tar.xz`` by HTTP range requests.

An xz file made with ``xz --block-size`` (or ``-T``) is a row of independently compressed
blocks, listed with their sizes in the index at the end of the file. A source that lies in a
small byte range of the uncompressed tar (``member-range = [start, end]`` in the recipe,
found once with ``python -m edgeforge.xzrange ARCHIVE MEMBER``) needs only the blocks that
cover that range:

1. a ranged GET of the file's tail: the stream footer and the index (the block map);
2. one ranged GET of the covering blocks (adjacent, so one request);
3. each block decompressed on its own, wrapped as a one-block xz stream so that ``lzma``
   checks the block's own CRC64/SHA-256;
4. the tar entries of the range, from the member boundary the recipe names.

The result is a small tar file; fetch extracts it with the same safe extraction as any
archive, and the source's tree hash proves it is the right code.

A server that ignores ``Range`` (answers 200 with the whole file), or a file that is not one
stream of blocks, raises ``RangeUnsupported``: fetch then falls back to downloading the whole
file against its sha256, and says so.
"""

from __future__ import annotations

import contextlib
import io
import lzma
import struct
import sys
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .errors import FetchError
from .log import Logger

_HEADER_MAGIC = b"\xfd7zXZ\x00"
_FOOTER_MAGIC = b"YZ"
_TAIL = 1 << 16  # first guess at footer + index: 245 blocks take about 1.5 KiB
CHUNK = 1 << 20


class RangeUnsupported(FetchError):
    """No ranged fetch of this file: the server answered a ranged GET with the whole file, or
    the file is not one xz stream of blocks. The caller falls back to the whole file."""


@dataclass(frozen=True)
class Block:
    offset: int  # of the block header in the file
    size: int  # block header + compressed data + padding + check (a multiple of 4)
    unpadded: int  # the index's "unpadded size"
    uoffset: int  # of the block's first byte in the uncompressed stream
    usize: int


@dataclass(frozen=True)
class BlockMap:
    flags: bytes  # the stream flags (check type), the same in header and footer
    blocks: tuple[Block, ...]
    file_size: int

    def covering(self, start: int, end: int) -> tuple[Block, ...]:
        """The blocks holding uncompressed bytes [start, end)."""
        found = tuple(b for b in self.blocks if b.uoffset < end and start < b.uoffset + b.usize)
        last = self.blocks[-1] if self.blocks else None
        if last is None or end > last.uoffset + last.usize:
            raise FetchError(f"range [{start}, {end}) lies beyond the archive's uncompressed end")
        return found


# ----------------------------------------------------------------------- remote file bytes


class RangeClient:
    """Ranged reads of one URL (http/https through urllib; file:// read in place)."""

    def __init__(self, url: str, timeout: float, logger: Logger):
        self.url = url
        self.timeout = timeout
        self.logger = logger
        self.downloaded = 0  # bytes received, for the caller's report

    def _open(self, spec: str) -> tuple[BinaryIO, int, int]:
        """(stream, first byte, total size) for ``Range: bytes=<spec>``."""
        parsed = urllib.parse.urlparse(self.url)
        if parsed.scheme == "file":
            path = Path(urllib.request.url2pathname(parsed.path))
            total = path.stat().st_size
            first, last = _parse_spec(spec, total)
            with path.open("rb") as f:
                f.seek(first)
                return io.BytesIO(f.read(last - first + 1)), first, total
        request = urllib.request.Request(self.url, headers={"User-Agent": "edgeforge",
                                                            "Range": f"bytes={spec}"})
        try:
            response = urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as err:
            raise FetchError(f"HTTP {err.code} {err.reason}") from None
        except (urllib.error.URLError, OSError, ValueError) as err:
            raise FetchError(f"ranged GET failed: {getattr(err, 'reason', err)}") from None
        if response.status != 206:
            response.close()
            raise RangeUnsupported(f"the server ignored a Range request (HTTP {response.status}"
                                   " instead of 206 Partial Content)")
        content_range = response.headers.get("Content-Range", "")
        try:
            unit, _, rest = content_range.partition(" ")
            span, _, total_text = rest.partition("/")
            first_text, _, _ = span.partition("-")
            if unit != "bytes":
                raise ValueError(content_range)
            return response, int(first_text), int(total_text)
        except ValueError:
            response.close()
            raise FetchError(f"unusable Content-Range {content_range!r}") from None

    def read(self, spec: str, label: str | None = None, size: int | None = None
             ) -> tuple[bytes, int, int]:
        """The bytes of ``Range: bytes=<spec>``, the first one's offset, the file's size;
        with ``label``, a progress bar over ``size`` bytes."""
        stream, first, total = self._open(spec)
        out = bytearray()
        with contextlib.closing(stream):
            bar = self.logger.progress(label, size) if label else None
            try:
                while chunk := stream.read(CHUNK):
                    out += chunk
                    if bar is not None:
                        bar.advance(len(chunk))
            except OSError as err:
                raise FetchError(f"ranged GET interrupted: {err}") from None
            if bar is not None:
                bar.finish()
        self.downloaded += len(out)
        return bytes(out), first, total


def _parse_spec(spec: str, total: int) -> tuple[int, int]:
    first_text, _, last_text = spec.partition("-")
    if not first_text:  # suffix range: the last N bytes
        return max(0, total - int(last_text)), total - 1
    last = int(last_text) if last_text else total - 1
    return int(first_text), min(last, total - 1)


# ----------------------------------------------------------------------------- the format


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    for i in range(9):
        byte = data[pos + i]
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos + i + 1
    raise FetchError("corrupt xz index (varint too long)")


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def parse_footer(footer: bytes) -> tuple[int, bytes]:
    """(index size, stream flags) from the 12-byte stream footer."""
    if len(footer) != 12 or footer[10:] != _FOOTER_MAGIC:
        raise FetchError("not an xz file (no stream footer)")
    crc, backward = struct.unpack("<II", footer[:8])
    if zlib.crc32(footer[4:10]) != crc:
        raise FetchError("corrupt xz stream footer (CRC32)")
    return (backward + 1) * 4, footer[8:10]


def parse_index(index: bytes, flags: bytes, file_size: int) -> BlockMap:
    """The block map of a single-stream xz file (no stream padding)."""
    if index[:1] != b"\x00" or zlib.crc32(index[:-4]) != struct.unpack("<I", index[-4:])[0]:
        raise FetchError("corrupt xz index")
    count, pos = _varint(index, 1)
    blocks = []
    offset, uoffset = 12, 0
    for _ in range(count):
        unpadded, pos = _varint(index, pos)
        usize, pos = _varint(index, pos)
        size = (unpadded + 3) & ~3
        blocks.append(Block(offset, size, unpadded, uoffset, usize))
        offset += size
        uoffset += usize
    if offset + len(index) + 12 != file_size:
        raise RangeUnsupported("the xz file is not one stream of blocks (concatenated streams "
                               "or padding); ranged fetches need a single stream")
    return BlockMap(flags=flags, blocks=tuple(blocks), file_size=file_size)


def read_block_map(client: RangeClient) -> BlockMap:
    tail, _, total = client.read(f"-{_TAIL}")
    index_size, flags = parse_footer(tail[-12:])
    if index_size + 12 > len(tail):
        tail, _, total = client.read(f"-{index_size + 12}")
    index = tail[len(tail) - 12 - index_size:len(tail) - 12]
    return parse_index(index, flags, total)


def decompress_block(raw: bytes, block: Block, flags: bytes) -> bytes:
    """One block, wrapped as a one-block xz stream so lzma verifies the block's check."""
    header = _HEADER_MAGIC + flags + struct.pack("<I", zlib.crc32(flags))
    records = b"\x00" + _encode_varint(1) + _encode_varint(block.unpadded) + \
        _encode_varint(block.usize)
    records += b"\x00" * (-len(records) % 4)
    index = records + struct.pack("<I", zlib.crc32(records))
    backward = struct.pack("<I", len(index) // 4 - 1)
    footer = struct.pack("<I", zlib.crc32(backward + flags)) + backward + flags + _FOOTER_MAGIC
    try:
        data = lzma.decompress(header + raw + index + footer, format=lzma.FORMAT_XZ)
    except lzma.LZMAError as err:
        raise FetchError(f"xz block at offset {block.offset} does not decompress: {err}") \
            from None
    if len(data) != block.usize:
        raise FetchError(f"xz block at offset {block.offset}: {len(data)} bytes, index says "
                         f"{block.usize}")
    return data


def fetch_range(client: RangeClient, start: int, end: int, label: str) -> bytes:
    """Uncompressed bytes [start, end) of the remote xz file, fetching only covering blocks."""
    bmap = read_block_map(client)
    blocks = bmap.covering(start, end)
    first, last = blocks[0], blocks[-1]
    length = last.offset + last.size - first.offset
    raw, got_first, _ = client.read(f"{first.offset}-{first.offset + length - 1}", label, length)
    if got_first != first.offset or len(raw) != length:
        raise FetchError("the server sent another byte range than asked for")
    out = bytearray()
    for block in blocks:
        pos = block.offset - first.offset
        out += decompress_block(raw[pos:pos + block.size], block, bmap.flags)
    lo = start - first.uoffset
    data = bytes(out[lo:lo + (end - start)])
    _check_tar_boundary(data, start)
    return data


def _check_tar_boundary(data: bytes, start: int) -> None:
    """The range must begin with a tar header (a member boundary)."""
    if start % 512 or len(data) < 512:
        raise FetchError(f"member-range start {start} is not a tar record boundary")
    try:
        tarfile.TarInfo.frombuf(data[:512], "utf-8", "surrogateescape")
    except tarfile.HeaderError as err:
        raise FetchError(f"member-range start {start} is not a tar member boundary ({err}); "
                         "recompute it with `python -m edgeforge.xzrange`") from None


# ------------------------------------------------------------------ finding a member's range


def locate_member(stream: BinaryIO, member: str, strip_components: int = 1) -> tuple[int, int]:
    """[start, end) in the uncompressed tar of the entries under ``member`` (after stripping
    ``strip_components`` leading path parts), read from a ``.tar.xz`` stream once."""
    prefix = member.strip("/") + "/"
    start: int | None = None
    end = 0
    with tarfile.open(fileobj=stream, mode="r|xz") as tar:
        for info in tar:
            parts = info.name.split("/")[strip_components:]
            if not "/".join(parts).startswith(prefix):
                continue
            if start is None:
                start = info.offset
            data = -(-info.size // 512) * 512 if info.isreg() else 0
            end = max(end, info.offset_data + data)
    if start is None:
        raise FetchError(f"no {member}/ in the archive")
    return start, end


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print("usage: python -m edgeforge.xzrange ARCHIVE.tar.xz MEMBER [STRIP_COMPONENTS]",
              file=sys.stderr)
        return 2
    with open(argv[0], "rb") as f:
        start, end = locate_member(f, argv[1], int(argv[2]) if len(argv) == 3 else 1)
    print(f"member-range = [{start}, {end}]")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
