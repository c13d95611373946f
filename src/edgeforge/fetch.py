"""Fetch sources: a cache keyed by sha256, atomic downloads, mirrors in order, safe extraction.

Layout under the cache directory:
  downloads/<sha256>/<filename>     verified downloads (never a partial file under this name)
  src/<key>/                        extracted (and patched) trees; ``.complete`` written last
"""

from __future__ import annotations

import hashlib
import io
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

from . import debian
from .errors import ChecksumError, ConfigError, FetchError, UnsafeArchiveError
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


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def resolve_url(location: Location) -> str:
    if location.url is not None:
        return location.url
    return debian.pool_url(location.debian_pool or "")


def _pinned_sha(location: Location, opts: FetchOptions) -> str | None:
    return location.sha256 or opts.locked.get(location.display)


def cached_path(opts: FetchOptions, sha256: str, location: Location) -> Path:
    return opts.cache_dir / "downloads" / sha256 / location.filename


def fetch_source(source: Source, opts: FetchOptions, logger: Logger) -> Path:
    """Return the verified archive of ``source``, downloading it if the cache lacks it.

    Locations are tried in order; if every one fails, the error lists each URL and why.
    """
    failures: list[str] = []
    for location in source.locations:
        sha = _pinned_sha(location, opts)
        if sha is None and not opts.allow_unpinned:
            failures.append(f"{location.display}: unpinned (no sha256); run `edgeforge lock` "
                            "with network access to record it in the recipe's lock file")
            continue
        if sha is not None:
            target = cached_path(opts, sha, location)
            if target.is_file():
                actual = sha256_file(target)
                if actual == sha:
                    logger.debug(f"{source.name}: cached {target}")
                    return target
                logger.warning(f"{target} is corrupt (sha256 {actual}); removing it")
                target.unlink()
        if opts.offline:
            failures.append(f"{location.display}: not in the cache and --offline is set")
            continue
        try:
            return download(location, sha, opts, logger)
        except (FetchError, ConfigError) as err:
            failures.append(f"{location.display}: {err}")
    lines = "\n".join(f"  - {f}" for f in failures)
    raise FetchError(f"could not fetch source {source.name!r}; every location failed:\n{lines}")


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
                 only: PurePosixPath | None = None) -> None:
    links: list[tuple[Path, str, bool]] = []
    for member in tar:
        rel = _select(_strip(member.name, components), only)
        if rel is None:
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
            if target is None:
                raise UnsafeArchiveError(f"hard link {member.name} has no target in the tree")
            links.append((out, str(target), False))
        # devices, fifos and the like are skipped: sources never need them
    for out, target, symbolic in links:  # links last, so they cannot redirect a file write
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.is_symlink() or out.exists():
            out.unlink()
        if symbolic:
            out.symlink_to(target)
        else:
            shutil.copy2(dest / target, out)


def _extract_zip(archive: Path, dest: Path, components: int,
                 only: PurePosixPath | None = None) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            rel = _select(_strip(info.filename, components), only)
            if rel is None:
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
                 only: PurePosixPath | None = None) -> None:
    for name, payload in _ar_members(archive):
        if name.startswith("data.tar"):
            with tarfile.open(fileobj=io.BytesIO(payload), mode="r:*") as tar:
                _extract_tar(tar, dest, components, only)
            return
    raise FetchError(f"{archive.name} has no data.tar member")


def extract(archive: Path, dest: Path, strip_components: int, member: str | None = None) -> None:
    """Extract safely: no absolute paths, no ``..``, no links pointing out of ``dest``.

    With ``member``, only that subdirectory (after stripping) is extracted, streamed: a
    source carried inside a much bigger archive never lands on disk whole.
    """
    dest.mkdir(parents=True, exist_ok=True)
    name = archive.name
    only = _strip(member, 0) if member else None
    try:
        if name.endswith((".zip", ".whl")) or zipfile.is_zipfile(archive):
            _extract_zip(archive, dest, strip_components, only)
        elif name.endswith(".deb"):
            _extract_deb(archive, dest, strip_components, only)
        else:
            with tarfile.open(archive, mode="r|*") as tar:  # streamed: big archives stay cheap
                _extract_tar(tar, dest, strip_components, only)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as err:
        raise FetchError(f"cannot extract {archive}: {err}") from None


def _tree_key(archive_sha: str, source: Source, strip: int, member: str | None) -> str:
    h = hashlib.sha256(f"v2:{archive_sha}:{strip}:{member}".encode())  # v2: member-only trees
    for patch in source.patches:
        h.update(patch.read_bytes())
    return f"{source.name}-{h.hexdigest()[:16]}"


def prepare_source(source: Source, archive: Path, opts: FetchOptions, logger: Logger) -> Path:
    """The extracted and patched tree of ``source``, shared by every target's build.

    Extraction happens in a temporary directory renamed into place once complete, so an
    interrupted run never leaves a half-extracted tree under the final name.
    """
    if not source.extract:
        return archive
    strip, member = source.layout(archive)
    root = opts.cache_dir / "src"
    tree = root / _tree_key(archive.parent.name, source, strip, member)
    if not (tree / ".complete").is_file():
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{source.name}.", dir=root))
        try:
            logger.info(f"extracting {archive.name}")
            extract(archive, staging, strip, member)
            if member and not any(staging.iterdir()):
                raise FetchError(f"{archive.name} has no {member}/ directory")
            for patch in source.patches:
                apply_patch(patch, staging, logger)
            (staging / ".complete").write_text("ok\n")
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
