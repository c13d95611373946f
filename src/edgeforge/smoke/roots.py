"""Target-architecture Debian roots, unpacked from Debian's own .debs (no docker, no chroot).

``ensure_root`` resolves a package set with a *private* apt (its own ``APT_CONFIG``, state,
lists, archive cache and an empty dpkg status file, so the host's apt state is never read or
written), downloads the .debs with ``apt-get install --download-only`` and unpacks each with
``dpkg-deb -x``. Maintainer scripts never run, so the few things they would do and a smoke run
needs are done here: merged /usr, ``update-alternatives --install`` links (libblas.so.3 for
numpy), absolute symlinks made relative (so QEMU's ``-L`` and the host kernel agree on them) and
the .pyc files.

Cache layout under ``cache_dir``::

    apt/<suite>-<arch>/                 private apt config, lists and .deb cache
    roots/<suite>-<arch>-<key>/         a finished root; <key> hashes (package, version, sha256)
    roots/<suite>-<arch>-<key>/.edgeforge-root.json   marker, written last
    roots/requests/<suite>-<arch>-<hash>.json          request (suite, arch, packages) -> root

A root is built in a temporary directory and renamed into place, so a directory without its
marker never appears under its final name. A request seen before is answered from its request
file without running apt (no network); ``refresh=True`` asks apt again.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import struct
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from .. import debian
from ..errors import FetchError, MissingToolError, SmokeError
from ..fsutil import atomic_write_text, file_lock, sha256_file
from ..log import Logger

# What a smoke root needs to ``import numpy`` (python3-numpy pulls libblas3/liblapack3, whose
# libblas.so.3/liblapack.so.3 links come from update-alternatives, recreated below).
DEFAULT_PYTHON_PACKAGES: tuple[str, ...] = ("python3", "python3-numpy")

MIRROR_ENV = "EDGEFORGE_DEBIAN_MIRROR"
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
MARKER = ".edgeforge-root.json"
# Bump when the unpacking or post-processing changes, so old roots are not reused.
LAYOUT_VERSION = 1

# Debian's name for the machine edgeforge runs on: its roots run natively.
_HOST_DEBIAN_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "riscv64": "riscv64"}
_USR_MERGED_DIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
_APT_TAIL_LINES = 25


@dataclass(frozen=True)
class DebianRoot:
    path: Path  # the root directory on the host
    debian_arch: str
    suite: str
    python: Path | None  # inside the root, e.g. /usr/bin/python3.11; None: no Python
    python_version: str | None  # "3.11"

    @property
    def host_python(self) -> Path | None:
        """The root's Python executable as a host path."""
        return None if self.python is None else self.host_path(self.python)

    def host_path(self, inside: str | os.PathLike[str]) -> Path:
        """A path inside the root (``/usr/lib/...``) as a host path."""
        return self.path / Path(inside).relative_to("/")

    def info(self) -> dict[str, object]:
        """What the marker records: packages, sizes, build time, how .pyc were made."""
        data: dict[str, object] = json.loads((self.path / MARKER).read_text())
        return data


# --------------------------------------------------------------------------- public API


def ensure_root(
    debian_arch: str,
    suite: str,
    packages: Sequence[str],
    cache_dir: Path,
    logger: Logger,
    *,
    refresh: bool = False,
    emulator: Sequence[str] | None = None,
) -> DebianRoot:
    """A Debian root for ``debian_arch``/``suite`` with ``packages`` and their dependencies.

    ``emulator`` is how to run the root's programs: a QEMU command
    (``["/usr/bin/qemu-aarch64-static"]``), ``[]`` for the host's own architecture, or None
    (unknown). It is only used to compile the .pyc when the root's Python is not the host's
    version (trixie's 3.13 on a 3.11 host): with None those .pyc are skipped and the root's
    Python compiles in memory at each start.
    """
    if not packages:
        raise SmokeError("ensure_root needs at least one package")
    cache_dir = Path(cache_dir).expanduser().resolve()
    name = f"{suite}-{debian_arch}"
    roots_dir = cache_dir / "roots"
    request_hash = _request_hash(debian_arch, suite, packages)
    request_file = roots_dir / "requests" / f"{name}-{request_hash}.json"

    if not refresh:
        found = _root_from_request(request_file, roots_dir)
        if found is not None:
            logger.debug(f"smoke root {found.path.name}: cached")
            return found

    _require_tools()
    roots_dir.mkdir(parents=True, exist_ok=True)
    with file_lock(roots_dir / f".{name}.lock", f"the {suite}/{debian_arch} root", logger.info), \
            logger.step(f"Debian {suite}/{debian_arch} root"):
        if not refresh:  # another process may have built it while we waited for the lock
            found = _root_from_request(request_file, roots_dir)
            if found is not None:
                return found
        apt = _PrivateApt.create(cache_dir / "apt" / name, debian_arch, suite, logger)
        started = time.monotonic()
        apt.update()
        debs = apt.download(packages)
        key = _debs_key(debs)
        final = roots_dir / f"{name}-{key[:16]}"
        if _is_complete(final):
            logger.info(f"packages unchanged: reusing {final.name}")
        else:
            _build_root(final, debs, debian_arch, suite, packages, emulator, started, logger)
        _write_json(request_file, {"root": final.name, "packages": sorted(set(packages))})
        root = _root_from_marker(final)
        assert root is not None
        return root


def ensure_musl_root(debian_arch: str, suite: str, cache_dir: Path, logger: Logger,
                     *, refresh: bool = False) -> DebianRoot:
    """Debian's ``musl`` for ``debian_arch`` unpacked: gives ``/lib/ld-musl-<arch>.so.1``.

    Debian has no musl Python; a musllinux smoke runs a C driver linked against musl with this
    root as QEMU's ``-L`` prefix.
    """
    root = ensure_root(debian_arch, suite, ["musl"], cache_dir, logger, refresh=refresh)
    if musl_loader(root) is None:
        raise SmokeError(f"Debian's musl package for {debian_arch} gave no /lib/ld-musl-*.so.1 "
                         f"in {root.path}")
    return root


def musl_loader(root: DebianRoot) -> Path | None:
    """The musl dynamic loader inside the root (``/lib/ld-musl-aarch64.so.1``), or None."""
    found = sorted((root.path / "usr" / "lib").glob("ld-musl-*.so.1"))
    return Path("/lib") / found[0].name if found else None


def debian_mirror(environ: Mapping[str, str] | None = None,
                  sources_dir: Path = Path("/etc/apt")) -> str:
    """The Debian archive URI: ``$EDGEFORGE_DEBIAN_MIRROR`` or the host's apt sources."""
    return debian.archive_uri(sources_dir, environ)


def read_interpreter(elf: Path) -> str | None:
    """The PT_INTERP (dynamic loader path) of an ELF file, or None for a static one."""
    with open(elf, "rb") as f:
        ident = f.read(16)
        if ident[:4] != b"\x7fELF":
            raise SmokeError(f"{elf} is not an ELF file")
        is64, little = ident[4] == 2, ident[5] == 1
        end = "<" if little else ">"
        word = end + ("Q" if is64 else "I")
        header = f.read(48 if is64 else 36)
        if is64:
            (phoff,) = struct.unpack(word, header[16:24])
            phentsize, phnum = struct.unpack(end + "HH", header[38:42])
        else:
            (phoff,) = struct.unpack(word, header[12:16])
            phentsize, phnum = struct.unpack(end + "HH", header[26:30])
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            ph = f.read(phentsize)
            if struct.unpack(end + "I", ph[:4])[0] != 3:  # PT_INTERP
                continue
            # Elf64_Phdr: p_offset at 8, p_filesz at 32; Elf32_Phdr: p_offset at 4, p_filesz at 16
            (offset,) = struct.unpack(word, ph[8:16] if is64 else ph[4:8])
            (size,) = struct.unpack(word, ph[32:40] if is64 else ph[16:20])
            f.seek(offset)
            return f.read(size).rstrip(b"\0").decode()
    return None


def target_argv(root: DebianRoot, emulator: Sequence[str], argv: Sequence[str],
                library_path: Sequence[str] = ()) -> list[str]:
    """The host command that runs ``argv`` with the root's libc.

    ``argv[0]`` is a path inside the root (``root.python``) or, if the root has no such file, a
    host path (a C driver built on the host, run with the root's loader).

    With an emulator: ``qemu-<arch> -L ROOT ROOT/argv0 ...``; QEMU maps the ELF loader and every
    absolute path the guest opens into ROOT first. Natively (``emulator == []``): the root's own
    dynamic loader runs the root's program, ``ld.so --inhibit-cache --library-path <root libs>``,
    so the root's libc and libraries are used and not the host's. ``library_path`` (host paths)
    goes first; under QEMU pass it as LD_LIBRARY_PATH instead.
    """
    program = _program_path(root, argv[0])
    if emulator:
        return [*emulator, "-L", str(root.path), str(program), *argv[1:]]
    interp = read_interpreter(program)
    if interp is None:
        return [str(program), *argv[1:]]
    loader = root.host_path(interp)
    if not loader.exists():
        raise SmokeError(f"{program} needs the loader {interp}, which {root.path} lacks")
    dirs = [*library_path, *(str(d) for d in _library_dirs(root))]
    # glibc's ld.so and musl's both take --library-path; only glibc's has a cache to skip.
    options = [] if "ld-musl" in interp else ["--inhibit-cache"]
    return [str(loader), *options, "--library-path", ":".join(dirs), str(program), *argv[1:]]


def _program_path(root: DebianRoot, program: str) -> Path:
    """argv[0]: a path inside the root, or else a host file (a C driver built on the host)."""
    inside = root.host_path(program) if program.startswith("/") else None
    if inside is not None and (inside.exists() or inside.is_symlink()):
        return inside
    if Path(program).is_file():
        return Path(program).resolve()
    raise SmokeError(f"{program} is neither in the root {root.path} nor a file on the host")


def python_env(root: DebianRoot) -> dict[str, str]:
    """Environment for the root's Python run from the host: its stdlib, no host leaks."""
    return {
        "PATH": "/usr/bin:/bin",
        "LC_ALL": "C.UTF-8",
        "PYTHONHOME": str(root.path / "usr"),
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",  # the cached root stays as built
    }


# --------------------------------------------------------------------------- private apt


@dataclass(frozen=True)
class _Deb:
    package: str
    version: str
    arch: str
    path: Path
    sha256: str
    size: int


@dataclass(frozen=True)
class _PrivateApt:
    base: Path
    debian_arch: str
    suite: str
    mirror: str
    logger: Logger

    @classmethod
    def create(cls, base: Path, debian_arch: str, suite: str, logger: Logger) -> _PrivateApt:
        mirror = debian_mirror()
        for d in ("state/lists/partial", "cache/archives/partial", "etc/apt.conf.d",
                  "etc/preferences.d", "etc/sources.list.d", "etc/trusted.gpg.d", "log"):
            (base / d).mkdir(parents=True, exist_ok=True)
        (base / "state" / "status").touch()
        (base / "etc" / "sources.list").write_text(
            f"deb [arch={debian_arch} signed-by={KEYRING}] {mirror} {suite} main\n")
        (base / "apt.conf").write_text(_apt_conf(base, debian_arch))
        return cls(base, debian_arch, suite, mirror, logger)

    def _run(self, args: Sequence[str], what: str) -> str:
        env = {**os.environ, "APT_CONFIG": str(self.base / "apt.conf"), "LC_ALL": "C",
               "DEBIAN_FRONTEND": "noninteractive"}
        proc = subprocess.run(["apt-get", *args], env=env, capture_output=True, text=True,
                              check=False)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-_APT_TAIL_LINES:])
            raise FetchError(
                f"apt-get {what} failed for {self.suite}/{self.debian_arch} (exit "
                f"{proc.returncode}):\n{tail}\n"
                f"Check that {self.mirror} serves '{self.suite}' for '{self.debian_arch}' "
                f"(override with {MIRROR_ENV}), that the package names exist in that suite, and "
                f"the private apt config {self.base / 'apt.conf'}."
            )
        return proc.stdout

    def update(self, attempts: int = 3, pause: float = 20.0) -> None:
        """apt-get update; a mirror caught mid-sync (index sizes that disagree with the
        Release file) is asked again after a pause before the error stands."""
        self.logger.info(f"apt-get update: {self.mirror} {self.suite} main [{self.debian_arch}]")
        for attempt in range(1, attempts + 1):
            try:
                self._run(["-q", "update"], "update")
                return
            except FetchError as err:
                if attempt == attempts or "Mirror sync in progress" not in str(err):
                    raise
                self.logger.warning(f"the mirror is mid-sync; asking again in {pause:.0f}s")
                time.sleep(pause)

    def download(self, packages: Sequence[str]) -> list[_Deb]:
        names = sorted(set(packages))
        sim = self._run(["-q", "-s", "-y", "install", *names], "install (resolve)")
        wanted: dict[str, tuple[str, str]] = {}
        for line in sim.splitlines():
            m = re.match(r"Inst (\S+) (?:\[\S+\] )?\((\S+) .*\[(\S+)\]\)", line)
            if m:
                wanted[m.group(1)] = (m.group(2), m.group(3))
        if not wanted:
            raise FetchError(f"apt resolved nothing to install for {names}:\n{sim[-2000:]}")
        self.logger.info(f"apt-get install --download-only: {len(wanted)} packages for "
                         f"{' '.join(names)}")
        self._run(["-q", "-y", "--download-only", "install", *names], "install --download-only")
        archives = self.base / "cache" / "archives"
        on_disk: dict[tuple[str, str, str], Path] = {}
        for p in archives.glob("*.deb"):
            parts = p.name[:-4].split("_")
            if len(parts) == 3:
                on_disk[(unquote(parts[0]), unquote(parts[1]), unquote(parts[2]))] = p
        debs: list[_Deb] = []
        for package, (version, arch) in sorted(wanted.items()):
            path = on_disk.get((package, version, arch))
            if path is None:
                raise FetchError(f"apt downloaded no .deb for {package} {version} [{arch}] into "
                                 f"{archives}")
            debs.append(_Deb(package, version, arch, path, sha256_file(path), path.stat().st_size))
        total = sum(d.size for d in debs)
        self.logger.info(f"{len(debs)} .debs, {total / 1e6:.1f} MB")
        return debs


def _apt_conf(base: Path, debian_arch: str) -> str:
    q = json.dumps  # a JSON string is a valid apt config string for our paths
    lines = [
        f'Dir::State {q(str(base / "state"))};',
        f'Dir::State::status {q(str(base / "state" / "status"))};',
        f'Dir::Cache {q(str(base / "cache"))};',
        f'Dir::Etc {q(str(base / "etc"))};',
        f'Dir::Etc::SourceList {q(str(base / "etc" / "sources.list"))};',
        f'Dir::Etc::SourceParts {q(str(base / "etc" / "sources.list.d"))};',
        f'Dir::Etc::Parts {q(str(base / "etc" / "apt.conf.d"))};',
        f'Dir::Etc::Preferences {q(str(base / "etc" / "preferences"))};',
        f'Dir::Etc::PreferencesParts {q(str(base / "etc" / "preferences.d"))};',
        f'Dir::Etc::Trusted {q(str(base / "etc" / "trusted.gpg"))};',
        f'Dir::Etc::TrustedParts {q(str(base / "etc" / "trusted.gpg.d"))};',
        f'Dir::Log {q(str(base / "log"))};',
        f"APT::Architecture {q(debian_arch)};",
        f"APT::Architectures {{ {q(debian_arch)}; }};",
        'APT::Install-Recommends "false";',
        'APT::Install-Suggests "false";',
        'Acquire::Languages "none";',
        # Keep lists compressed and skip apt's binary caches: ~100 MB less per root's apt dir,
        # a few seconds more on the (rare) cold path.
        'Acquire::GzipIndexes "true";',
        'Dir::Cache::pkgcache "";',
        'Dir::Cache::srcpkgcache "";',
        'Acquire::Retries "3";',
        'Binary::apt-get::Acquire::AllowInsecureRepositories "false";',
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- building


def _build_root(final: Path, debs: Sequence[_Deb], debian_arch: str, suite: str,
                packages: Sequence[str], emulator: Sequence[str] | None, started: float,
                logger: Logger) -> None:
    roots_dir = final.parent
    for stale in roots_dir.glob(f".tmp-{suite}-{debian_arch}-*"):  # left by a killed build
        shutil.rmtree(stale, ignore_errors=True)
    if final.exists():  # incomplete: no marker
        shutil.rmtree(final)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{suite}-{debian_arch}-", dir=roots_dir))
    try:
        for deb in debs:
            _run_tool(["dpkg-deb", "-x", str(deb.path), str(tmp)], f"unpacking {deb.path.name}")
        _merge_usr(tmp)
        links = _apply_alternatives(tmp, debs)
        relinked = _relativize_symlinks(tmp)
        logger.info(f"unpacked {len(debs)} .debs; {links} alternatives links, "
                    f"{relinked} absolute symlinks made relative")
        (tmp / "etc").mkdir(exist_ok=True)
        # An empty cache: the target's ld.so (under QEMU -L) must not read the host's.
        (tmp / "etc" / "ld.so.cache").write_bytes(b"")
        python, version = _find_python(tmp)
        _check_loader(tmp, python)
        bytecode = "none"
        if python is not None and version is not None:
            bytecode = _compile_bytecode(tmp, python, version, emulator, logger)
        unpacked = _tree_size(tmp)
        seconds = time.monotonic() - started
        marker = {
            "layout": LAYOUT_VERSION,
            "suite": suite,
            "debian_arch": debian_arch,
            "requested": sorted(set(packages)),
            "python": None if python is None else str(python),
            "python_version": version,
            "bytecode": bytecode,
            "download_bytes": sum(d.size for d in debs),
            "unpacked_bytes": unpacked,
            "build_seconds": round(seconds, 1),
            "packages": [{"package": d.package, "version": d.version, "arch": d.arch,
                          "sha256": d.sha256, "size": d.size} for d in debs],
        }
        _write_json(tmp / MARKER, marker)  # written last: the root is complete
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info(f"root {final.name}: {len(debs)} .debs, {sum(d.size for d in debs) / 1e6:.1f} MB "
                f"download, {unpacked / 1e6:.0f} MB unpacked, {seconds:.1f}s")


def _merge_usr(root: Path) -> None:
    """Merge /bin, /lib, ... into /usr and leave symlinks, as Debian systems are since bookworm."""
    for name in _USR_MERGED_DIRS:
        top, usr = root / name, root / "usr" / name
        if top.is_symlink():
            continue
        if top.is_dir():
            usr.mkdir(parents=True, exist_ok=True)
            _move_tree(top, usr)
            shutil.rmtree(top)
        elif not usr.is_dir():
            continue
        top.symlink_to(f"usr/{name}")


def _move_tree(src: Path, dst: Path) -> None:
    for entry in sorted(src.iterdir()):
        target = dst / entry.name
        if not target.exists() and not target.is_symlink():
            entry.rename(target)
        elif entry.is_dir() and not entry.is_symlink() and target.is_dir() \
                and not target.is_symlink():
            _move_tree(entry, target)
        elif not _same_entry(entry, target):
            raise SmokeError(f"merging /usr: {entry} and {target} both exist and differ")


def _same_entry(a: Path, b: Path) -> bool:
    if a.is_symlink() or b.is_symlink():
        return a.is_symlink() and b.is_symlink() and os.readlink(a) == os.readlink(b)
    return a.is_file() and b.is_file() and sha256_file(a) == sha256_file(b)


_ALTERNATIVE = re.compile(r"update-alternatives\s+(?:--\S+\s+)*--install\s+(.*)")


def _apply_alternatives(root: Path, debs: Sequence[_Deb]) -> int:
    """Recreate ``update-alternatives --install LINK NAME PATH PRIO`` links from postinst."""
    best: dict[str, tuple[int, str, str]] = {}
    with tempfile.TemporaryDirectory() as control:
        for deb in debs:
            out = Path(control) / deb.package
            _run_tool(["dpkg-deb", "-e", str(deb.path), str(out)], f"reading {deb.path.name}")
            postinst = out / "postinst"
            if not postinst.is_file():
                continue
            script = postinst.read_text(errors="replace").replace("\\\n", " ")
            for line in script.splitlines():
                m = _ALTERNATIVE.search(line)
                if not m:
                    continue
                try:
                    words = shlex.split(m.group(1), comments=True)
                except ValueError:
                    continue
                if len(words) < 4 or "$" in "".join(words[:4]):
                    continue
                link, name, path, prio = words[:4]
                if not prio.lstrip("-").isdigit():
                    continue
                if name not in best or int(prio) > best[name][0]:
                    best[name] = (int(prio), link, path)
    made = 0
    for _prio, link, path in best.values():
        host_link, host_path = root / link.lstrip("/"), root / path.lstrip("/")
        if host_link.exists() or host_link.is_symlink() or not host_path.exists():
            continue
        host_link.parent.mkdir(parents=True, exist_ok=True)
        host_link.symlink_to(os.path.relpath(host_path, host_link.parent))
        made += 1
    return made


def _relativize_symlinks(root: Path) -> int:
    """Absolute symlinks point at the host from outside the root: make them root-relative."""
    count = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            link = Path(dirpath) / name
            if not link.is_symlink():
                continue
            target = os.readlink(link)
            if target.startswith("/"):
                link.unlink()
                link.symlink_to(os.path.relpath(root / target.lstrip("/"), link.parent))
                count += 1
    return count


def _find_python(root: Path) -> tuple[Path | None, str | None]:
    link = root / "usr" / "bin" / "python3"
    if not link.is_symlink() and not link.is_file():
        return None, None
    name = Path(os.readlink(link)).name if link.is_symlink() else "python3"
    m = re.fullmatch(r"python(3\.\d+)", name)
    if m is None:  # not a versioned link: find the stdlib
        versions = sorted(p.parent.name[len("python"):]
                          for p in (root / "usr" / "lib").glob("python3.*/os.py"))
        if not versions:
            raise SmokeError(f"{link} exists but no /usr/lib/python3.*/os.py in {root}")
        return Path("/usr/bin/python3"), versions[-1]
    version = m.group(1)
    if not (root / "usr" / "bin" / name).is_file():
        raise SmokeError(f"{link} points to {name}, which the packages did not provide")
    if not (root / "usr" / "lib" / f"python{version}" / "os.py").is_file():
        raise SmokeError(f"the root has {name} but no /usr/lib/python{version}/os.py: "
                         f"add libpython{version}-stdlib (or python3) to the packages")
    return Path("/usr/bin") / name, version


def _check_loader(root: Path, python: Path | None) -> None:
    """The root's Python must find its own dynamic loader (QEMU's -L falls back to the host)."""
    if python is None:
        return
    interp = read_interpreter(root / python.relative_to("/"))
    if interp is None:
        return
    loader = root / interp.lstrip("/")
    if not loader.exists():
        raise SmokeError(f"{python} needs the loader {interp}, which is missing from {root} "
                         "(is libc6 among the packages?)")


def _compile_bytecode(root: Path, python: Path, version: str,
                      emulator: Sequence[str] | None, logger: Logger) -> str:
    """Precompile the stdlib and dist-packages; returns how: "host", "target",
    "native:<root>" (a host-architecture root's Python of the same version) or "none"."""
    dirs = [d for d in (root / "usr" / "lib" / f"python{version}",
                        root / "usr" / "lib" / "python3" / "dist-packages") if d.is_dir()]
    host = sysconfig.get_python_version()
    # Under QEMU without binfmt_misc a child process cannot exec a foreign binary, so the
    # target's compileall must not use worker processes (-j 1).
    jobs = "0" if version == host else "1"
    args = ["-m", "compileall", "-q", "-j", jobs, "-s", str(root), "-p", "/",
            "-x", r"/(lib2to3/tests|test)/", *map(str, dirs)]
    if version == host:
        logger.info(f"compiling .pyc with the host's Python {host} (same version as the root)")
        proc = subprocess.run([sys.executable, *args], capture_output=True, text=True,
                              check=False)
        how = "host"
    elif emulator and (native := _native_root_with_python(root.parent, version)) is not None:
        # Bytecode does not depend on the architecture, only on the Python version: a host-
        # architecture root's Python of that version compiles in seconds what takes minutes
        # under QEMU. (Its workers would start with the host's loader: -j 1 here too.)
        logger.info(f"compiling .pyc with Python {version} of {native.path.name}, natively "
                    f"(the same bytecode as under {Path(emulator[0]).name}, minutes faster)")
        assert native.python is not None
        argv = target_argv(native, [], [str(native.python), *args])
        proc = subprocess.run(argv, capture_output=True, text=True, check=False,
                              env={**python_env(native), "PYTHONDONTWRITEBYTECODE": ""})
        how = f"native:{native.path.name}"
    elif emulator is not None:
        logger.info(f"compiling .pyc with the root's Python {version} under "
                    f"{Path(emulator[0]).name if emulator else 'its own loader'} "
                    f"(host Python is {host})")
        fake = DebianRoot(root, "", "", python, version)
        argv = target_argv(fake, emulator, [str(python), *args])
        proc = subprocess.run(argv, capture_output=True, text=True, check=False,
                              env={**python_env(fake), "PYTHONDONTWRITEBYTECODE": ""})
        how = "target"
    else:
        logger.info(f"skipping .pyc: the root has Python {version}, the host {host}, and no "
                    "emulator was given; the root's Python compiles in memory at each start")
        return "none"
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr).splitlines()
        failed = [ln for ln in output if "***" in ln]
        if not failed:
            raise SmokeError(f"compileall with the {how} Python failed (exit {proc.returncode}):\n"
                             + "\n".join(output[-15:]))
        logger.warning(f"compileall: {len(failed)} files did not compile (kept as source): "
                       + "; ".join(failed[:3]))
    return how


def _native_root_with_python(roots_dir: Path, version: str) -> DebianRoot | None:
    """A finished root of the host's architecture whose Python is ``version``, if any."""
    arch = _HOST_DEBIAN_ARCH.get(platform.machine())
    for path in sorted(roots_dir.glob(f"*-{arch}-*")) if arch else ():
        found = _root_from_marker(path)
        if found is not None and found.debian_arch == arch and found.python is not None \
                and found.python_version == version and found.host_path(found.python).is_file():
            return found
    return None


# --------------------------------------------------------------------------- cache helpers


def _request_hash(debian_arch: str, suite: str, packages: Sequence[str]) -> str:
    data = json.dumps([LAYOUT_VERSION, suite, debian_arch, sorted(set(packages))])
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def _debs_key(debs: Sequence[_Deb]) -> str:
    rows = sorted((d.package, d.version, d.sha256) for d in debs)
    return hashlib.sha256(json.dumps([LAYOUT_VERSION, rows]).encode()).hexdigest()


def _is_complete(path: Path) -> bool:
    return (path / MARKER).is_file()


def _root_from_request(request_file: Path, roots_dir: Path) -> DebianRoot | None:
    try:
        name = json.loads(request_file.read_text())["root"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return _root_from_marker(roots_dir / name)


def _root_from_marker(path: Path) -> DebianRoot | None:
    try:
        m = json.loads((path / MARKER).read_text())
    except (OSError, ValueError):
        return None
    if m.get("layout") != LAYOUT_VERSION:
        return None
    return DebianRoot(
        path=path,
        debian_arch=m["debian_arch"],
        suite=m["suite"],
        python=None if m["python"] is None else Path(m["python"]),
        python_version=m["python_version"],
    )


def _library_dirs(root: DebianRoot) -> list[Path]:
    usr_lib = root.path / "usr" / "lib"
    multiarch = sorted(p for p in usr_lib.glob("*-linux-*") if p.is_dir())
    return [*multiarch, usr_lib]


def _write_json(path: Path, data: object) -> None:
    atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


def _tree_size(root: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                total += os.path.getsize(p)
    return total


def _require_tools() -> None:
    for tool, package in (("apt-get", "apt"), ("dpkg-deb", "dpkg")):
        if shutil.which(tool) is None:
            raise MissingToolError(f"{tool} not found: building a Debian smoke root needs it "
                                   f"(apt-get install {package})")
    if not KEYRING.is_file():
        raise MissingToolError(f"{KEYRING} not found: apt-get install debian-archive-keyring")


def _run_tool(argv: Sequence[str], what: str) -> None:
    proc = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SmokeError(f"{what} failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
