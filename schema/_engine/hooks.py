"""Extension hooks driven without strawberry's per-request wrapping, and how they are left.

For every stage of every operation (operation, parsing, validation,
executing) strawberry builds an ``ExtensionContextManagerBase`` that looks up
each extension's hook again (``getattr``, ``inspect`` checks), wraps it with
``contextlib.contextmanager`` (``functools.update_wrapper`` on every call) and
drives it through an ``(Async)ExitStack``. The lookups depend only on the
extension classes, so ``HookPlan`` does them once per tuple of classes, and
``Stage`` drives the hooks' generators itself, keeping the behaviour
strawberry gets from contextlib (the functions at the top have the exit protocol):

- hooks are entered in extension order and left in reverse order;
- an exception leaving the block is thrown into each hook at its ``yield``; a
  hook that swallows it (returns) hides it from the hooks entered before it,
  one that raises another passes that one on, chained as by nested ``with``;
- the stage itself never swallows an exception: strawberry's ``__exit__``
  drops the ExitStack's answer, so the block's exception still propagates;
- a hook that raises while entering propagates at once and the hooks entered
  before it are not left (strawberry's ``__enter__`` abandons its ExitStack);
- a plain function or coroutine function hook runs on entry;
- an async hook in a synchronous stage raises ``RuntimeError`` when reached,
  after the sync hooks before it were entered.

Like strawberry, a hook is the extension *class*'s attribute. A hook that is
not callable makes ``HookPlan.stage`` return None: the caller then uses
strawberry's own context manager, which raises its ``ValueError``.

The functions at the top reproduce what contextlib and ExitStack do when a
hook is entered and left: ``leave``/``aleave`` are ``_GeneratorContextManager.__exit__``
and ``_AsyncGeneratorContextManager.__aexit__`` (Python 3.11), ``unwind`` and
``unwind_async`` are ``ExitStack.__exit__`` and ``AsyncExitStack.__aexit__``,
minus their return value, which strawberry drops.
"""

from __future__ import annotations

import inspect
import sys
from asyncio import iscoroutinefunction
from collections.abc import AsyncGenerator, Callable, Generator, Sequence
from functools import partial
from types import GeneratorType, TracebackType
from typing import Any, NamedTuple, NoReturn, cast

from strawberry.extensions import SchemaExtension
from strawberry.extensions.context import (
    ExecutingContextManager,
    OperationContextManager,
    ParsingContextManager,
    ValidationContextManager,
)

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


STAGES = ("on_operation", "on_parse", "on_validate", "on_execute")


class Hook(NamedTuple):
    """One extension's hook for a stage: ``start(extension)`` makes its generator."""

    position: int  # of the extension in the runner's list
    start: Callable[[SchemaExtension], SyncHook | AsyncHook]
    is_async: bool


def _called(func: Callable[[SchemaExtension], object], extension: SchemaExtension) -> SyncHook:
    func(extension)
    yield None


async def _awaited(func: Callable[[SchemaExtension], Any], extension: SchemaExtension) -> AsyncHook:
    await func(extension)
    yield None


class _NotCallable(Exception):
    """A hook that strawberry refuses; its own context manager reports it."""


def _hook(index: int, cls: type[SchemaExtension], name: str) -> Hook | None:
    """strawberry's ``ExtensionContextManagerBase.get_hook``, for a class."""
    func = getattr(cls, name)
    if not func or func is getattr(SchemaExtension, name):
        return None
    if inspect.isgeneratorfunction(func):
        return Hook(index, func, is_async=False)
    if inspect.isasyncgenfunction(func):
        return Hook(index, func, is_async=True)
    if not callable(func):
        raise _NotCallable
    if iscoroutinefunction(func):
        return Hook(index, partial(_awaited, func), is_async=True)
    return Hook(index, partial(_called, func), is_async=False)


def _stage_hooks(classes: Sequence[type[SchemaExtension]], name: str) -> tuple[Hook, ...] | None:
    try:
        found = (_hook(index, cls, name) for index, cls in enumerate(classes))
        return tuple(hook for hook in found if hook is not None)
    except _NotCallable:
        return None


class HookPlan:
    """The hooks of a tuple of extension classes, per stage, looked up once."""

    def __init__(self, classes: Sequence[type[SchemaExtension]]) -> None:
        self.hooks = {name: _stage_hooks(classes, name) for name in STAGES}

    def stage(self, name: str, extensions: Sequence[SchemaExtension]) -> Stage | None:
        """The context manager for stage ``name`` (a ``SchemaExtension`` hook name).

        ``extensions`` are instances of the planned classes, in the same order.
        None when a hook is not callable (see the module).
        """
        hooks = self.hooks[name]
        if hooks is None:
            return None
        return Stage(name, hooks, extensions) if hooks else NO_HOOKS


class Stage(
    OperationContextManager,
    ParsingContextManager,
    ValidationContextManager,
    ExecutingContextManager,
):
    """Enters and leaves one stage's hooks, for any stage (see the module).

    It is a subclass of each of strawberry's stage context managers only so
    that it can stand for any of them; it uses none of their machinery.
    """

    __slots__ = ("entered", "extensions", "name", "planned")

    def __init__(  # strawberry's __init__ would look every hook up again
        self, name: str, hooks: tuple[Hook, ...], extensions: Sequence[SchemaExtension]
    ) -> None:
        self.name = name
        self.planned = hooks
        self.extensions = extensions
        self.entered: list[SyncHook | AsyncHook] = []

    def __enter__(self) -> None:
        for position, start, is_async in self.planned:
            extension = self.extensions[position]
            if is_async:
                raise RuntimeError(
                    f"SchemaExtension hook {extension}.{self.name} "
                    "failed to complete synchronously."
                )
            generator = cast(SyncHook, start(extension))
            enter(generator)
            self.entered.append(generator)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        unwind(cast(list[SyncHook], self.entered), _instance(exc_type, exc_val))

    async def __aenter__(self) -> None:
        for position, start, is_async in self.planned:
            generator = start(self.extensions[position])
            if is_async:
                await aenter(cast(AsyncHook, generator))
            else:
                enter(cast(SyncHook, generator))
            self.entered.append(generator)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await unwind_async(self.entered, _instance(exc_type, exc_val))


def _instance(
    exc_type: type[BaseException] | None, exc_val: BaseException | None
) -> BaseException | None:
    """The exception leaving the block (contextlib instantiates a bare type, too)."""
    if exc_type is None or exc_val is not None:
        return exc_val
    return exc_type()


NO_HOOKS = Stage("", (), ())  # shared: without hooks nothing is ever entered
