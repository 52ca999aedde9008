"""Extension hooks run without strawberry's per-request wrapping.

For every stage of every operation (operation, parsing, validation,
executing) strawberry builds an ``ExtensionContextManagerBase`` that looks up
each extension's hook again (``getattr``, ``inspect`` checks), wraps it with
``contextlib.contextmanager`` (``functools.update_wrapper`` on every call) and
drives it through an ``(Async)ExitStack``. The lookups depend only on the
extension classes, so ``HookPlan`` does them once per tuple of classes, and
``Stage`` drives the hooks' generators itself, keeping the behaviour
strawberry gets from contextlib (``schema.leaving`` has the exit protocol):

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
"""

from __future__ import annotations

import inspect
from asyncio import iscoroutinefunction
from collections.abc import Callable, Sequence
from functools import partial
from types import TracebackType
from typing import Any, NamedTuple, cast

from strawberry.extensions import SchemaExtension
from strawberry.extensions.context import (
    ExecutingContextManager,
    OperationContextManager,
    ParsingContextManager,
    ValidationContextManager,
)

from schema.leaving import AsyncHook, SyncHook, aenter, enter, unwind, unwind_async

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
