"""tflite_edge's API on the real libtensorflowlite_c, with models checked against numpy."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import rt_models
import rt_support
import tflite_edge
import tflite_edge.interpreter as tflite
from edgeforge_testing import skip_or_fail
from tflite_edge import Interpreter


@pytest.fixture(scope="module")
def int8() -> tuple[bytes, dict[str, object]]:
    return rt_models.int8_model()


def _run_py(code: str, library: str | None, **env_extra: str) -> subprocess.CompletedProcess[str]:
    env = rt_support.runtime_env(library)
    if library is None:
        env.pop(rt_support.LIBRARY_ENV, None)
    env.update(env_extra)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=env, timeout=120)


def test_both_import_styles_name_the_same_api() -> None:
    assert tflite.Interpreter is tflite_edge.Interpreter
    assert tflite.load_delegate is tflite_edge.load_delegate
    src = Path(tflite_edge.__file__).parent
    for py in src.glob("*.py"):  # the runtime stands apart from the build system
        assert not re.search(r"^\s*(import|from)\s+edgeforge", py.read_text(), re.M), py.name


def test_library_comes_from_the_env_var(library: str) -> None:
    proc = _run_py("""
        import tflite_edge.interpreter as t
        info = t.library_info()
        print(info["source"], info["path"], info["version"])
    """, library)
    assert proc.returncode == 0, proc.stderr
    source, path, version = proc.stdout.split()
    assert source == "TFLITE_EDGE_LIBRARY"
    assert Path(path) == Path(library).resolve()
    assert version.startswith("2.14")


def test_env_var_naming_a_missing_file_is_an_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "libtensorflowlite_c.so"
    proc = _run_py("""
        from tflite_edge import Interpreter, LibraryNotFoundError
        try:
            Interpreter(model_content=b"x" * 64)
        except LibraryNotFoundError as e:
            assert isinstance(e, ImportError)
            print(e)
    """, str(missing))
    assert proc.returncode == 0, proc.stderr
    assert str(missing) in proc.stdout and "no such file" in proc.stdout
    assert "pip install tflite-edge-lib" in proc.stdout


def test_env_var_naming_a_non_library_is_an_error_naming_it(tmp_path: Path) -> None:
    bogus = tmp_path / "libtensorflowlite_c.so"
    bogus.write_text("not an ELF file")
    proc = _run_py("""
        from tflite_edge import Interpreter, LibraryNotFoundError
        try:
            Interpreter(model_content=b"x" * 64)
        except LibraryNotFoundError as e:
            print(e)
    """, str(bogus))
    assert proc.returncode == 0, proc.stderr
    assert f"cannot load {bogus}" in proc.stdout


def test_no_library_at_all_says_how_to_get_one() -> None:
    # No env var and no tflite-edge-lib (its import is blocked): an ImportError that says
    # how to get a library.
    proc = _run_py("""
        import sys
        sys.modules["tflite_edge_lib"] = None
        from tflite_edge import Interpreter
        try:
            Interpreter(model_content=b"x" * 64)
        except ImportError as e:
            print(e)
    """, None)
    assert proc.returncode == 0, proc.stderr
    assert "tflite-edge-lib package is not installed" in proc.stdout
    assert "pip install tflite-edge-lib" in proc.stdout and "TFLITE_EDGE_LIBRARY" in proc.stdout


def test_tflite_edge_lib_library_path_is_the_bundled_file(tmp_path: Path) -> None:
    import tflite_edge_lib

    assert tflite_edge_lib.library_dir() == Path(tflite_edge_lib.__file__).parent / "lib"
    if not (tflite_edge_lib.library_dir() / "libtensorflowlite_c.so").exists():
        with pytest.raises(FileNotFoundError, match="TFLITE_EDGE_LIBRARY"):
            tflite_edge_lib.library_path()


def test_int8_model_matches_numpy_reference(library: str, int8: tuple[bytes, dict]) -> None:
    model, consts = int8
    it = Interpreter(model_content=model, num_threads=1)
    it.allocate_tensors()
    (inp,) = it.get_input_details()
    assert inp["dtype"] is np.int8 and inp["name"] == "x" and inp["index"] == 0
    assert inp["quantization"] == (pytest.approx(0.05), -3)
    rng = np.random.default_rng(3)
    worst = 0
    for _ in range(20):
        x = rng.integers(-128, 128, size=(1, 2, 2, 3)).astype(np.int8)
        it.set_tensor(inp["index"], x)
        it.invoke()
        ref = rt_models.int8_reference(x, consts)
        for d in it.get_output_details():
            out = it.get_tensor(d["index"])
            assert out.dtype == np.int8 and out.shape == ref[d["name"]].shape
            worst = max(worst, int(np.abs(out.astype(int) - ref[d["name"]]).max()))
    # Tolerance: TFLite requantizes in fixed point; at most 1 LSB from float64 rounding.
    assert worst <= 1


def test_per_channel_quantization_details(library: str, int8: tuple[bytes, dict]) -> None:
    model, consts = int8
    it = Interpreter(model_content=model)
    details = {d["name"]: d for d in it.get_tensor_details()}
    w = details["conv_w"]
    qp = w["quantization_parameters"]
    assert qp["scales"].dtype == np.float32 and qp["zero_points"].dtype == np.int32
    np.testing.assert_array_equal(qp["scales"], np.array(consts["conv_scales"], np.float32))
    np.testing.assert_array_equal(qp["zero_points"], [0, 0, 0, 0])
    assert qp["quantized_dimension"] == 0
    assert w["quantization"] == (0.0, 0)  # TFLite sets the legacy pair for per-tensor only
    assert details["x"]["sparsity_parameters"] == {}
    unq = rt_models.dtypes_model()
    d0 = Interpreter(model_content=unq).get_input_details()[0]
    assert d0["quantization"] == (0.0, 0)
    assert d0["quantization_parameters"]["scales"].shape == (0,)


@pytest.mark.parametrize("name", list(rt_models.DTYPES))
def test_every_dtype_round_trips(library: str, name: str) -> None:
    it = Interpreter(model_content=rt_models.dtypes_model())
    it.allocate_tensors()
    ins = {d["name"]: d for d in it.get_input_details()}
    outs = {d["name"]: d for d in it.get_output_details()}
    dt = rt_models.DTYPES[name]
    for other, odt in rt_models.DTYPES.items():  # every input must be set: zeros elsewhere
        it.set_tensor(ins[f"in_{other}"]["index"], np.zeros((2, 3), odt))
    value = rt_models.dtype_values(dt, seed=5)
    assert ins[f"in_{name}"]["dtype"] is dt
    it.set_tensor(ins[f"in_{name}"]["index"], value)
    it.invoke()
    back = it.get_tensor(outs[f"out_{name}"]["index"])
    assert back.dtype == np.dtype(dt)
    np.testing.assert_array_equal(back, value)
    np.testing.assert_array_equal(it.get_tensor(outs[f"f32_{name}"]["index"]),
                                  value.astype(np.float32))
    view = it.tensor(outs[f"out_{name}"]["index"])()
    np.testing.assert_array_equal(view, value)


@pytest.mark.parametrize("name", list(rt_models.ELEMENTWISE))
def test_elementwise_kernels_match_numpy(library: str, name: str) -> None:
    """The builtin elementwise kernels bench_runtime.py times (recipes/tflite/size.cmake keeps
    some of them at -O3 in an -Os library): exact results on 1,000 elements (vector bodies and
    tails), non-zero divisors."""
    op = rt_models.ELEMENTWISE[name]
    rng = np.random.default_rng(3)
    it = Interpreter(model_content=op.model(1000), num_threads=1)
    it.allocate_tensors()
    values = []
    for d, dt in zip(it.get_input_details(), op.inputs, strict=True):
        assert d["dtype"] is dt
        if dt is np.bool_:
            v = rng.integers(0, 2, size=1000).astype(np.bool_)
        else:
            v = rng.integers(1, 30000, size=1000) * rng.choice([-1, 1], size=1000)
            v = (v / 64).astype(dt) if dt is np.float32 else v.astype(dt)
        it.set_tensor(d["index"], v)
        values.append(v)
    it.invoke()
    got = it.get_tensor(it.get_output_details()[0]["index"])
    want = op.reference(*values)
    assert got.dtype == np.dtype(op.output)
    np.testing.assert_array_equal(got, want.astype(op.output))


def test_cast_chain_matches_numpy(library: str) -> None:
    it = Interpreter(model_content=rt_models.cast_chain_model(1000), num_threads=1)
    it.allocate_tensors()
    x = np.random.default_rng(4).integers(0, 2, size=1000).astype(np.bool_)
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    np.testing.assert_array_equal(it.get_tensor(it.get_output_details()[0]["index"]),
                                  x.astype(np.float32))


def test_tensor_returns_a_writable_view_without_copy(library: str) -> None:
    it = Interpreter(model_content=rt_models.add_model(8))
    it.allocate_tensors()
    x_view = it.tensor(0)
    x_view()[:] = np.arange(8, dtype=np.float32)  # write the input in place
    it.invoke()
    expected = 2 * np.arange(8, dtype=np.float32).reshape(1, 8)
    np.testing.assert_array_equal(it.get_tensor(1), expected)
    a, b = it.tensor(1)(), it.tensor(1)()
    assert a.ctypes.data == b.ctypes.data  # the tensor's own memory, not a copy
    got = it.get_tensor(1)
    assert got.ctypes.data != a.ctypes.data  # get_tensor copies
    # While a view is alive, invoke/allocate refuse (tflite_runtime's rule); holding the
    # view also keeps the interpreter's memory alive.
    with pytest.raises(RuntimeError, match="reference to internal data"):
        it.invoke()
    del a, b
    it.invoke()
    y = it.tensor(1)()
    del it
    np.testing.assert_array_equal(y, expected)


def test_set_tensor_checks_type_and_shape_like_tflite_runtime(library: str) -> None:
    it = Interpreter(model_content=rt_models.add_model(4))
    it.allocate_tensors()
    with pytest.raises(ValueError, match="Got value of type FLOAT64 but expected type FLOAT32"):
        it.set_tensor(0, np.zeros((1, 4)))
    with pytest.raises(ValueError, match=r"Dimension mismatch\. Got 1 but expected 2"):
        it.set_tensor(0, np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="Got 3 but expected 4 for dimension 1"):
        it.set_tensor(0, np.zeros((1, 3), np.float32))
    with pytest.raises(ValueError, match="Invalid tensor index 99"):
        it.get_tensor(99)
    it.set_tensor(0, np.zeros((1, 4), np.float32)[:, ::-1].astype(">f4"))  # any layout/order
    big = np.array([[1, 2, 3, 4]], dtype=">f4")
    it.set_tensor(0, big)
    it.invoke()
    np.testing.assert_array_equal(it.get_tensor(1), [[2, 4, 6, 8]])


def test_unallocated_tensors_say_so(library: str) -> None:
    it = Interpreter(model_content=rt_models.add_model(4))
    with pytest.raises(ValueError, match="allocate_tensors"):
        it.get_tensor(1)
    with pytest.raises(RuntimeError, match="not ready"):
        it.invoke()


def test_resize_dynamic_input_and_strict(library: str) -> None:
    it = Interpreter(model_content=rt_models.add_model(4, dynamic=True))
    d = it.get_input_details()[0]
    np.testing.assert_array_equal(d["shape_signature"], [-1, 4])
    it.resize_tensor_input(d["index"], [3, 4], strict=True)
    it.allocate_tensors()
    np.testing.assert_array_equal(it.get_input_details()[0]["shape"], [3, 4])
    it.set_tensor(0, np.ones((3, 4), np.float32))
    it.invoke()
    np.testing.assert_array_equal(it.get_tensor(1), np.full((3, 4), 2, np.float32))
    with pytest.raises(RuntimeError, match="only allows mutating unknown dimensions"):
        it.resize_tensor_input(0, [3, 5], strict=True)
    it.resize_tensor_input(0, [2, 5])  # not strict: any shape, as tflite_runtime
    it.allocate_tensors()
    assert it.get_tensor(1).shape == (2, 5)
    # Not an input: the op that writes tensor 1 sets its shape at allocation, as in
    # tflite_runtime; until then invoke() refuses with TFLite's words.
    it.resize_tensor_input(1, [7, 7])
    with pytest.raises(RuntimeError, match="Invoke called on model that is not ready"):
        it.invoke()
    it.allocate_tensors()
    it.invoke()
    assert it.get_tensor(1).shape == (2, 5)
    with pytest.raises(RuntimeError, match="tensor 99 does not exist"):
        it.resize_tensor_input(99, [1, 4])
    weights = Interpreter(model_content=rt_models.int8_model()[0])
    constant = next(d["index"] for d in weights.get_tensor_details() if d["name"] == "conv_w")
    with pytest.raises(RuntimeError, match="Attempting to resize a fixed-size tensor"):
        weights.resize_tensor_input(constant, [1, 1])


def test_repeated_set_and_get_follow_shape_and_memory_changes(library: str) -> None:
    # set_tensor/get_tensor reuse arrays over a tensor's memory between calls; the shape
    # can change with the same byte count and even the same data pointer: a resize, and a
    # dynamic output whose shape invoke() sets (RESHAPE by a shape given as an input).
    from tflite_writer import Model, Op, Tensor

    it = Interpreter(model_content=rt_models.add_model(4, dynamic=True))
    it.allocate_tensors()
    x = np.arange(4, dtype=np.float32).reshape(1, 4)
    for _ in range(2):
        it.set_tensor(0, x)
        it.invoke()
        np.testing.assert_array_equal(it.get_tensor(1), 2 * x)
    with pytest.raises(ValueError, match="Got value of type FLOAT64 but expected type FLOAT32"):
        it.set_tensor(0, x.astype(np.float64))
    it.resize_tensor_input(0, [2, 2])  # the same 16 bytes
    it.allocate_tensors()
    with pytest.raises(ValueError, match="Got 1 but expected 2 for dimension 0 of input 0"):
        it.set_tensor(0, x)
    assert it.get_tensor(1).shape == (2, 2)
    it.set_tensor(0, x.reshape(2, 2) + 1)
    it.invoke()
    np.testing.assert_array_equal(it.get_tensor(1), 2 * (x.reshape(2, 2) + 1))

    reshape = Model([Tensor("x", np.float32, (1, 4)), Tensor("shape", np.int32, (2,)),
                     Tensor("y", np.float32, (1, 4))],
                    [Op(22, [0, 1], [2])], [0, 1], [2]).to_bytes()  # 22: RESHAPE
    it = Interpreter(model_content=reshape)
    it.allocate_tensors()
    it.set_tensor(0, x)
    for shape in ([2, 2], [4, 1], [1, 4], [2, 2]):
        it.set_tensor(1, np.array(shape, np.int32))
        it.invoke()
        np.testing.assert_array_equal(it.get_tensor(2), x.reshape(shape))


def test_signature_runner(library: str, int8: tuple[bytes, dict]) -> None:
    model, consts = int8
    it = Interpreter(model_content=model)
    assert it.get_signature_list() == {"serving_default": {"inputs": ["x"],
                                                           "outputs": ["c", "y"]}}
    runner = it.get_signature_runner()
    assert set(runner.get_input_details()) == {"x"}
    assert runner.get_output_details()["y"]["index"] == 6
    x = np.random.default_rng(9).integers(-128, 128, size=(1, 2, 2, 3)).astype(np.int8)
    out = runner(x=x)
    ref = rt_models.int8_reference(x, consts)
    assert set(out) == {"c", "y"}
    assert np.abs(out["y"].astype(int) - ref["y"]).max() <= 1
    with pytest.raises(ValueError, match="Invalid Input name"):
        runner(z=x)
    with pytest.raises(ValueError, match="Invalid signature_key"):
        it.get_signature_runner("nope")
    with pytest.raises(ValueError, match="Invalid number of inputs"):
        runner()


def test_tflite_errors_come_back_as_exceptions(library: str, mediapipe: dict[str, Path]
                                              ) -> None:
    it = Interpreter(model_path=str(mediapipe["selfie_segmentation"]))
    with pytest.raises(RuntimeError, match="unresolved custom op: Convolution2DTransposeBias"):
        it.allocate_tensors()
    m, _ = rt_models.int8_model()
    it = Interpreter(model_content=m)
    it.resize_tensor_input(0, [1, 2, 2, 7])  # 7 channels against 3-channel filters
    with pytest.raises(RuntimeError, match="CONV_2D"):
        it.allocate_tensors()


def test_constructor_arguments_like_tflite_runtime(library: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must be specified"):
        Interpreter()
    with pytest.raises(ValueError, match="Can't both provide"):
        Interpreter(model_path="a", model_content=b"b")
    with pytest.raises(ValueError, match="num_threads should >= 1"):
        Interpreter(model_content=rt_models.add_model(), num_threads=0)
    with pytest.raises(ValueError, match="Could not open"):
        Interpreter(model_path=str(tmp_path / "missing.tflite"))
    path = tmp_path / "add.tflite"
    path.write_bytes(rt_models.add_model())
    it = Interpreter(model_path=path, num_threads=2)  # a path object works too
    it.allocate_tensors()
    it.set_tensor(0, np.ones((1, 4), np.float32))
    it.invoke()
    np.testing.assert_array_equal(it.get_tensor(1), [[2, 2, 2, 2]])


@pytest.mark.parametrize("cut", [0.02, 0.5, 0.97])
def test_truncated_real_model_raises_value_error(library: str, mediapipe: dict[str, Path],
                                                 cut: float) -> None:
    data = mediapipe["face_detection_short_range"].read_bytes()
    with pytest.raises(ValueError, match="Could not create a TFLite model"):
        Interpreter(model_content=data[: int(len(data) * cut)])


def test_garbage_and_short_models_raise_value_error(library: str) -> None:
    for data in (b"\0" * 7, b"\xff" * 64, b"TFL3" * 100, bytes(range(256)) * 4):
        with pytest.raises(ValueError):
            Interpreter(model_content=data)


def test_doctor_reports_library_tags_and_plugins(library: str) -> None:
    env = rt_support.runtime_env(library)
    proc = subprocess.run([sys.executable, "-m", "tflite_edge", "doctor"], capture_output=True,
                          text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"library: {Path(library).resolve()}" in out
    assert "loaded from: TFLITE_EDGE_LIBRARY" in out
    assert "TfLiteVersion(): 2.14" in out
    assert "py3-none-manylinux" in out or "py3-none-linux" in out
    assert "delegate plugins" in out
    # The interpreter, numpy, the C library and the library's build.
    import hashlib
    import platform

    assert f"python: CPython {platform.python_version()}" in out
    assert "free-threaded: no" in out
    assert f"numpy: {np.__version__} " in out
    libc, version = platform.libc_ver()
    assert f"libc {libc} {version}" in out
    assert "XNNPACK delegate: built in" in out
    digest = hashlib.sha256(Path(library).read_bytes()).hexdigest()
    assert f"bytes, sha256 {digest}" in out


def test_doctor_under_pypy_names_it(library: str) -> None:
    python, reason = rt_support.pypy_python()
    if python is None:
        skip_or_fail(reason)
    proc = subprocess.run([str(python), "-m", "tflite_edge", "doctor"], capture_output=True,
                          text=True, env=rt_support.runtime_env(library), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^python: PyPy 3\.\d+\.\d+ ", proc.stdout, re.M), proc.stdout
    assert "free-threaded: no" in proc.stdout
    assert re.search(r"^numpy: \d+\.\d+", proc.stdout, re.M), proc.stdout


def test_doctor_without_library_exits_nonzero_with_reason(tmp_path: Path) -> None:
    env = rt_support.runtime_env(str(tmp_path / "missing.so"))
    proc = subprocess.run([sys.executable, "-m", "tflite_edge", "doctor"], capture_output=True,
                          text=True, env=env, timeout=60)
    assert proc.returncode == 1
    assert "NOT LOADED" in proc.stdout and "missing.so" in proc.stdout


def test_doctor_fallback_tags_without_packaging() -> None:
    from tflite_edge import doctor

    tags = list(doctor._fallback_platform_tags())
    assert tags and tags[-1].startswith("linux_")
    if sys.platform.startswith("linux") and doctor.platform.libc_ver()[0] == "glibc":
        assert any(t.startswith("manylinux_2_17_") for t in tags)


def test_interpreter_is_freed_without_the_garbage_collector(library: str) -> None:
    import gc
    import weakref

    gc.disable()
    try:
        it = Interpreter(model_content=rt_models.add_model())
        it.allocate_tensors()
        it.get_input_details()
        it.get_signature_runner()
        ref = weakref.ref(it)
        del it
        assert ref() is None  # no reference cycle keeps the C interpreter alive
    finally:
        gc.enable()


def test_scalar_tensors_read_as_numpy_scalars(library: str) -> None:
    from tflite_writer import Model, Op, Table, Tensor

    model = Model([Tensor("x", np.float32, ()), Tensor("y", np.float32, ())],
                  [Op(0, [0, 0], [1], 11, Table())], [0], [1]).to_bytes()
    it = Interpreter(model_content=model)
    it.allocate_tensors()
    it.set_tensor(0, np.float32(1.5))
    it.invoke()
    y = it.get_tensor(1)
    assert isinstance(y, np.float32) and y == 3.0
    assert it.get_output_details()[0]["shape"].shape == (0,)


def test_xnnpack_is_the_default_delegate_as_in_tflite_runtime(library: str) -> None:
    # The C API's op resolver applies no default delegate; tflite-edge applies XNNPACK at
    # the first allocation, and BUILTIN_WITHOUT_DEFAULT_DELEGATES leaves it out. TFLite
    # logs the delegate's creation on stderr.
    code = """
        import sys, rt_models
        from tflite_edge.interpreter import Interpreter, OpResolverType
        kind = OpResolverType[sys.argv[1]]
        it = Interpreter(model_content=rt_models.add_model(), experimental_op_resolver_type=kind)
        it.allocate_tensors()
        it.invoke()
    """
    env = rt_support.runtime_env(library, extra_path=[str(Path(__file__).parent)])
    logs = {}
    for kind in ("AUTO", "BUILTIN_WITHOUT_DEFAULT_DELEGATES"):
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code), kind],
                              capture_output=True, text=True, env=env, timeout=60)
        assert proc.returncode == 0, proc.stderr
        logs[kind] = proc.stderr
    assert "XNNPACK" in logs["AUTO"]
    assert "XNNPACK" not in logs["BUILTIN_WITHOUT_DEFAULT_DELEGATES"]
