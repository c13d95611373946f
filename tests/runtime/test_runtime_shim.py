"""tflite-edge's shim (libtflite_edge_shim.so, recipes/tflite/shim/): C++ exceptions thrown
through TFLite's C API become the Python exceptions tflite_runtime raises, and the bound
fast path computes what the plain C API path computes.

The library under test is the pipeline's (``library`` fixture); the shim is the one the
pipeline staged beside it. Exceptions are thrown by a small C++ library built here the way
the pipeline builds libtensorflowlite_c (zig c++ with its static libc++, everything but
``TfLite*`` hidden by a version script; and host g++ with -static-libstdc++, with the
shim compiled from its source by the same g++), so the shim catches across two copies of
the C++ runtime, as it must with the real library.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rt_models
import rt_support
from edgeforge_testing import REPO
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from tflite_edge import _shim
from tflite_writer import Model, Op, Tensor

from edgeforge.builders.compilers import write_compilers
from edgeforge.toolchain import resolve_target

SHIM_SOURCE = REPO / "src" / "edgeforge" / "recipes" / "tflite" / "shim"
OP_RESHAPE = 22

THROWER = r"""
#include <new>
#include <stdexcept>
#include <system_error>
#include <vector>
struct CustomError : std::length_error { using std::length_error::length_error; };
struct Unrelated { int x; };
extern "C" int TfLiteThrow(void* what) {
  switch (reinterpret_cast<long>(what)) {
    case 1: throw std::bad_alloc();
    case 2: { std::vector<int> v; v.reserve(v.max_size() + 1); return 0; }
    case 3: { std::vector<int> v(2); return v.at(5); }
    case 4: throw std::runtime_error("tensor 3 is broken");
    case 5: throw CustomError("a derived length_error");
    case 6: throw std::system_error(std::make_error_code(std::errc::invalid_argument), "sys");
    case 7: throw Unrelated{1};
    case 8: throw std::overflow_error("too big");
    case 9: throw 42;
  }
  return 7;  // a TfLiteStatus, passed through
}
"""

# case -> (exception type, text in its message); 0: no exception, status 7
EXPECTED = {
    1: (MemoryError, "bad_alloc"),
    2: (ValueError, ""),
    3: (IndexError, ""),
    4: (RuntimeError, "tensor 3 is broken"),
    5: (ValueError, "a derived length_error"),
    6: (RuntimeError, "sys"),
    7: (RuntimeError, "C++ exception of type 9Unrelated"),
    8: (OverflowError, "too big"),
    9: (RuntimeError, "C++ exception of type i"),
}


def _shipped_shim(library: str) -> Path:
    path = Path(_shim.shim_path(library))
    assert path.is_file(), f"no {_shim.SHIM_NAME} beside {library}: the tflite recipe stages it"
    return path


def _build(compiler: list[str], source: Path, out: Path, lds: Path, extra: list[str]) -> Path:
    env = {**os.environ, "ZIG_GLOBAL_CACHE_DIR": str(rt_support.cache_root() / "zig"),
           "ZIG_LOCAL_CACHE_DIR": str(rt_support.cache_root() / "zig-local")}
    proc = subprocess.run([*compiler, "-std=c++17", "-O1", "-fPIC", "-shared", str(source),
                           "-o", str(out), f"-Wl,--version-script,{lds}", *extra],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.fixture(params=["zig", "gcc"])
def shim_and_thrower(request: pytest.FixtureRequest, library: str, tmp_path: Path
                     ) -> tuple[Path, Path]:
    src = tmp_path / "thrower.cc"
    src.write_text(THROWER)
    lds = tmp_path / "thrower.lds"
    lds.write_text("VERS_1.0 { global: TfLite*; local: *; };\n")
    if request.param == "zig":
        # edgeforge's own compiler wrappers for the host target (zig c++, its caches)
        host = resolve_target(None)
        if host.backend != "zig":
            pytest.skip(f"the host toolchain {host.name} does not build with zig")
        cxx = write_compilers(host, tmp_path / "bin", rt_support.cache_root()).cxx
        thrower = _build([str(cxx)], src, tmp_path / "libthrower.so", lds, [])
        # a copy: the shim's function table is per loaded file, the runtime uses the original
        shim = tmp_path / _shim.SHIM_NAME
        shutil.copy2(_shipped_shim(library), shim)
    else:
        gxx = shutil.which("g++")
        if gxx is None:
            pytest.skip("no g++ (apt-get install g++)")
        # libstdc++ static, the unwinder shared (libgcc_s.so.1, in every manylinux policy):
        # with -static-libgcc as well, each library's personality routine would call its
        # own copy of _Unwind_SetGR on the other copy's context, which aborts (measured).
        static = ["-static-libstdc++"]
        thrower = _build([gxx], src, tmp_path / "libthrower.so", lds, static)
        shim = _build([gxx, "-fvisibility=hidden"], SHIM_SOURCE / "tflite_edge_shim.cc",
                      tmp_path / _shim.SHIM_NAME, SHIM_SOURCE / "exports.lds", static)
    return shim, thrower


def test_cpp_exceptions_become_tflite_runtimes_python_exceptions(
        shim_and_thrower: tuple[Path, Path]) -> None:
    shim_path, thrower_path = shim_and_thrower
    thrower = ctypes.CDLL(str(thrower_path))
    # The thrower stands in for TfLiteInterpreterAllocateTensors (int fn(void*)).
    api = types.SimpleNamespace(**{name: None for name in _shim.HANDED_OVER})
    api.TfLiteInterpreterAllocateTensors = thrower.TfLiteThrow
    shim = _shim.Shim(str(shim_path), ctypes.CDLL(str(shim_path)), api)  # type: ignore[arg-type]
    assert shim.status(shim.allocate_tensors(None), "AllocateTensors") == 7
    for case, (exc_type, text) in EXPECTED.items():
        with pytest.raises(exc_type) as info:
            shim.status(shim.allocate_tensors(case), "AllocateTensors")
        assert type(info.value) is exc_type, (case, info.value)
        assert text in str(info.value), (case, str(info.value))
    # A function never handed over fails cleanly, naming itself.
    with pytest.raises(RuntimeError, match="TfLiteInterpreterInvoke was not handed"):
        shim.status(shim.invoke(None), "Invoke")


def test_shim_exports_only_its_c_api_and_needs_no_cxx_runtime(library: str) -> None:
    with _shipped_shim(library).open("rb") as f:
        elf = ELFFile(f)
        dynsym = elf.get_section_by_name(".dynsym")
        exported = sorted(s.name for s in dynsym.iter_symbols()
                          if s["st_shndx"] != "SHN_UNDEF" and s.name
                          and s["st_info"]["bind"] in ("STB_GLOBAL", "STB_WEAK"))
        needed = [t.needed for sec in elf.iter_sections() if isinstance(sec, DynamicSection)
                  for t in sec.iter_tags() if t.entry.d_tag == "DT_NEEDED"]
    assert exported == sorted(_shim._SIGNATURES), exported
    # It takes the C API by address, so it never loads a (second) libtensorflowlite_c; its
    # C++ runtime is inside it.
    assert not [n for n in needed if "tensorflowlite" in n or "stdc++" in n or "c++" in n], \
        needed


def _reshape_model() -> bytes:
    """y = reshape(x, s): x float32 [1,4], s int32 [2], both inputs: y is a dynamic tensor,
    allocated (and reshaped) by invoke."""
    tensors = [Tensor("x", np.float32, (1, 4)), Tensor("s", np.int32, (2,)),
               Tensor("y", np.float32, (1, 4))]
    return Model(tensors, [Op(OP_RESHAPE, [0, 1], [2])], [0, 1], [2]).to_bytes()


# Four rounds on the reshape model (y takes a new shape in rounds 1 and 3): as a script, so a
# subprocess with another library runs exactly the same code.
SEQUENCE = """
def run_sequence(model):
    import numpy as np
    from tflite_edge import Interpreter

    it = Interpreter(model_content=model, num_threads=1)
    it.allocate_tensors()
    out = []
    for step, value in enumerate(([2, 2], [4, 1], [4, 1], [1, 4])):
        it.set_tensor(0, np.arange(4, dtype=np.float32).reshape(1, 4) + step)
        it.set_tensor(1, np.array(value, np.int32))
        it.invoke()
        y = it.get_tensor(2)
        out.append([list(y.shape), y.ravel().tolist()])
    return out
"""


def _run_sequence(model: bytes) -> list[Any]:
    namespace: dict[str, Any] = {}
    exec(SEQUENCE, namespace)
    return namespace["run_sequence"](model)  # type: ignore[no-any-return]


def test_fast_path_follows_dynamic_outputs(library: str) -> None:
    from tflite_edge import Interpreter, _library

    if _shim.load_shim(_library.load_library()).shim is None:
        pytest.fail(f"no usable shim beside {library}")
    got = _run_sequence(_reshape_model())
    assert [g[0] for g in got] == [[2, 2], [4, 1], [4, 1], [1, 4]]
    for step, (_, values) in enumerate(got):
        assert values == [float(v + step) for v in range(4)]
    # Bound after the first invoke gave y its memory: the fast path was used and rebound.
    it = Interpreter(model_content=rt_models.add_model(4), num_threads=1)
    it.allocate_tensors()
    assert it._fast is not None
    assert set(it._fast.writable) == {0} and set(it._fast.readable) == {0, 1}
    it.set_tensor(0, np.ones((1, 4), np.float32))
    it.invoke()
    np.testing.assert_array_equal(it.get_tensor(1), np.full((1, 4), 2, np.float32))



@pytest.mark.parametrize("n", [4, 1024], ids=["16-bytes", "4096-bytes"])
def test_fast_set_tensor_keeps_every_check(library: str, n: int) -> None:
    """The bound set_tensor (a byte view up to _shim.SMALL_TENSOR bytes, numpy's copy above)
    takes any strides and byte order, copies (later changes to the value do not reach the
    tensor), and refuses another dtype or shape with tflite_runtime's message, leaving the
    tensor as it was; get_tensor hands out independent copies."""
    from tflite_edge import Interpreter, _library

    if _shim.load_shim(_library.load_library()).shim is None:
        pytest.fail(f"no usable shim beside {library}")
    it = Interpreter(model_content=rt_models.add_model(n), num_threads=1)
    it.allocate_tensors()
    assert 0 in it._fast.writable
    assert (it._fast.writable[0][2] is not None) == (n * 4 <= _shim.SMALL_TENSOR)
    base = np.arange(2 * n, dtype=np.float32)

    class Sub(np.ndarray):
        pass

    values = {
        "contiguous": base[:n].reshape(1, n),
        "strided": base[::2].reshape(1, n),  # every other element: not contiguous
        "fortran": np.asfortranarray(base[:n].reshape(1, n)),
        "big-endian": base[:n].reshape(1, n).astype(">f4"),
        "subclass": base[:n].reshape(1, n).view(Sub),
    }
    for what, value in values.items():
        want = value.astype(np.float32)
        it.set_tensor(0, value)
        value[...] = -7  # the tensor holds a copy
        it.invoke()
        np.testing.assert_array_equal(it.get_tensor(0), want, err_msg=what)
        np.testing.assert_array_equal(it.get_tensor(1), want + want, err_msg=what)
    out = it.get_tensor(1)
    out[...] = 0
    assert it.get_tensor(1).any(), "get_tensor returned the tensor's memory"
    before = it.get_tensor(0)
    for value, message in (
        (np.zeros((1, n), np.float64), "Got value of type FLOAT64 but expected type FLOAT32"),
        (np.zeros((1, n), np.int32), "Got value of type INT32 but expected type FLOAT32"),
        (np.zeros((n,), np.float32), "Dimension mismatch. Got 1 but expected 2"),
        (np.zeros((n, 1), np.float32), f"Dimension mismatch. Got {n} but expected 1"),
        (np.zeros((1, n + 1), np.float32), f"Got {n + 1} but expected {n}"),
    ):
        with pytest.raises(ValueError, match=message):
            it.set_tensor(0, value)
        np.testing.assert_array_equal(it.get_tensor(0), before)



def test_invoke_keeps_the_gil_only_for_a_tiny_model(library: str,
                                                  mediapipe: dict[str, Path]) -> None:
    """After _shim.PROBES timed invokes, a tiny model's invoke runs holding the GIL (the
    PyDLL run) and a model of tens of ms releases it (so two interpreters run in parallel:
    test_runtime_threads.py); allocate_tensors() times them again; results stay right."""
    from tflite_edge import Interpreter, _library

    if _shim.load_shim(_library.load_library()).shim is None:
        pytest.fail(f"no usable shim beside {library}")
    tiny = Interpreter(model_content=rt_models.add_model(4), num_threads=1)
    big = Interpreter(model_path=str(mediapipe["pose_landmark_full"]), num_threads=1)
    for it in (tiny, big):
        it.allocate_tensors()
        assert it._invoke == it._fast.probe
        for _ in range(_shim.PROBES):
            it.invoke()
    assert tiny._invoke is tiny._fast.run_holding_gil
    assert big._invoke is big._fast.run
    x = np.arange(4, dtype=np.float32).reshape(1, 4)
    tiny.set_tensor(0, x)
    tiny.invoke()
    np.testing.assert_array_equal(tiny.get_tensor(1), x + x)
    tiny.allocate_tensors()
    assert tiny._invoke == tiny._fast.probe



def test_shim_loads_under_pypy(library: str) -> None:
    """PyPy's ctypes has no PyDLL (the GIL-keeping run): the shim still loads there and every
    invoke releases the GIL (it once failed to load, silently leaving PyPy on the plain C
    API)."""
    from edgeforge_testing import skip_or_fail

    pypy, reason = rt_support.pypy_python()
    if pypy is None:
        skip_or_fail(reason)
    code = (
        "import json; import numpy as np\n"
        "from tflite_edge import Interpreter, _library, _shim\n"
        "state = _shim.load_shim(_library.load_library())\n"
        "it = Interpreter(model_content=bytes.fromhex(MODEL), num_threads=1)\n"
        "it.allocate_tensors()\n"
        "for _ in range(_shim.PROBES): it.invoke()\n"
        "print(json.dumps([state.problem, it._invoke is it._fast.run]))\n"
    ).replace("MODEL", repr(rt_models.add_model(4).hex()))
    proc = subprocess.run([str(pypy), "-c", code], capture_output=True, text=True,
                          env=rt_support.runtime_env(library), timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == [None, True]


CHECK = SEQUENCE + r"""
import json, sys
import numpy as np
from pathlib import Path
from tflite_edge import Interpreter, _library, _shim
res = {"shim": _shim.load_shim(_library.load_library()).problem or "ok",
       "reshape": run_sequence(Path(sys.argv[1]).read_bytes())}
it = Interpreter(model_path=sys.argv[2], num_threads=1)
it.allocate_tensors()
d = it.get_input_details()[0]
x = np.linspace(-1, 1, int(np.prod(d["shape"])), dtype=np.float32)
it.set_tensor(d["index"], x.reshape(d["shape"]))
it.invoke()
res["outputs"] = [it.get_tensor(o["index"]).ravel().tolist() for o in it.get_output_details()]
print(json.dumps(res))
"""


def test_plain_c_api_without_a_shim_computes_the_same(library: str, mediapipe: dict[str, Path],
                                                      tmp_path: Path) -> None:
    """A library without a shim beside it (a TFLITE_EDGE_LIBRARY built elsewhere) runs on
    the plain C API, says why, and computes exactly what the shimmed fast path does."""
    plain = tmp_path / "plain" / Path(library).name
    plain.parent.mkdir()
    shutil.copy2(library, plain)
    model = tmp_path / "reshape.tflite"
    model.write_bytes(_reshape_model())
    results = []
    for lib in (library, str(plain)):
        proc = subprocess.run([sys.executable, "-c", CHECK, str(model),
                               str(mediapipe["face_detection_short_range"])],
                              capture_output=True, text=True, env=rt_support.runtime_env(lib),
                              timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    shimmed, direct = results
    assert shimmed["shim"] == "ok"
    assert direct["shim"].startswith(f"no {_shim.SHIM_NAME} beside {plain}")
    assert shimmed["reshape"] == direct["reshape"]
    assert shimmed["outputs"] == direct["outputs"]
    env = rt_support.runtime_env(str(plain))
    doctor = subprocess.run([sys.executable, "-m", "tflite_edge", "doctor"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert f"no {_shim.SHIM_NAME} beside" in doctor.stdout, doctor.stdout
    assert os.path.isfile(plain)


OOM = r"""
import resource, sys
if sys.argv[1] == "tflite_edge":
    from tflite_edge.interpreter import Interpreter
else:
    from tflite_runtime.interpreter import Interpreter
it = Interpreter(model_path=sys.argv[2], num_threads=1)
it.allocate_tensors()
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
it.resize_tensor_input(0, [1 << 27, 4])  # 2 GiB of float32 input, 2 of output
try:
    it.allocate_tensors()
    print("allocated")
except Exception as exc:
    print(type(exc).__name__, exc)
"""


def test_real_bad_alloc_is_memory_error_as_in_tflite_runtime(
        library: str, reference_python: Path, tmp_path: Path) -> None:
    """TFLite's arena throws std::bad_alloc through TfLiteInterpreterAllocateTensors when a
    resized input cannot be allocated: tflite_runtime raises MemoryError, tflite-edge with
    its shim too, and without the shim the process aborts (why the shim exists)."""
    model = tmp_path / "add.tflite"
    model.write_bytes(rt_models.add_model(4, dynamic=True))
    plain = tmp_path / "plain" / Path(library).name
    plain.parent.mkdir()
    shutil.copy2(library, plain)
    runs = {}
    for name, runtime, lib in (("tflite_runtime", "tflite_runtime", None),
                               ("shim", "tflite_edge", library),
                               ("plain", "tflite_edge", str(plain))):
        env = rt_support.runtime_env(lib) if lib else dict(os.environ)
        runs[name] = subprocess.run([str(reference_python), "-c", OOM, runtime, str(model)],
                                    capture_output=True, text=True, env=env, timeout=300)
    for name in ("tflite_runtime", "shim"):
        assert runs[name].returncode == 0, runs[name].stderr[-2000:]
        assert runs[name].stdout.strip() == "MemoryError std::bad_alloc", runs[name].stdout
    assert runs["plain"].returncode < 0, (runs["plain"].returncode, runs["plain"].stdout)
    assert "std::bad_alloc" in runs["plain"].stderr
