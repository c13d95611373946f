"""The lock that serializes the calls on one Interpreter (docs/runtime.md, Threads).

A mutex whose free state is one token in a list: taking it is ``free.pop()``, giving it
back ``free.append(True)``, both atomic list operations (under the GIL, under PyPy's, and
with the per-object locks of a free-threaded CPython).
Uncontended, taking and giving it back costs about half of ``threading.RLock``'s
``acquire()``/``release()`` and a quarter of ``with`` on one (CPython 3.11:
``bench/bench_invoke.py --micro``, docs/benchmarks.md 3b); ``with`` on an RLock was most
of what a ``set_tensor`` of a few floats cost. A thread that finds the list empty waits
on a condition variable until a release wakes it, so waiting burns no CPU.

The interpreter's hot paths (``set_tensor``, ``get_tensor``, ``invoke``) inline the two
list operations; everything else uses ``with lock:``. It is not reentrant: a thread that
holds it and takes it again waits forever, so no code under it may call a method that
takes it.
"""

from __future__ import annotations

import threading
from typing import Any


class CallLock:
    """A non-reentrant mutex with an allocation-free fast path (see the module)."""

    __slots__ = ("_cond", "free", "waiting")

    def __init__(self) -> None:
        self.free: list[bool] = [True]  # one token while nobody holds the lock
        self.waiting = 0  # threads inside wait(); changed under _cond only
        self._cond = threading.Condition(threading.Lock())

    def acquire(self) -> None:
        try:
            self.free.pop()
        except IndexError:
            self.wait()

    def wait(self) -> None:
        """Take the token, waiting for a release while another thread holds it."""
        with self._cond:
            self.waiting += 1
            try:
                while True:
                    try:
                        self.free.pop()
                        return
                    except IndexError:
                        self._cond.wait()
            finally:
                self.waiting -= 1

    def release(self) -> None:
        self.free.append(True)
        if self.waiting:
            self.wake()

    def wake(self) -> None:
        """After a release seen by a waiter (``waiting`` is read after the token is back:
        a waiter that counted itself in before that read is woken, one that did so after
        finds the token)."""
        with self._cond:
            self._cond.notify()

    def locked(self) -> bool:
        return not self.free

    def __enter__(self) -> CallLock:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()
