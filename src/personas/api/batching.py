"""Micro-batching: concurrent requests' inputs go through one batch call, each request gets its own answer.

    batcher = MicroBatcher(lambda texts: encoder.encode(texts), max_batch=32, max_wait_s=0.0)
    vector = batcher.submit("some text")            # from a thread (a sync route in the thread pool)
    vector = await batcher.submit_async("text")     # from the event loop (an async route)
    batcher.close()                                 # at shutdown: queued inputs are still answered

One worker thread takes the oldest waiting input and every input queued behind it (up to ``max_batch``), runs
``fn`` on them once, and hands each caller its own row. While a batch runs, the next requests queue, so under
load batches form by themselves; a lone request is run at once (``max_wait_s`` 0, the default) or after at most
``max_wait_s`` counted from its arrival. When a batch call raises, each of its inputs is run again alone, so
an error reaches only the request whose input caused it.

Written here rather than taken from a package: the batching libraries on PyPI (aiobatch, async-batcher,
batch-inference, ...) are asyncio-only or unmaintained, and Ray Serve's ``@serve.batch`` brings a cluster
runtime; this is ~100 lines on ``threading`` and ``concurrent.futures`` and serves sync and async callers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

from personas.errors import ConfigError

__all__ = ["BatcherClosedError", "MicroBatcher"]

logger = logging.getLogger(__name__)

In = TypeVar("In")
Out = TypeVar("Out")


class BatcherClosedError(RuntimeError):
    """The batcher was closed (the service is shutting down); the input was not run."""


class MicroBatcher(Generic[In, Out]):
    """Runs ``fn(inputs) -> outputs`` (one output per input, same order) on inputs gathered from concurrent
    callers. ``max_batch`` 1 turns batching off: :meth:`submit` then calls ``fn`` in the caller's thread.

    The worker thread starts on the first submit (after a fork, e.g. server workers, in each process anew).
    """

    def __init__(
        self, fn: Callable[[list[In]], Sequence[Out]], *, max_batch: int = 32, max_wait_s: float = 0.0
    ) -> None:
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            raise ConfigError(
                f"The 'max_batch' parameter of MicroBatcher must be an int >= 1. Got {max_batch!r} instead."
            )
        if not max_wait_s >= 0:
            raise ConfigError(f"The 'max_wait_s' parameter of MicroBatcher must be >= 0. Got {max_wait_s!r} instead.")
        self.fn = fn
        self.max_batch = max_batch
        self.max_wait_s = float(max_wait_s)
        self.batches = 0  # batch calls made, and inputs run through them (for tests and benchmarks)
        self.inputs = 0
        self._queue: deque[tuple[float, In, Future[Out]]] = deque()
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._closed = False

    # -- callers -------------------------------------------------------------------------------------
    def submit(self, item: In) -> Out:
        """``fn([item])[0]``, run in a batch with whatever else is waiting; raises what ``fn`` raised for it."""
        if self.max_batch == 1:
            if self._closed:
                raise BatcherClosedError("The micro-batcher is closed (the service is shutting down).")
            return self._one(item)
        return self.enqueue(item).result()

    async def submit_async(self, item: In) -> Out:
        """:meth:`submit` for the event loop: it awaits the batch without blocking the loop."""
        if self.max_batch == 1:
            return await asyncio.to_thread(self.submit, item)
        return await asyncio.wrap_future(self.enqueue(item))

    def enqueue(self, item: In) -> Future[Out]:
        """Queue ``item``; the future holds its output (or the exception raised for it)."""
        future: Future[Out] = Future()
        with self._ready:
            if self._closed:
                raise BatcherClosedError("The micro-batcher is closed (the service is shutting down).")
            self._start()
            self._queue.append((time.monotonic(), item, future))
            self._ready.notify()
        return future

    def close(self, timeout: float | None = 10.0) -> None:
        """Refuse new inputs, answer the queued ones, stop the worker thread. Idempotent."""
        with self._ready:
            self._closed = True
            thread = self._thread if self._pid == os.getpid() else None
            self._ready.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # -- worker --------------------------------------------------------------------------------------
    def _start(self) -> None:
        # Under self._ready. A thread does not survive fork: a child process starts its own.
        if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
            return
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._work, name="personas-micro-batcher", daemon=True)
        self._thread.start()

    def _take(self) -> list[tuple[float, In, Future[Out]]] | None:
        """The next batch: the oldest input and those behind it, after waiting until ``max_wait_s`` from the
        oldest's arrival for more (none when it is already that old). None once closed and drained."""
        with self._ready:
            while not self._queue:
                if self._closed:
                    return None
                self._ready.wait()
            if self.max_wait_s > 0:
                deadline = self._queue[0][0] + self.max_wait_s
                while len(self._queue) < self.max_batch and not self._closed:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._ready.wait(left)
            return [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]

    def _work(self) -> None:
        while (batch := self._take()) is not None:
            live = [(item, future) for _, item, future in batch if future.set_running_or_notify_cancel()]
            if live:
                self._run(live)

    def _run(self, batch: list[tuple[In, Future[Out]]]) -> None:
        items = [item for item, _ in batch]
        try:
            outputs = list(self.fn(items))
            if len(outputs) != len(items):
                raise RuntimeError(f"The batch function returned {len(outputs)} outputs for {len(items)} inputs.")
        except BaseException as exc:  # handed to the callers, never lost
            if len(batch) == 1:
                batch[0][1].set_exception(exc)
                return
            # Which input failed is unknown: each is run alone, so only its own request gets the error.
            logger.debug("A batch of %d failed (%s); running its inputs one at a time", len(batch), exc)
            for item, future in batch:
                try:
                    future.set_result(self._one(item))
                except BaseException as own:
                    future.set_exception(own)
            return
        self._count(len(items))
        for (_, future), output in zip(batch, outputs, strict=True):
            future.set_result(output)

    def _one(self, item: In) -> Out:
        outputs = list(self.fn([item]))
        if len(outputs) != 1:
            raise RuntimeError(f"The batch function returned {len(outputs)} outputs for 1 input.")
        self._count(1)
        return outputs[0]

    def _count(self, size: int) -> None:
        with self._ready:
            self.batches += 1
            self.inputs += size
