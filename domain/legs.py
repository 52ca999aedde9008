"""The transfer legs an account has recorded, kept so leg commands are idempotent.

``LegBook`` is an immutable map ``transfer_id -> Leg``. It is split into
fixed buckets so that adding a leg copies one small bucket instead of the
whole map: replaying an account with many transfers stays linear. Buckets are
chosen by CRC-32 (stable across processes), never by ``hash()``.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Literal

LegKind = Literal["debit", "credit"]
_BUCKETS = 64


@dataclasses.dataclass(frozen=True)
class Leg:
    """One leg: the account was debited or credited ``amount``; a debit may be refunded."""

    kind: LegKind
    amount: int
    refunded: bool = False


def _bucket(transfer_id: str) -> int:
    return zlib.crc32(transfer_id.encode()) % _BUCKETS


_EMPTY: tuple[Mapping[str, Leg], ...] = tuple({} for _ in range(_BUCKETS))


@dataclasses.dataclass(frozen=True)
class LegBook:
    """Immutable; ``with_leg`` returns a new book sharing all untouched buckets.

    Equality is structural (same legs, same book) because bucket placement
    depends only on the transfer id.
    """

    buckets: tuple[Mapping[str, Leg], ...] = _EMPTY

    def get(self, transfer_id: str) -> Leg | None:
        return self.buckets[_bucket(transfer_id)].get(transfer_id)

    def with_leg(self, transfer_id: str, leg: Leg) -> LegBook:
        index = _bucket(transfer_id)
        bucket = {**self.buckets[index], transfer_id: leg}
        return LegBook((*self.buckets[:index], bucket, *self.buckets[index + 1 :]))

    def items(self) -> Iterator[tuple[str, Leg]]:
        """All legs ordered by transfer id (a stable order for snapshots)."""
        pairs = [pair for bucket in self.buckets for pair in bucket.items()]
        return iter(sorted(pairs, key=lambda pair: pair[0]))

    def __len__(self) -> int:
        return sum(len(bucket) for bucket in self.buckets)

    @classmethod
    def of(cls, legs: Iterable[tuple[str, Leg]]) -> LegBook:
        buckets: list[dict[str, Leg]] = [{} for _ in range(_BUCKETS)]
        for transfer_id, leg in legs:
            buckets[_bucket(transfer_id)][transfer_id] = leg
        return cls(tuple(buckets))
