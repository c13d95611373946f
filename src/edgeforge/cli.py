"""Command line: argument parsing only; the work happens in ``pipeline``."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__, conan, fetch, pipeline, release, sources
from .errors import EdgeforgeError
from .lock import format_tree_reports, lock_recipe, lock_trees, read_lock
from .log import Logger
from .recipe import resolve_recipe
from .release_config import DEFAULT_CONFIG, load_release_config
from .resources import SearchPath, list_toml
from .settings import BuildSettings, resolve_settings
from .toolchain import BACKENDS, available_targets, host_target_name, load_toolchain, resolve_target


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edgeforge", description=__doc__)
    p.add_argument("--version", action="version", version=f"edgeforge {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="say more")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help=f"downloads, extracted sources, compiler cache, Debian roots "
                        f"(default: ${fetch.CACHE_ENV} or ~/.cache/edgeforge)")
    p.add_argument("--recipe-path", type=Path, action="append", default=[], metavar="DIR",
                   help="a directory of your own recipes, searched before the shipped ones "
                        "(repeatable; also $EDGEFORGE_RECIPE_PATH)")
    p.add_argument("--toolchain-path", type=Path, action="append", default=[], metavar="DIR",
                   help="a directory of your own toolchain files, searched before the shipped "
                        "ones (repeatable; also $EDGEFORGE_TOOLCHAIN_PATH)")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("targets", help="list the targets: wheel tags, compiler, glibc floor, QEMU")

    b = sub.add_parser("build", help="fetch -> build -> stage -> wheel -> audit -> smoke")
    b.add_argument("recipe", help="a shipped recipe's name (e.g. tflite) or a path to a .toml")
    b.add_argument("--target", action="append", default=None,
                   help=f"a target name (repeatable; default: the host, {host_target_name()})")
    b.add_argument("--toolchain", type=Path, default=None,
                   help="your own toolchain .toml instead of a shipped target")
    b.add_argument("--compiler", choices=BACKENDS, default=None,
                   help="override the toolchain's compiler backend")
    b.add_argument("--dist", type=Path, default=Path("dist"), help="where wheels go (dist/)")
    b.add_argument("--work-dir", type=Path, default=None,
                   help="build directories (default: <cache-dir>/work)")
    b.add_argument("--offline", action="store_true", help="use only the download cache")
    b.add_argument("--no-smoke", action="store_true", help="skip the QEMU smoke test")
    b.add_argument("--no-reference", action="store_true",
                   help="do not compare smoke outputs with the host's")
    b.add_argument("-j", "--jobs", type=int, default=None, help="parallel compile jobs")

    f = sub.add_parser("fetch", help="download and verify a recipe's sources into the cache")
    f.add_argument("recipe")
    f.add_argument("--target", default=None)
    f.add_argument("--offline", action="store_true")

    lk = sub.add_parser("lock", help="record sha256s of a recipe's unpinned URLs (needs network)")
    lk.add_argument("recipe")
    lk.add_argument("--tree", action="store_true",
                    help="instead: compute each source's tree hash from every URL it can fetch "
                         "and print the `tree = ...` lines for the recipe")

    sc = sub.add_parser("sources", help="ask every URL of every source, without downloading")
    scsub = sc.add_subparsers(dest="sources_command", required=True)
    scc = scsub.add_parser("check", help="HEAD (or a 1-byte ranged GET) per URL; a table of "
                                         "status, size and each source's last reachable URL")
    scc.add_argument("recipe", nargs="?", default=None,
                     help="one recipe (name or path); default: every recipe on the search path")

    r = sub.add_parser("release", help="a matrix of recipes x targets, the packages, SHA256SUMS, "
                                       "manifest and a simple index in one directory")
    r.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                   help="the release config (default: release.toml)")
    r.add_argument("--out", type=Path, default=Path("dist"), help="the release directory")
    r.add_argument("--cell", action="append", default=None, metavar="RECIPE:TARGET",
                   help="build only this matrix cell (repeatable; for CI matrices)")
    r.add_argument("--packages", action="store_true",
                   help="build only the packages: pure wheels and sdists, binary sdists")
    r.add_argument("--matrix", action="store_true",
                   help="print the cells as a GitHub Actions matrix (JSON) and exit")
    r.add_argument("--work-dir", type=Path, default=None)
    r.add_argument("--offline", action="store_true", help="use only the download cache")
    r.add_argument("--no-smoke", action="store_true", help="skip the smoke tests")
    r.add_argument("-j", "--jobs", type=int, default=None, help="parallel compile jobs")
    rsub = r.add_subparsers(dest="release_command")
    rm = rsub.add_parser("merge", help="verify release directories (CI cells) and join them")
    rm.add_argument("inputs", nargs="+", type=Path, metavar="DIR")
    rm.add_argument("--out", dest="merge_out", type=Path, required=True)
    rv = rsub.add_parser("verify", help="check a release directory against its SHA256SUMS, "
                                        "manifest and index")
    rv.add_argument("directory", type=Path)

    cn = sub.add_parser("conan", help="Conan 2: the built libraries as tflite-edge-c binaries, "
                                      "profiles from the toolchains")
    cnsub = cn.add_subparsers(dest="conan_command", required=True)
    ce = cnsub.add_parser("export", help="each tflite_edge_lib wheel's library, headers and "
                                         "licenses as one binary of tflite-edge-c in the Conan "
                                         "cache ($CONAN_HOME); nothing is compiled")
    ce.add_argument("inputs", nargs="+", type=Path, metavar="WHEEL_OR_DIR",
                    help="tflite_edge_lib wheels, or directories of them (dist/, a release)")
    ce.add_argument("--upload", metavar="REMOTE", default=None,
                    help="then upload the recipe and its binaries to this Conan remote")
    cp = cnsub.add_parser("profiles", help="Conan host and build profiles from the toolchains "
                                           "(edgeforge's zig wrappers as the compilers)")
    cp.add_argument("--target", action="append", required=True,
                    help="the host profile's target (repeatable); the build machine's profile "
                         f"({host_target_name()}) is written too")
    cp.add_argument("--out", type=Path, required=True,
                    help="where the profiles (one file per target) and wrappers go")

    nm = sub.add_parser("npm", help="npm packages from the built wheels: tflite-edge (JS + "
                                    "types) and one @tflite-edge/<platform> package per wheel")
    nm.add_argument("inputs", nargs="+", type=Path, metavar="WHEEL_OR_DIR",
                    help="tflite_edge_lib (and delegate plugin) wheels, or directories of them")
    nm.add_argument("--out", type=Path, required=True, help="where the package directories go")
    nm.add_argument("--pack", type=Path, default=None, metavar="DIR",
                    help="also `npm pack` every package into DIR")
    return p


def cmd_targets(search: SearchPath, logger: Logger) -> int:
    rows = [("target", "wheel tags", "compiler", "libc floor", "smoke runs", "debian")]
    runs = {"wine": "wine64", "link-only": "(link only)"}  # smoke runners that are no QEMU
    for name, path in available_targets(search.toolchains).items():
        t = load_toolchain(path)
        compiler = t.zig.target if t.backend == "zig" and t.zig else t.backend
        rows.append((name, t.platform_tag, f"{t.backend}: {compiler}",
                     f"{t.libc} {t.libc_version}",
                     t.smoke.qemu or runs.get(t.smoke.runner, "(native)"),
                     f"{t.smoke.debian_suite}/{t.smoke.debian_arch}" if t.smoke.debian_arch
                     else "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return 0


def cmd_build(args: argparse.Namespace, settings: BuildSettings, logger: Logger) -> int:
    search = settings.search
    recipe = resolve_recipe(args.recipe, search.recipes)
    if args.toolchain is not None:
        toolchains = [resolve_target(None, args.toolchain)]
    else:
        toolchains = [resolve_target(t, directories=search.toolchains)
                      for t in (args.target or [None])]
    if args.compiler:
        toolchains = [t.with_backend(args.compiler) for t in toolchains]
    options = settings.build_options(recipe, args.dist.resolve(), work_dir=args.work_dir,
                                     smoke=not args.no_smoke, reference=not args.no_reference)
    host = resolve_target(None, directories=search.toolchains)
    reports = []
    for toolchain in toolchains:
        with logger.step(f"{recipe.name} {recipe.version} for {toolchain.name}"):
            reports.append(pipeline.build(recipe, toolchain, options, logger, host=host))
    for r in reports:
        smoke = "skipped" if r.smoke is None else ("passed" if r.smoke.passed else "FAILED")
        print(f"{r.target}: {r.wheel} (audit: {r.audit.best_policy}; smoke: {smoke})")
    return 0


def cmd_fetch(args: argparse.Namespace, search: SearchPath, cache_dir: Path, logger: Logger
              ) -> int:
    recipe = resolve_recipe(args.recipe, search.recipes)
    toolchain = resolve_target(args.target, directories=search.toolchains)
    opts = fetch.FetchOptions(cache_dir=cache_dir, offline=args.offline, locked=read_lock(recipe))
    for source in recipe.sources_for(toolchain.arch, toolchain.libc):
        path = fetch.fetch_tree(source, opts, logger)
        print(f"{source.name}: {path}")
    return 0


def cmd_conan(args: argparse.Namespace, search: SearchPath, cache_dir: Path, logger: Logger
              ) -> int:
    if args.conan_command == "export":
        exported = conan.export(conan.find_wheels(args.inputs), conan.load_targets(
            search.toolchains), logger)
        for e in exported:
            print(f"{e.target}: {e.reference}")
        if args.upload:
            conan.upload(exported[0].version, args.upload)
            print(f"uploaded {conan.PACKAGE_NAME}/{exported[0].version} ({len(exported)} "
                  f"binaries) to {args.upload}")
        return 0
    names = dict.fromkeys([*args.target, host_target_name()])
    toolchains = [resolve_target(n, directories=search.toolchains) for n in names]
    for p in conan.write_profiles(toolchains, args.out.resolve(), cache_dir, logger):
        print(f"{p.target}: {p.path}")
    return 0


def cmd_release(args: argparse.Namespace, search: SearchPath, cache_dir: Path, logger: Logger
                ) -> int:
    if args.release_command == "merge":
        artifacts = release.merge(args.inputs, args.merge_out, logger)
        out = args.merge_out
    elif args.release_command == "verify":
        artifacts = release.verify(args.directory)
        out = args.directory
    else:
        config = load_release_config(args.config, search.recipes, search.toolchains)
        if args.matrix:
            print(release.matrix_json(config))
            return 0
        cells = [config.cell(c) for c in args.cell] if args.cell else []
        if not args.cell and not args.packages:  # the whole release
            cells = list(config.cells)
        options = release.ReleaseOptions(
            cache_dir=cache_dir, toolchain_dirs=search.toolchains, work_dir=args.work_dir,
            offline=args.offline, jobs=args.jobs, smoke=config.smoke and not args.no_smoke)
        packages = args.packages or not args.cell
        artifacts = release.release(config, args.out, cells, packages, options, logger)
        out = args.out
    for a in artifacts:
        print(release.describe_artifact(a))
    print(f"release {out}: {len(artifacts)} files, SHA256SUMS, manifest.json, simple/ index")
    return 0


def cmd_npm(args: argparse.Namespace) -> int:
    from .npm import generate

    made = generate.generate(args.inputs, args.out)
    dirs = [d for g in made for d in (g.main, *g.platforms.values())]
    for g in made:
        print(f"{g.main.name} {g.version}: {', '.join(sorted(g.platforms)) or 'no platforms'}")
    if args.pack is not None:
        for tarball in generate.pack(dirs, args.pack):
            print(f"packed {tarball}")
    return 0


class Terminated(KeyboardInterrupt):
    """SIGTERM, taking Ctrl-C's path: every ``finally`` runs (temporary files go, the build's
    processes are stopped, locks are let go) and edgeforge exits 128 + the signal number."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _terminate(signum: int, frame: object) -> None:
    raise Terminated(signum)


def main(argv: Sequence[str] | None = None) -> int:
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return _main(argv)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    logger = Logger(verbose=args.verbose)
    try:
        # The same settings chain as the PEP 517 backend's: a flag, else the environment.
        settings = resolve_settings({
            "cache-dir": args.cache_dir, "recipe-path": args.recipe_path,
            "toolchain-path": args.toolchain_path, "jobs": getattr(args, "jobs", None),
            "offline": getattr(args, "offline", False) or None})
        cache_dir, search = settings.cache_dir, settings.search
        if args.command == "targets":
            return cmd_targets(search, logger)
        if args.command == "build":
            return cmd_build(args, settings, logger)
        if args.command == "fetch":
            return cmd_fetch(args, search, cache_dir, logger)
        if args.command == "release":
            return cmd_release(args, search, cache_dir, logger)
        if args.command == "lock" and args.tree:
            reports = lock_trees(resolve_recipe(args.recipe, search.recipes), cache_dir, logger)
            print(format_tree_reports(reports))
            return 0 if all(r.agreed for r in reports) else 1
        if args.command == "lock":
            path = lock_recipe(resolve_recipe(args.recipe, search.recipes), cache_dir, logger)
            print(f"wrote {path}")
            return 0
        if args.command == "conan":
            return cmd_conan(args, search, cache_dir, logger)
        if args.command == "npm":
            return cmd_npm(args)
        if args.command == "sources":
            names = [args.recipe] if args.recipe else list_toml(search.recipes)
            return sources.check_command([resolve_recipe(n, search.recipes) for n in names])
    except EdgeforgeError as err:
        print(f"edgeforge: error: {err}", file=sys.stderr)
        return err.exit_code
    except Terminated as err:
        print(f"edgeforge: terminated ({err})", file=sys.stderr)
        return 128 + err.signum
    except KeyboardInterrupt:
        print("edgeforge: interrupted", file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
