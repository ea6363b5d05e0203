"""Shared fixtures: both cext implementations, and no task left running after a test."""
from __future__ import annotations

import asyncio
import importlib
import os

import pytest
import structlog

import cext

# A CLI test that configures logging in this process must not cache the loggers: a later test's
# capture_logs() would then see nothing of them (the log-privacy tests check what is logged).
os.environ["DIALBOX_LOG_NO_CACHE"] = "1"


@pytest.fixture(autouse=True)
def _structlog_config_restored():
    """A command run in-process (dialbox simulate, e1 ...) reconfigures structlog, e.g. to filter
    below WARNING; undo it after the test so later tests' capture_logs() sees every event."""
    saved = structlog.get_config()
    structlog.reset_defaults()  # every test starts from structlog's defaults
    yield
    structlog.configure(**saved)


@pytest.fixture(params=["cython", "python"])
def cext_impl(request):
    """Name of the cext implementation under test; the compiled one must be present in CI."""
    if request.param == "cython" and cext.IMPLEMENTATION != "cython":
        import os
        if os.environ.get("DIALBOX_NO_EXTENSIONS"):
            pytest.skip("DIALBOX_NO_EXTENSIONS=1: compiled core disabled on purpose")
        pytest.fail("the compiled cext core did not load (build it: pip install -e .)")
    return request.param


def cext_module(impl: str, name: str):
    """``cext._<name>`` or ``cext.<name>_py`` explicitly, whatever the selector chose."""
    return importlib.import_module(f"cext._{name}" if impl == "cython" else f"cext.{name}_py")


@pytest.fixture(autouse=True)
async def _no_leftover_tasks():
    """Fail a test that leaves an asyncio task running (aioesphomeapi's idea)."""
    yield
    loop = asyncio.get_running_loop()
    current = asyncio.current_task()
    leftover = [t for t in asyncio.all_tasks(loop) if t is not current and not t.done()]
    if leftover:
        for t in leftover:
            t.cancel()
        await asyncio.gather(*leftover, return_exceptions=True)
        pytest.fail(f"test left tasks running: {[t.get_coro() for t in leftover]}")


@pytest.fixture
def loop_write_guard(monkeypatch):
    """Notes every SQLite write the running box makes on the event loop's thread (see
    tests/loop_writes.py); the test asserts on ``guard.writes``."""
    from tests.loop_writes import LoopWriteGuard, install
    guard = LoopWriteGuard()
    install(monkeypatch, guard)
    return guard


@pytest.fixture(autouse=True)
def _no_loop_writes(request):
    """Every test that runs a box fails when the box wrote to SQLite on its event loop (each
    commit an fsync, each lock wait up to 5 s: the loop drives every protocol timer).
    DIALBOX_LOOP_WRITE_GUARD=FILE also appends what wrote to FILE (a survey)."""
    guard = request.getfixturevalue("loop_write_guard")
    yield
    found = guard.box_writes
    if found:
        out = os.environ.get("DIALBOX_LOOP_WRITE_GUARD")
        if out:
            with open(out, "a", encoding="utf-8") as f:
                f.write(f"== {request.node.nodeid}\n{guard.report(found)}\n")
        pytest.fail(f"{len(found)} SQLite writes on the event loop of a running box:\n"
                    f"{guard.report(found)}")
