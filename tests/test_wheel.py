"""The wheel writer: tags, metadata, RECORD, reproducibility, atomicity, and a real pip."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.metadata import Metadata
from packaging.utils import parse_wheel_filename

from edgeforge import wheel as wheel_mod
from edgeforge.errors import ConfigError
from edgeforge.wheel import (
    DEFAULT_SOURCE_DATE_EPOCH,
    WheelSpec,
    read_wheel_metadata,
    read_wheel_tags,
    resolve_source_date_epoch,
    write_wheel,
)
from edgeforge.zipwriter import ZipWriter

AARCH64 = ("manylinux_2_17_aarch64", "manylinux2014_aarch64")
X86_64 = ("manylinux_2_17_x86_64", "manylinux2014_x86_64")


@pytest.fixture
def payload(tmp_path: Path) -> dict[str, Path]:
    src = tmp_path / "src"
    (src / "lib").mkdir(parents=True)
    (src / "__init__.py").write_text("VALUE = 42\n\ndef main():\n    print('hello from demo')\n")
    (src / "lib" / "data.bin").write_bytes(bytes(range(256)) * 64)
    tool = src / "tool.sh"
    tool.write_text("#!/bin/sh\necho tool\n")
    tool.chmod(0o755)
    return {
        "demo_pkg/__init__.py": src / "__init__.py",
        "demo_pkg/lib/data.bin": src / "lib" / "data.bin",
        "demo_pkg/bin/tool.sh": tool,
    }


@pytest.fixture
def license_files(tmp_path: Path) -> dict[str, Path]:
    d = tmp_path / "licenses"
    (d / "third_party").mkdir(parents=True)
    (d / "LICENSE").write_text("Apache-2.0 text\n")
    (d / "third_party" / "COPYING").write_text("BSD text\n")
    return {"LICENSE": d / "LICENSE", "third_party/COPYING": d / "third_party" / "COPYING"}


def spec(**overrides: object) -> WheelSpec:
    fields: dict[str, object] = {
        "distribution": "Demo.Pkg-Lib",
        "version": "1.0.0",
        "platform_tags": X86_64,
        "summary": "A demo",
        "license": "Apache-2.0",
        "requires_python": ">=3.8",
        "requires_dist": ("packaging>=20", "numpy; extra == 'test'"),
        "entry_points": {"console_scripts": {"demo-tool": "demo_pkg:main"},
                         "demo.plugins": {"b": "demo_pkg:main", "a": "demo_pkg:main"}},
        "description": "# Demo\n\nText.\n",
        "project_urls": {"Source": "https://example.invalid/demo"},
    }
    fields.update(overrides)
    return WheelSpec(**fields)  # type: ignore[arg-type]


def record_rows(path: Path) -> tuple[list[list[str]], dict[str, bytes]]:
    with zipfile.ZipFile(path) as zf:
        contents = {name: zf.read(name) for name in zf.namelist()}
    record_name = next(n for n in contents if n.endswith(".dist-info/RECORD"))
    rows = list(csv.reader(io.StringIO(contents[record_name].decode())))
    return rows, contents


def test_file_name_tags_and_wheel_file(tmp_path, payload):
    s = spec(platform_tags=AARCH64)
    path = write_wheel(s, payload, tmp_path / "dist")
    assert path.name == (
        "demo_pkg_lib-1.0.0-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"
    )
    name, version, _, tags = parse_wheel_filename(path.name)
    assert name == "demo-pkg-lib" and str(version) == "1.0.0"
    assert {str(t) for t in tags} == {"py3-none-manylinux_2_17_aarch64",
                                      "py3-none-manylinux2014_aarch64"}
    assert read_wheel_tags(path) == ["py3-none-manylinux_2_17_aarch64",
                                     "py3-none-manylinux2014_aarch64"]
    with zipfile.ZipFile(path) as zf:
        wheel_text = zf.read("demo_pkg_lib-1.0.0.dist-info/WHEEL").decode()
    assert "Root-Is-Purelib: false\n" in wheel_text
    assert wheel_text.startswith("Wheel-Version: 1.0\n")


def test_compressed_tag_sets_expand_to_every_combination(tmp_path, payload):
    s = spec(python_tag="py2.py3", platform_tags=("any",))
    path = write_wheel(s, payload, tmp_path)
    assert path.name.endswith("-py2.py3-none-any.whl")
    assert read_wheel_tags(path) == ["py2-none-any", "py3-none-any"]
    with zipfile.ZipFile(path) as zf:
        assert "Root-Is-Purelib: true" in zf.read(f"{s.dist_info}/WHEEL").decode()


def test_metadata_is_valid_core_metadata(tmp_path, payload, license_files):
    path = write_wheel(spec(), payload, tmp_path, license_files=license_files)
    raw = read_wheel_metadata(path)
    assert raw["Metadata-Version"] == "2.4"  # License-Expression / License-File need 2.4
    assert raw.get_all("License-File") == ["LICENSE", "third_party/COPYING"]
    with zipfile.ZipFile(path) as zf:
        text = zf.read("demo_pkg_lib-1.0.0.dist-info/METADATA").decode()
        names = zf.namelist()
    meta = Metadata.from_email(text, validate=True)  # raises on anything invalid
    assert meta.name == "Demo.Pkg-Lib"
    assert str(meta.version) == "1.0.0"
    assert meta.license_expression == "Apache-2.0"
    assert [str(r) for r in meta.requires_dist] == ["packaging>=20", 'numpy; extra == "test"']
    assert meta.description == "# Demo\n\nText.\n"
    assert meta.description_content_type == "text/markdown"
    assert "demo_pkg_lib-1.0.0.dist-info/licenses/third_party/COPYING" in names


def test_metadata_without_license_stays_2_1(tmp_path, payload):
    path = write_wheel(spec(license=None, description=None), payload, tmp_path)
    with zipfile.ZipFile(path) as zf:
        text = zf.read("demo_pkg_lib-1.0.0.dist-info/METADATA").decode()
    assert text.startswith("Metadata-Version: 2.1\n")
    Metadata.from_email(text, validate=True)


def test_entry_points_file(tmp_path, payload):
    path = write_wheel(spec(), payload, tmp_path)
    with zipfile.ZipFile(path) as zf:
        text = zf.read("demo_pkg_lib-1.0.0.dist-info/entry_points.txt").decode()
    assert text == (
        "[console_scripts]\ndemo-tool = demo_pkg:main\n\n"
        "[demo.plugins]\na = demo_pkg:main\nb = demo_pkg:main\n"
    )


def test_record_lists_every_file_with_its_hash_and_size(tmp_path, payload, license_files):
    path = write_wheel(spec(), payload, tmp_path, license_files=license_files)
    rows, contents = record_rows(path)
    listed = {row[0] for row in rows}
    assert listed == set(contents)
    for name, digest, size in rows:
        if name.endswith(".dist-info/RECORD"):
            assert (digest, size) == ("", "")
            continue
        algo, _, value = digest.partition("=")
        expected = base64.urlsafe_b64encode(hashlib.sha256(contents[name]).digest())
        assert algo == "sha256"
        assert value == expected.rstrip(b"=").decode()
        assert int(size) == len(contents[name])


def test_entries_sorted_dist_info_last_record_last_no_directories(tmp_path, payload,
                                                                   license_files):
    path = write_wheel(spec(), payload, tmp_path, license_files=license_files)
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
    names = [i.filename for i in infos]
    dist = [n for n in names if n.startswith("demo_pkg_lib-1.0.0.dist-info/")]
    assert names[-1] == "demo_pkg_lib-1.0.0.dist-info/RECORD"
    assert names[: len(names) - len(dist)] == sorted(payload)
    assert dist[:-1] == sorted(dist[:-1])
    assert not any(n.endswith("/") for n in names)
    for info in infos:
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert info.compress_type == zipfile.ZIP_DEFLATED
        assert info.create_system == 3
        assert stat.S_ISREG(info.external_attr >> 16)


def test_permissions_are_fixed(tmp_path, payload):
    # An ELF executable without its x bit on disk is still 0o755; a shared library is not.
    exe = tmp_path / "true-copy"
    shutil.copyfile(shutil.which("true") or "/bin/true", exe)
    exe.chmod(0o644)
    import _ctypes

    shared = tmp_path / "ext.so"
    shutil.copyfile(_ctypes.__file__, shared)
    shared.chmod(0o600)
    files = {**payload, "demo_pkg/bin/true": exe, "demo_pkg/lib/ext.so": shared}
    path = write_wheel(spec(), files, tmp_path / "out")
    with zipfile.ZipFile(path) as zf:
        modes = {i.filename: stat.S_IMODE(i.external_attr >> 16) for i in zf.infolist()}
    assert modes["demo_pkg/bin/tool.sh"] == 0o755  # executable on disk
    assert modes["demo_pkg/bin/true"] == 0o755  # ELF executable
    assert modes["demo_pkg/lib/ext.so"] == 0o644
    assert modes["demo_pkg/__init__.py"] == 0o644
    assert modes["demo_pkg_lib-1.0.0.dist-info/RECORD"] == 0o644


def test_byte_identical_when_written_twice(tmp_path, payload, license_files, monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    first = write_wheel(spec(), payload, tmp_path / "a", license_files=license_files)
    # Same contents at other paths, other mtimes and a different dict order.
    other = tmp_path / "copy"
    copies = {}
    for arcname, src in reversed(list(payload.items())):
        dst = other / arcname
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dst)
        os.utime(dst, (1_700_000_000, 1_700_000_000))
        copies[arcname] = dst
    second = write_wheel(spec(), copies, tmp_path / "b", license_files=license_files)
    assert first.read_bytes() == second.read_bytes()


def test_different_content_or_date_gives_different_bytes(tmp_path, payload):
    base = write_wheel(spec(), payload, tmp_path / "a", source_date_epoch=1_700_000_000)
    changed = dict(payload)
    edited = tmp_path / "edited.py"
    edited.write_text("VALUE = 43\n")
    changed["demo_pkg/__init__.py"] = edited
    other = write_wheel(spec(), changed, tmp_path / "b", source_date_epoch=1_700_000_000)
    later = write_wheel(spec(), payload, tmp_path / "c", source_date_epoch=1_700_000_100)
    assert base.read_bytes() != other.read_bytes()
    assert base.read_bytes() != later.read_bytes()
    with zipfile.ZipFile(later) as zf:
        assert zf.infolist()[0].date_time == (2023, 11, 14, 22, 15, 0)  # UTC


def test_source_date_epoch_argument_then_environment_then_default(monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    assert resolve_source_date_epoch() == DEFAULT_SOURCE_DATE_EPOCH
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1600000000")
    assert resolve_source_date_epoch() == 1_600_000_000
    assert resolve_source_date_epoch(1_650_000_000) == 1_650_000_000
    assert resolve_source_date_epoch(0) == DEFAULT_SOURCE_DATE_EPOCH  # zip cannot go earlier
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(ConfigError, match="SOURCE_DATE_EPOCH"):
        resolve_source_date_epoch()


def test_environment_source_date_epoch_is_used(tmp_path, payload, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1600000000")
    path = write_wheel(spec(), payload, tmp_path)
    with zipfile.ZipFile(path) as zf:
        assert zf.infolist()[0].date_time == (2020, 9, 13, 12, 26, 40)


def _fail_on_second_call(real):
    calls = []

    def wrapper(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    return wrapper


def test_failure_midway_leaves_nothing_and_keeps_the_old_wheel(tmp_path, payload, monkeypatch):
    out = tmp_path / "dist"
    old = write_wheel(spec(), payload, out)
    old_bytes = old.read_bytes()
    changed = dict(payload)
    edited = tmp_path / "edited.py"
    edited.write_text("VALUE = 43\n")
    changed["demo_pkg/__init__.py"] = edited
    monkeypatch.setattr(ZipWriter, "add", _fail_on_second_call(ZipWriter.add))
    with pytest.raises(OSError, match="No space left"):
        write_wheel(spec(), changed, out)
    assert sorted(p.name for p in out.iterdir()) == [old.name]
    assert old.read_bytes() == old_bytes


def test_failure_at_fsync_leaves_nothing(tmp_path, payload, monkeypatch):
    out = tmp_path / "dist"
    out.mkdir()

    def broken_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(wheel_mod.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="Input/output"):
        write_wheel(spec(), payload, out)
    assert list(out.iterdir()) == []


def test_bad_input_file_fails_before_anything_is_written(tmp_path, payload):
    out = tmp_path / "dist"
    files = {**payload, "demo_pkg/missing.txt": tmp_path / "nope.txt"}
    with pytest.raises(ConfigError, match=r"nope\.txt does not exist"):
        write_wheel(spec(), files, out)
    assert not out.exists()
    with pytest.raises(ConfigError, match="is a directory"):
        write_wheel(spec(), {**payload, "demo_pkg/dir": tmp_path}, out)
    assert not out.exists()


@pytest.mark.parametrize("arcname", ["../evil.py", "/etc/passwd", "demo//x.py", "demo/./x.py",
                                     "demo\\x.py", "", "demo/"])
def test_bad_archive_paths_are_rejected(tmp_path, payload, arcname):
    with pytest.raises(ConfigError, match="invalid archive path"):
        write_wheel(spec(), {arcname: payload["demo_pkg/__init__.py"]}, tmp_path)


def test_files_cannot_go_into_dist_info(tmp_path, payload):
    with pytest.raises(ConfigError, match="cannot go into"):
        write_wheel(spec(), {"demo_pkg_lib-1.0.0.dist-info/extra": payload["demo_pkg/__init__.py"]},
                    tmp_path)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"distribution": "bad name!"}, "invalid distribution name"),
        ({"distribution": "-lead"}, "invalid distribution name"),
        ({"version": "one.two"}, "not a PEP 440 version"),
        ({"platform_tags": ()}, "at least one platform tag"),
        ({"platform_tags": "manylinux_2_17_x86_64"}, "at least one platform tag"),
        ({"platform_tags": ("manylinux_2_17_x86_64.manylinux2014_x86_64",)}, "separate items"),
        ({"platform_tags": ("any", "linux_x86_64")}, "cannot be combined"),
        ({"python_tag": "py-3"}, "invalid python_tag"),
        ({"summary": "two\nlines"}, "one line"),
        ({"license": "Apache 2 or whatever"}, "SPDX"),
        ({"requires_python": ">=three"}, "requires_python"),
        ({"requires_dist": ("numpy >>> 1",)}, "invalid requirement"),
        ({"requires_dist": "numpy"}, "not one string"),
        ({"entry_points": {"console_scripts": {"x": "not a module path"}}}, "module:attr"),
        ({"entry_points": {"bad group!": {"x": "m:f"}}}, "entry point group"),
    ],
)
def test_spec_validation(overrides, message):
    with pytest.raises(ConfigError, match=message):
        spec(**overrides)


def test_names_and_versions_are_normalized_in_file_names():
    s = spec(distribution="TFLite_Edge.Lib", version="2.14.01", platform_tags=AARCH64)
    assert s.filename.startswith("tflite_edge_lib-2.14.1-py3-none-")
    assert s.dist_info == "tflite_edge_lib-2.14.1.dist-info"


def test_spec_is_frozen_and_copies_its_mappings():
    eps = {"console_scripts": {"a": "m:f"}}
    s = spec(entry_points=eps)
    eps["console_scripts"]["b"] = "m:g"
    assert dict(s.entry_points["console_scripts"]) == {"a": "m:f"}
    with pytest.raises(AttributeError):
        s.version = "2"  # type: ignore[misc]


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args],
        capture_output=True, text=True, check=False,
        env={**os.environ, "PIP_NO_INDEX": "1", "PIP_NO_CACHE_DIR": "1"},
    )


def test_real_pip_installs_the_wheel_and_python_imports_from_it(tmp_path, payload,
                                                                 license_files):
    path = write_wheel(spec(requires_dist=()), payload, tmp_path / "dist",
                       license_files=license_files)
    target = tmp_path / "target"
    result = _pip("install", "--no-deps", "--target", str(target), str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    probe = subprocess.run(
        [sys.executable, "-c",
         "import demo_pkg, pathlib; print(demo_pkg.VALUE); "
         "print(len((pathlib.Path(demo_pkg.__file__).parent / 'lib/data.bin').read_bytes()))"],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(target)},
    )
    assert probe.stdout.split() == ["42", "16384"]
    tool = target / "demo_pkg" / "bin" / "tool.sh"
    assert os.access(tool, os.X_OK)
    assert (target / "bin" / "demo-tool").is_file()  # the console script from entry_points
    dist_info = target / "demo_pkg_lib-1.0.0.dist-info"
    assert (dist_info / "licenses" / "third_party" / "COPYING").is_file()
    assert (dist_info / "RECORD").is_file()


def test_pip_picks_a_foreign_dual_tagged_wheel_by_platform(tmp_path, payload):
    # pip does not alias manylinux2014 to manylinux_2_17 outside x86: both tags must be there.
    path = write_wheel(spec(requires_dist=(), platform_tags=AARCH64), payload, tmp_path / "dist")
    for platform in AARCH64:
        target = tmp_path / f"target-{platform}"
        result = _pip("install", "--no-deps", "--only-binary=:all:", "--platform", platform,
                      "--target", str(target), str(path))
        assert result.returncode == 0, result.stdout + result.stderr
        assert (target / "demo_pkg" / "__init__.py").is_file()
    refused = _pip("install", "--no-deps", "--only-binary=:all:", "--platform",
                   "manylinux2014_x86_64", "--target", str(tmp_path / "no"), str(path))
    assert refused.returncode != 0
    assert "is not a supported wheel" in refused.stdout + refused.stderr


# --- the edgemath fixture, packed and installed the way the pipeline does it ----------------

FIXTURES = Path(__file__).resolve().parent / "fixtures"
EDGEMATH = FIXTURES / "edgemath"


def _load_make_tarball():
    import importlib.util

    script = FIXTURES / "make_tarball.py"
    module_spec = importlib.util.spec_from_file_location("make_tarball", script)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def test_fixture_tarball_is_byte_reproducible(tmp_path):
    make_tarball = _load_make_tarball().make_tarball
    first = make_tarball(EDGEMATH, tmp_path / "a" / "edgemath-1.0.tar")
    # A copy with other mtimes, some clutter and a build directory inside gives the same bytes.
    copy = tmp_path / "copy"
    shutil.copytree(EDGEMATH, copy)
    for path in copy.rglob("*"):
        os.utime(path, (1_234_567_890, 1_234_567_890))
    (copy / "python" / "edgemath" / "__pycache__").mkdir(exist_ok=True)
    (copy / "python" / "edgemath" / "__pycache__" / "x.pyc").write_bytes(b"junk")
    (copy / "build-host").mkdir()
    (copy / "build-host" / "libedgemath.so").write_bytes(b"junk")
    second = make_tarball(copy, tmp_path / "b" / "edgemath-1.0.tar")
    assert first == second
    data = (tmp_path / "a" / "edgemath-1.0.tar").read_bytes()
    assert hashlib.sha256(data).hexdigest() == first
    import tarfile

    with tarfile.open(tmp_path / "a" / "edgemath-1.0.tar") as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    assert names[0] == "edgemath-1.0"
    assert {"edgemath-1.0/CMakeLists.txt", "edgemath-1.0/include/edgemath.h",
            "edgemath-1.0/smoke.py", "edgemath-1.0/smoke_driver.c",
            "edgemath-1.0/python/edgemath/__init__.py"} <= set(names)
    assert not any("__pycache__" in n or "build" in n.split("/")[1] for n in names[1:])
    owners = {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members}
    assert owners == {(315532800, 0, 0, "", "")}


def test_fixture_tarball_script_prints_the_sha256(tmp_path):
    out = tmp_path / "edgemath-1.0.tar"
    result = subprocess.run([sys.executable, str(FIXTURES / "make_tarball.py"), str(out)],
                            capture_output=True, text=True, check=True)
    assert result.stdout.strip() == hashlib.sha256(out.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def host_edgemath(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture built for the host with the host's C/C++ compiler (a few seconds)."""
    if not (shutil.which("cmake") and (shutil.which("c++") or shutil.which("g++"))):
        pytest.skip("cmake and a host C++ compiler are needed")
    build = tmp_path_factory.mktemp("edgemath-host")
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    for cmd in (["cmake", "-S", str(EDGEMATH), "-B", str(build), *generator,
                 "-DCMAKE_BUILD_TYPE=Release"],
                ["cmake", "--build", str(build)]):
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
    return build


def test_fixture_exports_only_its_c_api(host_edgemath):
    from elftools.elf.elffile import ELFFile

    with (host_edgemath / "libedgemath.so").open("rb") as f:
        dynsym = ELFFile(f).get_section_by_name(".dynsym")
        exported = sorted(s.name for s in dynsym.iter_symbols()
                          if s["st_shndx"] != "SHN_UNDEF" and s["st_info"]["bind"] != "STB_LOCAL"
                          and s.name and s["st_info"]["type"] == "STT_FUNC")
    assert exported == ["edgemath_dot", "edgemath_last_error", "edgemath_logsumexp",
                        "edgemath_matmul", "edgemath_softmax", "edgemath_threads",
                        "edgemath_version", "edgemath_wave"]


def test_fixture_wheel_installs_and_its_smoke_matches_the_c_driver(tmp_path, host_edgemath):
    package = EDGEMATH / "python" / "edgemath"
    files = {f"edgemath/{p.relative_to(package).as_posix()}": p
             for p in sorted(package.rglob("*.py"))}
    files["edgemath/lib/libedgemath.so"] = host_edgemath / "libedgemath.so"
    fixture_spec = WheelSpec("edgemath-lib", "1.0", X86_64, license="Apache-2.0")
    path = write_wheel(fixture_spec, files, tmp_path / "dist",
                       license_files={"LICENSE": EDGEMATH / "LICENSE"})
    target = tmp_path / "target"
    result = _pip("install", "--no-deps", "--target", str(target), str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    env = {k: v for k, v in os.environ.items() if k != "EDGEMATH_LIBRARY"}
    smoke = subprocess.run([sys.executable, str(EDGEMATH / "smoke.py")], capture_output=True,
                           text=True, check=True, env={**env, "PYTHONPATH": str(target)})
    lines = smoke.stdout.splitlines()
    assert len(lines) == 1  # ONE JSON object
    from_python = json.loads(lines[0])
    driver = subprocess.run([str(host_edgemath / "edgemath_smoke")], capture_output=True,
                            text=True, check=True)
    from_c = json.loads(driver.stdout)
    assert set(from_python) == set(from_c)
    assert from_python.pop("runner") == "python" and from_c.pop("runner") == "c-driver"
    assert from_python == from_c  # same library, same machine: the very same numbers
    assert from_python["version"] == "1.0.0"
    assert from_python["error_empty"] == {"code": 1, "message": "softmax: empty input"}
    assert from_python["error_worker"] == {"code": 2,
                                           "message": "dot: non-finite input at index 7"}
    assert from_python["error_threads"]["code"] == 1
    assert abs(sum(from_python["softmax"]) - 1.0) < 1e-6
    assert from_python["matmul"] == [-0.625, 2.0, 0.875, -1.0, 2.375, -4.0]
