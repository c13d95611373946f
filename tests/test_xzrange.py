"""A member of a multi-block tar.xz by ranged GETs from a real HTTP server on 127.0.0.1, and
`edgeforge sources check` against the same server."""

from __future__ import annotations

import hashlib
import io
import lzma
import os
import shutil
import socket
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from fetch_support import recipe_text, serve

from edgeforge import fetch, treehash, xzrange
from edgeforge.errors import FetchError
from edgeforge.log import Logger
from edgeforge.recipe import Location, Source

MEMBER = "third_party/ruy/src"


@pytest.fixture(scope="module")
def big_xz(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, tuple[int, int]]:
    """A tar of incompressible filler around a small member, as xz blocks of 64 KiB:
    (the .tar.xz under a served directory, its sha256, the member's range)."""
    if shutil.which("xz") is None:
        pytest.skip("xz (xz-utils) is not installed")
    root = tmp_path_factory.mktemp("xz")
    tar_path = root / "big-1.0.orig.tar"
    with tarfile.open(tar_path, "w", format=tarfile.GNU_FORMAT) as tar:
        def add(name: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(f"big-1.0/{name}")
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
        add("chrome/before.bin", os.urandom(900_000))
        add(f"{MEMBER}/" + "long/" * 30 + "deep.h", b"// a GNU long name, first\n")
        add(f"{MEMBER}/ruy/ruy.h", b"// ruy\n" * 2000)
        add(f"{MEMBER}/build.sh", b"#!/bin/sh\n", 0o755)
        add("chrome/after.bin", os.urandom(900_000))
    subprocess.run(["xz", "--block-size=65536", "-T1", "-k", str(tar_path)], check=True)
    archive = root / "www" / "big-1.0.orig.tar.xz"
    archive.parent.mkdir()
    tar_path.with_suffix(".tar.xz").rename(archive)
    with archive.open("rb") as f:
        member_range = xzrange.locate_member(f, MEMBER)
    return archive, hashlib.sha256(archive.read_bytes()).hexdigest(), member_range


def _expected_tree(archive: Path, tmp: Path) -> str:
    fetch.extract(archive, tmp, 1, MEMBER)
    return treehash.tree_hash(tmp)


def _source(url: str, sha: str, member_range: tuple[int, int], tree: str) -> Source:
    return Source(name="ruy", tree=tree, locations=(
        Location(url=url, debian_pool=None, sha256=sha, member=MEMBER,
                 member_range=member_range),))


def test_member_by_ranged_gets_of_its_blocks(big_xz: tuple[Path, str, tuple[int, int]],
                                             tmp_path: Path) -> None:
    archive, sha, member_range = big_xz
    tree = _expected_tree(archive, tmp_path / "expected")
    cache = tmp_path / "cache"
    with serve(archive.parent) as served:
        src = _source(f"{served.url}/{archive.name}", sha, member_range, tree)
        log = io.StringIO()
        got = fetch.fetch_tree(src, fetch.FetchOptions(cache_dir=cache), Logger(stream=log))
        assert treehash.tree_hash(got) == tree
        assert (got / "build.sh").stat().st_mode & 0o111
        assert all(r[2] for r in served.requests), "every GET was ranged"
        size = archive.stat().st_size
        assert served.body_bytes < size // 4, (served.body_bytes, size)
        assert "by ranged GETs" in log.getvalue()
        # a re-run downloads nothing: the tree cache, and below it the fetched tar range
        before = len(served.requests)
        assert fetch.fetch_tree(src, fetch.FetchOptions(cache_dir=cache), Logger()) == got
        shutil.rmtree(cache / "src")
        again = fetch.fetch_tree(src, fetch.FetchOptions(cache_dir=cache), Logger())
        assert treehash.tree_hash(again) == tree
        assert len(served.requests) == before


def test_a_server_that_ignores_range_means_the_whole_file(
        big_xz: tuple[Path, str, tuple[int, int]], tmp_path: Path) -> None:
    """The choice: fall back to the whole file (checked against its sha256), with a warning."""
    archive, sha, member_range = big_xz
    tree = _expected_tree(archive, tmp_path / "expected")
    with serve(archive.parent, ignore_range=True) as served:
        src = _source(f"{served.url}/{archive.name}", sha, member_range, tree)
        log = io.StringIO()
        got = fetch.fetch_tree(src, fetch.FetchOptions(cache_dir=tmp_path / "c"),
                               Logger(stream=log))
    assert treehash.tree_hash(got) == tree
    assert "ignored a Range request" in log.getvalue()
    assert "downloading the whole file instead" in log.getvalue()
    # offline, the whole file fetched by the fallback serves the member too
    shutil.rmtree(tmp_path / "c" / "src")
    offline = fetch.FetchOptions(cache_dir=tmp_path / "c", offline=True)
    assert treehash.tree_hash(fetch.fetch_tree(src, offline, Logger())) == tree


def test_a_file_of_two_xz_streams_means_the_whole_file(
        big_xz: tuple[Path, str, tuple[int, int]], tmp_path: Path) -> None:
    """Concatenated streams have no single block map: the whole file, with a warning."""
    archive, _, member_range = big_xz
    tar = lzma.decompress(archive.read_bytes())
    half = len(tar) // 2
    www = tmp_path / "www"
    www.mkdir()
    two = www / archive.name
    two.write_bytes(lzma.compress(tar[:half]) + lzma.compress(tar[half:]))
    tree = _expected_tree(archive, tmp_path / "expected")
    with serve(www) as served:
        src = _source(f"{served.url}/{two.name}", hashlib.sha256(two.read_bytes()).hexdigest(),
                      member_range, tree)
        log = io.StringIO()
        got = fetch.fetch_tree(src, fetch.FetchOptions(cache_dir=tmp_path / "c"),
                               Logger(stream=log))
    assert treehash.tree_hash(got) == tree
    assert "not one stream of blocks" in log.getvalue()


def test_a_wrong_range_is_refused(big_xz: tuple[Path, str, tuple[int, int]],
                                  tmp_path: Path) -> None:
    archive, _, (start, end) = big_xz
    with serve(archive.parent) as served:
        client = xzrange.RangeClient(f"{served.url}/{archive.name}", 10, Logger())
        with pytest.raises(FetchError, match="boundary"):
            xzrange.fetch_range(client, start + 512 * 7, end, "x")  # inside a member's data
        with pytest.raises(FetchError, match="beyond"):
            xzrange.fetch_range(client, start, 10**12, "x")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SOURCES = """
[[sources]]
name = "demo"
urls = [
  {{ url = "{up}", sha256 = "{sha}" }},
  {{ url = "{missing}", sha256 = "{sha}" }},
  {{ url = "{dead}", sha256 = "{sha}" }},
]
"""

GONE = """
[[sources]]
name = "gone"
urls = [{{ url = "{missing}", sha256 = "{sha}" }}]
"""


@pytest.mark.parametrize("refuse_head", [False, True])
def test_sources_check_reports_every_url(big_xz: tuple[Path, str, tuple[int, int]],
                                         tmp_path: Path, refuse_head: bool) -> None:
    archive, sha, _ = big_xz
    with serve(archive.parent, refuse_head=refuse_head) as served:
        urls = {"up": f"{served.url}/{archive.name}", "missing": f"{served.url}/gone.tar.xz",
                "dead": f"http://127.0.0.1:{_closed_port()}/x.tar.xz", "sha": sha}
        recipe = tmp_path / "demo.toml"
        recipe.write_text(recipe_text(SOURCES.format(**urls)))
        ok = subprocess.run([sys.executable, "-m", "edgeforge", "sources", "check", str(recipe)],
                            capture_output=True, text=True, timeout=120)
        recipe.write_text(recipe_text(SOURCES.format(**urls) + GONE.format(**urls)))
        bad = subprocess.run([sys.executable, "-m", "edgeforge", "sources", "check",
                              str(recipe)], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    rows = {line.split()[2]: line for line in ok.stdout.splitlines()[1:] if "demo" in line}
    size = f"{archive.stat().st_size:,}"
    assert size in rows[urls["up"]] and rows[urls["up"]].rstrip().endswith("LAST")
    assert ("(ranged GET)" in rows[urls["up"]]) == refuse_head
    assert "HTTP 404" in rows[urls["missing"]]
    assert "unreachable" in rows[urls["dead"]]
    assert bad.returncode == 3 and "demo:gone" in bad.stderr
    gets = [r for r in served.requests if r[0] == "GET"]
    assert all(r[2] == "bytes=0-0" for r in gets), "nothing was downloaded"


PYPI_SOURCES = """
[[sources]]
name = "models"
smoke-only = true
urls = [{{ pypi = "demo-models=={version}", pypi-python = "3.11", sha256 = "{sha}" }}]
"""


def test_sources_check_asks_pip_for_a_pypi_location(tmp_path: Path) -> None:
    """Through pip's own index lookup against a local PEP 503 index: the pinned version is
    listed, another is not; no file is downloaded (the wheel named there does not exist)."""
    project = tmp_path / "www" / "simple" / "demo-models"
    project.mkdir(parents=True)
    (project / "index.html").write_text(
        '<!DOCTYPE html><html><body><a href="demo_models-1.0-py3-none-any.whl#sha256='
        + "0" * 64 + '">demo_models-1.0-py3-none-any.whl</a></body></html>\n')
    recipe = tmp_path / "demo.toml"
    with serve(tmp_path / "www") as served:
        env = {**os.environ, "PIP_INDEX_URL": f"{served.url}/simple", "PIP_NO_CACHE_DIR": "1",
               "PIP_CONFIG_FILE": os.devnull}

        def check(version: str) -> subprocess.CompletedProcess[str]:
            recipe.write_text(recipe_text(PYPI_SOURCES.format(version=version, sha="0" * 64)))
            return subprocess.run([sys.executable, "-m", "edgeforge", "sources", "check",
                                   str(recipe)], capture_output=True, text=True, timeout=120,
                                  env=env)
        listed, missing = check("1.0"), check("2.0")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "pip: 1.0 listed" in listed.stdout
    assert missing.returncode == 3 and "2.0 is not listed" in missing.stdout
    assert [r for r in served.requests if r[1].endswith(".whl")] == []
