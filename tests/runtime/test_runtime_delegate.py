"""External delegates: TFLite's plugin ABI with a real delegate library, loaded by path and
as an entry-point plugin installed with pip."""

from __future__ import annotations

import base64
import ctypes
import gc
import hashlib
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rt_models
import rt_support
from edgeforge_testing import skip_or_fail
from tflite_edge import Interpreter, load_delegate
from tflite_edge.delegates import Delegate, DelegateLoadError

HERE = Path(__file__).resolve().parent
PLUGIN_NAME = "edge-test"
PLUGIN_ALIAS = "libtflite_edge_test_delegate.so.1"


@pytest.fixture(scope="module")
def delegate_lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = rt_support.build_test_delegate(tmp_path_factory.mktemp("delegate"))
    if out is None:
        pytest.skip("no C compiler (cc/gcc) to build the test delegate")
    return out


def _counters(path: Path) -> dict[str, object]:
    lib = ctypes.CDLL(str(path))  # the same handle the delegate was loaded through
    lib.test_delegate_options.restype = ctypes.c_char_p
    return {"created": lib.test_delegate_created(), "destroyed": lib.test_delegate_destroyed(),
            "prepared": lib.test_delegate_prepared(),
            "options": lib.test_delegate_options().decode()}


def _add_model_output(it: Interpreter) -> np.ndarray:
    it.allocate_tensors()
    it.set_tensor(0, np.arange(4, dtype=np.float32).reshape(1, 4))
    it.invoke()
    return it.get_tensor(1)


def test_load_delegate_by_path_runs_and_is_destroyed(library: str, delegate_lib: Path) -> None:
    before = _counters(delegate_lib)
    delegate = load_delegate(str(delegate_lib), {"answer": 42, "mode": "fast"})
    assert isinstance(delegate, Delegate)
    assert delegate._get_native_delegate_pointer()
    it = Interpreter(model_content=rt_models.add_model(), experimental_delegates=[delegate])
    np.testing.assert_array_equal(_add_model_output(it), [[0, 2, 4, 6]])
    now = _counters(delegate_lib)
    assert now["created"] == before["created"] + 1
    assert now["prepared"] == before["prepared"] + 1
    assert now["options"] == "answer=42;mode=fast;"
    # The interpreter keeps its delegate alive; both go when the last reference does.
    del delegate
    gc.collect()
    assert _counters(delegate_lib)["destroyed"] == before["destroyed"]
    del it
    gc.collect()
    assert _counters(delegate_lib)["destroyed"] == before["destroyed"] + 1


def test_delegate_creation_failure_is_value_error_with_its_message(library: str,
                                                                   delegate_lib: Path) -> None:
    with pytest.raises(ValueError, match=f"Failed to load delegate from {delegate_lib}") as e:
        load_delegate(delegate_lib, {"fail_create": 1})
    assert "creation failed as asked" in str(e.value)
    assert isinstance(e.value, DelegateLoadError)


def test_delegate_prepare_failure_is_runtime_error(library: str, delegate_lib: Path) -> None:
    delegate = load_delegate(str(delegate_lib), {"fail_prepare": 1})
    with pytest.raises(RuntimeError) as e:
        Interpreter(model_content=rt_models.add_model(), experimental_delegates=[delegate])
    assert str(e.value)  # TFLite's own words about the failed delegate


def test_missing_or_wrong_delegate_library(library: str, tmp_path: Path) -> None:
    missing = tmp_path / "libmissing_delegate.so"
    with pytest.raises(ValueError, match=f"Failed to load delegate from {missing}"):
        load_delegate(str(missing))
    with pytest.raises(ValueError, match="not a TFLite external delegate"):
        load_delegate(library)  # a real shared library without the plugin symbols
    with pytest.raises(ValueError) as e:
        load_delegate("no-such-delegate")
    assert "Failed to load delegate from no-such-delegate" in str(e.value)
    assert "tflite_edge.delegates" in str(e.value)


def _write_plugin_wheel(dest: Path, so: Path) -> Path:
    """A small plugin distribution: a Python module with the DelegatePlugin protocol, the
    delegate library next to it, and the entry point tflite_edge.delegates."""
    pkg = "tflite_edge_testdelegate"
    dist = "tflite_edge_testdelegate-0.1"
    module = textwrap.dedent(f'''
        """Test delegate plugin for tflite-edge."""
        from pathlib import Path

        KNOWN = {{"answer", "mode", "fail_prepare", "fail_create"}}


        class Plugin:
            aliases = ("{PLUGIN_ALIAS}",)

            def library_path(self):
                return Path(__file__).parent / "libtflite_edge_test_delegate.so"

            def options_to_strings(self, options):
                unknown = set(options) - KNOWN
                if unknown:
                    raise ValueError("unknown option(s): " + ", ".join(sorted(unknown)))
                return {{k: str(v).lower() if isinstance(v, bool) else str(v)
                        for k, v in options.items()}}


        plugin = Plugin()
    ''')
    files = {
        f"{pkg}/__init__.py": module.encode(),
        f"{pkg}/libtflite_edge_test_delegate.so": so.read_bytes(),
        f"{dist}.dist-info/METADATA": (
            b"Metadata-Version: 2.1\nName: tflite-edge-testdelegate\nVersion: 0.1\n"),
        f"{dist}.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: tflite-edge-tests\nRoot-Is-Purelib: false\n"
            b"Tag: py3-none-any\n"),
        f"{dist}.dist-info/entry_points.txt": (
            f"[tflite_edge.delegates]\n{PLUGIN_NAME} = {pkg}:plugin\n").encode(),
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{dist}.dist-info/RECORD,,")
    files[f"{dist}.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = dest / "tflite_edge_testdelegate-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return wheel


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory, delegate_lib: Path) -> Path:
    work = tmp_path_factory.mktemp("plugin")
    wheel = _write_plugin_wheel(work, delegate_lib)
    site = work / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q",
                    "--disable-pip-version-check", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    assert (site / "tflite_edge_testdelegate" / "libtflite_edge_test_delegate.so").is_file()
    return site


def _run_with_plugin(code: str, library: str, site: Path) -> subprocess.CompletedProcess[str]:
    env = rt_support.runtime_env(library, extra_path=[str(site), str(HERE)])
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=env, timeout=120)


def test_plugin_found_by_entry_point_name_and_alias(library: str, plugin_site: Path) -> None:
    proc = _run_with_plugin(f"""
        import ctypes, numpy as np, rt_models
        from tflite_edge import Interpreter, load_delegate
        from tflite_edge.delegates import installed_plugins
        print([p.name for p in installed_plugins()])
        d = load_delegate("{PLUGIN_NAME}", {{"answer": 7, "mode": True}})
        print(d.plugin, d.library)
        it = Interpreter(model_content=rt_models.add_model(), experimental_delegates=[d])
        it.allocate_tensors()
        it.set_tensor(0, np.ones((1, 4), np.float32))
        it.invoke()
        print(it.get_tensor(1).tolist())
        lib = ctypes.CDLL(d.library)
        lib.test_delegate_options.restype = ctypes.c_char_p
        print(lib.test_delegate_options().decode(), lib.test_delegate_prepared())
        print(load_delegate("{PLUGIN_ALIAS}").plugin)
        try:
            load_delegate("{PLUGIN_NAME}", {{"colour": "red"}})
        except ValueError as e:
            print("ERR", str(e).replace("\\n", " | "))
    """, library, plugin_site)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"['{PLUGIN_NAME}']"
    assert lines[1].startswith(f"{PLUGIN_NAME} {plugin_site}")
    assert lines[2] == "[[2.0, 2.0, 2.0, 2.0]]"
    assert lines[3] == "answer=7;mode=true; 1"
    assert lines[4] == PLUGIN_NAME
    assert lines[5].startswith(f"ERR Failed to load delegate from {PLUGIN_NAME} (plugin")
    assert "unknown option(s): colour" in lines[5]


def test_doctor_lists_the_plugin(library: str, plugin_site: Path) -> None:
    proc = _run_with_plugin("""
        import sys
        from tflite_edge.doctor import main
        sys.exit(main())
    """, library, plugin_site)
    assert proc.returncode == 0, proc.stderr
    assert "delegate plugins (entry points 'tflite_edge.delegates'): 1" in proc.stdout
    assert f"{PLUGIN_NAME} (tflite_edge_testdelegate:plugin from tflite-edge-testdelegate)" \
        in proc.stdout
    assert str(plugin_site / "tflite_edge_testdelegate") in proc.stdout


@pytest.fixture(scope="module")
def dummy_delegate_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """TFLite's own sample external delegate (delegates/utils/dummy_delegate), as the pipeline
    builds and packages it (recipes/tflite-dummy-delegate.toml), installed by pip."""
    wheel_dir = os.environ.get("EDGEFORGE_DUMMY_DELEGATE_WHEEL_DIR")
    if not wheel_dir:
        skip_or_fail("EDGEFORGE_DUMMY_DELEGATE_WHEEL_DIR is not set (build it: "
                     "edgeforge build tflite-dummy-delegate --dist DIR)")
    site = tmp_path_factory.mktemp("dummy") / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q",
                    "--disable-pip-version-check", "--find-links", wheel_dir, "--target",
                    str(site), "tflite-edge-dummy-delegate"], check=True, capture_output=True)
    return site


def test_tflite_dummy_delegate_plugin(library: str, dummy_delegate_site: Path) -> None:
    proc = _run_with_plugin("""
        import numpy as np
        import rt_models
        from tflite_edge import Interpreter, load_delegate
        from tflite_edge.delegates import installed_plugins

        def run(delegate):
            it = Interpreter(model_content=rt_models.add_model(),
                             experimental_delegates=[delegate])
            it.allocate_tensors()
            it.set_tensor(0, np.arange(4, dtype=np.float32).reshape(1, 4))
            it.invoke()
            return it.get_tensor(1).tolist()

        print([p.name for p in installed_plugins()])
        # allowed_builtin_code=-1: the delegate claims no node; the CPU kernels run.
        print(run(load_delegate("tflite-dummy", {"allowed_builtin_code": -1})))
        # It claims ADD (builtin code 0) and reports an error in Eval: invoke raises.
        try:
            run(load_delegate("tflite-dummy", {"allowed_builtin_code": 0,
                                               "error_during_invoke": True}))
        except RuntimeError as e:
            print("invoke failed:", type(e).__name__)
        for options in ({"allowed_builtin_code": "not-a-number"}, {"colour": "red"}):
            try:
                load_delegate("tflite-dummy", options)
            except ValueError as e:
                print("ERR", str(e).replace("\\n", " | "))
    """, library, dummy_delegate_site)
    assert proc.returncode == 0, proc.stderr
    # TFLite's tools/logging.h writes the delegate's INFO lines to stdout
    lines = [line for line in proc.stdout.splitlines() if not line.startswith("INFO: ")]
    assert lines[0] == "['tflite-dummy']"
    assert lines[1] == "[[0.0, 2.0, 4.0, 6.0]]"
    assert lines[2] == "invoke failed: RuntimeError"
    assert lines[3].startswith("ERR Failed to load delegate from ")
    assert "libdummy_external_delegate.so" in lines[3]
    assert "tflite_plugin_create_delegate returned NULL" in lines[3]
    assert "unknown option(s) colour" in lines[4]
