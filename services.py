"""The app's parts, built once per process from Settings: database, queue, GitHub, router.

The Flask app, the RQ worker and the CLI all use the same `Services`, so a delivery takes the same
path whichever process handles it.
"""

from __future__ import annotations

import importlib
import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import redis
import requests

import ops.metrics
import settings as settings_module
from engagement import registry
from githubapp.budget import Budget
from githubapp.cache import Cache, MemoryCache, RedisCache
from githubapp.client import GitHubApp
from githubapp.pacing import WritePacer
from notify.config import build as build_destination
from notify.direct import DirectMessages
from notify.notifier import Notifier
from ops.in_flight import InFlight
from ops.turns import ProcessingTurn
from scheduling.rq import enqueue_task
from scheduling.runner import Outcome, TaskRunner
from scheduling.tasks import Schedule, Task
from scheduling.tasks import compose as compose_schedules
from settings import Settings
from storage import db, web_sessions
from storage.checkpoint import WalCheckpointer
from storage.deliveries import DeliveryStore
from storage.good_first_issues import GoodFirstIssueStore
from storage.identities import IdentityStore
from storage.installations import InstallationStore
from storage.intents import IntentStore
from storage.ledger import LedgerStore
from storage.people import PeopleStore
from storage.retention import prune
from storage.task_runs import TaskRunStore
from webhooks.context import Stores
from webhooks.dispatch import Dispatcher, InlineDispatcher, RQDispatcher, sweep
from webhooks.jobs import process
from webhooks.router import Router, compose

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    store: DeliveryStore
    router: Router
    github: GitHubApp
    dispatcher: Dispatcher
    # What handlers may use of the database, built once per process.
    stores: Stores
    redis: redis.Redis | None = None
    # The behaviour modules loaded; those with DEFAULTS own a section of `.github/engage.yml`.
    behaviours: list[ModuleType] = field(default_factory=list)
    metrics: ops.metrics.Recorder = field(default_factory=ops.metrics.MemoryRecorder)
    # The webhook answers under way in this process: the embedded worker lets them go first.
    in_flight: InFlight = field(default_factory=InFlight)
    # One delivery computes at a time; one waiting for GitHub lets another go on (WORKER_THREADS).
    turn: ProcessingTurn = field(default_factory=ProcessingTurn)
    # Messages to the operator's chat destinations (DESTINATION_<NAME>_*), posted once each.
    notifier: Notifier = field(init=False)
    # Scheduled tasks (the app's housekeeping and the behaviours'); every worker ticks it.
    tasks: TaskRunner = field(init=False)
    _closed: bool = field(default=False, repr=False)
    _configurable: tuple[tuple[int, int, int], list[Any]] | None = field(default=None, repr=False)

    @property
    def intents(self) -> IntentStore:
        return self.stores.intents

    @property
    def configurable(self) -> list[Any]:
        """The behaviour modules that own a section of `.github/engage.yml` (those with DEFAULTS); one with
        `configured(settings)` is seen as what that returns (checks that need the operator's settings)."""
        key = (id(self.settings), id(self.behaviours), len(self.behaviours))
        if self._configurable is None or self._configurable[0] != key:  # every delivery asks: built once
            owners = [module for module in self.behaviours if hasattr(module, "DEFAULTS")]
            built = [module.configured(self.settings) if hasattr(module, "configured") else module for module in owners]
            self._configurable = (key, built)
        return self._configurable[1]

    def tick(self) -> list[Outcome]:
        """Run or queue the scheduled tasks that are due: what each worker does every sweep interval."""
        return self.tasks.tick()

    def sweep(self) -> int:
        """Dispatch stranded deliveries and due retries now; how many went to the queue."""
        return sweep(self.store, self.dispatcher, self.settings.sweep_grace_seconds)

    def advance_windows(self) -> None:
        """Move the leaderboard windows to today ahead of the pages (a page moves them itself if it gets
        there first). Cheap when they are there already."""
        self.stores.ledger.advance(datetime.now(UTC).date())

    def prune_payloads(self) -> None:
        """Delete payloads older than PAYLOAD_RETENTION_DAYS (0 keeps them forever)."""
        days = self.settings.payload_retention_days
        if days <= 0:
            return
        pruned = prune(self.store.engine, days)
        if pruned.total:
            log.info("pruned old deliveries", extra={"count": pruned.total, "reason": f"older than {days} days"})

    def prune_sessions(self) -> None:
        """Forget sign-in sessions that ended a week ago, and sign-ins started and never finished."""
        pruned = web_sessions.prune(self.store.engine)
        if pruned:
            log.info("pruned ended sign-in sessions", extra={"count": pruned})

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.metrics.close()
            self.dispatcher.close()
            self.store.close()
            self.store.engine.dispose()


def housekeeping(settings: Settings) -> Schedule:
    """The app's own periodic work, registered as any behaviour registers its tasks; each receives Services."""
    schedule = Schedule()
    every = timedelta(seconds=settings.sweep_interval_seconds)
    schedule.add(
        Task("deliveries.sweep", Services.sweep, every=every, inline=True, description="dispatch stranded deliveries")
    )
    schedule.add(
        Task("deliveries.prune", Services.prune_payloads, every=timedelta(hours=1), description="delete old payloads")
    )
    schedule.add(
        Task("signin.prune", Services.prune_sessions, every=timedelta(hours=1), description="forget ended sessions")
    )
    schedule.add(
        Task(
            "leaderboard.windows",
            Services.advance_windows,
            every=timedelta(minutes=5),
            description="move the leaderboard windows to today",
        )
    )
    return schedule


def task_schedule(settings: Settings, modules: list[ModuleType]) -> Schedule:
    """Housekeeping plus every behaviour module's `schedule`, as the router composes their handlers."""
    return compose_schedules([housekeeping(settings), *(m.schedule for m in modules if hasattr(m, "schedule"))])


def behaviour_modules(names: tuple[str, ...]) -> list[ModuleType]:
    """`registry.BEHAVIOURS` plus any named in ENGAGE_BEHAVIOURS, in the order they run."""
    extra = [importlib.import_module(name) for name in names]
    return list(registry.BEHAVIOURS) + [m for m in extra if m not in registry.BEHAVIOURS]


def build_router(names: tuple[str, ...]) -> Router:
    return compose(module.router for module in behaviour_modules(names))


def redis_connection(url: str) -> redis.Redis:
    # Short timeouts: a webhook answer must not hang on a Redis that went away.
    return redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=3, health_check_interval=30)


def build(settings: Settings) -> Services:
    engine = db.make_engine(settings.database_url, settings.worker_threads)
    checkpointer = WalCheckpointer.attach(engine)  # before any connection: SQLite's WAL, off the commits
    if engine.dialect.name == "sqlite":
        db.migrate(engine)  # the embedded default upgrades itself; PostgreSQL uses `flask db upgrade`
    store = DeliveryStore(engine, lease_seconds=settings.job_timeout_seconds * 2, checkpointer=checkpointer)
    connection = redis_connection(settings.redis_url) if settings.redis_url else None
    cache: Cache = RedisCache(connection) if connection is not None else MemoryCache()
    metrics = ops.metrics.recorder(connection)
    turn = ProcessingTurn(shared=engine.dialect.name == "sqlite")
    github = GitHubApp(
        settings.github_api_url,
        settings.app_id,
        settings.private_key,
        cache,
        WritePacer(settings.write_interval_seconds, connection=connection),
        dry_run=settings.dry_run,
        timeout=settings.github_timeout_seconds,
        on_response=ops.metrics.github_hook(metrics),
        budget=Budget(cache, metrics),
        waiting=turn.waiting,
    )
    dispatcher: Dispatcher
    if connection is not None:
        dispatcher = RQDispatcher(
            connection, settings.queue_name, settings.job_timeout_seconds, settings.queued_stale_seconds
        )
    else:
        # The lambdas run later, once `services` below exists.
        dispatcher = InlineDispatcher(
            lambda delivery_id: process_after_answers(services, delivery_id),
            lambda: len(services.tick()),
            settings.sweep_interval_seconds,
            settings.worker_threads,
        )
    modules = behaviour_modules(settings.behaviours)
    services = Services(
        settings,
        store,
        compose(m.router for m in modules),
        github,
        dispatcher,
        Stores(
            LedgerStore(engine),
            GoodFirstIssueStore(engine),
            InstallationStore(engine),
            IntentStore(engine),
            PeopleStore(engine),
            IdentityStore(engine),
            DirectMessages(
                Notifier({}, IntentStore(engine), metrics, dry_run=settings.dry_run),
                settings.telegram_bot_token,
                settings.telegram_api_url,
                settings.discourse_url,
                settings.discourse_api_key,
                settings.discourse_api_username,
            ),
        ),
        connection,
        modules,
        metrics,
        turn=turn,
    )
    session = requests.Session()  # one pool for all destinations
    services.notifier = Notifier(
        {config.name: build_destination(config, session) for config in settings.destinations},
        services.intents,
        metrics,
        dry_run=settings.dry_run,
        connection=connection,
    )
    queue = getattr(dispatcher, "queue", None)
    services.tasks = TaskRunner(
        task_schedule(settings, modules),
        TaskRunStore(engine),
        lambda task, period: services,
        enqueue=(lambda name, period: enqueue_task(queue, name, period, settings.job_timeout_seconds))
        if queue
        else None,
    )
    return services


# How long the embedded worker lets webhook answers go first before it processes its next delivery anyway:
# a burst's answers are not held up by processing, and processing still moves while the burst lasts (each
# worker thread takes a delivery at least every 0.1 s plus its processing). Outside a burst there is no wait.
# Under a burst of 4,000 at 16 connections (bench/README.md, 6 December evening): 0.02 s gave 1,274-1,370
# acks/s, 0.05 s 1,490, 0.1 s 1,718-1,856, 0.2 s 1,825; greetings per second did not move.
YIELD_TO_ANSWERS_SECONDS = 0.1


def process_after_answers(services: Services, delivery_id: str) -> str:
    """The embedded worker's step: after the webhook answers under way in this process (see InFlight), in
    its turn (see ProcessingTurn)."""
    services.in_flight.wait_quiet(YIELD_TO_ANSWERS_SECONDS)
    with services.turn.taken():
        return process(services, delivery_id)


_current: Services | None = None
_lock = threading.Lock()


def install(services: Services) -> None:
    """Make `services` the ones jobs in this process use (the app factory calls this)."""
    global _current
    _current = services


def current() -> Services:
    """The process's Services; an RQ worker started on its own builds them from the environment."""
    global _current
    with _lock:
        if _current is None:
            config = settings_module.from_environment()
            settings_module.check(config)
            _current = build(config)
        return _current
