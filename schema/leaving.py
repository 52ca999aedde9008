"""Entering and leaving hook generators as contextlib and ExitStack do.

``schema.hooks.Stage`` drives extension hooks (generators that yield once)
without building a ``contextlib`` context manager and an ``ExitStack`` per
hook and request. These functions reproduce what those do, so the hooks see
the same thing: ``leave``/``aleave`` are ``_GeneratorContextManager.__exit__``
and ``_AsyncGeneratorContextManager.__aexit__`` (Python 3.11), ``unwind`` and
``unwind_async`` are ``ExitStack.__exit__`` and ``AsyncExitStack.__aexit__``,
minus their return value, which strawberry drops.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncGenerator, Generator
from types import GeneratorType
from typing import NoReturn, cast

SyncHook = Generator[object, None, None]
AsyncHook = AsyncGenerator[object, None]
_STOPPED = object()


def enter(hook: SyncHook) -> None:
    """Run ``hook`` to its ``yield``."""
    try:
        next(hook)
    except StopIteration:
        raise RuntimeError("generator didn't yield") from None


async def aenter(hook: AsyncHook) -> None:
    """Run ``hook`` to its ``yield``."""
    try:
        await anext(hook)
    except StopAsyncIteration:
        raise RuntimeError("generator didn't yield") from None


def _wraps(
    raised: BaseException, exc: BaseException, kinds: tuple[type[BaseException], ...]
) -> bool:
    """Whether ``raised`` is PEP 479's RuntimeError for the Stop(Async)Iteration ``exc``."""
    return isinstance(raised, RuntimeError) and isinstance(exc, kinds) and raised.__cause__ is exc


def leave(hook: SyncHook, exc: BaseException | None) -> bool:
    """Resume ``hook`` after its ``yield`` (throwing ``exc`` in); True if it swallowed ``exc``."""
    if exc is None:
        if next(hook, _STOPPED) is _STOPPED:
            return False
        try:
            raise RuntimeError("generator didn't stop")
        finally:
            hook.close()
    traceback = exc.__traceback__
    try:
        hook.throw(exc)
    except StopIteration as stop:
        return stop is not exc
    except BaseException as raised:
        if raised is not exc and not _wraps(raised, exc, (StopIteration,)):
            raise
        exc.__traceback__ = traceback
        return False
    try:
        raise RuntimeError("generator didn't stop after throw()")
    finally:
        hook.close()


async def aleave(hook: AsyncHook, exc: BaseException | None) -> bool:
    """``leave`` for an async generator."""
    if exc is None:
        if await anext(hook, _STOPPED) is _STOPPED:
            return False
        try:
            raise RuntimeError("generator didn't stop")
        finally:
            await hook.aclose()
    traceback = exc.__traceback__
    try:
        await hook.athrow(exc)
    except StopAsyncIteration as stop:
        return stop is not exc
    except BaseException as raised:
        if raised is not exc and not _wraps(raised, exc, (StopIteration, StopAsyncIteration)):
            raise
        exc.__traceback__ = traceback
        return False
    try:
        raise RuntimeError("generator didn't stop after athrow()")
    finally:
        await hook.aclose()


def _chain(new: BaseException, old: BaseException | None, frame: BaseException | None) -> None:
    """ExitStack's ``_fix_exception_context``: ``new`` raised while leaving with ``old``."""
    while True:
        context = new.__context__
        if context is None or context is old:
            return
        if context is frame:
            break
        new = context
    new.__context__ = old


def _reraise(exc: BaseException) -> NoReturn:
    """Raise ``exc`` keeping the context ``_chain`` set (a bare raise would replace it)."""
    context = exc.__context__
    try:
        raise exc
    except BaseException:
        exc.__context__ = context
        raise


def unwind(entered: list[SyncHook], exc: BaseException | None) -> None:
    """Leave the ``entered`` hooks, last first, as ``ExitStack.__exit__`` with ``exc``."""
    frame = sys.exc_info()[1]
    pending = False
    while entered:
        hook = entered.pop()
        try:
            if leave(hook, exc):
                exc, pending = None, False
        except BaseException as raised:
            _chain(raised, exc, frame)
            exc, pending = raised, True
    if pending and exc is not None:
        _reraise(exc)


async def unwind_async(entered: list[SyncHook | AsyncHook], exc: BaseException | None) -> None:
    """``unwind`` for sync and async hooks, as ``AsyncExitStack.__aexit__``."""
    frame = sys.exc_info()[1]
    pending = False
    while entered:
        hook = entered.pop()
        try:
            if isinstance(hook, GeneratorType):
                swallowed = leave(hook, exc)
            else:
                swallowed = await aleave(cast(AsyncHook, hook), exc)
            if swallowed:
                exc, pending = None, False
        except BaseException as raised:
            _chain(raised, exc, frame)
            exc, pending = raised, True
    if pending and exc is not None:
        _reraise(exc)
