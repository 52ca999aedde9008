"""What ``server.start_components`` started, and where the pieces report their health.

Plain holders with no behaviour; the CLI and the tests reach into them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from application.service import ApplicationService
from projections.checkpoints import CheckpointStore
from projections.consumer import ConsumerGroup
from projections.documents import DocumentStore
from projections.hub import Hub
from projections.live import Live
from projections.progress import ProgressBoard
from projections.rebuild import Rebuilder
from projections.status import StatusReporter
from runtime.database import DatabaseHandle
from runtime.health import Health
from runtime.metrics import Metrics, Refresher
from runtime.operations import ProjectionRetrier
from runtime.settings import Settings
from store.protocol import CommandLog, EventStore, Leases, SnapshotStore


@dataclass
class Monitoring:
    """Where started pieces register what ``/metrics`` and ``/readyz`` report."""

    metrics: Metrics = field(default_factory=Metrics)
    health: Health = field(default_factory=Health)
    refreshers: list[Refresher] = field(default_factory=list)


@dataclass
class Stores:
    """The storage backends, all of one kind (MongoDB or in-memory)."""

    events: EventStore
    snapshots: SnapshotStore
    command_log: CommandLog
    leases: Leases
    documents: DocumentStore


@dataclass
class Components:
    """Everything ``start_components`` started; tests and the CLI reach in here."""

    settings: Settings
    database: DatabaseHandle | None
    stores: Stores
    events: EventStore  # ``stores.events``
    service: ApplicationService
    checkpoints: CheckpointStore
    progress: ProgressBoard
    hub: Hub
    status: StatusReporter
    rebuilder: Rebuilder
    retrier: ProjectionRetrier
    consumers: ConsumerGroup | None = None
    live: Live | None = None
    graphql: Any = None
    extras: dict[str, Any] = field(default_factory=dict)
