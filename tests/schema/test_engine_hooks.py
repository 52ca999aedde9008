"""TunedExtensionsRunner runs extension hooks exactly as strawberry's runner does.

``schema._engine.hooks`` replaces strawberry's per-request context managers (contextlib
+ ExitStack) with its own driver. The matrix below runs every combination of
two hook behaviours (three of some) (normal, swallowing, replacing or raising an
exception, not yielding, yielding twice, plain and coroutine functions, async
generators, invalid hooks) around a block that succeeds or raises, through
both runners, synchronously and asynchronously, and requires the same hook
calls in the same order and the same outcome (exception type, message,
cause and context chain).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, cast

import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from schema._engine.extensions import TunedExtensionsRunner


@strawberry.type
class Query:
    ok: bool = True


# strawberry's own runner (the class the tuned one extends; its module is not public),
# as a plain ``strawberry.Schema`` creates it.
SchemaExtensionsRunner = strawberry.Schema(query=Query).create_extensions_runner
Log = list[str]
Outcome = tuple[object, ...] | None
CONTEXT = cast(ExecutionContext, object())  # the runners only keep it


class Probe(SchemaExtension):
    """A test extension that logs what its hook sees, named by its position."""

    never = False  # keeps a generator function's unreached yield reachable for mypy

    def __init__(self, log: Log, name: str) -> None:
        self.log, self.name = log, name

    def __repr__(self) -> str:  # strawberry's RuntimeError message shows it
        return self.name

    def note(self, what: str) -> None:
        self.log.append(f"{self.name} {what}")


class Plain(Probe):
    def on_operation(self) -> Iterator[None]:
        self.note("enter")
        try:
            yield
        except Exception as exc:
            self.note(f"saw {exc!r}")
            raise
        self.note("exit")


class Swallow(Probe):
    def on_operation(self) -> Iterator[None]:
        try:
            yield
        except Exception as exc:
            self.note(f"swallowed {exc!r}")


class Replace(Probe):
    def on_operation(self) -> Iterator[None]:
        try:
            yield
        except Exception as exc:
            cause = exc if self.name.endswith("1") else None  # chained or not
            raise KeyError(self.name) from cause


class FailOnExit(Probe):
    def on_operation(self) -> Iterator[None]:
        yield
        raise LookupError(self.name)


class FailOnEnter(Probe):
    def on_operation(self) -> Iterator[None]:
        if not self.never:
            raise OSError(self.name)
        yield


class NoYield(Probe):
    def on_operation(self) -> Iterator[None]:
        self.note("ran")
        if self.never:
            yield


class Twice(Probe):
    def on_operation(self) -> Iterator[None]:
        yield
        self.note("again")
        yield


class TwiceAfterThrow(Probe):
    def on_operation(self) -> Iterator[None]:
        try:
            yield
        except Exception:
            yield


class Function(Probe):
    def on_operation(self) -> None:  # type: ignore[override]
        self.note("called")


class Coroutine(Probe):
    async def on_operation(self) -> None:  # type: ignore[override]
        self.note("awaited")


class AsyncPlain(Probe):
    async def on_operation(self) -> AsyncIterator[None]:
        self.note("enter")
        try:
            yield
        except Exception as exc:
            self.note(f"saw {exc!r}")
            raise
        self.note("exit")


class AsyncSwallow(Probe):
    async def on_operation(self) -> AsyncIterator[None]:
        try:
            yield
        except Exception as exc:
            self.note(f"swallowed {exc!r}")


class AsyncReplace(Probe):
    async def on_operation(self) -> AsyncIterator[None]:
        try:
            yield
        except Exception as exc:
            raise KeyError(self.name) from exc


class AsyncTwice(Probe):
    async def on_operation(self) -> AsyncIterator[None]:
        yield
        yield


class NotCallable(Probe):
    on_operation = 42  # type: ignore[assignment]


class Nothing(Probe):
    on_operation = None  # type: ignore[assignment]


BEHAVIOURS: list[type[Probe]] = [
    Plain,
    Swallow,
    Replace,
    FailOnExit,
    FailOnEnter,
    NoYield,
    Twice,
    TwiceAfterThrow,
    Function,
    Coroutine,
    AsyncPlain,
    AsyncSwallow,
    AsyncReplace,
    AsyncTwice,
    NotCallable,
    Nothing,
]


class Interrupt(BaseException):
    """Not an Exception: the probes' ``except Exception`` lets it through."""


def body_ok() -> None:
    pass


def body_value_error() -> None:
    raise ValueError("body")


def body_stop_iteration() -> None:
    raise StopIteration("body")


def body_interrupt() -> None:
    raise Interrupt("body")


BODIES: list[Callable[[], None]] = [
    body_ok,
    body_value_error,
    body_stop_iteration,
    body_interrupt,
]


def describe(exc: BaseException | None, depth: int = 0) -> Outcome:
    if exc is None or depth > 6:
        return None
    return (
        type(exc).__name__,
        str(exc),
        describe(exc.__cause__, depth + 1),
        describe(exc.__context__, depth + 1),
        exc.__suppress_context__,
    )


Runner = Callable[[ExecutionContext, list[SchemaExtension]], Any]


def extensions(classes: tuple[type[Probe], ...], log: Log) -> list[SchemaExtension]:
    return [cls(log, f"{cls.__name__}{i}") for i, cls in enumerate(classes)]


def run_sync(
    runner: Runner, classes: tuple[type[Probe], ...], body: Callable[[], None]
) -> tuple[Log, Outcome]:
    log: Log = []
    try:
        with runner(CONTEXT, extensions(classes, log)).operation():
            log.append("body")
            body()
    except BaseException as exc:
        return log, describe(exc)
    return log, None


async def run_async(
    runner: Runner, classes: tuple[type[Probe], ...], body: Callable[[], None]
) -> tuple[Log, Outcome]:
    log: Log = []
    try:
        async with runner(CONTEXT, extensions(classes, log)).operation():
            log.append("body")
            body()
    except BaseException as exc:
        return log, describe(exc)
    return log, None


# Three deep, the behaviours that pass exceptions on or stop them (keeps the run short).
NESTING: list[type[Probe]] = [Plain, Swallow, Replace, FailOnExit, FailOnEnter, AsyncSwallow]


def combinations() -> Iterator[tuple[type[Probe], ...]]:
    for size in (0, 1, 2):
        yield from itertools.product(BEHAVIOURS, repeat=size)
    yield from itertools.product(NESTING, repeat=3)


def mismatch(case: Any, strawberry: object, lean: object) -> str:
    return f"{case}: strawberry {strawberry!r} != lean {lean!r}"


def test_sync_stages_match_strawberry() -> None:
    for classes in combinations():
        for body in BODIES:
            expected = run_sync(SchemaExtensionsRunner, classes, body)
            actual = run_sync(TunedExtensionsRunner, classes, body)
            assert actual == expected, mismatch((classes, body), expected, actual)


async def test_async_stages_match_strawberry() -> None:
    for classes in combinations():
        for body in BODIES:
            expected = await run_async(SchemaExtensionsRunner, classes, body)
            actual = await run_async(TunedExtensionsRunner, classes, body)
            assert actual == expected, mismatch((classes, body), expected, actual)
