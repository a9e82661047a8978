"""Overlapping I/O for folder runs: read the next pairs and write the last results in threads
while the main thread runs the model (image decoding/encoding release the GIL, torch's
kernels too). Errors raised in a thread are re-raised in the main thread, at the item
they belong to, so the CLI still reports them as one line."""
from __future__ import annotations

import queue
import threading
from typing import Any, Callable, Iterable, Sequence

_DONE = object()


class Prefetcher:
    """Iterate over ``(item, load(item))`` in order, loading up to ``depth`` items ahead in a
    background thread.

    ``ahead[i] = False`` makes item ``i`` load only once the consumer asks for it (after it
    has finished with item ``i - 1``): a big item is then never held in memory together
    with its predecessor.
    """

    def __init__(self, items: Iterable[Any], load: Callable[[Any], Any], ahead: Sequence[bool] | None = None,
                 depth: int = 2):
        self.items = list(items)
        self.load = load
        self.ahead = list(ahead) if ahead is not None else [True] * len(self.items)
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._asked = 0  # items the consumer has asked for
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="fusionlab-reader", daemon=True)
        self._thread.start()

    def _run(self):
        for i, item in enumerate(self.items):
            with self._cond:
                # an item that may not be read ahead waits until the consumer wants it
                self._cond.wait_for(lambda: self._stop or self.ahead[i] or self._asked > i)
                if self._stop:
                    return
            try:
                result = (item, self.load(item), None)
            except BaseException as e:  # noqa: BLE001 - re-raised in the consumer
                result = (item, None, e)
            while not self._stop:
                try:
                    self._queue.put(result, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if result[2] is not None:
                return
        self._queue.put((None, _DONE, None))

    def __iter__(self):
        return self

    def __next__(self):
        with self._cond:
            self._asked += 1
            self._cond.notify_all()
        item, value, error = self._queue.get()
        if value is _DONE:
            raise StopIteration
        if error is not None:
            raise error
        return item, value

    def close(self):
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        while True:  # unblock a reader waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout=5)


class Writer:
    """Run ``fn(*args)`` calls (e.g. image writes) in order in a background thread; at most
    ``depth`` wait. The first failure is re-raised by the next :meth:`put`, :meth:`wait` or
    :meth:`close`."""

    def __init__(self, depth: int = 2):
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="fusionlab-writer", daemon=True)
        self._thread.start()

    def _run(self):
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                if self._error is None:
                    fn, args = job
                    fn(*args)
            except BaseException as e:  # noqa: BLE001 - re-raised in the main thread
                self._error = e
            finally:
                self._queue.task_done()

    def _raise(self):
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def put(self, fn: Callable[..., Any], *args) -> None:
        self._raise()
        self._queue.put((fn, args))

    def wait(self) -> None:
        """Block until every queued call has run."""
        self._queue.join()
        self._raise()

    def close(self, wait: bool = True) -> None:
        if self._closed:
            return
        if wait:
            self.wait()
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout=None if wait else 5)
        if wait:
            self._raise()
