"""Every benchmark runs end to end at toy size and writes its section.

Smoke only: nothing here looks at a time or a ratio (the machines are shared
and the sizes are far too small to mean anything).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import run_all
from bench.report import Section, write_section
from bench.subscriptions import target_p99_ms


@pytest.mark.parametrize("name", run_all.BENCHMARKS)
def test_benchmark_runs_at_toy_size(name: str, tmp_path: Path) -> None:
    output = tmp_path / "BENCHMARKS.md"
    assert run_all.main(["--quick", "--only", name, "--output", str(output)]) == 0
    text = output.read_text()
    assert f"<!-- bench:{name} -->" in text
    assert f"<!-- /bench:{name} -->" in text
    assert "| " in text  # a table of figures was written


def test_rewriting_a_section_keeps_the_others(tmp_path: Path) -> None:
    output = tmp_path / "BENCHMARKS.md"
    write_section(Section("a", "A", ["first"]), output)
    write_section(Section("b", "B", ["other"]), output)
    write_section(Section("a", "A", ["second"]), output)
    text = output.read_text()
    assert "second" in text
    assert "first" not in text
    assert text.count("<!-- bench:a -->") == 1
    assert "other" in text


def test_the_subscription_target_is_one_second_from_ten_thousand_subscribers() -> None:
    targets = [target_p99_ms(n) for n in (1, 1000, 9999, 10_000, 20_000)]
    assert targets == [500, 500, 500, 1000, 1000]
