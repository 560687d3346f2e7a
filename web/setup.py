"""Register the GitHub App from app.yml in one click: GitHub's App manifest flow, as Probot does it.

Why: copying an App ID, a private key and a webhook secret from GitHub's settings pages into `.env` by
hand is where first installations go wrong. While the app has no App yet (no APP_ID and no key), `/`
leads to `/setup`, which posts the manifest built from `app.yml` to GitHub (GITHUB_URL, GitHub Enterprise
alike). GitHub registers the App and sends the browser back to `/setup/callback` with a one-time code,
which we exchange for the App's credentials and write into the `.env` the app reads.

The running processes keep the settings they started with, and the page asks for a restart: the other
web processes and the workers could not see a change made in this one, and half a fleet answering with
the new secret is worse than a restart. Until then `/setup` says the App is registered instead of
offering a second one.

The round trip is protected by `state`: random, kept server-side as one small file per value in the
instance folder (so every web process on the machine can check it), bound to the browser by a cookie,
good for an hour and for one use. Once the app is configured these routes answer 404. Neither the
private key, the secrets nor the code are ever logged.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import yaml
from dotenv import dotenv_values
from dotenv.parser import parse_stream
from flask import Blueprint, Response, abort, current_app, g, jsonify, redirect, render_template, request, url_for
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue

from githubapp.client import API_VERSION, USER_AGENT, error_for
from githubapp.errors import GitHubError, NotFound, ServerError, Unavailable, ValidationFailed
from services import Services
from settings import Settings
from web import shell

log = logging.getLogger(__name__)

bp = Blueprint("setup", __name__)

APP_YML = Path(__file__).resolve().parents[1] / "app.yml"
CALLBACK_PATH = "/setup/callback"
STATE_COOKIE = "engage_setup_state"
STATE_TTL_SECONDS = 3600  # GitHub's code lives an hour too
MAX_PENDING_STATES = 100  # anyone may open /setup while unconfigured: keep the folder small
# A GitHub login: letters, digits and single hyphens inside, at most 39 characters.
ORGANISATION = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}")
CODE = re.compile(r"[A-Za-z0-9_.-]{1,200}")
STATE = re.compile(r"[A-Za-z0-9_-]{20,100}")
# What the conversion answer holds, under the names settings.py (and Probot) read.
CREDENTIALS = (
    ("APP_ID", "id"),
    ("PRIVATE_KEY", "pem"),
    ("WEBHOOK_SECRET", "webhook_secret"),
    ("GITHUB_CLIENT_ID", "client_id"),
    ("GITHUB_CLIENT_SECRET", "client_secret"),
    ("APP_SLUG", "slug"),
)
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "0.0.0.0")

# The page's words are messages in translations/*/LC_MESSAGES/messages.po; these are their keys.
BAD_STATE = "setup.bad_state"
NO_CODE = "setup.no_code"
BAD_ORGANISATION = "setup.bad_organisation"
CONVERSION_FAILED = "setup.conversion_failed"
WRITE_FAILED = "setup.write_failed"
UNREGISTERED_WEBHOOK = "no GitHub App is registered yet, so no delivery can be verified: open /setup"

# The page's one script (the auto-submit) runs by nonce; forms may go to this app and to GitHub only.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self' {github}; base-uri 'none'; frame-ancestors 'none'"
)

clock = time.time  # tests move it forward to expire states


class ConversionFailed(RuntimeError):
    """GitHub did not turn the code into credentials: why, as a message key and its fields (the exception's
    text is the English, for the log)."""

    def __init__(self, key: str, **fields: Any):
        super().__init__(shell.english(key, **fields))
        self.key, self.fields = key, fields

    def shown(self) -> str:
        """Why, in the visitor's language."""
        return shell.Translator()(self.key, **self.fields)


class EnvFileError(RuntimeError):
    """The .env cannot be written so that python-dotenv reads the values back unchanged."""


# --- the manifest (pure)


def load_app_yml(path: Path = APP_YML) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


def build_manifest(
    app_yml: Mapping[str, Any], base_url: str, webhook_path: str, proxy_url: str | None = None
) -> dict[str, Any]:
    """The manifest GitHub registers the App from: app.yml with this installation's addresses filled in;
    with WEBHOOK_PROXY_URL, as Probot does, GitHub delivers to that channel (local development)."""
    hook = {**dict(app_yml.get("hook_attributes") or {}), "url": proxy_url or base_url + webhook_path}
    hook.setdefault("active", True)
    manifest = {
        "name": app_yml["name"],
        "url": app_yml["url"],
        "description": app_yml.get("description", ""),
        "hook_attributes": hook,
        "redirect_url": base_url + CALLBACK_PATH,
        # Where GitHub returns people who sign in with GitHub (web.signin): the App's user authorization.
        "callback_urls": list(app_yml.get("callback_urls") or [base_url + "/auth/callback"]),
        # GitHub sends people here after they install the App: the overview lists their repositories.
        "setup_url": app_yml.get("setup_url") or base_url + "/",
        "public": bool(app_yml.get("public", False)),
        "default_permissions": dict(app_yml.get("default_permissions") or {}),
        "default_events": list(app_yml.get("default_events") or []),
    }
    return manifest


def manifest_target(github_url: str, organisation: str | None, state: str) -> str:
    """Where the manifest is posted: GitHub's new-App page for the signed-in person or an organisation."""
    owner = f"/organizations/{quote(organisation)}" if organisation else ""
    return f"{github_url}{owner}/settings/apps/new?state={quote(state)}"


def is_local(url: str) -> bool:
    """True for an address GitHub cannot deliver webhooks to."""
    host = (urlsplit(url).hostname or "").lower()
    return host in LOCAL_HOSTS or host.endswith((".local", ".localhost"))


# --- state: one use, one hour, checked by any web process on the machine


class StateStore:
    """One-time `state` values, each a small file named by its hash in `folder` and holding its expiry."""

    def __init__(self, folder: Path, ttl: float = STATE_TTL_SECONDS):
        self.folder = folder
        self.ttl = ttl

    def _path(self, state: str) -> Path:
        return self.folder / hashlib.sha256(state.encode()).hexdigest()

    def issue(self) -> str:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._prune()
        state = secrets.token_urlsafe(32)
        descriptor = os.open(self._path(state), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(repr(clock() + self.ttl))
        return state

    def take(self, state: str) -> bool:
        """True once for a state issued within the hour; after that call it is gone, whatever the answer."""
        if not STATE.fullmatch(state):
            return False
        path = self._path(state)
        try:
            expires = float(path.read_text())
            path.unlink()  # of two concurrent callbacks, only one unlinks
        except (OSError, ValueError):
            return False
        return clock() < expires

    def _prune(self) -> None:
        """Drop expired states, and the oldest ones past MAX_PENDING_STATES."""
        found: list[tuple[float, Path]] = []
        for path in self.folder.iterdir():
            try:
                found.append((float(path.read_text()), path))
            except (OSError, ValueError):
                continue
        found.sort()
        now = clock()
        for index, (expires, path) in enumerate(found):
            if expires <= now or index < len(found) - (MAX_PENDING_STATES - 1):
                path.unlink(missing_ok=True)


# --- the code exchange


def convert(api_url: str, code: str, timeout: float) -> dict[str, Any]:
    """Exchange the one-time code for the App and its credentials (no authentication: the code is the proof)."""
    # The code is secret until used: errors and logs name the path's template, never the code.
    path = "/app-manifests/{code}/conversions"
    try:
        answer = requests.post(
            f"{api_url}/app-manifests/{quote(code, safe='')}/conversions",
            headers={
                "User-Agent": USER_AGENT,
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
            },
            timeout=(5, timeout),
        )
    except requests.RequestException as exc:
        raise ConversionFailed("setup.reason.unreachable", url=api_url, error=type(exc).__name__) from exc
    try:
        body = answer.json()
    except ValueError:
        body = None
    if answer.status_code != 201:
        raise _reason(error_for(answer.status_code, answer.headers, body, "POST", path)) from None
    if not isinstance(body, dict):
        raise ConversionFailed("setup.reason.not_json")
    return body


def _reason(error: GitHubError) -> ConversionFailed:
    if isinstance(error, NotFound):
        return ConversionFailed("setup.reason.unknown_code")
    if isinstance(error, ValidationFailed):
        return ConversionFailed("setup.reason.refused", message=error.message or "validation failed")
    if isinstance(error, ServerError | Unavailable):
        return ConversionFailed("setup.reason.unavailable", status=error.status, message=error.message)
    return ConversionFailed("setup.reason.status", status=error.status, message=error.message)


def credentials(app: Mapping[str, Any]) -> dict[str, str]:
    """The .env values for a converted App, in the order they are written."""
    missing = [field for _, field in CREDENTIALS if not app.get(field)]
    if missing:
        raise ConversionFailed("setup.reason.lacks", fields=", ".join(missing))
    return {name: str(app[field]) for name, field in CREDENTIALS}


# --- the .env file


def env_line(key: str, value: str) -> str:
    """`KEY="value"` as python-dotenv reads it: backslashes, quotes and newlines escaped (a PEM fits one line)."""
    if "${" in value:
        raise EnvFileError(f"{key}'s value holds '${{', which python-dotenv would expand")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'{key}="{escaped}"\n'


def write_env(path: Path, values: Mapping[str, str], note: str) -> list[str]:
    """Set `values` in the .env at `path`, keeping every other line, and leave it readable by its owner only.

    A key that held another value keeps it as a comment under `note`, and is returned so the page can say
    so; one that held the same value stays as it was. The file is replaced in one step, and only after
    python-dotenv reads every value back as given.
    """
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    lines: list[str] = []
    same: set[str] = set()
    replaced: dict[str, None] = {}
    for binding in parse_stream(io.StringIO(text)):
        key, original = binding.key, binding.original.string
        if binding.error or key is None or key not in values:
            lines.append(original)
        elif binding.value == values[key]:
            same.add(key)
            lines.append(original)
        else:
            if binding.value:
                replaced[key] = None
                lines.append(f"# {note}; {key} was:\n")
            lines.extend(f"# {line}" if line.strip() else line for line in original.splitlines(keepends=True))
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
    added = [env_line(key, value) for key, value in values.items() if key not in same]
    if added:
        lines += [f"# {note}\n", *added]
    target = path.resolve()
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write("".join(lines))
            file.flush()
            os.fsync(file.fileno())
        read_back = dotenv_values(temporary)
        unequal = [key for key, value in values.items() if read_back.get(key) != value]
        if unequal:
            raise EnvFileError(f"python-dotenv would read {', '.join(unequal)} differently")
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    os.chmod(target, 0o600)
    return list(replaced)


def shadowed_by_environment(values: Mapping[str, str], before: Mapping[str, str | None]) -> list[str]:
    """Keys set in the process environment (not by the .env), which would win over the values written."""
    return [key for key, value in values.items() if os.environ.get(key) not in (None, value, before.get(key))]


# --- the pages


def _services() -> Services:
    services: Services = current_app.extensions["engage"]
    return services


def _unregistered() -> Settings:
    """The settings while the app has no App; 404 once it has one (the setup routes are gone then)."""
    settings = _services().settings
    if not settings.needs_registration:
        abort(404)
    return settings


def _base_url(settings: Settings) -> str:
    return settings.base_url or request.url_root.rstrip("/")


def _states() -> StateStore:
    return StateStore(Path(current_app.config["SETUP_STATE_FOLDER"]))


def _registered_in_env_file(settings: Settings) -> dict[str, str | None] | None:
    """What the .env holds when an App was registered since this process started (a restart is due)."""
    path = Path(settings.env_file)
    values = dotenv_values(path) if path.is_file() else {}
    return values if values.get("APP_ID") and values.get("PRIVATE_KEY") else None


def _page(template: str, status: int = 200, **context: Any) -> Response:
    response = current_app.make_response((render_template(template, **context), status))
    return response


@bp.record_once
def _configure(state: BlueprintSetupState) -> None:
    app = state.app
    shell.init_app(app)
    app.config.setdefault("SETUP_STATE_FOLDER", os.path.join(app.instance_path, "setup-states"))
    if app.extensions["engage"].settings.needs_registration:
        log.warning("no GitHub App is configured yet: open this app's home page to register one (/setup)")


@bp.before_app_request
def _while_unregistered() -> ResponseReturnValue | None:
    """Without an App, the home page leads to /setup and webhooks cannot be verified, so none are taken."""
    settings = _services().settings
    if not settings.needs_registration:
        return None
    if request.path == "/":
        return redirect(url_for("setup.start"))
    if request.path == settings.webhook_path and not settings.webhook_secret:
        return jsonify({"message": UNREGISTERED_WEBHOOK}), 503
    return None


@bp.context_processor
def _template_helpers() -> dict[str, Any]:
    # The language switch leads to /setup: the callback's query holds the code, which must not go into a link.
    return shell.template_helpers(switch=lambda lang: url_for("setup.start", lang=lang))


@bp.before_request
def _nonce() -> None:
    g.csp_nonce = secrets.token_urlsafe(16)


@bp.after_request
def _security_headers(response: Response) -> Response:
    github = urlsplit(_services().settings.github_url)
    policy = CONTENT_SECURITY_POLICY.format(nonce=g.csp_nonce, github=f"{github.scheme}://{github.netloc}")
    response.headers["Content-Security-Policy"] = policy  # the rest of the site's headers: web/security.py
    response.headers["Referrer-Policy"] = "no-referrer"  # the callback's address holds the code
    response.headers["Cache-Control"] = "no-store"
    return response


def _form(settings: Settings, status: int = 200, **context: Any) -> Response:
    registered = _registered_in_env_file(settings)
    if registered is not None:
        slug = registered.get("APP_SLUG") or ""
        install = f"{settings.github_url}/apps/{quote(slug)}/installations/new" if slug else None
        return _page("setup.html", mode="registered", env_file=settings.env_file, install_url=install)
    base = _base_url(settings)
    manifest = build_manifest(load_app_yml(), base, settings.webhook_path, settings.webhook_proxy_url)
    return _page(
        "setup.html",
        status,
        mode="form",
        manifest=manifest,
        manifest_json=json.dumps(manifest, indent=2),
        local=is_local(manifest["hook_attributes"]["url"]),
        github_url=settings.github_url,
        **context,
    )


@bp.get("/setup")
def start() -> Response:
    """Say that no App is configured and offer to register one (for a person or an organisation)."""
    return _form(_unregistered())


@bp.post("/setup")
def begin() -> Response:
    """Post the manifest to GitHub: a form that submits itself, with a button for browsers without script."""
    settings = _unregistered()
    organisation = (request.form.get("organisation") or "").strip()
    if organisation and not ORGANISATION.fullmatch(organisation):
        return _form(settings, 400, organisation=organisation, error=shell.Translator()(BAD_ORGANISATION))
    if _registered_in_env_file(settings) is not None:
        return _form(settings)
    state = _states().issue()
    manifest = build_manifest(load_app_yml(), _base_url(settings), settings.webhook_path, settings.webhook_proxy_url)
    response = _page(
        "setup.html",
        mode="redirect",
        action=manifest_target(settings.github_url, organisation or None, state),
        manifest_json=json.dumps(manifest),
        organisation=organisation,
        github_url=settings.github_url,
    )
    response.set_cookie(
        STATE_COOKIE,
        state,
        max_age=STATE_TTL_SECONDS,
        path="/setup",
        secure=request.is_secure,
        httponly=True,
        samesite="Lax",  # GitHub's redirect back is a cross-site navigation
    )
    return response


def _problem(status: int, key: str, **fields: Any) -> Response:
    message = shell.Translator()(key, **fields)
    response = _page("setup.html", status, mode="problem", message=message, status_code=status)
    response.delete_cookie(STATE_COOKIE, path="/setup")
    return response


@bp.get(CALLBACK_PATH)
def callback() -> Response:
    """GitHub's redirect back: check the state, exchange the code, write .env, show the install link."""
    settings = _unregistered()
    state, code = request.args.get("state", ""), request.args.get("code", "")
    cookie = request.cookies.get(STATE_COOKIE, "")
    if not (state and hmac.compare_digest(state.encode(), cookie.encode()) and _states().take(state)):
        log.warning("setup callback refused: unknown, used, expired or foreign state")
        return _problem(400, BAD_STATE)
    if not CODE.fullmatch(code):
        return _problem(400, NO_CODE)
    try:
        app = convert(settings.github_api_url, code, settings.github_timeout_seconds)
        values = credentials(app)
    except ConversionFailed as exc:
        log.warning("GitHub App registration not finished: %s", exc)
        return _problem(502, CONVERSION_FAILED, reason=exc.shown())
    owner = app.get("owner") or {}
    organisation = owner.get("login") if owner.get("type") == "Organization" else None
    owner_path = f"/organizations/{quote(organisation)}" if organisation else ""
    settings_url = f"{settings.github_url}{owner_path}/settings/apps/{quote(values['APP_SLUG'])}"
    path = Path(settings.env_file).absolute()
    today = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    try:
        before = dotenv_values(path) if path.is_file() else {}
        replaced = write_env(path, values, f"GitHub App {values['APP_SLUG']} registered through /setup on {today}")
    except (OSError, EnvFileError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        log.error("registered GitHub App %s but could not write %s: %s", values["APP_SLUG"], path, reason)
        fields = {"slug": values["APP_SLUG"], "id": values["APP_ID"], "path": path, "settings_url": settings_url}
        return _problem(500, WRITE_FAILED, reason=reason, **fields)
    log.info("registered GitHub App %s (ID %s) and wrote its credentials to %s", values["APP_SLUG"], app["id"], path)
    html_url = str(app.get("html_url") or "")
    if not html_url.startswith(("https://", "http://")):
        html_url = f"{settings.github_url}/apps/{quote(values['APP_SLUG'])}"
    response = _page(
        "setup_done.html",
        app=app,
        owner=owner.get("login") or "",
        install_url=f"{html_url}/installations/new",
        settings_url=settings_url,
        env_file=path,
        replaced=replaced,
        shadowed=shadowed_by_environment(values, before),
        # GitHub lets a private App be installed only on the account that owns it: a person's App, then,
        # never reaches an organisation's repositories (the form warned; this says what to do now).
        personal=owner.get("type") != "Organization" and not app.get("public"),
    )
    response.delete_cookie(STATE_COOKIE, path="/setup")
    return response
