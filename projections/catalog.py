"""The standard consumers of the bank service, wired from their dependencies.

``server.py`` and the CLI use this instead of naming every projector: it knows
which consumers exist, how to build each (for a rebuild: into a given physical
collection), and the group that runs them.
"""

from __future__ import annotations

from collections.abc import Sequence

from domain.codec import EventRegistry
from projections.accounts import AccountsProjector
from projections.checkpoints import CheckpointStore
from projections.consumer import Consumer, ConsumerSettings, EventHandler
from projections.consumer_group import ConsumerGroup
from projections.documents import DocumentStore
from projections.ledger import LedgerProjector
from projections.progress import ProgressBoard
from projections.projector import ChangePublisher
from projections.rebuild import ProjectorFactory
from projections.statement import StatementProjector
from projections.transfer_manager import CommandSender, TransferManager
from projections.transfers import TransfersProjector
from store.protocol import EventStore, Leases

PROJECTORS = ("accounts", "account_statement", "transfers", "ledger")
PROCESS_MANAGERS = ("transfer_manager",)
CONSUMERS = PROJECTORS + PROCESS_MANAGERS


def projector_factories(
    documents: DocumentStore,
    store: EventStore,
    *,
    hub: ChangePublisher | None = None,
    registry: EventRegistry | None = None,
) -> dict[str, ProjectorFactory]:
    """For each projector name: physical collection -> projector writing there."""

    def accounts(physical: str) -> EventHandler:
        return AccountsProjector(documents, hub=hub, registry=registry, physical=physical)

    def statement(physical: str) -> EventHandler:
        return StatementProjector(documents, hub=hub, registry=registry, physical=physical)

    def transfers(physical: str) -> EventHandler:
        return TransfersProjector(documents, hub=hub, registry=registry, physical=physical)

    def ledger(physical: str) -> EventHandler:
        return LedgerProjector(documents, store, hub=hub, registry=registry, physical=physical)

    return {
        "accounts": accounts,
        "account_statement": statement,
        "transfers": transfers,
        "ledger": ledger,
    }


def standard_handlers(
    documents: DocumentStore,
    store: EventStore,
    *,
    sender: CommandSender | None = None,
    hub: ChangePublisher | None = None,
    registry: EventRegistry | None = None,
    names: Sequence[str] = CONSUMERS,
) -> list[EventHandler]:
    """The live handlers (projectors follow the logical collections' aliases).

    The transfer manager is included only when a ``sender`` is given.
    """
    live: dict[str, EventHandler] = {
        "accounts": AccountsProjector(documents, hub=hub, registry=registry),
        "account_statement": StatementProjector(documents, hub=hub, registry=registry),
        "transfers": TransfersProjector(documents, hub=hub, registry=registry),
        "ledger": LedgerProjector(documents, store, hub=hub, registry=registry),
    }
    if sender is not None:
        live["transfer_manager"] = TransferManager(sender, store, registry=registry)
    return [live[name] for name in names if name in live]


def consumer_group(
    handlers: Sequence[EventHandler],
    store: EventStore,
    checkpoints: CheckpointStore,
    leases: Leases,
    *,
    settings: ConsumerSettings | None = None,
    progress: ProgressBoard | None = None,
    owner: str | None = None,
) -> ConsumerGroup:
    """One ``Consumer`` per handler, sharing settings, progress board and owner id."""
    return ConsumerGroup(
        [
            Consumer(
                handler,
                store,
                checkpoints,
                leases,
                settings=settings,
                owner=owner,
                progress=progress,
            )
            for handler in handlers
        ]
    )
