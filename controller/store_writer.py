"""The store's writer: SQLite work off the event loop, in order, with shared commits.

One thread with its own connection runs the jobs it is given in the order they were given. The
jobs that queued up while the previous commit was being fsynced run in one transaction, each in
its own savepoint (one failing job undoes only itself), and share one commit: group commit. A
job's future resolves on the event loop after that commit, so awaiting it means "durable".
Reads given to the writer see every write given before them. Long reads that need no such order
(the SMS reminders' look over a whole list) go to the reader: another thread, its own
connection, which WAL never makes wait for the writer.
"""
from __future__ import annotations

import asyncio
import copy
import functools
import queue
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import structlog

log = structlog.get_logger(__name__)

BATCH = 256  # jobs at most under one commit


class StoreWriter:
    """Runs ``fn(store_view, *args, **kw)`` on its thread; ``store_view`` is the store on the
    writer's own connection."""

    def __init__(self, store, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.view = _view(store)
        self.commits = 0  # for tests and benchmarks: commits done, jobs run
        self.jobs = 0
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], *args, **kw) -> asyncio.Future:
        """Queue one job; the future has its result once the job's writes are committed."""
        if self._closed:
            raise RuntimeError("the store's writer is closed")
        fut = self.loop.create_future()
        hold = getattr(self.loop, "begin_thread_work", None)
        if hold is not None:  # a virtual-time loop waits for the thread before time moves on
            hold()
        self._queue.put((fn, args, kw, fut))
        return fut

    async def drain(self) -> None:
        """Everything given so far is committed."""
        await self.submit(_nothing)

    def close(self) -> None:
        """Run what is queued, then stop the thread and close its connection."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join()
        self.view.db.close()

    def _commit(self, db: sqlite3.Connection) -> None:
        db.execute("COMMIT")  # synchronous=FULL: the fsync happens here, on this thread

    # --- the thread -------------------------------------------------------------------------
    def _run(self) -> None:
        stop = False
        while not stop:
            job = self._queue.get()
            if job is None:
                break
            jobs = [job]
            while len(jobs) < BATCH:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                jobs.append(job)
            self._batch(jobs)

    def _batch(self, jobs: list) -> None:
        db = self.view.db
        results: list[tuple[bool, Any]] = []
        for fn, args, kw, _fut in jobs:
            try:
                if not db.in_transaction:
                    db.execute("BEGIN IMMEDIATE")
                db.execute("SAVEPOINT job")
                value = fn(self.view, *args, **kw)
                db.execute("RELEASE job")
                results.append((True, value))
            except Exception as exc:  # noqa: BLE001 - the job's caller gets it
                if db.in_transaction:
                    try:
                        db.execute("ROLLBACK TO job")
                        db.execute("RELEASE job")
                    except sqlite3.Error:
                        pass
                self.view._segments.clear()
                results.append((False, exc))
        try:
            if db.in_transaction:
                self._commit(db)
                self.commits += 1
        except sqlite3.Error as exc:
            log.error("store_commit_failed", error=str(exc), jobs=len(jobs))
            if db.in_transaction:
                db.execute("ROLLBACK")
            self.view._segments.clear()
            results = [(False, exc)] * len(jobs)
        self.jobs += len(jobs)
        for (_fn, _a, _k, fut), (ok, value) in zip(jobs, results):
            try:
                self.loop.call_soon_threadsafe(self._settle, fut, ok, value)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass

    def _settle(self, fut: asyncio.Future, ok: bool, value: Any) -> None:
        done = getattr(self.loop, "end_thread_work", None)
        if done is not None:
            done()
        if fut.cancelled():
            return
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)


class StoreReader:
    """Runs ``fn(store_view, ...)`` on a thread of its own, on a read-only connection."""

    def __init__(self, store, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.view = _view(store)
        self.view.db.execute("PRAGMA query_only=1")
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="store-reader")

    async def call(self, fn: Callable[..., Any], *args, **kw) -> Any:
        # run_in_executor: a virtual-time loop waits for it before its clock moves on
        return await self.loop.run_in_executor(self._pool,
                                               functools.partial(fn, self.view, *args, **kw))

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.view.db.close()


def _view(store):
    """The store on a connection of its own (for another thread)."""
    view = copy.copy(store)
    view.db = store.connect()
    view.writer = view.reader = None  # store work inside a job runs right there
    view._segments = {}
    view._data_version = -1
    return view


def _nothing(_store) -> None:
    return None


def log_failure(fut: asyncio.Future) -> None:
    """A write nobody awaits: its failure goes to the log."""
    if not fut.cancelled() and fut.exception() is not None:
        exc = fut.exception()
        log.error("store_write_failed", error=str(exc), kind=type(exc).__name__)
