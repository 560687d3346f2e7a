"""Configuration from the environment (and `.env`), checked once at start-up.

Names follow Probot's (`APP_ID`, `PRIVATE_KEY`, `WEBHOOK_SECRET`, ...) so people who ran a Probot app
already know them. Every error names the variable to fix.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from settings.destinations import TELEGRAM_API_URL, DestinationConfig, destinations
from settings.errors import ConfigError

DEFAULT_WEBHOOK_PATH = "/api/github/webhooks"
DEFAULT_GITHUB_API_URL = "https://api.github.com"
DEFAULT_GITHUB_URL = "https://github.com"
# GitHub caps webhook payloads at 25 MB and does not deliver larger ones.
MAX_WEBHOOK_BYTES = 25 * 1024 * 1024
# The operator token guards retries of every delivery: long enough that guessing it is hopeless.
MIN_ADMIN_TOKEN_LENGTH = 32
NEW_TOKEN = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
# Threads processing deliveries in each worker process (WORKER_THREADS): a delivery mostly waits for GitHub,
# so a few threads serve a burst of them several times faster. Each holds a database connection while it works.
MAX_WORKER_THREADS = 32


@dataclass(frozen=True)
class Settings:
    app_id: int | None = None
    private_key: str | None = field(default=None, repr=False)
    webhook_secret: str | None = field(default=None, repr=False)
    # Set: `/metrics` answers only `Authorization: Bearer <token>`; unset: restrict it at the network level.
    metrics_token: str | None = field(default=None, repr=False)
    webhook_path: str = DEFAULT_WEBHOOK_PATH
    github_api_url: str = DEFAULT_GITHUB_API_URL
    database_url: str = ""
    redis_url: str | None = None
    queue_name: str = "engage"
    dry_run: bool = False
    log_level: str = "INFO"
    log_format: str = "auto"  # text on a terminal, JSON otherwise (logs.chosen_format)
    testing: bool = False
    # Pipeline tuning; the defaults suit a real installation.
    job_timeout_seconds: int = 120
    max_attempts: int = 5
    retry_base_seconds: float = 10.0
    sweep_interval_seconds: float = 30.0
    worker_threads: int = 4
    sweep_grace_seconds: float = 10.0
    queued_stale_seconds: float = 900.0
    # GitHub asks integrators to leave at least a second between content-creating requests.
    write_interval_seconds: float = 1.0
    # The installation's GitHub requests an hour the background import of repositories' history may use
    # (engagement.history); 0 turns it off (`flask backfill` still imports on demand).
    backfill_calls_per_hour: int = 1000
    github_timeout_seconds: float = 10.0
    behaviours: tuple[str, ...] = ()
    # Raw payloads of finished deliveries are pruned after this many days (failed ones after 4x); 0 keeps them.
    payload_retention_days: int = 30
    # The public address GitHub reaches this app at (the App manifest's webhook and redirect URLs);
    # unset: the address the browser used to open /setup.
    base_url: str | None = None
    # GitHub's web address, where the App is registered (GitHub Enterprise Server: https://HOST).
    github_url: str = DEFAULT_GITHUB_URL
    # Set: the operator page /admin answers to this token; unset: /admin answers 404.
    admin_token: str | None = field(default=None, repr=False)
    # The .env file read at start-up (ENV_FILE); registering the App writes its credentials there.
    env_file: str = ".env"
    # Chat destinations the operator defined (DESTINATION_<NAME>_*); repositories may only pick their names.
    destinations: tuple[DestinationConfig, ...] = ()
    # The community's forum, recorded in the ledger (`/api/discourse/webhooks` answers 404 without both).
    discourse_url: str | None = None
    discourse_webhook_secret: str | None = field(default=None, repr=False)
    # The forum categories recorded (its public ones); empty: every category the webhook sends.
    discourse_public_categories: tuple[int, ...] = ()
    # The forum's API key and the user it acts as (DISCOURSE_API_KEY, DISCOURSE_API_USERNAME): replies to
    # `/link` in a private message, the forum's backfill, and destinations of kind discourse.
    discourse_api_key: str | None = field(default=None, repr=False)
    discourse_api_username: str | None = None
    # The GitHub organisation whose community the forum and chats are: their activity counts in its board.
    community_org: str | None = None
    # The community's Telegram group(s), recorded in the ledger through the bot's webhook
    # (`/api/telegram/webhook` answers 404 without both). The token is the notifier's too.
    telegram_bot_token: str | None = field(default=None, repr=False)
    telegram_webhook_secret: str | None = field(default=None, repr=False)
    telegram_api_url: str = TELEGRAM_API_URL  # TELEGRAM_API_URL: a local Bot API server, or a fake in tests
    # The community's Rocket.Chat, recorded through an outgoing webhook (`/api/rocketchat/webhook`
    # answers 404 without both); the channels recorded (names), empty: every one the webhook sends.
    rocketchat_url: str | None = None
    rocketchat_webhook_token: str | None = field(default=None, repr=False)
    rocketchat_channels: tuple[str, ...] = ()
    # Forum and chat accounts the operator links to GitHub accounts (engagement.identity_map): a YAML file.
    identity_map_file: str | None = None
    # The App's user authorization (GITHUB_CLIENT_ID, GITHUB_CLIENT_SECRET; registering the App writes
    # both to .env): people sign in with GitHub (web.signin); unset, nobody signs in and pages stay public.
    github_client_id: str | None = None
    github_client_secret: str | None = field(default=None, repr=False)
    app_slug: str | None = None  # the App's name in its GitHub address (/setup writes it): the install link
    # How many proxies in front of the app set X-Forwarded-For/-Proto/-Host (TRUSTED_PROXIES; 0: none, the
    # headers are ignored): behind a TLS-terminating proxy, 1 makes cookies Secure and addresses right.
    trusted_proxies: int = 0
    # How long GitHub's answer on which private repositories a signed-in person may read is trusted before
    # it is asked again (SIGN_IN_RECHECK_SECONDS): access revoked on GitHub disappears here within this.
    sign_in_recheck_seconds: float = 120.0
    # Local development (WEBHOOK_PROXY_URL): a smee-style channel whose deliveries `flask --app app proxy`
    # (started by scripts/run) forwards to this machine's app; the web and worker processes never read it.
    # The address is the channel's only key: kept out of logs.
    webhook_proxy_url: str | None = field(default=None, repr=False)

    @property
    def uses_redis(self) -> bool:
        return bool(self.redis_url)

    @property
    def can_call_github(self) -> bool:
        return self.app_id is not None and bool(self.private_key)

    @property
    def records_discourse(self) -> bool:
        """The forum's webhooks are received (both its address and its webhook secret are set)."""
        return bool(self.discourse_url and self.discourse_webhook_secret)

    @property
    def records_telegram(self) -> bool:
        """The bot's webhook is received (its token and the webhook's secret token are set)."""
        return bool(self.telegram_bot_token and self.telegram_webhook_secret)

    @property
    def records_rocketchat(self) -> bool:
        """Rocket.Chat's outgoing webhook is received (the server's address and the webhook's token are set)."""
        return bool(self.rocketchat_url and self.rocketchat_webhook_token)

    @property
    def signs_in(self) -> bool:
        """People can sign in with GitHub: the App's client id and secret are both set."""
        return bool(self.github_client_id and self.github_client_secret)

    @property
    def needs_registration(self) -> bool:
        """No GitHub App yet (neither APP_ID nor a key): the app starts and offers /setup to register one."""
        return self.app_id is None and not self.private_key


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _api_url(env: Mapping[str, str]) -> str:
    if env.get("GITHUB_API_URL"):
        return env["GITHUB_API_URL"].rstrip("/")
    host = env.get("GHE_HOST")
    if host:
        # Probot's GHE_HOST names a GitHub Enterprise Server host; its REST API lives under /api/v3.
        protocol = env.get("GHE_PROTOCOL", "https")
        return f"{protocol}://{host.strip('/')}/api/v3"
    return DEFAULT_GITHUB_API_URL


def _web_url(env: Mapping[str, str]) -> str:
    if env.get("GITHUB_URL"):
        return env["GITHUB_URL"].rstrip("/")
    host = env.get("GHE_HOST")
    if host:
        return f"{env.get('GHE_PROTOCOL', 'https')}://{host.strip('/')}"
    return DEFAULT_GITHUB_URL


def _private_key(env: Mapping[str, str]) -> str | None:
    text = env.get("PRIVATE_KEY")
    if text:
        # .env files and dashboards often carry the PEM on one line with literal \n escapes.
        return text.replace("\\n", "\n").strip() + "\n"
    path = env.get("PRIVATE_KEY_PATH")
    if path:
        try:
            return Path(path).expanduser().read_text()
        except OSError as exc:
            raise ConfigError(
                f"PRIVATE_KEY_PATH={path} cannot be read ({exc.strerror}); point it at the .pem file GitHub gave you"
            ) from exc
    return None


def _int(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number (the App ID on the app's settings page), got {raw!r}") from exc


def _days(env: Mapping[str, str], name: str, default: int) -> int:
    return _whole(env, name, default, "days (0: keep forever)")


def _whole(env: Mapping[str, str], name: str, default: int, meaning: str) -> int:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()):
        raise ConfigError(f"{name} must be a whole number of {meaning}, got {raw!r}")
    return int(raw)


def _ids(env: Mapping[str, str], name: str) -> tuple[int, ...]:
    parts = [part.strip() for part in (env.get(name) or "").split(",") if part.strip()]
    if not all(part.isascii() and part.isdigit() for part in parts):
        raise ConfigError(f"{name} must be comma-separated numeric ids (the number in /c/slug/5), got {env[name]!r}")
    return tuple(int(part) for part in parts)


def _count(env: Mapping[str, str], name: str) -> int:
    raw = (env.get(name) or "").strip()
    if not raw:
        return 0
    if not (raw.isascii() and raw.isdigit()) or int(raw) > 10:
        raise ConfigError(f"{name} must be how many proxies stand in front of the app (0-10), got {raw!r}")
    return int(raw)


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ConfigError(f"{name} must be a positive number of seconds, got {raw!r}")
    return value


def _threads(env: Mapping[str, str], name: str, default: int) -> int:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_WORKER_THREADS:
        raise ConfigError(
            f"{name} must be how many deliveries a worker processes at once (1-{MAX_WORKER_THREADS}), got {raw!r}"
        )
    return int(raw)


def load_env_file() -> None:
    """Read the file ENV_FILE names (default `./.env`) into the environment; variables already set win.

    The one loader for web, workers and `flask` commands, so every process of a deployment runs with
    the same settings. The `flask` command reads `./.env` on its own before the app is imported (unless
    FLASK_SKIP_DOTENV=1, as the units and scripts set); when that file is not ENV_FILE, refuse to start
    rather than run with a mix of two files.
    """
    from dotenv import find_dotenv, load_dotenv

    env_file = os.environ.get("ENV_FILE") or ".env"
    if os.environ.get("FLASK_RUN_FROM_CLI") and not _flag(os.environ.get("FLASK_SKIP_DOTENV")):
        flask_read = find_dotenv(".env", usecwd=True)  # where the flask command looked
        if flask_read and Path(flask_read).resolve() != Path(env_file).resolve():
            raise ConfigError(
                f"the flask command read {flask_read} although ENV_FILE names {env_file}: "
                "set FLASK_SKIP_DOTENV=1 so that only ENV_FILE is read (or remove that file)"
            )
    load_dotenv(env_file, override=False)


def from_environment(env: Mapping[str, str] | None = None, instance_path: str = "instance") -> Settings:
    """Read settings from `env` (default: the process environment after loading `.env`)."""
    if env is None:
        load_env_file()
        env = os.environ
    database_url = env.get("DATABASE_URL") or f"sqlite:///{Path(instance_path).resolve() / 'engage.sqlite3'}"
    behaviours = env.get("ENGAGE_BEHAVIOURS")
    return Settings(
        app_id=_int(env, "APP_ID"),
        private_key=_private_key(env),
        webhook_secret=env.get("WEBHOOK_SECRET") or None,
        metrics_token=env.get("METRICS_TOKEN") or None,
        webhook_path=env.get("WEBHOOK_PATH") or DEFAULT_WEBHOOK_PATH,
        github_api_url=_api_url(env),
        database_url=_normalise_database_url(database_url),
        redis_url=env.get("REDIS_URL") or None,
        queue_name=env.get("QUEUE_NAME") or "engage",
        dry_run=_flag(env.get("DRY_RUN")),
        log_level=(env.get("LOG_LEVEL") or "INFO").upper(),
        log_format=(env.get("LOG_FORMAT") or "auto").lower(),
        write_interval_seconds=float(env.get("GITHUB_WRITE_INTERVAL") or 1.0),
        backfill_calls_per_hour=_whole(env, "BACKFILL_CALLS_PER_HOUR", 1000, "GitHub requests an hour (0: off)"),
        behaviours=tuple(b.strip() for b in behaviours.split(",") if b.strip()) if behaviours else (),
        payload_retention_days=_days(env, "PAYLOAD_RETENTION_DAYS", 30),
        base_url=(env.get("BASE_URL") or "").strip().rstrip("/") or None,
        github_url=_web_url(env),
        admin_token=env.get("ADMIN_TOKEN") or None,
        env_file=env.get("ENV_FILE") or ".env",
        destinations=destinations(env),
        discourse_url=(env.get("DISCOURSE_URL") or "").strip().rstrip("/") or None,
        discourse_webhook_secret=env.get("DISCOURSE_WEBHOOK_SECRET") or None,
        discourse_public_categories=_ids(env, "DISCOURSE_PUBLIC_CATEGORIES"),
        discourse_api_key=(env.get("DISCOURSE_API_KEY") or "").strip() or None,
        discourse_api_username=(env.get("DISCOURSE_API_USERNAME") or "").strip() or None,
        community_org=(env.get("COMMUNITY_ORG") or "").strip() or None,
        telegram_bot_token=(env.get("TELEGRAM_BOT_TOKEN") or "").strip() or None,
        telegram_webhook_secret=env.get("TELEGRAM_WEBHOOK_SECRET") or None,
        telegram_api_url=(env.get("TELEGRAM_API_URL") or TELEGRAM_API_URL).strip().rstrip("/"),
        rocketchat_url=(env.get("ROCKETCHAT_URL") or "").strip().rstrip("/") or None,
        rocketchat_webhook_token=env.get("ROCKETCHAT_WEBHOOK_TOKEN") or None,
        rocketchat_channels=tuple(
            name.strip().lstrip("#") for name in (env.get("ROCKETCHAT_CHANNELS") or "").split(",") if name.strip()
        ),
        identity_map_file=(env.get("IDENTITY_MAP_FILE") or "").strip() or None,
        github_client_id=(env.get("GITHUB_CLIENT_ID") or "").strip() or None,
        github_client_secret=(env.get("GITHUB_CLIENT_SECRET") or "").strip() or None,
        app_slug=(env.get("APP_SLUG") or "").strip() or None,
        trusted_proxies=_count(env, "TRUSTED_PROXIES"),
        sign_in_recheck_seconds=_seconds(env, "SIGN_IN_RECHECK_SECONDS", 120.0),
        webhook_proxy_url=(env.get("WEBHOOK_PROXY_URL") or "").strip() or None,
        # Operators rarely change these; tests and slow handlers do (a claimed delivery's lease is 2x the timeout).
        job_timeout_seconds=int(_seconds(env, "JOB_TIMEOUT_SECONDS", 120)),
        sweep_interval_seconds=_seconds(env, "SWEEP_INTERVAL_SECONDS", 30.0),
        worker_threads=_threads(env, "WORKER_THREADS", 4),
        sweep_grace_seconds=_seconds(env, "SWEEP_GRACE_SECONDS", 10.0),
        queued_stale_seconds=_seconds(env, "QUEUED_STALE_SECONDS", 900.0),
    )


def _normalise_database_url(url: str) -> str:
    # Heroku-style URLs say postgres:// and would pick psycopg2, which we do not ship.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def with_overrides(settings: Settings, overrides: Mapping[str, Any] | None) -> Settings:
    return replace(settings, **dict(overrides or {}))


def check(settings: Settings) -> None:
    """Refuse configurations that cannot receive webhooks; tests may run without a secret."""
    # Without any App yet the app starts to offer /setup; an App without its webhook secret cannot work.
    if not settings.webhook_secret and not settings.testing and not settings.needs_registration:
        raise ConfigError(
            "WEBHOOK_SECRET is not set: set it to the webhook secret from the GitHub App's settings page (or in .env)"
        )
    for name, url in (("BASE_URL", settings.base_url), ("GITHUB_URL", settings.github_url)):
        if url is not None and not re.match(r"https?://[^/\s]+", url):
            raise ConfigError(f"{name} must be an http(s) address such as https://engage.example.org, got {url!r}")
    if settings.webhook_proxy_url is not None and not re.match(r"https?://[^/\s]+/\S", settings.webhook_proxy_url):
        raise ConfigError(
            "WEBHOOK_PROXY_URL must be a channel's address such as https://smee.io/AbC123 (https://smee.io/new)"
        )
    if not settings.webhook_path.startswith("/"):
        raise ConfigError(f"WEBHOOK_PATH must start with '/', got {settings.webhook_path!r}")
    if settings.log_format not in ("auto", "text", "json"):
        raise ConfigError(f"LOG_FORMAT must be auto, text or json, got {settings.log_format!r}")
    if settings.identity_map_file and not settings.community_org:
        raise ConfigError(
            "IDENTITY_MAP_FILE is set but COMMUNITY_ORG is not: the accounts it links are that community's"
        )
    if settings.identity_map_file and not Path(settings.identity_map_file).is_file():
        raise ConfigError(f"IDENTITY_MAP_FILE names no readable file: {settings.identity_map_file!r}")
    if settings.admin_token is not None and len(settings.admin_token) < MIN_ADMIN_TOKEN_LENGTH:
        raise ConfigError(
            f"ADMIN_TOKEN is too short: it must have at least {MIN_ADMIN_TOKEN_LENGTH} characters, not "
            f"{len(settings.admin_token)}; set a long random one (`{NEW_TOKEN}`), or unset it to turn /admin off"
        )
    if settings.discourse_webhook_secret and not settings.community_org:
        raise ConfigError(
            "DISCOURSE_WEBHOOK_SECRET is set but COMMUNITY_ORG is not: set COMMUNITY_ORG to the GitHub "
            "organisation whose community the forum is (its activity counts on that owner's pages)"
        )
    for name, received in (
        ("TELEGRAM_WEBHOOK_SECRET", settings.telegram_webhook_secret),
        ("ROCKETCHAT_WEBHOOK_TOKEN", settings.rocketchat_webhook_token),
    ):
        if received and not settings.community_org:
            raise ConfigError(
                f"{name} is set but COMMUNITY_ORG is not: set COMMUNITY_ORG to the GitHub organisation whose "
                "community the chat is (its activity counts on that owner's pages)"
            )
    secret = settings.telegram_webhook_secret
    if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
        # setWebhook's secret_token: "1-256 characters. Only characters A-Z, a-z, 0-9, _ and - are allowed."
        raise ConfigError(
            "TELEGRAM_WEBHOOK_SECRET must be 1-256 characters from A-Z, a-z, 0-9, _ and - (Telegram's rule for "
            f"setWebhook's secret_token); make one with `{NEW_TOKEN}`"
        )
    if bool(settings.github_client_id) != bool(settings.github_client_secret):
        raise ConfigError(
            "GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET go together (the App's settings page shows both): "
            "set both for sign-in with GitHub, or neither"
        )
    if settings.private_key and settings.app_id is None:
        raise ConfigError("PRIVATE_KEY is set but APP_ID is not: set APP_ID to the App ID on the app's settings page")
    if settings.private_key:
        load_private_key(settings.private_key)


def load_private_key(pem: str) -> RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            "PRIVATE_KEY is not a valid PEM private key: paste the whole .pem file GitHub generated "
            "(including the BEGIN/END lines; \\n escapes are fine) or set PRIVATE_KEY_PATH to it"
        ) from exc
    if not isinstance(key, RSAPrivateKey):
        raise ConfigError("PRIVATE_KEY must be the RSA key GitHub generated for the App")
    return key
