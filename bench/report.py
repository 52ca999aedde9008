"""Write benchmark figures into BENCHMARKS.md, one replaceable section per benchmark.

Each section is delimited by HTML comments naming the benchmark, so running a
single benchmark rewrites only its own section and keeps the others. Every
section carries its date, the machine and the exact command that produced it.
"""

from __future__ import annotations

import os
import platform
import re
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"

HEADER = """# Benchmarks

Produced by `make bench` (`python -m bench.run_all`); each benchmark also runs
alone (`python -m bench.<name> --help`).
Every headline figure is a **ratio of two contenders measured in the same run**,
alternated (ABBA order), the median of the per-run ratios; absolute rates are
given for context only (the machines are shared and noisy). Nothing here is part
of the test suite and nothing asserts a time.
"""


@dataclass
class Section:
    """One benchmark's findings as Markdown lines."""

    name: str
    title: str
    lines: list[str] = field(default_factory=list)

    def add(self, line: str = "") -> None:
        self.lines.append(line)


def machine() -> str:
    """Cores, memory and CPU model, read without psutil."""
    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    return (
        f"{usable} usable cores ({cores} online), {_memory_gib():.1f} GiB RAM, "
        f"{_cpu_model()}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return pages / 1024**3


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load_average() -> str:
    """The machine's load when the section is written: other work shares the cores."""
    one, five, fifteen = os.getloadavg()
    return f"load average when written (1/5/15 min): {one:.1f} / {five:.1f} / {fifteen:.1f}"


def command_line() -> str:
    """The command that is running, as a user would type it."""
    module = sys.modules["__main__"].__spec__
    args = " ".join(shlex.quote(a) for a in sys.argv[1:])
    program = f"python -m {module.name}" if module is not None else shlex.quote(sys.argv[0])
    return f"{program} {args}".strip()


def render(section: Section) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = "\n".join(section.lines).rstrip()
    return (
        f"<!-- bench:{section.name} -->\n"
        f"## {section.title}\n\n"
        f"- date: {now}\n- machine: {machine()}\n- command: `{command_line()}`\n"
        f"- {load_average()}\n\n"
        f"{body}\n"
        f"<!-- /bench:{section.name} -->\n"
    )


def write_section(section: Section, path: Path = DEFAULT_PATH) -> None:
    """Replace ``section``'s block in ``path`` (or append it), keeping all others."""
    text = path.read_text() if path.exists() else HEADER
    block = render(section)
    name = re.escape(section.name)
    pattern = re.compile(rf"<!-- bench:{name} -->\n.*?<!-- /bench:{name} -->\n", re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.write_text(text)


def emit(section: Section, output: Path | None) -> None:
    """Print the section; write it into ``output`` unless that is None."""
    print(render(section))
    if output is not None:
        write_section(section, output)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table as lines."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return lines
