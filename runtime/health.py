"""Liveness and readiness.

``/healthz`` answers 200 while the process can answer at all (a load balancer
or Docker restarts it otherwise). ``/readyz`` answers 200 only when every
registered check passes: the database answers a ping, and each piece of
background work (the sequencer, each consumer) either runs here or is held
by another process's live lease. It answers 503 while starting and while
shutting down, so a balancer stops sending traffic before the drain.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from runtime.metrics import bearer_matches
from schema.oidc import JwksKeys
from store.protocol import Leases


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    detail: str


Check = Callable[[], Awaitable[CheckResult]]
CHECK_TIMEOUT_SECONDS = 2.0


class Health:
    """The set of readiness checks plus the process's life-cycle phase."""

    def __init__(self) -> None:
        self.checks: dict[str, Check] = {}
        self.phase = "starting"  # starting -> serving -> stopping

    def add(self, name: str, check: Check) -> None:
        self.checks[name] = check

    async def readiness(self) -> tuple[bool, dict[str, object]]:
        """Run every check (each bounded in time); ready only if all pass while serving."""
        names = list(self.checks)
        results = await asyncio.gather(*(self._run(self.checks[n]) for n in names))
        report = {n: {"ok": r.ok, "detail": r.detail} for n, r in zip(names, results, strict=True)}
        ready = self.phase == "serving" and all(r.ok for r in results)
        return ready, {"status": "ready" if ready else "not ready", "phase": self.phase,
                       "checks": report}  # fmt: skip

    @staticmethod
    async def _run(check: Check) -> CheckResult:
        try:
            return await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
        except TimeoutError:
            return CheckResult(False, f"no answer within {CHECK_TIMEOUT_SECONDS}s")
        except Exception as error:  # a failing check is a "not ready", never a 500
            return CheckResult(False, f"{type(error).__name__}: {error}")


def ping_check(ping: Callable[[], Awaitable[object]]) -> Check:
    """Passes when ``ping()`` returns (e.g. ``client.admin.command("ping")``)."""

    async def check() -> CheckResult:
        await ping()
        return CheckResult(True, "reachable")

    return check


def sequencer_check(task: asyncio.Task[None], leases: Leases, lease_name: str) -> Check:
    """The sequencer loop runs here and someone (here or elsewhere) holds its live lease."""

    async def check() -> CheckResult:
        holder = await leases.holder(lease_name)
        live = holder is not None and holder.live  # judged by the lease store's clock
        if task.done():
            return CheckResult(False, "the sequencer loop ended")
        if live and holder is not None:
            return CheckResult(True, f"lease held by {holder.owner}")
        return CheckResult(False, "nobody holds the sequencer lease")

    return check


def consumer_check(consumer: Any, leases: Leases) -> Check:
    """A consumer (``projections.consumer.Consumer``) is fine when it runs here, or
    stands by while another process holds its live lease; stopped on a poison
    event it is not, and the check names the position and error."""

    async def check() -> CheckResult:
        state = str(consumer.state)
        if state == "running":
            return CheckResult(True, "running here")
        if state == "stopped_on_error":
            return CheckResult(
                False, f"stopped at position {consumer.error_position}: {consumer.last_error}"
            )
        holder = await leases.holder(consumer.name)
        if holder is not None and holder.live:
            return CheckResult(True, f"{state}; leased by {holder.owner}")
        return CheckResult(False, f"{state}; no live lease")

    return check


def jwks_check(keys: JwksKeys) -> Check:
    """The OIDC provider's key set: ready once signing keys are cached.

    A provider that stops answering does not make the process unready while
    cached keys remain (tokens keep verifying); the detail says so. Without any
    key no token can be verified: the check asks for a fetch (at most one per
    refetch interval, shared with requests) and fails until keys arrive.
    """

    async def check() -> CheckResult:
        status = keys.status()
        if status.keys == 0:
            await keys.refresh()
            status = keys.status()
        age = status.age_seconds
        if status.keys == 0 or age is None:
            return CheckResult(False, f"no signing keys: {status.last_error or 'not fetched yet'}")
        if status.last_error is not None:
            return CheckResult(
                True,
                f"provider unreachable, {status.keys} cached keys from {age:.0f}s ago in use:"
                f" {status.last_error}",
            )
        return CheckResult(True, f"{status.keys} signing keys, fetched {age:.0f}s ago")

    return check


def health_routes(health: Health, detail_token: str | None = None) -> list[Route]:
    """``/healthz`` and ``/readyz``.

    ``/readyz`` tells anyone whether each check passed; the details (lease
    owners, positions, errors) only to a caller with ``Authorization: Bearer
    <detail_token>`` (``METRICS_TOKEN``): without a token, to nobody (the CLI's
    ``ledger projections status`` shows them).
    """

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "phase": health.phase})

    async def readyz(request: Request) -> JSONResponse:
        ready, report = await health.readiness()
        if detail_token is None or not bearer_matches(request, detail_token):
            checks: Any = report["checks"]
            report["checks"] = {name: {"ok": check["ok"]} for name, check in checks.items()}
        return JSONResponse(report, status_code=200 if ready else 503)

    return [
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/readyz", readyz, methods=["GET", "HEAD"]),
    ]
