"""Fetch: the sha256-keyed cache, mirrors in order, tampering, offline mode, safe extraction."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from fetch_support import tarball

from edgeforge import debian, fetch
from edgeforge.errors import ChecksumError, FetchError, UnsafeArchiveError
from edgeforge.log import Logger
from edgeforge.recipe import Location, Source


@pytest.fixture
def logger() -> Logger:
    return Logger()


@pytest.fixture
def opts(tmp_path: Path) -> fetch.FetchOptions:
    return fetch.FetchOptions(cache_dir=tmp_path / "cache")


def _source(*locations: Location) -> Source:
    return Source(name="demo", locations=locations)


def _no_partial_files(cache: Path) -> None:
    leftovers = [p for p in cache.rglob("*") if p.is_file() and ".part" in p.name]
    assert leftovers == []


def test_download_verifies_and_caches(tmp_path: Path, opts: fetch.FetchOptions,
                                      logger: Logger) -> None:
    archive = tmp_path / "demo-1.0.tar.gz"
    sha = tarball(archive, {"demo-1.0/a.txt": b"hello"})
    src = _source(Location(url=archive.as_uri(), debian_pool=None, sha256=sha))
    got = fetch.fetch_source(src, opts, logger)
    assert got == opts.cache_dir / "downloads" / sha / "demo-1.0.tar.gz"
    archive.unlink()  # the second fetch is served from the cache
    assert fetch.fetch_source(src, opts, logger) == got
    tree = fetch.prepare_source(src, got, opts, logger)
    assert (tree / "a.txt").read_text() == "hello"


def test_tampered_archive_is_refused_and_nothing_kept(tmp_path: Path, opts: fetch.FetchOptions,
                                                      logger: Logger) -> None:
    archive = tmp_path / "demo-1.0.tar.gz"
    sha = tarball(archive, {"demo-1.0/a.txt": b"hello"})
    tarball(archive, {"demo-1.0/a.txt": b"evil"})  # same name, other bytes
    src = _source(Location(url=archive.as_uri(), debian_pool=None, sha256=sha))
    with pytest.raises(FetchError) as err:
        fetch.fetch_source(src, opts, logger)
    assert "sha256 mismatch" in str(err.value)
    assert not (opts.cache_dir / "downloads" / sha).exists()
    _no_partial_files(opts.cache_dir)


def test_corrupt_cache_entry_is_replaced(tmp_path: Path, opts: fetch.FetchOptions,
                                         logger: Logger) -> None:
    archive = tmp_path / "demo-1.0.tar.gz"
    sha = tarball(archive, {"demo-1.0/a.txt": b"hello"})
    src = _source(Location(url=archive.as_uri(), debian_pool=None, sha256=sha))
    cached = fetch.fetch_source(src, opts, logger)
    cached.write_bytes(b"bit rot")
    assert fetch.sha256_file(fetch.fetch_source(src, opts, logger)) == sha


def test_mirrors_in_order_and_every_failure_listed(tmp_path: Path, opts: fetch.FetchOptions,
                                                   logger: Logger) -> None:
    archive = tmp_path / "demo-1.0.tar.gz"
    sha = tarball(archive, {"demo-1.0/a.txt": b"hello"})
    missing = Location(url=(tmp_path / "gone.tar.gz").as_uri(), debian_pool=None, sha256=sha)
    good = Location(url=archive.as_uri(), debian_pool=None, sha256=sha)
    assert fetch.fetch_source(_source(missing, good), opts, logger)
    wrong = Location(url=archive.as_uri(), debian_pool=None, sha256="1" * 64)
    with pytest.raises(FetchError) as err:
        fetch.fetch_source(_source(missing, wrong), fetch.FetchOptions(tmp_path / "c2"),
                           logger)
    message = str(err.value)
    assert "gone.tar.gz" in message and "sha256 mismatch" in message


def test_offline_uses_only_the_cache(tmp_path: Path, opts: fetch.FetchOptions,
                                     logger: Logger) -> None:
    archive = tmp_path / "demo-1.0.tar.gz"
    sha = tarball(archive, {"demo-1.0/a.txt": b"hello"})
    src = _source(Location(url=archive.as_uri(), debian_pool=None, sha256=sha))
    offline = fetch.FetchOptions(cache_dir=opts.cache_dir, offline=True)
    with pytest.raises(FetchError, match="--offline"):
        fetch.fetch_source(src, offline, logger)
    fetch.fetch_source(src, opts, logger)
    assert fetch.fetch_source(src, offline, logger).is_file()


def test_unpinned_location_is_refused_unless_locked(tmp_path: Path, opts: fetch.FetchOptions,
                                                    logger: Logger) -> None:
    archive = tmp_path / "demo-1.0.tar.gz"
    sha = tarball(archive, {"demo-1.0/a.txt": b"hello"})
    loc = Location(url=archive.as_uri(), debian_pool=None, sha256=None)
    with pytest.raises(FetchError, match="edgeforge lock"):
        fetch.fetch_source(_source(loc), opts, logger)
    locked = fetch.FetchOptions(cache_dir=opts.cache_dir, locked={loc.display: sha})
    assert fetch.fetch_source(_source(loc), locked, logger).parent.name == sha


@pytest.mark.parametrize(("members", "links"), [
    ({"/etc/evil": b"x"}, None),
    ({"demo/../../evil": b"x"}, None),
    ({"demo/ok": b"x"}, {"demo/link": "../../../etc/passwd"}),
    ({"demo/ok": b"x"}, {"demo/abs": "/etc/passwd"}),
])
def test_unsafe_archives_are_refused(tmp_path: Path, members: dict[str, bytes],
                                     links: dict[str, str] | None, opts: fetch.FetchOptions,
                                     logger: Logger) -> None:
    archive = tmp_path / "evil.tar.gz"
    sha = tarball(archive, members, links)
    src = _source(Location(url=archive.as_uri(), debian_pool=None, sha256=sha))
    got = fetch.fetch_source(src, opts, logger)
    with pytest.raises(UnsafeArchiveError):
        fetch.prepare_source(src, got, opts, logger)
    assert not (tmp_path / "evil").exists()
    assert not list((opts.cache_dir / "src").glob("demo-*"))  # no half-extracted tree


def test_zip_with_traversal_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../evil.txt", "x")
    with pytest.raises(UnsafeArchiveError):
        fetch.extract(archive, tmp_path / "out", 0)


def test_checksum_error_is_a_fetch_error() -> None:
    assert issubclass(ChecksumError, FetchError)


def test_debian_archive_from_apt_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://archive.test/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\n\nTypes: deb\nURIs: http://security.test/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n")
    assert debian.pool_url("t/tf/x.tar.xz", tmp_path, {}) == \
        "http://archive.test/debian/pool/main/t/tf/x.tar.xz"
    assert debian.archive_uri(tmp_path, {debian.MIRROR_ENV: "file:///m/"}) == "file:///m"


def test_debian_archive_from_one_line_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "# comment\ndeb [arch=amd64] http://one.test/debian bullseye main contrib\n")
    assert debian.archive_uri(tmp_path, {}) == "http://one.test/debian"


def test_no_debian_archive_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    with pytest.raises(Exception, match="EDGEFORGE_DEBIAN_MIRROR"):
        debian.archive_uri(tmp_path, {})


def test_member_only_extraction(tmp_path: Path, opts: fetch.FetchOptions,
                                logger: Logger) -> None:
    """A source carried inside a bigger archive: only its subdirectory reaches the disk."""
    archive = tmp_path / "big-1.0.tar.gz"
    sha = tarball(archive, {"big-1.0/third_party/ruy/src/ruy/ruy.h": b"ruy",
                             "big-1.0/third_party/ruy/src/LICENSE": b"Apache",
                             "big-1.0/chrome/huge.cc": b"x" * 1000})
    src = Source(name="ruy", locations=(
        Location(url=(tmp_path / "upstream.zip").as_uri(), debian_pool=None, sha256="0" * 64),
        Location(url=archive.as_uri(), debian_pool=None, sha256=sha,
                 member="third_party/ruy/src"),
    ))
    tree = fetch.prepare_source(src, fetch.fetch_source(src, opts, logger), opts, logger)
    assert (tree / "ruy" / "ruy.h").read_bytes() == b"ruy"
    assert sorted(p.name for p in tree.iterdir()) == [".complete", "LICENSE", "ruy"]


def test_missing_member_is_a_clear_error(tmp_path: Path, opts: fetch.FetchOptions,
                                         logger: Logger) -> None:
    archive = tmp_path / "big-1.0.tar.gz"
    sha = tarball(archive, {"big-1.0/a.txt": b"a"})
    src = Source(name="ruy", locations=(
        Location(url=archive.as_uri(), debian_pool=None, sha256=sha, member="third_party/x"),))
    with pytest.raises(FetchError, match="third_party/x"):
        fetch.prepare_source(src, fetch.fetch_source(src, opts, logger), opts, logger)
