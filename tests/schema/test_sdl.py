"""The committed schema/schema.graphql equals the code (regenerate: python -m schema.export)."""

from __future__ import annotations

from schema.export import SDL_PATH, sdl


def test_committed_sdl_equals_the_code() -> None:
    committed = SDL_PATH.read_text(encoding="utf-8")
    assert committed == sdl(), "schema changed: run `python -m schema.export` and commit"


def test_public_contract_names_are_present() -> None:
    text = sdl()
    for name in (
        "openAccount(input: OpenAccountInput!)",
        "deposit(input: AmountInput!)",
        "withdraw(input: AmountInput!)",
        "closeAccount(input: CloseAccountInput!)",
        "requestTransfer(input: RequestTransferInput!)",
        "accountChanged(id: ID!)",
        "scalar Decimal",
        "scalar DateTime",
        "type InsufficientFunds implements Error",
        "type ConcurrencyConflict implements Error",
    ):
        assert name in text
