"""Where live read-model documents come from: the read views and consumer checkpoints."""

from __future__ import annotations

from typing import Any

from projections.accounts import NAME as ACCOUNTS_NAME
from projections.checkpoints import CheckpointStore
from projections.ledger import NAME as LEDGER_NAME
from projections.live_topics import CheckpointReader, ReadModelSource
from projections.progress import ProgressBoard
from projections.readmodels import AccountsView, LedgerView, TransfersView
from projections.transfers import NAME as TRANSFERS_NAME


def view_sources(
    accounts: AccountsView, transfers: TransfersView, ledger: LedgerView
) -> dict[str, ReadModelSource]:
    """Sources reading through the read views (so rebuild swaps are followed).

    ``account:<id>`` -> ``AccountRecord``, ``transfer:<id>`` -> ``TransferRecord``,
    ``ledger`` -> every currency's ``LedgerTotals`` (a list).
    """

    async def ledger_totals(_: str) -> Any:
        return await ledger.all()

    return {
        "account": ReadModelSource(ACCOUNTS_NAME, accounts.get),
        "transfer": ReadModelSource(TRANSFERS_NAME, transfers.get),
        "ledger": ReadModelSource(LEDGER_NAME, ledger_totals),
    }


def checkpoint_reader(
    checkpoints: CheckpointStore, progress: ProgressBoard | None = None
) -> CheckpointReader:
    """A consumer's position: in-process progress when it already reaches ``needed``
    (no database read), else the newer of it and the durable checkpoint."""

    async def read(name: str, needed: int) -> int:
        known = (progress.position(name) if progress is not None else None) or 0
        if known >= needed:
            return known
        return max(known, (await checkpoints.load(name)).position)

    return read
