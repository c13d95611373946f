"""Tree hashes: every URL of a source must extract to the pinned tree; what a refused mirror
leaves behind; excludes; interrupted extraction; the per-download lock."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from fetch_support import recipe_text, serve, tarball

from edgeforge import fetch, treehash
from edgeforge.errors import FetchError
from edgeforge.log import Logger
from edgeforge.recipe import Location, Source, resolve_recipe

REPO = Path(__file__).resolve().parents[1]


def _tar(path: Path, members: dict[str, bytes], modes: dict[str, int] | None = None,
         links: dict[str, str] | None = None) -> str:
    return tarball(path, members, links, modes)


def _tree_of(tmp_path: Path, members: dict[str, bytes], modes: dict[str, int] | None = None,
             links: dict[str, str] | None = None, exclude: tuple[str, ...] = ()) -> str:
    archive = tmp_path / f"t{len(list(tmp_path.iterdir()))}.tar.gz"
    _tar(archive, members, modes, links)
    dest = archive.with_suffix(".d")
    fetch.extract(archive, dest, 1, None, exclude)
    return treehash.tree_hash(dest)


GOOD = {"demo-1.0/src/a.c": b"int a;\n", "demo-1.0/tool.sh": b"#!/bin/sh\n"}
GOOD_MODES = {"demo-1.0/tool.sh": 0o755}


def test_mode_link_and_content_each_change_the_hash(tmp_path: Path) -> None:
    base = _tree_of(tmp_path, GOOD, GOOD_MODES, {"demo-1.0/link": "src/a.c"})
    assert treehash.is_tree_pin(base)
    assert _tree_of(tmp_path, GOOD, GOOD_MODES, {"demo-1.0/link": "src/a.c"}) == base
    assert _tree_of(tmp_path, GOOD, {}, {"demo-1.0/link": "src/a.c"}) != base  # mode
    assert _tree_of(tmp_path, GOOD, GOOD_MODES, {"demo-1.0/link": "tool.sh"}) != base  # link
    other = {**GOOD, "demo-1.0/src/a.c": b"int b;\n"}
    assert _tree_of(tmp_path, other, GOOD_MODES, {"demo-1.0/link": "src/a.c"}) != base
    renamed = {"demo-1.0/src/b.c": GOOD["demo-1.0/src/a.c"], "demo-1.0/tool.sh": b"#!/bin/sh\n"}
    assert _tree_of(tmp_path, renamed, GOOD_MODES, {"demo-1.0/link": "src/a.c"}) != base
    # the top directory stripped, and group/other bits, do not matter: 0o700 reads as 755
    again = {k.replace("demo-1.0", "demo-git"): v for k, v in GOOD.items()}
    assert _tree_of(tmp_path, again, {"demo-git/tool.sh": 0o700},
                    {"demo-git/link": "src/a.c"}) == base


def test_excludes_make_upstream_and_a_dfsg_repack_one_tree(tmp_path: Path) -> None:
    dfsg = _tree_of(tmp_path, GOOD, GOOD_MODES)
    upstream = {**GOOD, "demo-1.0/testdata/lena.png": b"\x89PNG", "demo-1.0/gradle/w.jar": b"PK"}
    assert _tree_of(tmp_path, upstream, GOOD_MODES) != dfsg
    exclude = ("testdata/lena*.png", "*/w.jar")
    assert _tree_of(tmp_path, upstream, GOOD_MODES, exclude=exclude) == dfsg
    assert _tree_of(tmp_path, GOOD, GOOD_MODES, exclude=exclude) == dfsg  # nothing to drop
    assert treehash.excluded(Path("gradle/w.jar"), exclude)  # type: ignore[arg-type]
    assert not treehash.excluded(Path("src/a.c"), exclude)  # type: ignore[arg-type]


def _demo_source(tree: str, *locations: Location) -> Source:
    return Source(name="demo", locations=locations, tree=tree)


def test_a_mirror_with_other_code_is_refused_and_the_good_url_used(tmp_path: Path) -> None:
    good, evil = tmp_path / "good" / "demo-1.0.tar.gz", tmp_path / "evil" / "demo-1.0.tar.gz"
    good.parent.mkdir()
    evil.parent.mkdir()
    good_sha = _tar(good, GOOD, GOOD_MODES)
    evil_sha = _tar(evil, {**GOOD, "demo-1.0/src/a.c": b"int backdoor;\n"}, GOOD_MODES)
    pin = _tree_of(tmp_path / "good", GOOD, GOOD_MODES)
    evil_tree = _tree_of(tmp_path / "evil", {**GOOD, "demo-1.0/src/a.c": b"int backdoor;\n"},
                         GOOD_MODES)
    log = io.StringIO()
    opts = fetch.FetchOptions(cache_dir=tmp_path / "cache")
    # the evil mirror's archive is even "pinned" by sha256 (a recipe mistake): the tree decides
    src = _demo_source(pin, Location(url=evil.as_uri(), debian_pool=None, sha256=evil_sha),
                       Location(url=good.as_uri(), debian_pool=None, sha256=good_sha))
    tree = fetch.fetch_tree(src, opts, Logger(stream=log))
    assert (tree / "src/a.c").read_bytes() == b"int a;\n"
    assert (tree / ".complete").read_text().strip() == pin
    warning = log.getvalue()
    assert evil.as_uri() in warning and pin in warning and evil_tree in warning
    # only the evil mirror: one error with the URL and both hashes; no tree under a final name
    only_evil = _demo_source(pin, Location(url=evil.as_uri(), debian_pool=None, sha256=None))
    other = fetch.FetchOptions(cache_dir=tmp_path / "cache2")
    with pytest.raises(FetchError) as err:
        fetch.fetch_tree(only_evil, other, Logger(stream=io.StringIO()))
    message = str(err.value)
    assert evil.as_uri() in message and pin in message and evil_tree in message
    assert not [p for p in (other.cache_dir / "src").iterdir() if not p.name.startswith(".")]
    # the refused download (vouched for by nothing but its tree) is not kept either
    kept = [p for p in (other.cache_dir / "downloads").rglob("*.tar.gz")]
    assert kept == []


def test_a_url_without_sha256_is_verified_by_tree_and_cached_by_tree(tmp_path: Path) -> None:
    archive = tmp_path / "demo-1.0.tar.gz"
    _tar(archive, GOOD, GOOD_MODES)
    pin = _tree_of(tmp_path, GOOD, GOOD_MODES)
    src = _demo_source(pin, Location(url=archive.as_uri(), debian_pool=None, sha256=None))
    opts = fetch.FetchOptions(cache_dir=tmp_path / "cache")
    tree = fetch.fetch_tree(src, opts, Logger(stream=io.StringIO()))
    archive.unlink()  # the tree cache serves the re-run: nothing is fetched
    assert fetch.fetch_tree(src, opts, Logger(stream=io.StringIO())) == tree
    # the same recipe without a tree refuses the unpinned URL
    with pytest.raises(FetchError, match="unpinned"):
        fetch.fetch_tree(Source(name="demo", locations=src.locations), opts, Logger())


def test_interrupted_extraction_leaves_nothing_trusted(tmp_path: Path) -> None:
    """SIGKILL mid-extraction (the archive is fed through a FIFO, so the kill lands mid-way):
    no tree under a final name; the next run extracts again and checks the tree."""
    members = {f"demo-1.0/f{i:04}.txt": os.urandom(2048) for i in range(400)}
    archive = tmp_path / "demo-1.0.tar.gz"
    _tar(archive, members)
    pin = _tree_of(tmp_path, members)
    data = archive.read_bytes()
    fifo = tmp_path / "fifo" / "demo-1.0.tar.gz"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    cache = tmp_path / "cache"
    script = textwrap.dedent(f"""
        from pathlib import Path
        from edgeforge import fetch
        from edgeforge.log import Logger
        from edgeforge.recipe import Location, Source
        loc = Location(url={fifo.as_uri()!r}, debian_pool=None, sha256=None)
        src = Source(name="demo", locations=(loc,), tree={pin!r})
        fetch.prepare_source(src, Path({str(fifo)!r}),
                             fetch.FetchOptions(cache_dir=Path({str(cache)!r})), Logger(), loc)
    """)
    child = subprocess.Popen([sys.executable, "-c", script])
    try:
        with fifo.open("wb") as pipe:
            pipe.write(data[:len(data) // 2])
            pipe.flush()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # wait until files land in the staging dir
                staged = list((cache / "src").glob(".demo-*/f*.txt"))
                if len(staged) > 10:
                    break
                time.sleep(0.05)
            assert len(staged) > 10, "the child never started extracting"
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
    except BrokenPipeError:
        pass
    finally:
        if child.poll() is None:
            child.kill()
    finals = [p for p in (cache / "src").iterdir() if not p.name.startswith(".")]
    assert finals == []
    src = _demo_source(pin, Location(url=archive.as_uri(), debian_pool=None, sha256=None))
    log = io.StringIO()
    tree = fetch.fetch_tree(src, fetch.FetchOptions(cache_dir=cache), Logger(stream=log))
    assert (tree / ".complete").read_text().strip() == pin
    assert treehash.tree_hash(tree) == pin
    assert "left by an interrupted extraction" in log.getvalue()
    assert [p.name for p in (cache / "src").iterdir() if p.is_dir()] == [tree.name]


def test_two_processes_fetching_one_file_download_it_once(tmp_path: Path) -> None:
    (tmp_path / "www").mkdir()
    archive = tmp_path / "www" / "demo-1.0.tar.gz"
    members = {"demo-1.0/blob.bin": os.urandom(400_000)}
    sha = _tar(archive, members)
    cache = tmp_path / "cache"
    with serve(tmp_path / "www", throttle=2.0) as served:
        script = textwrap.dedent(f"""
            from pathlib import Path
            from edgeforge import fetch
            from edgeforge.log import Logger
            from edgeforge.recipe import Location, Source
            loc = Location(url={served.url + "/demo-1.0.tar.gz"!r}, debian_pool=None,
                           sha256={sha!r})
            print(fetch.fetch_source(Source(name="demo", locations=(loc,)),
                                     fetch.FetchOptions(cache_dir=Path({str(cache)!r})),
                                     Logger()))
        """)
        procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert outs[0][0] == outs[1][0]  # the same cache entry
    gets = [r for r in served.requests if r[0] == "GET"]
    assert len(gets) == 1, served.requests
    assert any("waiting for the download of demo-1.0.tar.gz" in err for _, err in outs)


def test_every_shipped_source_has_a_tree() -> None:
    """Except the libedgetpu release and source archives: nobody here can download them, so
    nobody could compute their tree (`edgeforge lock --tree` does, where GitHub answers)."""
    unreachable = {("libedgetpu", "edgetpu-runtime"), ("libedgetpu-max", "edgetpu-runtime"),
                   ("libedgetpu-source", "libedgetpu")}
    missing = []
    for path in sorted((REPO / "src/edgeforge/recipes").glob("*.toml")):
        if path.stem.endswith(".lock"):
            continue
        recipe = resolve_recipe(str(path))
        missing += [(recipe.name, s.name) for s in recipe.sources
                    if s.extract and s.tree is None]
    assert sorted(missing) == sorted(unreachable)


LOCK_SOURCES = """
[[sources]]
name = "demo"
urls = [{{ url = "{a}", sha256 = "{sha_a}" }}, {{ url = "{b}", unpinned = true }}]
"""


def test_lock_tree_prints_the_pin_or_where_urls_disagree(tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "demo-1.0.tar.gz", tmp_path / "b" / "demo-git.tar.gz"
    a.parent.mkdir()
    b.parent.mkdir()
    sha_a = _tar(a, GOOD, GOOD_MODES)
    _tar(b, {k.replace("demo-1.0", "demo-git"): v for k, v in GOOD.items()},
         {"demo-git/tool.sh": 0o755})
    pin = _tree_of(tmp_path / "a", GOOD, GOOD_MODES)
    recipe = tmp_path / "demo.toml"
    recipe.write_text(recipe_text(LOCK_SOURCES.format(a=a.as_uri(), sha_a=sha_a, b=b.as_uri())))

    def lock_tree() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "edgeforge", "--cache-dir",
                               str(tmp_path / "cache"), "lock", "--tree", str(recipe)],
                              capture_output=True, text=True, timeout=120)
    agree = lock_tree()
    assert agree.returncode == 0, agree.stderr
    assert f'[demo] tree = "{pin}"' in agree.stdout
    _tar(b, {"demo-git/src/a.c": b"int other;\n"})  # the second URL now serves other code
    disagree = lock_tree()
    assert disagree.returncode == 1
    assert "DISAGREE" in disagree.stdout
    assert pin in disagree.stdout and b.as_uri() in disagree.stdout
