"""Runnable examples for the guides in ``docs/`` (exercised by ``tests/runtime``)."""
