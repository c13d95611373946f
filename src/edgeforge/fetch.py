"""Fetch sources: a cache keyed by sha256, atomic downloads, mirrors in order, safe extraction.

Layout under the cache directory:
  downloads/<sha256>/<filename>     verified downloads (never a partial file under this name)
  downloads/<sha256>/<filename>.<start>-<end>.tar
                                    the tar entries of one member, fetched by ranged GETs of
                                    the xz blocks covering them (edgeforge.xzrange)
  downloads/locks/                  one lock per download: two processes never fetch one file
  src/<key>/                        extracted (and patched) trees; ``.complete`` written last,
                                    only after the tree hash matched the recipe's

A source with a ``tree`` hash is verified by what its archive extracts to: every location must
give that tree, and one that does not is refused (its error names the URL and both hashes)
and the next location is tried. Its extracted tree is keyed by the tree hash, so a cached tree
serves every location and a re-run downloads nothing.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from . import debian, treehash, xzrange
from .errors import ChecksumError, ConfigError, FetchError, UnsafeArchiveError
from .fsutil import atomic_write_bytes, file_lock, sha256_file
from .log import Logger
from .recipe import Location, Source

CACHE_ENV = "EDGEFORGE_CACHE"
CHUNK = 1 << 20


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get(CACHE_ENV):
        return Path(env[CACHE_ENV]).expanduser()
    xdg = env.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "edgeforge"


@dataclass(frozen=True)
class FetchOptions:
    cache_dir: Path
    offline: bool = False
    allow_unpinned: bool = False  # only `edgeforge lock` sets this
    locked: Mapping[str, str] = field(default_factory=dict)  # display URL -> sha256 (lock file)
    timeout: float = 60.0


class TreeMismatchError(FetchError):
    """A location's archive extracts to another tree than the recipe pins."""


def resolve_url(location: Location) -> str:
    if location.url is not None:
        return location.url
    return debian.pool_url(location.debian_pool or "")


def _pinned_sha(location: Location, opts: FetchOptions) -> str | None:
    return location.sha256 or opts.locked.get(location.display)


def cached_path(opts: FetchOptions, sha256: str, location: Location) -> Path:
    return opts.cache_dir / "downloads" / sha256 / location.filename


def _download_lock(opts: FetchOptions, location: Location) -> Path:
    key = hashlib.sha256(location.display.encode()).hexdigest()[:24]
    return opts.cache_dir / "downloads" / "locks" / f"{location.filename[:60]}.{key}.lock"


def fetch_location(source: Source, location: Location, opts: FetchOptions,
                   logger: Logger) -> Path:
    """The archive of one location: from the cache (sha256 checked) or downloaded.

    Under a lock per download, so a second process fetching the same file waits for the first
    and then finds it in the cache. A location without sha256 is fetched only when the source's
    tree hash will verify it (or for `edgeforge lock`).
    """
    sha = _pinned_sha(location, opts)
    if sha is None and source.tree is None and not opts.allow_unpinned:
        raise FetchError("unpinned (no sha256); run `edgeforge lock` with network access to "
                         "record it in the recipe's lock file")
    with file_lock(_download_lock(opts, location), f"the download of {location.filename}",
                   logger.info):
        if sha is not None:
            target = cached_path(opts, sha, location)
            if location.member_filename is not None:
                target = target.with_name(location.member_filename)
            if target.is_file():
                if location.member_range is not None:  # its tree hash checks it on extraction
                    return target
                actual = sha256_file(target)
                if actual == sha:
                    logger.debug(f"{source.name}: cached {target}")
                    return target
                logger.warning(f"{target} is corrupt (sha256 {actual}); removing it")
                target.unlink()
        if opts.offline and location.member_range is not None and sha is not None:
            whole = cached_path(opts, sha, location)  # fetched whole before (or by a fallback)
            if whole.is_file() and sha256_file(whole) == sha:
                return whole
        if opts.offline:
            raise FetchError("not in the cache and --offline is set")
        if location.member_range is not None and sha is not None:
            try:
                return download_member(location, sha, opts, logger)
            except xzrange.RangeUnsupported as err:
                logger.warning(f"{location.display}: {err}; downloading the whole file instead")
        return download(location, sha, opts, logger)


def _failed(source: Source, failures: list[str]) -> FetchError:
    lines = "\n".join(f"  - {f}" for f in failures)
    return FetchError(f"could not fetch source {source.name!r}; every location failed:\n{lines}")


def fetch_source(source: Source, opts: FetchOptions, logger: Logger) -> Path:
    """Return the verified archive of ``source`` (sha256 only; ``fetch_tree`` also checks the
    tree), downloading it if the cache lacks it.

    Locations are tried in order; if every one fails, the error lists each URL and why.
    """
    failures: list[str] = []
    for location in source.locations:
        try:
            return fetch_location(source, location, opts, logger)
        except (FetchError, ConfigError) as err:
            failures.append(f"{location.display}: {err}")
    raise _failed(source, failures)


def fetch_tree(source: Source, opts: FetchOptions, logger: Logger) -> Path:
    """The extracted, tree-verified and patched tree of ``source`` (its archive when the source
    is not extracted). Locations are tried in order until one gives the pinned tree."""
    if not source.extract:
        return fetch_source(source, opts, logger)
    if source.tree is not None:
        cached = _tree_dir(opts, _tree_key(source, None, 0, None))
        if (cached / ".complete").is_file():
            logger.debug(f"{source.name}: cached tree {cached}")
            return cached
    failures: list[str] = []
    for location in source.locations:
        try:
            archive = fetch_location(source, location, opts, logger)
        except (FetchError, ConfigError) as err:
            failures.append(f"{location.display}: {err}")
            continue
        try:
            return prepare_source(source, archive, opts, logger, location)
        except FetchError as err:  # another tree, an unsafe or broken archive
            failures.append(f"{location.display}: {err}")
            logger.warning(f"{err}; trying the next location" if isinstance(
                err, TreeMismatchError) else f"{location.display}: {err}")
            _discard_unpinned(archive, location, opts, logger)
    raise _failed(source, failures)


def _discard_unpinned(archive: Path, location: Location, opts: FetchOptions,
                      logger: Logger) -> None:
    """A refused archive that only its tree could have vouched for leaves the cache. (A file
    with the recipe's own sha256 stays: it is exactly what was pinned.)"""
    downloads = opts.cache_dir / "downloads"
    if downloads not in archive.parents:
        return
    if location.member_range is None and _pinned_sha(location, opts) is not None:
        return
    logger.warning(f"removing the refused {archive}")
    archive.unlink(missing_ok=True)


def _pip_download(location: Location, staging: Path, logger: Logger) -> Path:
    """A file from PyPI, through pip (the registry is pip's business, not ours)."""
    workdir = Path(tempfile.mkdtemp(prefix="pip.", dir=staging))
    argv = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
            "--quiet", "--dest", str(workdir)]
    if location.pypi_platform:
        argv += ["--only-binary=:all:", "--platform", location.pypi_platform]
    if location.pypi_python:
        argv += ["--python-version", location.pypi_python]
    logger.info(f"pip download {location.pypi}")
    result = subprocess.run([*argv, location.pypi or ""], capture_output=True, text=True,
                            check=False)
    files = [p for p in workdir.iterdir() if p.is_file()]
    if result.returncode != 0 or len(files) != 1:
        shutil.rmtree(workdir, ignore_errors=True)
        raise FetchError(f"pip download failed: {result.stderr.strip()[-500:]}")
    return files[0]


def download(location: Location, sha256: str | None, opts: FetchOptions, logger: Logger) -> Path:
    """Download to a temp file next to the cache entry, check the sha256, then rename."""
    if location.pypi:
        staging = opts.cache_dir / "downloads" / "tmp"
        staging.mkdir(parents=True, exist_ok=True)
        got = _pip_download(location, staging, logger)
        try:
            actual = sha256_file(got)
            if sha256 is not None and actual != sha256:
                raise ChecksumError(f"sha256 mismatch: expected {sha256}, got {actual}")
            target = cached_path(opts, actual, location)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(got, target)
            logger.info(f"fetched {location.display} ({target.stat().st_size} bytes through "
                        "pip, sha256 ok)")
            return target
        finally:
            shutil.rmtree(got.parent, ignore_errors=True)
    url = resolve_url(location)
    staging = opts.cache_dir / "downloads" / "tmp"
    staging.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=location.filename + ".", suffix=".part", dir=staging)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                request = urllib.request.Request(url, headers={"User-Agent": "edgeforge"})
                with urllib.request.urlopen(request, timeout=opts.timeout) as response:
                    total = response.headers.get("Content-Length")
                    bar = logger.progress(f"downloading {location.filename}",
                                          int(total) if total else None)
                    while chunk := response.read(CHUNK):
                        out.write(chunk)
                        h.update(chunk)
                        bar.advance(len(chunk))
                    bar.finish()
            except urllib.error.HTTPError as err:
                raise FetchError(f"HTTP {err.code} {err.reason}") from None
            except (urllib.error.URLError, OSError, ValueError) as err:
                reason = getattr(err, "reason", err)
                raise FetchError(f"download failed: {reason}") from None
            out.flush()
            os.fsync(out.fileno())
        actual = h.hexdigest()
        if sha256 is not None and actual != sha256:
            raise ChecksumError(f"sha256 mismatch: expected {sha256}, got {actual}; the file "
                                "was discarded (a tampered or changed upstream file?)")
        target = cached_path(opts, actual, location)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)
        logger.info(f"fetched {location.filename} ({target.stat().st_size} bytes, sha256 ok)")
        return target
    finally:
        tmp.unlink(missing_ok=True)


def download_member(location: Location, sha256: str, opts: FetchOptions,
                    logger: Logger) -> Path:
    """The tar entries of ``location.member_range``, by ranged GETs of the covering xz blocks;
    cached under the archive's sha256 and the range."""
    assert location.member_range is not None and location.member_filename is not None
    start, end = location.member_range
    target = cached_path(opts, sha256, location).with_name(location.member_filename)
    client = xzrange.RangeClient(resolve_url(location), opts.timeout, logger)
    data = xzrange.fetch_range(client, start, end, f"downloading {location.member} of "
                               f"{location.filename} (ranged)")
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(target, data)
    logger.info(f"fetched {location.member} of {location.filename}: {client.downloaded} bytes "
                f"by ranged GETs, {len(data)} bytes of tar")
    return target


# ---------------------------------------------------------------------------- extraction


def _strip(name: str, components: int) -> PurePosixPath | None:
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith("/"):
        raise UnsafeArchiveError(f"archive member has an absolute path: {name!r}")
    parts = [p for p in path.parts if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"archive member escapes its directory: {name!r}")
    parts = parts[components:]
    return PurePosixPath(*parts) if parts else None


def _check_link(dest: Path, member_path: PurePosixPath, link_target: str) -> None:
    if link_target.startswith("/"):
        raise UnsafeArchiveError(f"link {member_path} points to an absolute path {link_target!r}")
    resolved = os.path.normpath(os.path.join(dest, member_path.parent, link_target))
    if not (resolved == str(dest) or resolved.startswith(str(dest) + os.sep)):
        raise UnsafeArchiveError(f"link {member_path} -> {link_target!r} points outside the tree")


def _select(rel: PurePosixPath | None, only: PurePosixPath | None) -> PurePosixPath | None:
    """With ``only`` set, keep just the members under it, relative to it."""
    if rel is None or only is None:
        return rel
    if rel == only or only not in rel.parents:
        return None
    return rel.relative_to(only)


def _extract_tar(tar: tarfile.TarFile, dest: Path, components: int,
                 only: PurePosixPath | None = None, exclude: tuple[str, ...] = ()) -> None:
    links: list[tuple[Path, str, bool]] = []
    for member in tar:
        rel = _select(_strip(member.name, components), only)
        if rel is None or treehash.excluded(rel, exclude):
            continue
        out = dest / rel
        if member.isdir():
            out.mkdir(parents=True, exist_ok=True)
        elif member.isfile():
            out.parent.mkdir(parents=True, exist_ok=True)
            src = tar.extractfile(member)
            assert src is not None
            with src, out.open("wb") as f:
                shutil.copyfileobj(src, f, CHUNK)
            out.chmod(0o755 if member.mode & stat.S_IXUSR else 0o644)
        elif member.issym():
            _check_link(dest, rel, member.linkname)
            links.append((out, member.linkname, True))
        elif member.islnk():
            target = _select(_strip(member.linkname, components), only)
            if target is None or treehash.excluded(target, exclude):
                raise UnsafeArchiveError(f"hard link {member.name} has no target in the tree")
            links.append((out, str(target), False))
        # devices, fifos and the like are skipped: sources never need them
    for out, linked, symbolic in links:  # links last, so they cannot redirect a file write
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.is_symlink() or out.exists():
            out.unlink()
        if symbolic:
            out.symlink_to(linked)
        else:
            shutil.copy2(dest / linked, out)


def _extract_zip(archive: Path, dest: Path, components: int,
                 only: PurePosixPath | None = None, exclude: tuple[str, ...] = ()) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            rel = _select(_strip(info.filename, components), only)
            if rel is None or treehash.excluded(rel, exclude):
                continue
            out = dest / rel
            mode = info.external_attr >> 16
            if info.is_dir():
                out.mkdir(parents=True, exist_ok=True)
                continue
            if stat.S_ISLNK(mode):
                target = zf.read(info).decode()
                _check_link(dest, rel, target)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.symlink_to(target)
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, out.open("wb") as f:
                shutil.copyfileobj(src, f, CHUNK)
            out.chmod(0o755 if mode & stat.S_IXUSR else 0o644)


def _ar_members(archive: Path) -> Iterator[tuple[str, bytes]]:
    data = archive.read_bytes()
    if not data.startswith(b"!<arch>\n"):
        raise FetchError(f"{archive.name} is not a Debian package (no ar header)")
    pos = 8
    while pos + 60 <= len(data):
        header = data[pos:pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        pos += 60
        yield name, data[pos:pos + size]
        pos += size + (size % 2)


def _extract_deb(archive: Path, dest: Path, components: int,
                 only: PurePosixPath | None = None, exclude: tuple[str, ...] = ()) -> None:
    for name, payload in _ar_members(archive):
        if name.startswith("data.tar"):
            with tarfile.open(fileobj=io.BytesIO(payload), mode="r:*") as tar:
                _extract_tar(tar, dest, components, only, exclude)
            return
    raise FetchError(f"{archive.name} has no data.tar member")


def _decompressed(raw: io.BufferedReader) -> io.BufferedIOBase:
    """The tar stream inside ``raw``, by its magic bytes. Through the compression modules'
    own file objects, which read concatenated streams (pixz, pigz, pbzip2 write them);
    tarfile's ``r|xz`` stops after the first."""
    magic = raw.peek(6)[:6]
    if magic.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(raw)
    if magic.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=raw)
    if magic.startswith(b"BZh"):
        return bz2.BZ2File(raw)
    return raw  # a plain tar


def extract(archive: Path, dest: Path, strip_components: int, member: str | None = None,
            exclude: tuple[str, ...] = ()) -> None:
    """Extract safely: no absolute paths, no ``..``, no links pointing out of ``dest``.

    With ``member``, only that subdirectory (after stripping) is extracted, streamed: a
    source carried inside a much bigger archive never lands on disk whole. Paths matching an
    ``exclude`` glob (relative to the extracted tree) are left out.
    """
    dest.mkdir(parents=True, exist_ok=True)
    name = archive.name
    only = _strip(member, 0) if member else None
    try:
        if name.endswith((".zip", ".whl")) or zipfile.is_zipfile(archive):
            _extract_zip(archive, dest, strip_components, only, exclude)
        elif name.endswith(".deb"):
            _extract_deb(archive, dest, strip_components, only, exclude)
        else:
            with archive.open("rb") as raw, _decompressed(raw) as stream, \
                    tarfile.open(fileobj=stream, mode="r|") as tar:  # streamed: stays cheap
                _extract_tar(tar, dest, strip_components, only, exclude)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, gzip.BadGzipFile,
            lzma.LZMAError) as err:
        raise FetchError(f"cannot extract {archive}: {err}") from None


def _tree_key(source: Source, archive_sha: str | None, strip: int, member: str | None) -> str:
    """The cache key of a source's extracted tree: its tree pin when it has one (any location
    gives that tree), else the archive and its layout; plus the patches either way."""
    if source.tree is not None:
        h = hashlib.sha256(f"v3:{source.tree}".encode())
    else:
        h = hashlib.sha256(f"v2:{archive_sha}:{strip}:{member}".encode())  # v2: member-only
        for pattern in source.exclude:
            h.update(f":exclude:{pattern}".encode())
    for patch in source.patches:
        h.update(patch.read_bytes())
    return f"{source.name}-{h.hexdigest()[:16]}"


def _tree_dir(opts: FetchOptions, key: str) -> Path:
    return opts.cache_dir / "src" / key


def extracted_tree_hash(source: Source, archive: Path, location: Location, dest: Path) -> str:
    """Extract ``archive`` into the empty ``dest`` as ``source`` lays it out and hash it."""
    strip, member = source.layout_for(location)
    extract(archive, dest, strip, member, source.exclude)
    if member and not any(dest.iterdir()):
        raise FetchError(f"{archive.name} has no {member}/ directory")
    return treehash.tree_hash(dest)


def prepare_source(source: Source, archive: Path, opts: FetchOptions, logger: Logger,
                   location: Location | None = None) -> Path:
    """The extracted and patched tree of ``source``, shared by every target's build.

    Extraction happens in a temporary directory renamed into place once complete and, for a
    source with a tree hash, only once the tree matched; so an interrupted run or a refused
    archive never leaves a tree under the final name. Raises ``TreeMismatchError`` (naming the
    URL and both hashes) when the archive extracts to another tree.
    """
    if not source.extract:
        return archive
    location = location or source.location_of(archive)
    strip, member = source.layout_for(location)
    root = opts.cache_dir / "src"
    tree = _tree_dir(opts, _tree_key(source, archive.parent.name, strip, member))
    if (tree / ".complete").is_file():
        return tree
    root.mkdir(parents=True, exist_ok=True)
    with file_lock(root / f".{tree.name}.lock", f"the extraction of {source.name}", logger.info):
        if (tree / ".complete").is_file():  # another process finished it meanwhile
            return tree
        for stale in root.glob(f".{tree.name}.*"):  # left by a killed run (we hold the lock)
            if stale.is_dir() and not stale.is_symlink():
                logger.info(f"removing {stale}, left by an interrupted extraction")
                shutil.rmtree(stale, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{tree.name}.", dir=root))
        try:
            logger.info(f"extracting {archive.name}")
            actual = extracted_tree_hash(source, archive, location, staging)
            if source.tree is not None and actual != source.tree:
                raise TreeMismatchError(
                    f"{location.display} extracts to tree {actual}, but the recipe pins "
                    f"tree = {source.tree!r}: other code than the other URLs serve; refused")
            for patch in source.patches:
                apply_patch(patch, staging, logger)
            (staging / ".complete").write_text(f"{actual}\n")
            if tree.exists():
                shutil.rmtree(tree)
            os.replace(staging, tree)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return tree


def apply_patch(patch: Path, tree: Path, logger: Logger) -> None:
    reason = patch.read_text(errors="replace").splitlines()[0].lstrip("# ").strip()
    reason = reason.removeprefix("reason:").strip()
    logger.info(f"patching with {patch.name}: {reason}")
    if shutil.which("patch") is None:
        raise FetchError("the `patch` program is missing: apt-get install patch")
    result = subprocess.run(["patch", "-p1", "--forward", "--batch", "-d", str(tree), "-i",
                             str(patch)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise FetchError(f"patch {patch} does not apply:\n{result.stdout}{result.stderr}")
