"""Measurement helpers shared by every benchmark.

Machines are shared and noisy, so every headline figure is a ratio of two
contenders measured in the same run: the contenders run alternately (ABBA
order), each run yields one value per contender, and the figure is the median
of the per-run ratios. Nothing here asserts a time.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

Metrics = dict[str, float]
Contender = Callable[[], Awaitable[Metrics]]


@dataclass(frozen=True)
class Comparison:
    """Per-run values of two contenders and their paired ratios (``a / b``)."""

    a_name: str
    b_name: str
    a_values: tuple[float, ...]
    b_values: tuple[float, ...]

    @property
    def ratios(self) -> tuple[float, ...]:
        return tuple(a / b for a, b in zip(self.a_values, self.b_values, strict=True) if b)

    @property
    def ratio(self) -> float:
        """Median of the per-run ratios: robust to drift in machine load."""
        return statistics.median(self.ratios) if self.ratios else float("nan")

    @property
    def a_median(self) -> float:
        return statistics.median(self.a_values)

    @property
    def b_median(self) -> float:
        return statistics.median(self.b_values)


async def alternate(contenders: Mapping[str, Contender], runs: int) -> dict[str, list[Metrics]]:
    """Run every contender ``runs`` times, reversing the order on every other run.

    Each call returns named measurements (rates or durations) of one run.
    """
    results: dict[str, list[Metrics]] = {name: [] for name in contenders}
    names = list(contenders)
    for run in range(runs):
        order = names if run % 2 == 0 else list(reversed(names))
        for name in order:
            results[name].append(await contenders[name]())
    return results


def compare(
    results: Mapping[str, list[Metrics]], a_name: str, b_name: str, metric: str
) -> Comparison:
    """Pair ``metric`` of contender ``a_name`` with that of ``b_name``, run by run."""
    return Comparison(
        a_name,
        b_name,
        tuple(m[metric] for m in results[a_name]),
        tuple(m[metric] for m in results[b_name]),
    )


def median_of(results: Mapping[str, list[Metrics]], name: str, metric: str) -> float:
    return statistics.median(m[metric] for m in results[name])


class Stopwatch:
    """``with Stopwatch() as sw: ...`` then ``sw.seconds`` (monotonic, high resolution)."""

    def __init__(self) -> None:
        self.started = 0.0
        self.seconds = 0.0

    def __enter__(self) -> Stopwatch:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def sync_contender(func: Callable[[], Metrics]) -> Contender:
    """Wrap a synchronous contender so ``alternate`` can await it.

    It runs on the event loop's thread (not a worker): a blocking baseline then
    competes for the CPU exactly like the async contender it is compared with.
    """

    async def run() -> Metrics:
        await asyncio.sleep(0)
        return func()

    return run


def fmt_rate(value: float, unit: str = "/s") -> str:
    return f"{value:,.0f}{unit}"


def fmt_ratio(value: float) -> str:
    return f"{value:,.0f}x" if value >= 100 else f"{value:.3g}x"


def fmt_number(value: float) -> str:
    """Three significant digits for small values, thousands separators for large ones."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def verdict(ratio: float, target: float, *, higher_is_better: bool = True) -> str:
    met = ratio >= target if higher_is_better else ratio <= target
    sign = ">=" if higher_is_better else "<="
    return f"target {sign} {target:g}x: {'MET' if met else 'MISSED'}"


def comparison_row(
    figure: str, comparison: Comparison, unit: str, target: float | None, *, higher: bool = True
) -> list[str]:
    """One table row: figure, both medians, the paired-ratio median and the verdict."""
    return [
        figure,
        f"{comparison.a_name}: {fmt_number(comparison.a_median)}{unit}",
        f"{comparison.b_name}: {fmt_number(comparison.b_median)}{unit}",
        fmt_ratio(comparison.ratio) + ratio_range(comparison),
        "-" if target is None else verdict(comparison.ratio, target, higher_is_better=higher),
    ]


def ratio_range(comparison: Comparison) -> str:
    """`` (lowest-highest per-run ratio)`` when there are several runs: the noise."""
    ratios = comparison.ratios
    if len(ratios) < 2:
        return ""
    return f" ({fmt_ratio(min(ratios))[:-1]}-{fmt_ratio(max(ratios))})"


COMPARISON_HEADER = (
    "figure",
    "ours (median)",
    "baseline (median)",
    "ratio (range over runs)",
    "target",
)
