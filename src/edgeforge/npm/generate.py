"""Binary wheels -> npm package directories (and, with ``pack``, ``npm pack`` tarballs).

The binaries are never rebuilt: each platform package holds the files of one wheel's
``<package>/lib/`` (plus its ``_build_info.json`` and licenses), byte for byte. The main package
is the JS under ``js/<js>/`` plus a generated ``package.json`` and ``platforms.json`` (the
platform table, edgeforge/npm/platforms.py), so the JS reads the same table the generator used.
"""

from __future__ import annotations

import json
import posixpath
import re
import shutil
import subprocess
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import resources, tomlfile
from ..errors import ConfigError, MissingToolError, ReleaseError
from ..fsutil import atomic_write_text
from .platforms import NpmPlatform, all_platforms, platform_of_wheel

NPM_DIR = resources.shipped("npm")
PACKAGES_FILE = NPM_DIR / "packages.toml"
JS_DIR = NPM_DIR / "js"
LICENSE = "Apache-2.0"
_WHEEL = re.compile(r"^(?P<dist>[^-]+)-(?P<version>[^-]+)-[^-]+-[^-]+-(?P<platform>[^-]+)\.whl$")


@dataclass(frozen=True)
class PackageSpec:
    """One table of packages.toml."""

    name: str  # the main package's npm name
    wheel: str
    js: str
    description: str
    platform_package: str  # with "{platform}"
    library: str
    delegate: str | None
    aliases: tuple[str, ...]
    options: tuple[str, ...]
    dependencies: dict[str, str]

    def platform_name(self, platform: str) -> str:
        return self.platform_package.format(platform=platform)


def load_specs(path: Path = PACKAGES_FILE) -> dict[str, PackageSpec]:
    root = tomlfile.Table(tomlfile.load(path), path)
    specs = {}
    for name in root.data:
        t = root.table(name)
        deps = t.data.get("dependencies", {})
        if not isinstance(deps, dict) or not all(isinstance(v, str) for v in deps.values()):
            raise t.error("dependencies", "must be a table of name = version strings")
        spec = PackageSpec(
            name=name, wheel=t.str("wheel", required=True), js=t.str("js", required=True),
            description=t.str("description", ""),
            platform_package=t.str("platform-package", required=True),
            library=t.str("library", required=True), delegate=t.str("delegate"),
            aliases=tuple(t.str_list("aliases")), options=tuple(t.str_list("options")),
            dependencies=dict(deps))
        t.data.pop("dependencies", None)
        t.reject_unknown()
        if "{platform}" not in spec.platform_package:
            raise t.error("platform-package", "must contain {platform}")
        if not (JS_DIR / spec.js).is_dir():
            raise t.error("js", f"no directory {JS_DIR / spec.js}")
        specs[name] = spec
    return specs


def library_candidates(library: str, node_os: str) -> list[str]:
    """Where packages.toml's (Linux) ``library`` is in a wheel for ``node_os``:
    ``lib/libedgetpu.so.1`` is ``lib/libedgetpu.1.dylib`` on macOS and ``lib/edgetpu.dll`` on
    Windows (the names tflite_edge_lib and libedgetpu's release use), first match wins."""
    folder, name = posixpath.split(library)
    stem, _, version = name.partition(".so")
    bare = stem.removeprefix("lib")
    names = {"darwin": [f"{stem}{version}.dylib", f"{stem}.dylib", name],
             "win32": [f"{bare}.dll", f"{stem}.dll"]}.get(node_os, [name])
    return [posixpath.join(folder, n) for n in dict.fromkeys(names)]


def npm_version(version: str) -> str:
    """A wheel's version as semver: ``16.0`` -> ``16.0.0``; pre/post/dev/local are refused."""
    if not re.fullmatch(r"\d+(\.\d+){0,2}", version):
        raise ReleaseError(f"wheel version {version!r} has no npm (semver) spelling here: "
                           "release a plain X.Y.Z version")
    parts = version.split(".")
    return ".".join([*parts, *["0"] * (3 - len(parts))])


@dataclass(frozen=True)
class LibWheel:
    path: Path
    spec: PackageSpec
    platform: NpmPlatform
    version: str  # npm's spelling


@dataclass(frozen=True)
class Generated:
    main: Path  # the main package's directory
    platforms: dict[str, Path]  # npm platform name -> its package directory
    version: str


def find_wheels(wheels: Iterable[Path], specs: dict[str, PackageSpec],
                platforms: Sequence[NpmPlatform]) -> list[LibWheel]:
    """The wheels (files, or every *.whl in a directory) that packages.toml names."""
    by_wheel = {s.wheel: s for s in specs.values()}
    found = []
    for item in wheels:
        files = sorted(item.glob("*.whl")) if item.is_dir() else [item]
        for f in files:
            m = _WHEEL.match(f.name)
            if m is None or m["dist"] not in by_wheel:
                continue
            platform = platform_of_wheel(m["platform"], platforms)
            found.append(LibWheel(f, by_wheel[m["dist"]], platform, npm_version(m["version"])))
    return found


def _write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2) + "\n", 0o644)


def _common(spec: PackageSpec, version: str) -> dict[str, Any]:
    return {"version": version, "license": LICENSE, "engines": {"node": ">=16"}}


def _extract_platform(wheel: LibWheel, dest: Path) -> str:
    """The wheel's lib/ files, _build_info.json and licenses into ``dest``; the library's
    path in it."""
    with zipfile.ZipFile(wheel.path) as zf:
        names = zf.namelist()
        package = next((n.split("/", 1)[0] for n in names if "/lib/" in n
                        and not n.split("/", 1)[0].endswith(".dist-info")), None)
        if package is None:
            raise ReleaseError(f"{wheel.path.name} has no <package>/lib/ files to package")
        for name in names:
            if name.endswith("/"):
                continue
            if name.startswith(f"{package}/lib/") or name == f"{package}/_build_info.json":
                rel = name[len(package) + 1:]
            elif ".dist-info/licenses/" in name:
                rel = "licenses/" + name.split(".dist-info/licenses/", 1)[1]
            else:
                continue
            out = dest / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(zf.read(name))
            out.chmod(0o755 if rel.startswith("lib/") else 0o644)
    candidates = library_candidates(wheel.spec.library, wheel.platform.os)
    found = [c for c in candidates if (dest / c).is_file()]
    if not found:
        raise ReleaseError(f"{wheel.path.name} has none of {', '.join(candidates)} (packages."
                           f"toml's library for {wheel.spec.name}, on {wheel.platform.os})")
    return found[0]


def _platform_package(wheel: LibWheel, dest: Path) -> str:
    """The platform package of ``wheel`` in ``dest``; the library's path in it."""
    spec, p = wheel.spec, wheel.platform
    name = spec.platform_name(p.name)
    library = _extract_platform(wheel, dest)
    build_info = dest / "_build_info.json"
    manifest = {
        "name": name, **_common(spec, wheel.version),
        "description": f"{spec.name}'s binary for {p.name} (edgeforge target {p.target}, "
                       f"from {wheel.path.name})",
        **p.manifest_fields(),
        "files": sorted({f.relative_to(dest).parts[0] for f in dest.iterdir()}),
        "tfliteEdge": {"platform": p.name, "target": p.target, "wheel": wheel.path.name,
                       "library": library,
                       "buildInfo": json.loads(build_info.read_text())
                       if build_info.is_file() else None},
    }
    manifest["files"] = [*manifest["files"], "package.json"]
    _write_json(dest / "package.json", manifest)
    (dest / "README.md").write_text(
        f"# {name}\n\nThe {p.name} binary of [{spec.name}](https://www.npmjs.com/package/"
        f"{spec.name}); npm installs it as an optional dependency on matching machines. "
        "Generated by `edgeforge npm`.\n")
    return library


def _platform_table(spec: PackageSpec, platforms: Sequence[NpmPlatform],
                    libraries: dict[str, str], version: str) -> dict[str, Any]:
    """platforms.json: every target's row; ``library`` where this release has its package."""
    return {"version": version, "platforms": [
        {"name": p.name, "package": spec.platform_name(p.name), "target": p.target,
         "os": p.os, "cpu": p.cpu, "libc": p.libc, "armVersion": p.arm_version,
         "optional": p.optional, "published": p.name in libraries,
         "library": libraries.get(p.name)} for p in platforms]}


def _main_package(spec: PackageSpec, wheels: Sequence[LibWheel], platforms: Sequence[NpmPlatform],
                  dest: Path, runtime_version: str | None, libraries: dict[str, str]) -> Path:
    version = wheels[0].version
    shutil.copytree(JS_DIR / spec.js, dest)
    _write_json(dest / "platforms.json", _platform_table(spec, platforms, libraries, version))
    optional = {spec.platform_name(w.platform.name): version
                for w in sorted(wheels, key=lambda w: w.platform.name) if w.platform.optional}
    manifest: dict[str, Any] = {
        "name": spec.name, **_common(spec, version), "description": spec.description,
        "main": "index.js",
        "files": [*sorted(f.name for f in dest.iterdir()), "package.json"],
        "dependencies": spec.dependencies, "optionalDependencies": optional,
    }
    if (dest / "index.d.ts").is_file():
        manifest["types"] = "index.d.ts"
    if spec.delegate is not None:
        manifest["tfliteEdge"] = {"delegate": spec.delegate, "aliases": list(spec.aliases)}
        if spec.options:
            manifest["tfliteEdge"]["options"] = list(spec.options)
        if runtime_version is not None:
            manifest["peerDependencies"] = {"tflite-edge": f"^{runtime_version}"}
    manifest["files"] = sorted(set(manifest["files"]))
    _write_json(dest / "package.json", manifest)
    return dest


def generate(wheels: Iterable[Path], out: Path,
             platforms: Sequence[NpmPlatform] | None = None) -> list[Generated]:
    """Write one directory per package under ``out`` (``out/<name with / as __>``)."""
    specs = load_specs()
    table = list(platforms) if platforms is not None else all_platforms()
    found = find_wheels(wheels, specs, table)
    if not found:
        raise ConfigError(f"no wheel of {', '.join(s.wheel for s in specs.values())} among "
                          "the given wheels: nothing to package for npm")
    runtime = next((w.version for w in found if w.spec.name == "tflite-edge"), None)
    results = []
    for spec in specs.values():
        mine = [w for w in found if w.spec is spec]
        if not mine:
            continue
        versions = {w.version for w in mine}
        if len(versions) > 1:
            raise ReleaseError(f"{spec.wheel} wheels of several versions ({sorted(versions)}): "
                               "generate one release at a time")
        seen: dict[str, Path] = {}
        dirs: dict[str, Path] = {}
        libraries: dict[str, str] = {}
        for w in mine:
            if w.platform.name in seen:
                raise ReleaseError(f"two {spec.wheel} wheels for {w.platform.name}: "
                                   f"{seen[w.platform.name].name} and {w.path.name}")
            seen[w.platform.name] = w.path
            d = out / spec.platform_name(w.platform.name).replace("/", "__")
            if d.exists():
                shutil.rmtree(d)
            libraries[w.platform.name] = _platform_package(w, d)
            dirs[w.platform.name] = d
        main = out / spec.name.replace("/", "__")
        if main.exists():
            shutil.rmtree(main)
        results.append(Generated(_main_package(spec, mine, table, main, runtime, libraries),
                                 dirs, mine[0].version))
    return results


def pack(directories: Iterable[Path], dest: Path) -> list[Path]:
    """``npm pack`` each package directory into ``dest``; the tarballs."""
    npm = shutil.which("npm")
    if npm is None:
        raise MissingToolError("npm is not on PATH: `apt-get install npm`, or install Node.js "
                               "(which brings npm), to pack the packages")
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for d in directories:
        proc = subprocess.run([npm, "pack", "--json", "--pack-destination", str(dest), str(d)],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise ReleaseError(f"npm pack {d} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        out.append(dest / json.loads(proc.stdout)[0]["filename"])
    return out
