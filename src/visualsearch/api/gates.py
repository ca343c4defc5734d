"""Bounded concurrency for the expensive things a request can start: decoding images, fetching URLs.

A decode of a large picture takes hundreds of megabytes for a second or more; a
URL fetch can hold a thread for its whole deadline. Without a bound, a handful
of hostile requests takes the server's memory, or every thread of the pool, and
``/healthz`` stops answering. A gate admits ``slots`` at once, lets at most
``max_waiting`` more wait up to ``wait_seconds`` for a slot, and refuses the rest
at once with :class:`~visualsearch.errors.Busy` (503 with ``Retry-After``):
a queue that cannot grow without bound.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import Busy


class Gate:
    def __init__(
        self, what: str, slots: int, *, max_waiting: int = 0, wait_seconds: float = 0.0, retry_after: float = 2.0
    ):
        self.what = what
        self.slots = max(1, slots)
        self.max_waiting = max(0, max_waiting)
        self.wait_seconds = wait_seconds
        self.retry_after = retry_after
        self._free = threading.Semaphore(self.slots)
        self._lock = threading.Lock()
        self._waiting = 0
        self.refused = 0

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one slot for the ``with`` block, or raise :class:`Busy`."""
        if not self._free.acquire(blocking=False):
            with self._lock:
                queue_full = self._waiting >= self.max_waiting
                if not queue_full:
                    self._waiting += 1
            if queue_full:
                self._refuse()
            try:
                got = self.wait_seconds > 0 and self._free.acquire(timeout=self.wait_seconds)
            finally:
                with self._lock:
                    self._waiting -= 1
            if not got:
                self._refuse()
        try:
            yield
        finally:
            self._free.release()

    def _refuse(self) -> None:
        with self._lock:
            self.refused += 1
        raise Busy(f"the server is busy {self.what}; try again in a moment", self.retry_after)
