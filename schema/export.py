"""Write the schema's SDL: ``python -m schema.export [PATH]`` (default schema/schema.graphql).

The committed ``schema/schema.graphql`` is the public contract of the bank's
features (accounts, transfers, ledger) that frontends code against;
``tests/schema/test_sdl.py`` fails when it differs from the code.
"""

from __future__ import annotations

import sys
from pathlib import Path

from strawberry.printer import print_schema

from schema import accounts, ledger, transfers
from schema.app import build_schema

SDL_PATH = Path(__file__).with_name("schema.graphql")
BANK = (accounts.FEATURE, transfers.FEATURE, ledger.FEATURE)


def sdl() -> str:
    return print_schema(build_schema(BANK)) + "\n"


def main(argv: list[str]) -> int:
    target = Path(argv[0]) if argv else SDL_PATH
    target.write_text(sdl(), encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
