"""The app factory. Nothing happens at import: ``create_app(settings)`` builds the routes, and
the lifespan opens the store, migrates if asked, and loads and follows the snapshot.

    uvicorn --factory flaggery.http.app:app_from_env     # what each `flaggery` worker runs
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from flaggery.access import HostRule, Keyring
from flaggery.clock import Clock, utc_now
from flaggery.errors import FlaggeryError
from flaggery.hooks.sending import Deliverer
from flaggery.http import (
    admin,
    delivery,
    experiments,
    guards,
    keys,
    ops,
    serving,
    snapshots,
    streaming,
    webhooks,
)
from flaggery.http.cors import FlagsCors, cors_for
from flaggery.http.endpoint import Operation, Services, build_routes
from flaggery.http.errors import error_response, exception_handlers, status_for
from flaggery.http.gc_tuning import tune_for_serving
from flaggery.http.metrics import Metrics, RequestMetrics
from flaggery.http.openapi import openapi_document
from flaggery.http.protocol_guard import capability_problem
from flaggery.http.serving import FlagsFastPath
from flaggery.live.applier import apply_forever
from flaggery.live.backoff import RECONNECT, REFUSED, lasting
from flaggery.live.evaluator import Evaluator
from flaggery.live.exposure_intake import ExposureIntake
from flaggery.live.failure_log import FailureLog, level_of
from flaggery.live.health_watch import HealthWatch
from flaggery.live.pruner import prune_forever
from flaggery.live.tasks import cancel_and_wait
from flaggery.ofrep.app import OFREP_PREFIX, OfrepApp
from flaggery.ofrep.fast_path import OfrepFastPath
from flaggery.settings import Settings
from flaggery.store.database import OUTAGES
from flaggery.store.repository import AsyncFlaggery
from flaggery.store.retention import Retention
from flaggery.store.webhook_targets import TargetPolicy
from flaggery.stream.send_watch import SendWatch
from flaggery.ui import ui_mount

__all__ = ["FlaggeryApp", "app_from_env", "create_app", "home_page"]

log = logging.getLogger(__name__)

OPERATIONS: tuple[Operation, ...] = (
    *serving.OPERATIONS,
    *keys.OPERATIONS,
    *admin.OPERATIONS,
    *delivery.OPERATIONS,
    *experiments.OPERATIONS,
    *streaming.OPERATIONS,
    *snapshots.OPERATIONS,
    *ops.OPERATIONS,
    *webhooks.OPERATIONS,
    *guards.OPERATIONS,
)
METRICS_SAMPLE_SECONDS = 1.0


class FlaggeryApp(Starlette):
    """Starlette, with the flags fast path and the OFREP app in front of its middleware and
    router (OFREP answers every error itself, in OFREP's shapes), and before all of them the
    Host rule of an open loopback server (flaggery.access.hosts; None when it does not apply)."""

    fast_path: FlagsFastPath
    ofrep: ASGIApp
    ofrep_fast_path: OfrepFastPath
    """OFREP's evaluations for flaggery's protocol, answered without ASGI (the same bytes)."""
    hosts: HostRule | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.hosts is not None and scope["type"] in ("http", "websocket"):
            try:
                self.hosts.check(scope["headers"])
            except FlaggeryError as error:
                await _refuse(error, scope, receive, send)
                return
        if scope["type"] == "http":
            if scope["path"].startswith(OFREP_PREFIX):
                await self.ofrep(scope, receive, send)
                return
            if scope["method"] == "GET" and await self.fast_path.serve(scope, send):
                return
        await super().__call__(scope, receive, send)


def create_app(
    settings: Settings, *, clock: Clock = utc_now, freeze_gc: bool = False
) -> FlaggeryApp:
    """The ASGI app for ``settings``. ``clock`` is for tests that move time.

    ``freeze_gc``: once started (first snapshot loaded, or not reachable yet), collect and
    then `gc.freeze` every object alive: the modules, the app and that snapshot, about 100,000
    objects, are never walked again by the cyclic collector, whose full collections took
    52-67 ms each over them (every request in flight waited; bench/swap_stall_bench.py).
    Meant for a server process (`app_from_env` sets it); unfrozen at shutdown.
    """
    settings.check_exposure()
    metrics = Metrics() if settings.enable_prometheus else None
    if metrics is not None:
        metrics.protocol_fallback.set(capability_problem() is not None)
    cors = settings.cors_origin_list
    keyring = Keyring(settings)  # one per app: the failed attempts of every entry point
    hosts = HostRule.for_settings(settings)
    fast_path = FlagsFastPath(metrics, keyring, cors=bool(cors), hosts=hosts)
    ofrep = OfrepApp(
        keyring,
        None if metrics is None else metrics.tally,
        subject_attribute=settings.subject_attribute,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            store, evaluator = await _open_source(settings, clock, stack)
            # One watch per process: its stream limit covers every stream, OFREP's too.
            watch = SendWatch(limit=settings.max_streams)
            services = Services(settings, store, evaluator, metrics, send_watch=watch)
            evaluator.subscribe(services.broadcast.on_update)
            app.state.services = services
            if store is not None:
                await _start_exposures(services, store, evaluator, clock, stack)
            stack.push_async_callback(evaluator.stop)
            await _start(services, stack)
            if freeze_gc:
                _freeze_gc(stack)
            fast_path.snapshot_of = lambda: evaluator.snapshot
            if services.exposure_intake is not None:
                fast_path.assignments = services.exposure_intake.assignments
                ofrep.assignments = services.exposure_intake.assignments
            ofrep.evaluator = evaluator
            ofrep.events.attach(services.broadcast, watch)
            if store is not None and settings.admin_mode:
                await _start_admin_tasks(services, store, evaluator, clock, stack)
            await stack.enter_async_context(_background(services.send_watch.run()))
            if metrics is not None:
                stack.callback(metrics.close)
                await stack.enter_async_context(_background(_sample_forever(services)))
            yield
            fast_path.snapshot_of = ofrep.evaluator = fast_path.assignments = None
            ofrep.assignments = None

    middleware = [Middleware(RequestMetrics, metrics=metrics)] if metrics else []
    if cors:
        middleware.append(Middleware(FlagsCors, origins=cors))
    app = FlaggeryApp(
        routes=_routes(settings, keyring),
        middleware=middleware,
        exception_handlers=exception_handlers,
        lifespan=lifespan,
    )
    app.fast_path = fast_path
    app.ofrep = cors_for(ofrep, cors) if cors else ofrep
    app.ofrep_fast_path = OfrepFastPath(ofrep, keyring, cors=bool(cors), hosts=hosts)
    app.hosts = hosts
    return app


async def _refuse(error: FlaggeryError, scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    response = error_response(status_for(type(error)), error.name, error.message)
    await response(scope, receive, send)


async def _open_source(
    settings: Settings, clock: Clock, stack: contextlib.AsyncExitStack
) -> tuple[AsyncFlaggery | None, Evaluator]:
    """The store and evaluator of a server with a database, or (None, a follower of the
    upstream) for an edge."""
    if settings.upstream_url is not None:
        evaluator = Evaluator.from_upstream(
            settings.upstream_url,
            token=settings.upstream_token,
            clock=clock,
            snapshot_path=settings.snapshot_path,
        )
        return None, evaluator
    store = AsyncFlaggery.from_db_url(settings.db_url, clock=clock)
    stack.push_async_callback(store.close)
    if settings.db_auto_upgrade:
        await store.upgrade_db()
    return store, Evaluator(store.database, snapshot_path=settings.snapshot_path)


async def _start_exposures(
    services: Services,
    store: AsyncFlaggery,
    evaluator: Evaluator,
    clock: Clock,
    stack: contextlib.AsyncExitStack,
) -> None:
    """Every server with a database takes exposures (written in batches) and watches its live
    A/B tests' health; only an admin server's watch may stop a red test."""
    settings = services.settings
    intake = ExposureIntake(
        store.database,
        settings.exposure_flush_interval,
        lambda: evaluator.snapshot if evaluator.revision >= 0 else None,
    )
    services.exposure_intake = intake
    stack.push_async_callback(intake.close)  # before the store closes
    await stack.enter_async_context(_background(intake.run()))
    services.health_watch = HealthWatch(
        store.database,
        lambda: evaluator.snapshot if evaluator.revision >= 0 else None,
        clock,
        stopper=store if settings.admin_mode else None,
    )
    await stack.enter_async_context(_background(services.health_watch.run()))


async def _start_admin_tasks(
    services: Services,
    store: AsyncFlaggery,
    evaluator: Evaluator,
    clock: Clock,
    stack: contextlib.AsyncExitStack,
) -> None:
    """What only an admin server runs: change-log pruning (when retention is bounded), the
    schedule and plan applier, and webhook delivery."""
    settings = services.settings
    retention = Retention(
        settings.change_log_retention_revisions, settings.change_log_retention_days
    )
    if retention.bounded:
        await stack.enter_async_context(_background(prune_forever(store.database, retention)))
    await stack.enter_async_context(_background(apply_forever(store)))
    services.deliverer = await _start_webhooks(store, evaluator, settings, clock, stack)


async def _start_webhooks(
    store: AsyncFlaggery,
    evaluator: Evaluator,
    settings: Settings,
    clock: Clock,
    stack: contextlib.AsyncExitStack,
) -> Deliverer:
    """The admin server delivers webhooks in the background (flaggery.hooks.sending), woken
    by each snapshot swap, never by the write path."""
    policy = TargetPolicy(settings.webhook_allow_loopback, settings.webhook_allow_private)
    store.webhook_policy = policy
    deliverer = Deliverer(
        store.database,
        policy=policy,
        failing_after=settings.webhook_failing_after,
        clock=clock,
    )
    stack.push_async_callback(deliverer.close)
    stack.callback(evaluator.subscribe(lambda _update: deliverer.wake.set()))
    task = asyncio.create_task(deliverer.run_forever())
    stack.push_async_callback(deliverer.stop, task)
    return deliverer


def app_from_env() -> FlaggeryApp:
    """The app for the settings in this process's environment (a uvicorn factory): a server
    process, so tuned for serving (flaggery.http.gc_tuning) and with `create_app`'s
    ``freeze_gc``."""
    tune_for_serving()
    return create_app(Settings.from_env(), freeze_gc=True)


def _freeze_gc(stack: contextlib.AsyncExitStack) -> None:
    gc.collect()  # startup's garbage goes first: frozen, it would never be freed
    gc.freeze()
    stack.callback(gc.unfreeze)


def _routes(settings: Settings, keyring: Keyring) -> list[BaseRoute]:
    openapi = None
    if settings.enable_docs:
        openapi = openapi_document(
            OPERATIONS,
            metrics=settings.enable_prometheus,
            # A closed reader route answers 401 too (auth.AdminGuard): document it.
            token=settings.requires_tokens or settings.reader_routes_closed,
        )
    routes: list[BaseRoute] = [
        *build_routes(OPERATIONS, settings, keyring),
        ui_mount(settings, status_for, keyring),
    ]
    routes += ops.routes(
        enable_prometheus=settings.enable_prometheus,
        enable_docs=settings.enable_docs,
        openapi=openapi,
        home=home_page(settings),
    )
    return routes


def home_page(settings: Settings) -> str | None:
    """Where ``GET /`` sends a browser: the dashboard on an admin server (the only one that
    serves it), else the API reference if enabled, else nowhere (404)."""
    if settings.admin_mode:
        return "/ui/"
    return "/docs" if settings.enable_docs else None


async def _start(services: Services, stack: contextlib.AsyncExitStack) -> None:
    """Load the first snapshot. If the database (an edge's upstream) is unreachable, start
    anyway (readyz says 503 with the reason, serving answers DatabaseUnavailable, or
    UpstreamUnavailable on an edge) and keep trying in the background."""
    try:
        await services.evaluator.start()
    except Exception as error:
        failures = FailureLog(log)
        _no_snapshot(services, failures, error)
        await stack.enter_async_context(_background(_keep_starting(services, failures, error)))


async def _keep_starting(services: Services, failures: FailureLog, error: Exception) -> None:
    # A refused token or a state that does not build is retried slowly
    # (flaggery.live.backoff.lasting), an outage quickly.
    quick, slow = RECONNECT.delays(), REFUSED.delays()
    while True:
        await asyncio.sleep(next(slow if lasting(error) else quick))
        try:
            await services.evaluator.start()
        except Exception as next_error:
            error = next_error
            _no_snapshot(services, failures, error)
        else:
            revision = services.evaluator.revision
            log.info("First snapshot loaded at revision %s", revision, extra={"revision": revision})
            return


def _no_snapshot(services: Services, failures: FailureLog, error: Exception) -> None:
    """Log why there is no snapshot (again only when the reason changes), and let readyz and
    serving say it too. An outage's message says what to do; a refused upstream token is an
    error an operator must fix; anything else is logged with its traceback."""
    reason = str(error) or type(error).__name__
    if not reason.endswith((".", "!", "?")):
        reason += "."  # it is followed by a sentence, in the log and in the 503
    services.no_snapshot_reason = reason
    failures.failed(
        reason,
        "No snapshot yet: %s Retrying in the background.",
        reason,
        level=level_of(error),
        exc_info=not isinstance(error, OUTAGES),
    )


async def _sample_forever(services: Services) -> None:
    while True:
        ops.sample_metrics(services)
        await asyncio.sleep(METRICS_SAMPLE_SECONDS)


@contextlib.asynccontextmanager
async def _background(coroutine: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    task = asyncio.create_task(coroutine)
    try:
        yield
    finally:
        await cancel_and_wait(task)
