"""Reading: the connector runs in a thread of its own (:class:`_Reader`).

Owns that thread: it runs one list command and hands the output over in batches of
:data:`BATCH_SIZE` objects, already mapped to rows, through a bounded queue, so reading the
application overlaps with writing the batch before; cancellation while reading; and the GIL
hand-over that keeps the writing thread prompt.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sys
import threading
from collections.abc import Callable

from django.db import connections

from connectors.sdk import Cancelled

from ..catalogue import secret_environ

log = logging.getLogger(__name__)

BATCH_SIZE = 2000  # objects per batch: statements stay large, memory in flight (about four batches) small


class _Reader:
    """Runs one list command in a thread of its own and hands its output over in batches, mapped to rows.

    Reading the application (its network round trips, the connector's and the SDK's work, the
    mapping to rows) then overlaps with writing the inventory, which waits on the database. At most ``READ_AHEAD``
    batches wait in between, so memory stays bounded. Connectors never touch the database; the
    mapping may (to draw ids) through the thread's own connection, closed when it ends, and a
    failure of its own is reported as the sync's, not the connector's. Cancellation is checked
    here, between batches and while waiting, and reaches the connector through an event it polls.
    """

    READ_AHEAD = 2
    POLL_SECONDS = 0.5
    JOIN_SECONDS = 60
    # While a reading thread runs, the interpreter hands the GIL over within this many seconds
    # (instead of 5 ms). The writing thread wakes hundreds of times a run, each time the database
    # has taken its data; with the reading thread busy, every wake-up would otherwise wait up
    # to 5 ms, and the database, having nothing to do, with it.
    SWITCH_INTERVAL = 0.0005
    _running = 0  # reading threads of this process
    _running_lock = threading.Lock()
    _saved_interval = 0.005

    def __init__(self, connector, command: str, config, input_: dict, should_cancel, prepare: Callable):
        self.connector, self.command, self.config, self.input = connector, command, config, input_
        self.should_cancel, self.prepare = should_cancel, prepare
        self.outcome = None
        self._failure: Exception | None = None  # raised by prepare
        self._queue: queue.Queue = queue.Queue(maxsize=self.READ_AHEAD)
        self._stop = threading.Event()

    def _put(self, item) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=self.POLL_SECONDS)
                return
            except queue.Full:
                continue
        raise Cancelled(f"{self.command} stopped")

    def _prepare(self, buffer: list[dict]):
        try:
            return self.prepare(buffer)
        except Exception as exc:  # the sync's own failure, not the connector's: stop it, then report this
            self._failure = exc
            raise Cancelled(f"{self.command} stopped") from exc

    def _produce(self) -> None:
        buffer: list[dict] = []

        def emit(kind: str, data) -> None:
            nonlocal buffer
            if kind == "output":
                buffer.append(data)
                if len(buffer) >= BATCH_SIZE:
                    self._put(self._prepare(buffer))
                    buffer = []

        try:
            outcome = self.connector.execute(
                self.command,
                self.config,
                self.input,
                emit=emit,
                should_cancel=self._stop.is_set,
                environ=secret_environ(),
            )
            if buffer:
                self._put(self._prepare(buffer))
            self._put(("done", outcome))
        except BaseException as exc:  # handed to the writing thread, which raises it
            if not self._stop.is_set():
                self._put(("failed", self._failure or exc))
        finally:
            connections.close_all()  # this thread's own (see _PgIngest.draw_ids), never the sync's

    def _cancelled(self) -> bool:
        return self.should_cancel is not None and self.should_cancel()

    @classmethod
    @contextlib.contextmanager
    def _prompt_handover(cls):
        with cls._running_lock:
            if not cls._running:
                cls._saved_interval = sys.getswitchinterval()
                sys.setswitchinterval(min(cls._saved_interval, cls.SWITCH_INTERVAL))
            cls._running += 1
        try:
            yield
        finally:
            with cls._running_lock:
                cls._running -= 1
                if not cls._running:
                    sys.setswitchinterval(cls._saved_interval)

    def batches(self):
        thread = threading.Thread(target=self._produce, name=f"sync {self.command}", daemon=True)
        with self._prompt_handover():
            yield from self._follow(thread)

    def _follow(self, thread: threading.Thread):
        thread.start()
        try:
            while True:
                try:
                    item = self._queue.get(timeout=self.POLL_SECONDS)
                except queue.Empty:
                    if self._cancelled():
                        raise Cancelled(f"{self.command} cancelled") from None
                    continue
                if type(item) is tuple:
                    kind, value = item
                    if kind == "failed":
                        raise value
                    self.outcome = value
                    return
                yield item
                if self._cancelled():
                    raise Cancelled(f"{self.command} cancelled")
        finally:
            self._stop.set()
            thread.join(timeout=self.JOIN_SECONDS)
            if thread.is_alive():  # blocked in the application; it stops at its next object
                log.warning("%s: the connector did not stop within %s s", self.command, self.JOIN_SECONDS)
