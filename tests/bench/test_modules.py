"""``bench.modules`` follows one deposit from the request to its subscriber."""

from __future__ import annotations

from bench.modules import deposit_path, source_modules


async def test_a_deposit_passes_through_every_layer_to_the_subscriber() -> None:
    seen, total = await deposit_path()
    assert total == len(source_modules())
    assert seen <= set(source_modules().values())
    layers = {name.partition(".")[0] for name in seen}
    assert {"domain", "store", "application", "projections", "schema", "runtime"} <= layers
