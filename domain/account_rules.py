"""Guards shared by the Account command handlers; each raises a typed rejection."""

from __future__ import annotations

from domain.account_state import AccountState
from domain.codec import storable_int
from domain.errors import AccountIsClosed, AccountNotFound, InvalidInput, InvalidTransferState
from domain.legs import Leg, LegKind
from domain.money import MAX_BALANCE_MINOR


def require_exists(state: AccountState, account_id: str) -> None:
    if not state.exists:
        raise AccountNotFound(account_id)


def require_open(state: AccountState, account_id: str) -> None:
    """The account exists and is not closed (a closed account accepts nothing)."""
    require_exists(state, account_id)
    if state.status == "CLOSED":
        raise AccountIsClosed(account_id)


def check_balance_limit(state: AccountState, amount: int) -> int:
    """Return the balance after adding ``amount``, refusing to pass MAX_BALANCE_MINOR."""
    balance = state.balance + amount
    if balance > MAX_BALANCE_MINOR:
        raise InvalidInput(
            "amount",
            "the account balance would exceed its maximum",
            value=amount,
            balance=storable_int(state.balance),
            maximum=MAX_BALANCE_MINOR,
        )
    return balance


def leg_status(leg: Leg | None) -> str:
    """How an account's leg of a transfer stands, for ``InvalidTransferState``."""
    if leg is None:
        return "NO_LEG"
    if leg.kind == "credit":
        return "CREDITED"
    return "REFUNDED" if leg.refunded else "DEBITED"


def check_leg_replay(state: AccountState, transfer_id: str, kind: LegKind, amount: int) -> bool:
    """True if this exact leg was already recorded (a replay: no new events).

    Raises if the transfer already has a different leg on this account.
    """
    leg = state.legs.get(transfer_id)
    if leg is None:
        return False
    if leg.kind != kind:
        raise InvalidTransferState(transfer_id, leg_status(leg), kind)
    _check_same_amount(transfer_id, leg, amount)
    return True


def check_refundable(state: AccountState, transfer_id: str, amount: int) -> bool:
    """True if a refund must be recorded, False if it already was (a replay).

    A refund only gives back an earlier debit of the same transfer and amount.
    """
    leg = state.legs.get(transfer_id)
    if leg is None or leg.kind != "debit":
        raise InvalidTransferState(transfer_id, leg_status(leg), "refund")
    _check_same_amount(transfer_id, leg, amount)
    return not leg.refunded


def _check_same_amount(transfer_id: str, leg: Leg, amount: int) -> None:
    if leg.amount != amount:
        raise InvalidInput(
            "amount",
            f"transfer {transfer_id} moved {leg.amount} minor units here, not {amount}",
            value=amount,
            expected=leg.amount,
            transfer_id=transfer_id,
        )
