"""The npm packages (``edgeforge npm``) as a Node.js user gets them.

The host's pipeline-built release (``$EDGEFORGE_TFLITE_WHEEL_DIR``) and the dummy delegate's
wheel become npm packages through the real command line; ``npm pack`` packs them; npm installs
them into a temporary project from a registry on 127.0.0.1 (edgeforge.npm.registry) that
serves only those tarballs and koffi's (``edgeforge.npm.mirror``, filled by ci/setup.sh), with
npm's cache in a temporary directory. Then host Node runs real mediapipe models through the
installed package and its outputs are compared with the Python package's on the same inputs.
The Coral plugin runs over the libedgetpu stand-ins of tests/coral; the arm64/armhf packages
run with Debian bookworm's own nodejs under QEMU when ``$EDGEFORGE_CROSS_WHEEL_DIR`` has their
wheels.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from edgeforge_testing import REPO, skip_or_fail

from edgeforge.errors import ConfigError, ReleaseError
from edgeforge.npm import mirror
from edgeforge.npm.generate import generate, library_candidates, npm_version
from edgeforge.npm.platforms import all_platforms, platform_of_wheel
from edgeforge.npm.registry import install

sys.path.insert(0, str(REPO / "tests" / "runtime"))
sys.path.insert(0, str(REPO / "tests" / "coral"))
import coral_support
import rt_support
from coral_support import run

NODE, NPM = shutil.which("node"), shutil.which("npm")
VERSION = "2.14.1"
MODELS = ("hand_landmark_lite", "face_detection_short_range", "palm_detection_lite")
CROSS_WHEEL_DIR_ENV = "EDGEFORGE_CROSS_WHEEL_DIR"

# Runs a model through the installed tflite-edge: inputs from IN/<tensor index>.bin, outputs
# to OUT/<tensor index>.bin; prints the details and the library as JSON.
RUN_MODEL_JS = r"""
const fs = require('fs');
const path = require('path');
const te = require('tflite-edge');
const [model, inDir, outDir, mode] = process.argv.slice(2);
(async () => {
  const source = mode === 'buffer' ? fs.readFileSync(model) : model;
  const it = new te.Interpreter(source, { numThreads: 1 });
  it.allocateTensors();
  const inputs = it.getInputDetails();
  for (const d of inputs) {
    const bytes = fs.readFileSync(path.join(inDir, `${d.index}.bin`));
    const x = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    it.setTensor(d.index, x);
  }
  let ticks = 0;
  if (mode === 'async') {
    const timer = setInterval(() => { ticks++; }, 0);
    for (let i = 0; i < 5; i++) await it.invokeAsync();
    clearInterval(timer);
  } else {
    it.invoke();
  }
  const outputs = it.getOutputDetails();
  fs.mkdirSync(outDir, { recursive: true });
  for (const d of outputs) {
    const y = it.getTensor(d.index);
    const bytes = Buffer.from(y.buffer, y.byteOffset, y.byteLength);
    fs.writeFileSync(path.join(outDir, `${d.index}.bin`), bytes);
  }
  console.log(JSON.stringify({ library: te.libraryInfo(), inputs, outputs, ticks,
                               signatures: it.getSignatureList() }));
})().catch((err) => { console.error(err.stack); process.exit(1); });
"""

# The Python package on the same inputs (the reference).
RUN_MODEL_PY = r"""
import json, sys
from pathlib import Path
import numpy as np
from tflite_edge import Interpreter
model, in_dir, out_dir = sys.argv[1:4]
it = Interpreter(model_path=model, num_threads=1)
it.allocate_tensors()
for d in it.get_input_details():
    x = np.fromfile(Path(in_dir) / f"{d['index']}.bin", dtype=d["dtype"]).reshape(d["shape"])
    it.set_tensor(d["index"], x)
it.invoke()
Path(out_dir).mkdir(parents=True, exist_ok=True)
for d in it.get_output_details():
    it.get_tensor(d["index"]).tofile(Path(out_dir) / f"{d['index']}.bin")
print(json.dumps([d["name"] for d in it.get_output_details()]))
"""


def node_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("TFLITE_EDGE_LIBRARY", "NODE_PATH", "NODE_OPTIONS")}
    env.update(extra)
    return env


@dataclass(frozen=True)
class Packages:
    tarballs: Path  # every generated package, packed
    dirs: Path
    host_wheel_dir: Path
    seconds: float


@pytest.fixture(scope="module")
def deps() -> Path:
    """koffi and its Linux binaries as npm tarballs (ci/setup.sh fetched them from npm)."""
    d = mirror.mirror_dir()
    if not mirror.is_ready(d):
        skip_or_fail(f"no npm dependencies in {d}: run bash ci/setup.sh (it runs python -m "
                     "edgeforge.npm.mirror, which needs npm's registry once)")
    return d


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> Packages:
    if NODE is None or NPM is None:
        skip_or_fail("no node/npm on PATH (Node.js 16+ with npm)")
    wheel_dir = os.environ.get("EDGEFORGE_TFLITE_WHEEL_DIR")
    plugin_dir = os.environ.get("EDGEFORGE_DUMMY_DELEGATE_WHEEL_DIR")
    if not wheel_dir or not plugin_dir:
        skip_or_fail("EDGEFORGE_TFLITE_WHEEL_DIR / EDGEFORGE_DUMMY_DELEGATE_WHEEL_DIR are not "
                     "set: no pipeline-built tflite-edge-lib and dummy delegate wheels")
    inputs = [Path(wheel_dir), Path(plugin_dir)]
    cross = os.environ.get(CROSS_WHEEL_DIR_ENV)
    if cross and Path(cross).is_dir():
        inputs.append(Path(cross))
    base = tmp_path_factory.mktemp("npm")
    started = time.monotonic()
    proc = run([sys.executable, "-m", "edgeforge", "npm", *inputs, "--out", base / "dirs",
                "--pack", base / "tgz"])
    assert f"tflite-edge {VERSION}: " in proc.stdout, proc.stdout
    return Packages(base / "tgz", base / "dirs", Path(wheel_dir), time.monotonic() - started)


@dataclass(frozen=True)
class Project:
    path: Path
    output: str  # npm's
    requests: list[str]  # what npm asked the registry
    seconds: float

    def node(self, script: str, *args: str | os.PathLike[str], env: dict[str, str] | None = None,
             check: bool = True, node: list[str] | None = None
             ) -> subprocess.CompletedProcess[str]:
        """Run ``script`` in the project with the host's node, or the ``node`` argv given."""
        name = f"script-{abs(hash(script))}.js"
        (self.path / name).write_text(script)
        return run([*(node or [NODE or "node"]), name, *map(str, args)], cwd=self.path,
                   env=env or node_env(), check=check)

    def installed(self) -> set[str]:
        """Every package directory under node_modules (scoped ones as @scope/name)."""
        out = set()
        for pj in (self.path / "node_modules").rglob("package.json"):
            rel = pj.parent.relative_to(self.path / "node_modules").parts
            if "node_modules" in rel:
                continue
            name = "/".join(rel[:2]) if rel[0].startswith("@") else rel[0]
            if len(rel) == (2 if rel[0].startswith("@") else 1):
                out.add(name)
        return out


def npm_install(directory: Path, specs: list[str], registries: list[Path],
                extra: tuple[str, ...] = ()) -> Project:
    done = install(directory, specs, registries, extra, npm=NPM or "npm", env=node_env())
    return Project(directory, done.output, list(done.requests), done.seconds)


@pytest.fixture(scope="module")
def project(packages: Packages, deps: Path, tmp_path_factory: pytest.TempPathFactory) -> Project:
    return npm_install(tmp_path_factory.mktemp("project") / "app",
                       [f"tflite-edge@{VERSION}", f"@tflite-edge/dummy-delegate@{VERSION}"],
                       [packages.tarballs, deps])


@pytest.fixture(scope="module")
def models() -> dict[str, Path]:
    found = rt_support.mediapipe_models()
    return {name: found[name] for name in MODELS}


def host_library(packages: Packages, tmp: Path) -> Path:
    """The host wheel's lib/ (libtensorflowlite_c and the shim beside it, where the wheel has
    one), extracted: what the Python package loads."""
    import zipfile

    (wheel,) = packages.host_wheel_dir.glob("tflite_edge_lib-*x86_64*.whl")
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(tmp, [n for n in zf.namelist() if n.startswith("tflite_edge_lib/lib/")])
    return tmp / "tflite_edge_lib" / "lib" / "libtensorflowlite_c.so"


def write_inputs(project: Project, model: Path, dest: Path, seed: int) -> None:
    """Random float32 inputs in [0, 1) for every input of ``model`` (shapes from Node)."""
    proc = project.node("const te = require('tflite-edge');"
                        "const it = new te.Interpreter(process.argv[2]); it.allocateTensors();"
                        "console.log(JSON.stringify(it.getInputDetails()));", model)
    rng = np.random.default_rng(seed)
    dest.mkdir(parents=True, exist_ok=True)
    for d in json.loads(proc.stdout):
        assert d["dtype"] == "float32", d
        rng.random(d["shape"], dtype=np.float32).tofile(dest / f"{d['index']}.bin")


def read_outputs(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.glob("*.bin"))}


# ------------------------------------------------------------ the generator, without npm


def test_platform_table_comes_from_the_targets() -> None:
    table = {p.name: p for p in all_platforms()}
    linux = {n for n in table if n.startswith("linux-")}
    assert linux == {"linux-x64", "linux-arm64", "linux-arm", "linux-armv6", "linux-riscv64",
                     "linux-x64-musl", "linux-arm64-musl"}
    for p in table.values():  # one row per toolchain; os/cpu as Node names them
        assert p.name.startswith(f"{p.os}-{p.cpu}") or p.name == "linux-armv6", p
        assert (p.libc is None) == (p.os != "linux"), p
    assert table["linux-arm64-musl"].manifest_fields() == {
        "os": ["linux"], "cpu": ["arm64"], "libc": ["musl"]}
    assert (table["linux-arm"].arm_version, table["linux-armv6"].arm_version) == (7, 6)
    assert not table["linux-armv6"].optional and table["linux-arm"].optional
    assert platform_of_wheel("manylinux_2_17_aarch64.manylinux2014_aarch64",
                             table.values()).target == "linux-aarch64"
    assert platform_of_wheel("musllinux_1_2_x86_64", table.values()).name == "linux-x64-musl"
    with pytest.raises(ConfigError, match="no edgeforge target carries the wheel tag "
                                          "'linux_mips'"):
        platform_of_wheel("linux_mips", table.values())


def test_generator_refuses_what_npm_cannot_spell(tmp_path: Path) -> None:
    assert (npm_version("16.0"), npm_version("2.14.1")) == ("16.0.0", "2.14.1")
    assert library_candidates("lib/libtensorflowlite_c.so", "linux") == [
        "lib/libtensorflowlite_c.so"]
    assert library_candidates("lib/libedgetpu.so.1", "darwin") == [
        "lib/libedgetpu.1.dylib", "lib/libedgetpu.dylib", "lib/libedgetpu.so.1"]
    assert library_candidates("lib/libtensorflowlite_c.so", "win32") == [
        "lib/tensorflowlite_c.dll", "lib/libtensorflowlite_c.dll"]
    with pytest.raises(ReleaseError, match="no npm"):
        npm_version("2.14.1rc1")
    with pytest.raises(ConfigError, match="nothing to package for npm"):
        generate([tmp_path], tmp_path / "out")
    # two wheels of one platform: which one is the package is not guessed
    host = os.environ.get("EDGEFORGE_TFLITE_WHEEL_DIR")
    if host:
        (wheel,) = Path(host).glob("tflite_edge_lib-*x86_64*.whl")
        twin = tmp_path / "twin"
        twin.mkdir()
        shutil.copy(wheel, twin / wheel.name.replace("manylinux_2_17_x86_64.", ""))
        with pytest.raises(ReleaseError, match="two tflite_edge_lib wheels for linux-x64"):
            generate([Path(host), twin], tmp_path / "out")


# ---------------------------------------------------------------------------------- tests


def test_npm_installs_exactly_the_main_and_the_host_platform_package(
        project: Project, packages: Packages) -> None:
    assert project.installed() == {
        "tflite-edge", "@tflite-edge/linux-x64", "koffi", "@koromix/koffi-linux-x64",
        "@tflite-edge/dummy-delegate", "@tflite-edge/dummy-delegate-linux-x64"}, project.output
    # npm asked for the other platforms' manifests and skipped them by os/cpu/libc
    tarballs = {r.rsplit("/", 1)[1] for r in project.requests if r.startswith("/-/")}
    assert f"tflite-edge-linux-x64-{VERSION}.tgz" in tarballs
    assert not any("arm" in t or "musl" in t for t in tarballs), tarballs
    # koffi's install step found its prebuilt binary: nothing was compiled
    assert "rebuilding from source" not in project.output, project.output
    manifest = json.loads((project.path / "node_modules/@tflite-edge/linux-x64/package.json")
                          .read_text())
    assert (manifest["os"], manifest["cpu"], manifest["libc"]) == (["linux"], ["x64"], ["glibc"])
    main = json.loads((project.path / "node_modules/tflite-edge/package.json").read_text())
    assert "@tflite-edge/linux-x64" in main["optionalDependencies"]
    assert main["dependencies"] == {"koffi": "3.3.4"}
    print(f"edgeforge npm + pack: {packages.seconds:.1f} s; npm install: {project.seconds:.1f} s")


@pytest.mark.parametrize("model", MODELS)
def test_mediapipe_model_matches_the_python_package(project: Project, packages: Packages,
                                                    models: dict[str, Path], model: str,
                                                    tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    write_inputs(project, models[model], inputs, seed=MODELS.index(model))
    proc = project.node(RUN_MODEL_JS, models[model], inputs, tmp_path / "node", "path")
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    # the library the platform function chose: the platform package npm installed
    assert report["library"]["source"] == "@tflite-edge/linux-x64"
    assert report["library"]["version"] == VERSION
    assert report["library"]["path"].endswith(
        "node_modules/@tflite-edge/linux-x64/lib/libtensorflowlite_c.so")
    lib = host_library(packages, tmp_path / "lib")
    run([sys.executable, "-c", RUN_MODEL_PY, models[model], inputs, tmp_path / "python"],
        env=rt_support.runtime_env(str(lib)))
    node_out, py_out = read_outputs(tmp_path / "node"), read_outputs(tmp_path / "python")
    assert node_out.keys() == py_out.keys() == {f"{d['index']}.bin" for d in report["outputs"]}
    for name, data in py_out.items():
        a = np.frombuffer(node_out[name], np.float32)
        b = np.frombuffer(data, np.float32)
        assert a.shape == b.shape and np.isfinite(a).all()
        # the same library, kernels (XNNPACK as the default delegate) and thread count
        assert node_out[name] == data, (name, float(np.abs(a - b).max()))


def test_buffer_model_and_invoke_async_keep_the_event_loop_running(
        project: Project, models: dict[str, Path], tmp_path: Path) -> None:
    model = models["palm_detection_lite"]
    write_inputs(project, model, tmp_path / "in", seed=7)
    runs = {}
    for mode in ("buffer", "async"):
        proc = project.node(RUN_MODEL_JS, model, tmp_path / "in", tmp_path / mode, mode)
        runs[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert read_outputs(tmp_path / "buffer") == read_outputs(tmp_path / "async")
    # a 0 ms timer fired while the five invokes ran on koffi's worker thread
    assert runs["async"]["ticks"] > 0, runs["async"]
    assert runs["async"]["signatures"] == {}  # mediapipe's models carry no SignatureDefs


SIGNATURE_JS = r"""
const fs = require('fs');
const te = require('tflite-edge');
const [model, input, outDir] = process.argv.slice(2);
const it = new te.Interpreter(fs.readFileSync(model));
const runner = it.getSignatureRunner();
const bytes = fs.readFileSync(input);
const outputs = runner.run({ x: new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) });
fs.mkdirSync(outDir, { recursive: true });
for (const [name, y] of Object.entries(outputs)) {
  if (!(y instanceof Int8Array)) throw new Error(`${name} is a ${y.constructor.name}`);
  fs.writeFileSync(`${outDir}/${name}.bin`, Buffer.from(y.buffer, y.byteOffset, y.byteLength));
}
it.allocateTensors();
const q = (d) => [d.name, d.dtype, d.shape, d.quantization.scale, d.quantization.zeroPoint];
console.log(JSON.stringify({ signatures: it.getSignatureList(), key: runner.key,
                             inputs: it.getInputDetails().map(q) }));
"""

SIGNATURE_PY = r"""
import json, sys
from pathlib import Path
import numpy as np
from tflite_edge import Interpreter
model, input_, out_dir = sys.argv[1:4]
it = Interpreter(model_path=model)
runner = it.get_signature_runner()
x = np.fromfile(input_, dtype=np.int8).reshape(runner.get_input_details()["x"]["shape"])
Path(out_dir).mkdir(parents=True, exist_ok=True)
for name, y in runner(x=x).items():
    y.tofile(Path(out_dir) / f"{name}.bin")
it.allocate_tensors()
print(json.dumps({"signatures": it.get_signature_list(), "inputs": [
    [d["name"], d["dtype"].__name__, d["shape"].tolist(), d["quantization"][0],
     d["quantization"][1]] for d in it.get_input_details()]}))
"""


def test_int8_model_signature_runner_matches_the_python_package(
        project: Project, packages: Packages, tmp_path: Path) -> None:
    """A generated int8 model with a SignatureDef: Int8Array in and out, quantization
    parameters, getSignatureList/getSignatureRunner, equal to the Python package's."""
    import rt_models

    model = tmp_path / "int8.tflite"
    model.write_bytes(rt_models.int8_model()[0])
    x = np.random.default_rng(5).integers(-128, 128, (1, 2, 2, 3), dtype=np.int8)
    x.tofile(tmp_path / "x.bin")
    proc = project.node(SIGNATURE_JS, model, tmp_path / "x.bin", tmp_path / "node")
    node = json.loads(proc.stdout.strip().splitlines()[-1])
    lib = host_library(packages, tmp_path / "lib")
    py = json.loads(run([sys.executable, "-c", SIGNATURE_PY, model, tmp_path / "x.bin",
                         tmp_path / "python"], env=rt_support.runtime_env(str(lib))
                        ).stdout.strip().splitlines()[-1])
    assert node["key"] == "serving_default"
    assert node["signatures"] == py["signatures"]
    assert node["inputs"] == py["inputs"], (node["inputs"], py["inputs"])
    assert read_outputs(tmp_path / "node") == read_outputs(tmp_path / "python")
    assert len(read_outputs(tmp_path / "node")) == 2


def test_resize_input_and_wrong_tensors(project: Project, tmp_path: Path) -> None:
    """resizeTensorInput on a dynamic batch, and the errors setTensor gives for a wrong type
    or size (TFLite is never handed a buffer of the wrong length)."""
    import rt_models

    model = tmp_path / "add.tflite"
    model.write_bytes(rt_models.add_model(n=4, dynamic=True))
    script = r"""
    const te = require('tflite-edge');
    const it = new te.Interpreter(process.argv[2]);
    const attempt = (f) => { try { return f(); } catch (e) { return `${e.name}: ${e.message}`; } };
    it.resizeTensorInput(0, [3, 4]);
    it.allocateTensors();
    const x = Float32Array.from({ length: 12 }, (_, i) => i);
    it.setTensor(0, x);
    it.invoke();
    console.log(JSON.stringify({
      shape: it.getOutputDetails()[0].shape, y: Array.from(it.getTensor(1)),
      wrongType: attempt(() => it.setTensor(0, new Int32Array(12))),
      wrongSize: attempt(() => it.setTensor(0, new Float32Array(4))),
      noTensor: attempt(() => it.getTensor(99)),
    }));
    """
    out = json.loads(project.node(script, model).stdout.strip().splitlines()[-1])
    assert out["shape"] == [3, 4]
    assert out["y"] == [2.0 * i for i in range(12)]
    assert out["wrongType"].startswith("TypeError: setTensor(0): the tensor is float32; got a "
                                       "Int32Array"), out
    assert out["wrongSize"] == ("RangeError: setTensor(0): the tensor has 48 bytes (float32 "
                                "[3,4]); got 16")
    assert out["noTensor"] == "RangeError: getTensor: no tensor 99"


def test_unclosed_interpreters_are_freed_when_collected(project: Project,
                                                        tmp_path: Path) -> None:
    """9,000 interpreters never closed: each holds a koffi callback slot (8,192 exist) and
    native memory, freed when the garbage collector takes the object (FinalizationRegistry)."""
    import rt_models

    model = tmp_path / "add.tflite"
    model.write_bytes(rt_models.add_model(n=4))
    script = r"""
    const te = require('tflite-edge');
    (async () => {
      for (let i = 0; i < 9000; i++) {
        const it = new te.Interpreter(process.argv[2]);
        it.allocateTensors();
        if (i % 500 === 499) { global.gc(); await new Promise(setImmediate); }
      }
      console.log(JSON.stringify({ rss: process.memoryUsage().rss }));
    })();
    """
    proc = project.node(script, model, node=[NODE or "node", "--expose-gc"])
    rss = json.loads(proc.stdout.strip().splitlines()[-1])["rss"]
    assert rss < 400 << 20, rss


def test_cpp_exception_is_a_js_error_through_the_shim(project: Project, tmp_path: Path) -> None:
    """A real std::bad_alloc from TFLite's arena (a huge resized input under a 4 GiB address
    space limit): with the wheel's shim beside the library it is a TfLiteCppError and Node
    lives on; without it, the process aborts."""
    import rt_models

    model = tmp_path / "add.tflite"
    model.write_bytes(rt_models.add_model(n=4, dynamic=True))
    script = r"""
    const te = require('tflite-edge');
    const it = new te.Interpreter(process.argv[2]);
    it.resizeTensorInput(0, [1 << 28, 4]);  // 4 GiB of float32 input
    let result;
    try { it.allocateTensors(); result = 'allocated'; } catch (e) {
      result = `${e.name} ${e.kind}: ${e.message}`;
    }
    console.log(JSON.stringify({ shim: te.libraryInfo().shim, result }));
    """
    limit = ["prlimit", f"--as={4 << 30}", NODE or "node"]
    proc = project.node(script, model, node=limit, check=False)
    shim = project.path / "node_modules/@tflite-edge/linux-x64/lib/libtflite_edge_shim.so"
    if not shim.is_file():
        assert proc.returncode != 0 and "std::bad_alloc" in proc.stderr, proc
        pytest.skip("the host wheel has no libtflite_edge_shim.so: the abort is all there is")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["shim"] == str(shim)
    assert out["result"].startswith("TfLiteCppError bad_alloc: "), out
    assert "std::bad_alloc" in out["result"]


def test_platform_mapping_override_and_errors(project: Project, packages: Packages,
                                              tmp_path: Path) -> None:
    script = r"""
    const te = require('tflite-edge');
    const out = {};
    const attempt = (f) => { try { return f(); } catch (e) { return `${e.name}: ${e.message}`; } };
    const m = (os, cpu, libc, armVersion = null) => ({ os, cpu, libc, armVersion });
    out.host = te.platformFor().name;
    out.table = Object.fromEntries(
      te.platforms.map((p) => [p.name, [p.target, p.optional, p.published]]));
    out.armv7 = te.platformFor(m('linux', 'arm', 'glibc', 7)).name;
    out.armv6 = te.platformFor(m('linux', 'arm', 'glibc', 6)).name;
    out.musl = te.platformFor(m('linux', 'arm64', 'musl')).name;
    out.mips = attempt(() => te.findLibrary({}, m('linux', 'mips', 'glibc')));
    out.riscv = attempt(() => te.findLibrary({}, m('linux', 'riscv64', 'glibc')));
    out.armv6missing = attempt(() => te.findLibrary({}, m('linux', 'arm', 'glibc', 6)));
    out.missing = attempt(() => te.findLibrary({ TFLITE_EDGE_LIBRARY: '/nonexistent/lib.so' }));
    console.log(JSON.stringify(out));
    """
    out = json.loads(project.node(script).stdout)
    assert out["host"] == "linux-x64"
    # one row per edgeforge target (toolchains + archs.toml); published = wheels given
    assert out["table"]["linux-x64"] == ["linux-x86_64", True, True]
    assert out["table"]["linux-arm64-musl"][0] == "musllinux-aarch64"
    assert out["table"]["linux-armv6"] == ["linux-armv6l", False, False]
    assert out["table"]["linux-riscv64"] == ["linux-riscv64", True, False]
    assert (out["armv7"], out["armv6"], out["musl"]) == ("linux-arm", "linux-armv6",
                                                         "linux-arm64-musl")
    assert out["mips"].startswith("PlatformError: tflite-edge has no binary for this machine, "
                                  "linux-mips (glibc)"), out["mips"]
    assert "TFLITE_EDGE_LIBRARY" in out["mips"] and "linux-x64" in out["mips"]
    assert "without a binary for linux-riscv64 (glibc)" in out["riscv"], out["riscv"]
    assert "--target linux-riscv64" in out["riscv"]
    assert "without a binary for linux-arm (glibc), ARMv6 (edgeforge target linux-armv6l)" \
        in out["armv6missing"], out["armv6missing"]
    assert out["missing"] == ('PlatformError: TFLITE_EDGE_LIBRARY="/nonexistent/lib.so": '
                              "no such file")
    # the override wins over the platform package (a copy of the library elsewhere)
    copy = tmp_path / "libtensorflowlite_c.so"
    shutil.copy(host_library(packages, tmp_path / "lib"), copy)
    proc = project.node("console.log(JSON.stringify(require('tflite-edge').libraryInfo()))",
                        env=node_env(TFLITE_EDGE_LIBRARY=str(copy)))
    info = json.loads(proc.stdout)
    assert (info["path"], info["source"]) == (str(copy), "TFLITE_EDGE_LIBRARY")
    # without the platform package, the error names the machine and the package to install
    shutil.rmtree(project.path / "node_modules/@tflite-edge/linux-x64-moved", ignore_errors=True)
    pkg = project.path / "node_modules/@tflite-edge/linux-x64"
    pkg.rename(pkg.with_name("linux-x64-moved"))
    try:
        proc = project.node("require('tflite-edge').libraryInfo()", check=False)
    finally:
        pkg.with_name("linux-x64-moved").rename(pkg)
    assert proc.returncode != 0
    assert ("the package for this machine (linux-x64 (glibc)), @tflite-edge/linux-x64@2.14.1, "
            "is not installed") in proc.stderr, proc.stderr


def test_dummy_delegate_plugin_is_found_by_name(project: Project,
                                                models: dict[str, Path]) -> None:
    script = r"""
    const te = require('tflite-edge');
    const out = { plugins: te.installedPlugins().map((p) => [p.name, p.package]) };
    const model = process.argv[2];
    const run = (delegate) => {
      const it = new te.Interpreter(model, { delegates: [delegate] });
      it.allocateTensors();
      it.invoke();
      return it.getOutputDetails().length;
    };
    const attempt = (f) => { try { return f(); } catch (e) { return `${e.name}: ${e.message}`; } };
    out.none = run(te.loadDelegate('tflite-dummy', { allowed_builtin_code: -1 }));
    // CONV_2D (builtin code 3) claimed, and an error in its Eval: invoke fails
    out.failing = attempt(() => run(te.loadDelegate(
      'tflite-dummy', { allowed_builtin_code: 3, error_during_invoke: true })));
    out.alias = String(te.loadDelegate('libdummy_external_delegate.so'));
    // the same failure from invokeAsync: TFLite reports it on koffi's worker thread
    const it = new te.Interpreter(model, { delegates: [te.loadDelegate(
      'tflite-dummy', { allowed_builtin_code: 3, error_during_invoke: true })] });
    it.allocateTensors();
    out.badOption = attempt(() => String(te.loadDelegate('tflite-dummy', { colour: 'red' })));
    // the library itself refuses it (TFLite's option parser)
    out.badValue = attempt(() => String(te.loadDelegate(
      'tflite-dummy', { allowed_builtin_code: 'not-a-number' })));
    out.badPath = attempt(() => String(te.loadDelegate('/nonexistent/libdelegate.so')));
    it.invokeAsync().then(() => { out.async = 'resolved'; },
                          (e) => { out.async = `${e.name}: ${e.message}`; })
      .finally(() => console.log(JSON.stringify(out)));
    """
    proc = project.node(script, models["palm_detection_lite"])
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["plugins"] == [["tflite-dummy", "@tflite-edge/dummy-delegate"]]
    assert out["none"] == 2
    assert out["failing"].startswith("TfLiteError: "), out["failing"]
    assert out["async"] == out["failing"], out
    assert "nodes delegated out of" in proc.stdout + proc.stderr  # TFLite's own log line
    assert "dummy-delegate-linux-x64/lib/libdummy_external_delegate.so" in out["alias"]
    assert out["badOption"].startswith("DelegateLoadError: Failed to load delegate from "
                                       "tflite-dummy\nunknown option(s) colour"), out
    assert out["badValue"].startswith("DelegateLoadError: Failed to load delegate from "), out
    assert "libdummy_external_delegate.so" in out["badValue"]
    assert "tflite_plugin_create_delegate returned NULL" in out["badValue"]
    assert out["badPath"].startswith(
        "DelegateLoadError: Failed to load delegate from /nonexistent/libdelegate.so")


def test_typescript_declarations_cover_the_exports(project: Project) -> None:
    """Every runtime export of the main package is declared in index.d.ts."""
    dts = (project.path / "node_modules/tflite-edge/index.d.ts").read_text()
    names = json.loads(project.node(
        "console.log(JSON.stringify(Object.keys(require('tflite-edge'))))").stdout)
    missing = [n for n in names if not any(
        f"{kind} {n}" in dts for kind in ("class", "function", "const"))]
    assert not missing, missing


# ---------------------------------------------------------------------------------- Coral

CORAL_SCRIPT = r"""
const te = require('tflite-edge');
const coral = require('@tflite-edge/coral');
const out = { plugins: te.installedPlugins().map((p) => [p.name, p.package]) };
const attempt = (f) => {
  try { return String(f()); } catch (e) {
    return { error: e.name, cause: e.cause ? e.cause.name : null, message: e.message };
  }
};
out.devices = coral.listDevices();
for (const device of [undefined, 'usb:0', 'usb', 'pci:0']) {
  out[`load ${device}`] = attempt(() => te.loadDelegate('edgetpu', device ? { device } : {}));
}
out.alias = attempt(() => te.loadDelegate('libedgetpu.so.1', { device: 'usb:0' }));
out.badDevice = attempt(() => te.loadDelegate('edgetpu', { device: 'usb:x' }));
out.badOption = attempt(() => te.loadDelegate('edgetpu', { colour: 'red' }));
console.log(JSON.stringify(out));
"""


@dataclass(frozen=True)
class Coral:
    project: Project
    runtime_25: Path  # a libtensorflowlite_c stand-in whose TfLiteVersion() is 2.5.0


@pytest.fixture(scope="module")
def coral(packages: Packages, deps: Path, tmp_path_factory: pytest.TempPathFactory) -> Coral:
    """tflite-edge + @tflite-edge/coral, whose platform package is generated from the
    tflite-edge-coral-lib wheel edgeforge builds from tests/coral's stand-in release."""
    base = tmp_path_factory.mktemp("coral")
    release = coral_support.build_release(base / "release")
    wheel = coral_support.build_lib_wheel("libedgetpu", "linux-x86_64", release, base / "std",
                                          smoke=False)
    run([sys.executable, "-m", "edgeforge", "npm", wheel, packages.host_wheel_dir,
         "--out", base / "dirs", "--pack", base / "tgz"])
    project = npm_install(base / "app", [f"tflite-edge@{VERSION}", "@tflite-edge/coral@16.0.0"],
                          [base / "tgz", deps])
    names = coral_support.runtime_function_names(
        coral_support.Runtime(wheel=None, pythonpath=coral_support.RUNTIME_SRC))
    source = coral_support.write_runtime_standin(names, coral_support.RELEASE_TF, base)
    lib = coral_support.zig_cc(source, base / "standin" / "libtensorflowlite_c.so",
                               coral_support.HOST_ZIG, soname="libtensorflowlite_c.so")
    return Coral(project, lib)


def test_coral_installs_its_platform_package_only(coral: Coral) -> None:
    assert {"@tflite-edge/coral", "@tflite-edge/coral-linux-x64"} <= coral.project.installed()
    assert not any("arm" in n for n in coral.project.installed() if n.startswith("@tflite"))
    manifest = json.loads((coral.project.path / "node_modules/@tflite-edge/coral-linux-x64/"
                           "package.json").read_text())
    assert manifest["tfliteEdge"]["buildInfo"]["tensorflow"] == coral_support.RELEASE_TF


def test_coral_no_device_is_one_clear_error(coral: Coral) -> None:
    proc = coral.project.node(CORAL_SCRIPT,
                              env=node_env(TFLITE_EDGE_LIBRARY=str(coral.runtime_25)))
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["plugins"] == [["edgetpu", "@tflite-edge/coral"]]
    assert out["devices"] == []  # edgetpu_list_devices of the packaged stand-in: none
    for device in ("undefined", "usb:0", "usb", "pci:0"):
        result = out[f"load {device}"]
        assert (result["error"], result["cause"]) == ("DelegateLoadError", "NoEdgeTpuError")
        message = result["message"]
        assert message.startswith("Failed to load delegate from edgetpu\nNo Edge TPU found")
        # it reached the libedgetpu of the platform package through the plugin lookup
        assert "node_modules/@tflite-edge/coral-linux-x64/lib/libedgetpu.so.1" in message
        for what in ("USB cable", "udev", "plugdev", "99-edgetpu-accelerator.rules"):
            assert what in message, (what, message)
        if device != "undefined":
            assert json.dumps(device) in message
    assert out["alias"]["cause"] == "NoEdgeTpuError"  # the soname selects the plugin too
    assert "invalid Edge TPU device \"usb:x\"" in out["badDevice"]["message"]
    assert "unknown Edge TPU option \"colour\"" in out["badOption"]["message"]
    assert (coral.project.path / "node_modules/@tflite-edge/coral/"
            "99-edgetpu-accelerator.rules").read_text().count("plugdev") >= 2


def test_coral_devices_are_listed_and_selected(coral: Coral) -> None:
    fake = "usb:/sys/bus/usb/devices/2-1,pci:/dev/apex_0"
    proc = coral.project.node(CORAL_SCRIPT, env=node_env(
        TFLITE_EDGE_LIBRARY=str(coral.runtime_25), EDGEFORGE_TEST_EDGETPU_DEVICES=fake))
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["devices"] == [
        {"type": "usb", "path": "/sys/bus/usb/devices/2-1", "index": 0, "name": "usb:0"},
        {"type": "pci", "path": "/dev/apex_0", "index": 0, "name": "pci:0"}]
    # the device exists, so libedgetpu's own plugin entry point is called: it cannot open it
    result = out["load usb:0"]
    assert (result["error"], result["cause"]) == ("DelegateLoadError", None), result
    assert "Failed to open device 'usb:0': no Edge TPU is attached" in result["message"]
    assert "tflite_plugin_create_delegate returned NULL" in result["message"]


def test_coral_refuses_a_mismatched_tensorflow_naming_both(coral: Coral) -> None:
    # the platform package's real TFLite 2.14.1 runtime; libedgetpu 16.0 was built for 2.5.0
    proc = coral.project.node(CORAL_SCRIPT)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    result = out["load usb:0"]
    assert result["cause"] == "TFVersionMismatchError", result
    assert "built for TensorFlow 2.5.0" in result["message"]
    assert f"is TensorFlow {VERSION}" in result["message"]
    assert "TFLITE_EDGE_CORAL_ALLOW_TF_MISMATCH=1" in result["message"]


# ---------------------------------------------------------------------------------- QEMU

# (Debian arch, edgeforge target, npm's --cpu, the platform package npm must choose)
FOREIGN = [("arm64", "linux-aarch64", "arm64", "linux-arm64"),
           ("armhf", "linux-armv7l", "arm", "linux-arm")]
SMOKE_MODEL = "hand_landmark_lite"
TOLERANCE = 1e-3  # recipes/tflite.toml's smoke tolerance: other kernels than the host's


def debian_node(debian_arch: str, target: str, cache: Path) -> list[str]:
    """The argv that runs bookworm's own nodejs for ``debian_arch`` under qemu-user (a Debian
    root of edgeforge.smoke.roots, cached)."""
    from edgeforge.log import Logger
    from edgeforge.smoke import qemu
    from edgeforge.smoke.roots import ensure_root
    from edgeforge.toolchain import resolve_target

    emulator = qemu.qemu_command(resolve_target(target))
    root = ensure_root(debian_arch, "bookworm", ["nodejs"], cache, Logger(stream=sys.stderr),
                       emulator=emulator)
    return [*emulator, "-L", str(root.path), str(root.host_path("/usr/bin/node"))]


def npm_install_for(cpu: str, directory: Path, packages: Packages, deps: Path) -> Project:
    """tflite-edge installed as npm installs it on a linux/<cpu>/glibc machine."""
    return npm_install(directory, [f"tflite-edge@{VERSION}"], [packages.tarballs, deps],
                       ("--ignore-scripts", f"--cpu={cpu}", "--os=linux", "--libc=glibc"))


@pytest.mark.slow
@pytest.mark.parametrize(("debian_arch", "target", "cpu", "platform"), FOREIGN,
                         ids=[f[3] for f in FOREIGN])
def test_foreign_package_runs_with_debians_nodejs_under_qemu(
        debian_arch: str, target: str, cpu: str, platform: str, packages: Packages,
        deps: Path, project: Project, models: dict[str, Path], edgeforge_cache: Path,
        tmp_path: Path) -> None:
    """npm chooses the arm64/armhf packages for that machine (--cpu/--os/--libc, what npm
    reads from a foreign machine's Node), and bookworm's own nodejs (18) runs a real model
    through them under qemu-user; the outputs match the host's Python package."""
    if not (packages.dirs / f"@tflite-edge__{platform}").is_dir():
        pytest.skip(f"no {target} tflite_edge_lib wheel: set {CROSS_WHEEL_DIR_ENV} to a "
                    f"directory holding one (a cross TFLite build; CI sets it when it builds "
                    f"{target})")
    node = debian_node(debian_arch, target, edgeforge_cache)
    foreign = npm_install_for(cpu, tmp_path / "app", packages, deps)
    assert foreign.installed() == {"tflite-edge", f"@tflite-edge/{platform}", "koffi",
                                   f"@koromix/koffi-linux-{cpu}"}, foreign.output
    model = models[SMOKE_MODEL]
    write_inputs(project, model, tmp_path / "in", seed=11)
    proc = foreign.node(RUN_MODEL_JS, model, tmp_path / "in", tmp_path / "node", "path",
                        node=node, env=node_env(LC_ALL="C.UTF-8"))
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["library"]["source"] == f"@tflite-edge/{platform}"
    assert report["library"]["platform"] == platform
    lib = host_library(packages, tmp_path / "lib")
    run([sys.executable, "-c", RUN_MODEL_PY, model, tmp_path / "in", tmp_path / "python"],
        env=rt_support.runtime_env(str(lib)))
    target_out, host_out = read_outputs(tmp_path / "node"), read_outputs(tmp_path / "python")
    assert target_out.keys() == host_out.keys()
    for name, data in host_out.items():
        a, b = np.frombuffer(target_out[name], np.float32), np.frombuffer(data, np.float32)
        worst = float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b))))
        assert worst <= TOLERANCE, (name, worst)


@pytest.mark.slow
@pytest.mark.parametrize(("debian_arch", "target", "cpu", "platform"), FOREIGN,
                         ids=[f[3] for f in FOREIGN])
def test_debians_nodejs_maps_to_the_platform_and_loads_koffi_under_qemu(
        debian_arch: str, target: str, cpu: str, platform: str, packages: Packages,
        deps: Path, edgeforge_cache: Path, tmp_path: Path) -> None:
    """Without a cross TFLite wheel too: on bookworm's own arm64/armhf nodejs the platform
    function names the package npm would choose, and koffi's prebuilt binary for it loads
    (nothing to compile on the board)."""
    node = debian_node(debian_arch, target, edgeforge_cache)
    foreign = npm_install_for(cpu, tmp_path / "app", packages, deps)
    proc = foreign.node(
        "const te = require('tflite-edge'); const koffi = require('koffi');"
        "console.log(JSON.stringify({node: process.version, machine: te.currentMachine(),"
        " platform: te.platformFor().name, koffi: koffi.version}));",
        node=node, env=node_env(LC_ALL="C.UTF-8"))
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["node"].startswith("v18."), out  # bookworm's nodejs
    assert out["machine"]["cpu"] == cpu and out["machine"]["libc"] == "glibc"
    assert out["platform"] == platform
    assert out["koffi"] == "3.3.4"
