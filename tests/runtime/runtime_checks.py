"""Lifetime and thread checks of tflite_edge, run as a subprocess under each Python
implementation the tests have (CPython, PyPy, the free-threaded CPython): a crash is a
failed check, not a dead pytest. Standalone on purpose (numpy and tflite_edge only, no
pytest).

Usage: python runtime_checks.py CHECK ARG... -> prints one JSON line with the results;
any failed assertion exits non-zero with its traceback.
"""

from __future__ import annotations

import gc
import json
import platform
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from tflite_edge import Interpreter, load_delegate

_UNSAFE = "reference to internal data"


def _churn() -> None:
    """Give freed memory back to the allocator and then reuse it, so a pointer into
    memory that was freed reads someone else's bytes."""
    for _ in range(3):
        gc.collect()
    junk = [bytes([i % 251]) * 65536 for i in range(300)]
    del junk
    gc.collect()


def _run(it: Interpreter, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    for d in it.get_input_details():
        it.set_tensor(d["index"], rng.uniform(-1, 1, size=d["shape"]).astype(d["dtype"]))
    it.invoke()
    return [it.get_tensor(d["index"]) for d in it.get_output_details()]


def model_bytes(model_path: str) -> dict[str, Any]:
    """model_content's bytes stay valid for the interpreter's life, whatever the caller
    does with its own object: dropped (bytes), or overwritten (bytearray)."""
    ref = Interpreter(model_path=model_path)
    ref.allocate_tensors()
    want = _run(ref)
    with open(model_path, "rb") as f:
        data = f.read()
    kinds: dict[str, Callable[[bytes], Any]] = {
        "bytes": bytes, "bytearray": bytearray, "memoryview": lambda b: memoryview(bytearray(b)),
    }
    done = []
    for kind, make in kinds.items():
        content = make(data)
        it = Interpreter(model_content=content)
        if isinstance(content, (bytearray, memoryview)):
            content[:] = bytes(len(content))  # the caller reuses its buffer
        del content
        _churn()
        it.allocate_tensors()
        got = _run(it)
        assert len(got) == len(want), kind
        for a, b in zip(got, want):  # noqa: B905 - zip(strict=) is 3.10+, PyPy 3.9 runs this
            np.testing.assert_array_equal(a, b, err_msg=kind)
        done.append(kind)
    return {"kinds": done}


def views(model_path: str) -> dict[str, Any]:
    """While any array derived from a tensor() view is alive, allocate_tensors(),
    resize_tensor_input() and invoke() raise RuntimeError; once it is gone they run."""
    it = Interpreter(model_path=model_path)  # input 0: float32 [1, 4], batch resizable
    it.allocate_tensors()
    derived: dict[str, Callable[[np.ndarray], Any]] = {
        "itself": lambda a: a,
        "reshape": lambda a: a.reshape(-1),
        "slice": lambda a: a[0, 1:],
        "dtype view": lambda a: a.view(np.int32),
        "view of a view": lambda a: a[0][::2].reshape(1, -1)[:, :1],
        "np.asarray": lambda a: np.asarray(a[0]),
        "memoryview": memoryview,
    }
    refused = {}
    for name, derive in derived.items():
        held = derive(it.tensor(0)())  # the array tensor() returned is gone at once
        calls: dict[str, Callable[[], None]] = {
            "allocate_tensors": it.allocate_tensors,
            "resize_tensor_input": lambda: it.resize_tensor_input(0, [3, 4]),
            "invoke": it.invoke,
        }
        for call_name, call in calls.items():
            try:
                call()
            except RuntimeError as exc:
                assert _UNSAFE in str(exc), (name, call_name, str(exc))
            else:
                raise AssertionError(f"{call_name}() ran while a {name} of a view was alive")
        refused[name] = sorted(calls)
        del held
        it.allocate_tensors()
        it.invoke()
    # Holding the function (not the array) is the supported way, and follows the memory.
    view = it.tensor(0)
    it.resize_tensor_input(0, [3, 4])
    it.allocate_tensors()
    view()[...] = 1.5
    it.invoke()
    np.testing.assert_array_equal(it.get_tensor(it.get_output_details()[0]["index"]),
                                  np.full((3, 4), 3.0, np.float32))
    return {"refused": refused}


def delegate_close(model_path: str, delegate_path: str) -> dict[str, Any]:
    """Delegate.close() is refused while an interpreter (or a view of one) uses the
    delegate, and works once they are gone."""
    delegate = load_delegate(delegate_path)
    it = Interpreter(model_path=model_path, experimental_delegates=[delegate])
    try:
        delegate.close()
    except RuntimeError as exc:
        assert "still used by 1 interpreter" in str(exc), str(exc)
    else:
        raise AssertionError("close() destroyed a delegate an interpreter uses")
    it.allocate_tensors()
    _run(it)  # the interpreter still runs with its delegate
    held = it.tensor(0)()  # keeps the C interpreter alive after the Interpreter goes
    del it
    _churn()
    try:
        delegate.close()
    except RuntimeError:
        pass
    else:
        raise AssertionError("close() destroyed a delegate while a view kept its interpreter")
    del held
    delegate.close()
    delegate.close()  # harmless twice
    try:
        Interpreter(model_path=model_path, experimental_delegates=[delegate])
    except ValueError as exc:
        assert "was closed" in str(exc), str(exc)
    else:
        raise AssertionError("a closed delegate was applied to a new interpreter")
    return {"closed": True}


def _invokes(it: Interpreter, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        it.invoke()
    return time.perf_counter() - t0


def _threads(target: Callable[[int], None], count: int) -> float:
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            target(i)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return wall


def _overlap(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> float:
    """Seconds during which an interval of ``a`` and one of ``b`` both ran."""
    return sum(max(0.0, min(e1, e2) - max(s1, s2)) for s1, e1 in a for s2, e2 in b)


def parallel(model_path: str, runs: str) -> dict[str, Any]:
    """Two Interpreters (one thread each) invoke at the same time: the C calls run
    without the GIL, so two threads take less wall time than the same work in a row, and
    the two threads' invoke() calls overlap in time (with the GIL held they could not:
    the other thread could not even start its call)."""
    n = int(runs)
    its = [Interpreter(model_path=model_path, num_threads=1) for _ in range(2)]
    for it in its:
        it.allocate_tensors()
        _run(it)
    single = min(_invokes(its[0], n), _invokes(its[0], n))
    serial = sum(_invokes(it, n) for it in its)
    spans: list[list[tuple[float, float]]] = [[], []]

    def timed(i: int) -> None:
        for _ in range(n):
            t0 = time.perf_counter()
            its[i].invoke()
            spans[i].append((t0, time.perf_counter()))

    wall = _threads(timed, 2)
    return {"single": single, "serial": serial, "parallel": wall, "runs": n,
            "overlap": _overlap(*spans)}


def one_interpreter(model_path: str, runs: str) -> dict[str, Any]:
    """Several threads calling one Interpreter: every call runs alone (the interpreter's
    lock). The C invoke of one thread never overlaps another's (timed around the C call
    itself, which invoke() makes under the lock), and calls of four threads interleaved
    keep shapes and values right."""
    n = int(runs)
    it = Interpreter(model_path=model_path, num_threads=1)
    it.allocate_tensors()
    want = _run(it, seed=1)
    single = min(_invokes(it, n), _invokes(it, n))
    c_invoke = it._invoke  # the C function invoke() calls
    spans: list[list[tuple[float, float]]] = [[], []]
    owner = threading.local()

    def timed_c_invoke(*args: Any) -> Any:
        t0 = time.perf_counter()
        status = c_invoke(*args)
        spans[owner.index].append((t0, time.perf_counter()))
        return status

    def run(i: int) -> None:
        owner.index = i
        _invokes(it, n)

    it._invoke = timed_c_invoke
    wall = _threads(run, 2)
    it._invoke = c_invoke
    assert len(spans[0]) == len(spans[1]) == n
    np.testing.assert_array_equal(_run(it, seed=1)[0], want[0])
    # Calls of many threads interleaved, none overlapping: shapes and values stay right.
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    sequence = threading.Lock()
    checked = [0] * 4

    def hammer(i: int) -> None:
        rng = np.random.default_rng(100 + i)
        for _ in range(max(3, n // 4)):
            x = rng.uniform(-1, 1, size=inp["shape"]).astype(inp["dtype"])
            it.get_input_details()
            it.get_tensor(out["index"])  # unlocked reads between others' calls
            with sequence:
                it.set_tensor(inp["index"], x)
                it.invoke()
                got = it.get_tensor(out["index"])
            assert got.shape == tuple(out["shape"])
            checked[i] += 1

    _threads(hammer, 4)
    return {"single": single, "two_threads": wall, "runs": n, "checked": sum(checked),
            "overlap": _overlap(*spans)}


def call_lock(rounds: str) -> dict[str, Any]:
    """The interpreter's lock (tflite_edge._lock.CallLock) under four threads, each giving up
    the GIL inside it, half of them through the inline form the hot paths use: no overlap,
    no waiter left behind, no lost increment."""
    from tflite_edge._lock import CallLock

    class Counting(CallLock):
        waits = 0

        def wait(self) -> None:
            type(self).waits += 1
            super().wait()

    lock = Counting()
    state = {"inside": 0, "most": 0, "count": 0}
    n = int(rounds)

    def work(i: int) -> None:
        for r in range(n):
            if r % 2:
                with lock:
                    step()
                continue
            try:  # the inline form of set_tensor/get_tensor/invoke
                lock.free.pop()
            except IndexError:
                lock.wait()
            try:
                step()
            finally:
                lock.free.append(True)
                if lock.waiting:
                    lock.wake()

    def step() -> None:
        state["inside"] += 1
        state["most"] = max(state["most"], state["inside"])
        time.sleep(0)  # gives up the GIL: the others find the lock taken
        state["count"] += 1
        state["inside"] -= 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a waiter was never woken"
    assert state["most"] == 1 and state["count"] == 4 * n, state
    assert Counting.waits > 0, "the threads never contended: the check proved nothing"
    assert lock.free == [True] and lock.waiting == 0 and not lock.locked()
    return {"rounds": n, "most": state["most"], "count": state["count"],
            "waits": Counting.waits}


def implementation() -> dict[str, Any]:
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    return {"implementation": platform.python_implementation(),
            "version": platform.python_version(), "gil": gil, "numpy": np.__version__}


CHECKS: dict[str, Callable[..., dict[str, Any]]] = {
    "model_bytes": model_bytes, "views": views, "delegate_close": delegate_close,
    "parallel": parallel, "one_interpreter": one_interpreter, "call_lock": call_lock,
}


def main() -> int:
    name, *args = sys.argv[1:]
    result = CHECKS[name](*args)
    result.update(implementation())
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
