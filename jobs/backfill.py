"""Backfill: import a repository's history from GitHub's REST API into the contribution ledger.

Why: webhooks only tell the ledger what happens once the app is installed, while leaderboards and
insights want what happened before. Every contribution is built by `domain.contributions`, the
builders the webhook handler uses, so it has the same key whichever path sees it first: running the
backfill twice, resuming it, or overlapping it with live webhooks counts each contribution once.

Three stages, each walked page by page (100 items a page) in a stable order, oldest first, with the
position saved in the ledger's state table after every page, so that a run that stopped continues
where it was:
  issues    the issues listing (issues and pull requests): issues opened and closed. It also gives
            every number's author, labels, reactions and closer, which the other stages need; those
            are kept in the state table page by page, so a run resumed later reads no page twice.
  pulls     pull requests opened, merged or closed unmerged, the good first issues a merged one closes
            ("Fixes #12"), and each pull request's reviews.
  comments  comments on issues and on pull requests' conversations.

Not imported: review comments (on a pull request's diff). Listing them takes
`GET /repos/{owner}/{repo}/pulls/comments`, which is not among the operations the app may call
(tests/contract/github/rest-api.subset.json); the webhook handler records them from installation on.

A rate limit is waited out until GitHub's reset (or, for the scheduled import, pauses the run); a
5xx or no answer is retried twice; any other failure stops the run with a message saying where, and its
progress kept. `keep_going`, asked before each page, lets the scheduled import (`engagement.history`)
stop between pages to spare the installation's request budget.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from domain.contributions import (
    Contribution,
    Repo,
    closed_issue,
    closed_pull,
    created_comment,
    github_time,
    opened_issue,
    opened_pull,
    reactions,
    repo_from,
    solved_good_first_issue,
    submitted_review,
)
from engagement import good_first_issues, leaderboard
from engagement.common import config as repo_config
from engagement.good_first_issues.linked_pulls import closing_references
from githubapp.client import GitHubApp, InstallationClient, Response, next_link
from githubapp.errors import GitHubError, NotFound, RateLimited, ServerError, Unavailable
from storage.db import utcnow
from storage.good_first_issues import has_label
from storage.ledger import LedgerStore

log = logging.getLogger(__name__)

ISSUES, PULLS, COMMENTS = "issues", "pulls", "comments"
STAGES = (ISSUES, PULLS, COMMENTS)
PER_PAGE = 100
SOURCE = "backfill"
# 5xx and timeouts are usually brief on GitHub; past this the run stops (resumable) rather than hang.
TRANSIENT_RETRIES = 2
TRANSIENT_PAUSE_SECONDS = 2.0

SUMMARY = (
    "recorded {new} new contributions ({existing} already in the ledger) from {issues} issues, "
    "{pulls} pull requests, {reviews} reviews, {comments} comments"
)
NOT_OWNER_REPO = "{full_name!r} is not a repository name: give it as OWNER/REPO"
NOT_INSTALLED = "the app is not installed for {owner}, so it cannot read {full_name} (installed for: {accounts})"
NOT_IN_INSTALLATION = (
    "{full_name} is unknown to the app: it does not exist, or the app's installation for {owner} "
    "does not include it (add it under the installation's repository access)"
)
CANNOT_START = "cannot read {full_name} from GitHub: {error}"
STOPPED = "stopped at page {page} of {stage}: {error}. Progress is kept; run the same command again to continue"
RESUMED = " (counted over the whole import, which this run resumed)"
RATE_LIMITED = "GitHub rate limit reached: waiting until {until:%H:%M:%S} UTC ({seconds:.0f}s)"
RESUMING = "resuming the interrupted backfill of {full_name} at page {page} of {stage}"
RESTARTING = "an interrupted backfill of {full_name} had another --since ({before}); starting over"

Progress = Callable[[str, int, int | None], None]
T = TypeVar("T")


class BackfillError(Exception):
    """The backfill cannot start, or had to stop; the message says why and what to do. `calls`: the GitHub
    calls the run made before it."""

    calls = 0


class Paused(Exception):
    """The run stopped, as `keep_going` or a rate limit asked; its position is saved. `calls`: GitHub
    calls the run made."""

    def __init__(self, message: str, calls: int):
        super().__init__(message)
        self.calls = calls


@dataclass
class BackfillResult:
    """What a run imported; counts cover the whole import when the run resumed an earlier one."""

    repository: str
    repo_id: int
    new: int = 0  # contributions recorded now
    existing: int = 0  # found again, already in the ledger (earlier run, webhook)
    issues: int = 0  # issues listed (not pull requests)
    pulls: int = 0
    reviews: int = 0
    comments: int = 0
    resumed: bool = False
    calls: int = 0  # GitHub calls this run made (not kept with the position)

    def summary(self) -> str:
        return SUMMARY.format(**asdict(self)) + (RESUMED if self.resumed else "")


def state_key(repo_id: int) -> str:
    """The ledger state row holding a backfill's position: by id, so a renamed repository resumes too."""
    return f"backfill:{repo_id}"


def subjects_key(repo_id: int, page: int | None = None) -> str:
    """The state rows keeping what later stages need of each page of the issues listing (the prefix without `page`)."""
    return f"backfill-subjects:{repo_id}:" + ("" if page is None else str(page))


def backfill(
    services: Any,
    full_name: str,
    since: datetime | None,
    progress: Progress,
    *,
    say: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    installation_id: int | None = None,
    keep_going: Callable[[int], bool] | None = None,
) -> BackfillResult:
    """Import what happened in `full_name` since `since` (None: its whole history) into the ledger
    (`services`: the app's Services, which sits above this module).

    `progress(stage, done, total)` after each page (and each pull request); total is None when
    unknown. `say` gets the lines worth telling an operator (waiting for a rate limit, resuming).
    With `installation_id` known (the scheduled import), it is not looked up. With `keep_going`
    (given the GitHub calls made so far), a False before a page, or a rate limit, raises `Paused`.
    """
    if full_name.count("/") != 1 or not all(full_name.split("/")):
        raise BackfillError(NOT_OWNER_REPO.format(full_name=full_name))
    patient = Patient(say or log.warning, sleep, wait_out_rate_limits=keep_going is None)
    try:
        return _backfill(services, full_name, since, progress, patient, installation_id, keep_going)
    except BackfillError as exc:
        exc.calls = patient.calls
        raise


def _backfill(
    services: Any,
    full_name: str,
    since: datetime | None,
    progress: Progress,
    patient: Patient,
    installation_id: int | None,
    keep_going: Callable[[int], bool] | None,
) -> BackfillResult:
    try:
        if installation_id is None:
            installation_id = find_installation(services.github, full_name, patient)
        client = services.github.installation(installation_id)
        repository = patient(client.get, f"/repos/{full_name}")
        behaviours = services.configurable
        config = patient(repo_config.load, client, repository, behaviours)
    except NotFound as exc:
        raise BackfillError(NOT_IN_INSTALLATION.format(full_name=full_name, owner=full_name.split("/")[0])) from exc
    except GitHubError as exc:
        raise BackfillError(CANNOT_START.format(full_name=full_name, error=exc)) from exc
    section = config.typed(good_first_issues.GoodFirstIssuesConfig, good_first_issues.NAME)
    # The daily comment cap the webhook path applies (engagement.ledger), so both credit the same comments.
    cap = config.typed(leaderboard.LeaderboardConfig, leaderboard.NAME).daily_comment_cap
    run = Run(
        LedgerStore(services.store.engine),
        client,
        repo_from(repository, installation_id),
        naive_utc(since),
        gfi_labels(section),
        cap,
        patient,
        progress,
        keep_going or (lambda _calls: True),
        scheduled=keep_going is not None,
    )
    return run.go()


def find_installation(github: GitHubApp, full_name: str, patient: Patient) -> int:
    """The app's installation that can read `full_name`: the one on its owner's account.

    `GET /repos/{owner}/{repo}/installation` would say at once, but it is not in our API subset.
    """
    owner = full_name.split("/")[0]
    accounts: list[str] = []
    for page in walk(patient, github.as_app, "/app/installations"):
        for installation in page:
            login = str((installation.get("account") or {}).get("login") or "")
            accounts.append(login)
            if login.lower() != owner.lower():
                continue
            client = github.installation(int(installation["id"]))
            for repos in walk(patient, client.request, "/installation/repositories"):
                if any(str(r["full_name"]).lower() == full_name.lower() for r in repos["repositories"]):
                    return int(installation["id"])
            raise BackfillError(NOT_IN_INSTALLATION.format(full_name=full_name, owner=owner))
    listed = ", ".join(sorted(accounts, key=str.lower)) or "nobody"
    raise BackfillError(NOT_INSTALLED.format(owner=owner, full_name=full_name, accounts=listed))


def walk(patient: Patient, request: Callable[..., Response], path: str) -> Iterator[Any]:
    """Each page of a list endpoint, following the Link header."""
    url: str | None = path
    params: dict[str, Any] | None = {"per_page": PER_PAGE}
    while url:
        answer = patient(request, "GET", url, params=params)
        yield answer.data
        url, params = next_link(answer.headers.get("Link")), None  # the next link carries the query


def last_page(link_header: str | None) -> int | None:
    """The page number of the rel="last" link, when GitHub gives one (not on the last page)."""
    for part in (link_header or "").split(","):
        url, _, rel = part.partition(";")
        if 'rel="last"' in rel:
            pages = parse_qs(urlsplit(url.strip().strip("<>")).query).get("page")
            return int(pages[0]) if pages and pages[0].isdigit() else None
    return None


def naive_utc(moment: datetime | None) -> datetime | None:
    """Like every stored time: UTC without a time zone (a naive `since` is taken as UTC)."""
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def gfi_labels(section: good_first_issues.GoodFirstIssuesConfig) -> list[str]:
    """The repository's good-first-issue label (the first of `labels`) and its synonyms."""
    return [*section.labels[:1], *section.synonyms]


def trimmed_user(user: Any) -> dict[str, Any] | None:
    return {k: user.get(k) for k in ("login", "id", "type")} if isinstance(user, Mapping) else None


def subject_entry(item: Mapping[str, Any]) -> dict[str, Any]:
    """What later stages need of an issue or pull request from the issues listing; small, since a
    big repository has tens of thousands of them."""
    entry = {
        "number": int(item["number"]),
        "user": trimmed_user(item.get("user")),
        "created_at": item.get("created_at"),
        "html_url": item.get("html_url"),
        "labels": [str(lab["name"] if isinstance(lab, Mapping) else lab) for lab in item.get("labels") or []],
        "reactions": item.get("reactions"),
        "closed_by": trimmed_user(item.get("closed_by")),
    }
    if item.get("pull_request"):
        entry["pull_request"] = {"html_url": item.get("html_url")}
    return entry


def issue_number(comment: Mapping[str, Any]) -> int | None:
    """A comment's issue or pull request number: the end of its `issue_url`."""
    tail = str(comment.get("issue_url") or "").rstrip("/").rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else None


def minimal_subject(number: int, comment: Mapping[str, Any]) -> dict[str, Any]:
    """For a comment whose issue the listing did not give (edited since, issue untouched)."""
    entry: dict[str, Any] = {"number": number}
    if f"/pull/{number}" in str(comment.get("html_url") or ""):
        entry["pull_request"] = {"html_url": comment.get("html_url")}
    return entry


class Patient:
    """Calls GitHub, waiting out rate limits (or pausing at one) and retrying brief outages; counts the calls."""

    def __init__(self, say: Callable[[str], None], sleep: Callable[[float], None], wait_out_rate_limits: bool = True):
        self.say = say
        self.sleep = sleep
        self.wait_out_rate_limits = wait_out_rate_limits
        self.calls = 0

    def __call__(self, request: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        failures = 0
        while True:
            try:
                self.calls += 1
                return request(*args, **kwargs)
            except RateLimited as exc:
                if not self.wait_out_rate_limits:
                    raise Paused(f"GitHub rate limit reached: {exc}", self.calls) from exc
                seconds = max(1.0, float(exc.retry_after or 0))
                self.say(RATE_LIMITED.format(until=datetime.now(UTC) + timedelta(seconds=seconds), seconds=seconds))
                self.sleep(seconds)
            except (ServerError, Unavailable):
                failures += 1
                if failures > TRANSIENT_RETRIES:
                    raise
                self.sleep(TRANSIENT_PAUSE_SECONDS * failures)


@dataclass
class Position:
    """Where a run is (the page to fetch next, of a stage) and what it found so far."""

    stage: str = ISSUES
    page: int = 1
    since: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    # How many pages of the issues listing have their subjects kept (0 in positions saved before they were).
    subject_pages: int = 0
    saved_at: str | None = None  # UTC, ISO: a run that saved its place lately is still under way
    scheduled: bool = False  # saved by the background import (engagement.history), not an operator's command


Built = tuple[list[Contribution | None], dict[str, int]]


class Run:
    """One backfill of one repository: its stages, its position, its counts."""

    def __init__(
        self,
        ledger: LedgerStore,
        client: InstallationClient,
        repo: Repo,
        since: datetime | None,
        gfi_labels: list[str],
        cap: int | None,
        patient: Patient,
        progress: Progress,
        keep_going: Callable[[int], bool],
        scheduled: bool = False,
    ):
        self.ledger, self.client, self.repo, self.since = ledger, client, repo, since
        self.gfi_labels, self.cap, self.patient, self.progress = gfi_labels, cap, patient, progress
        self.keep_going = keep_going
        self.scheduled = scheduled
        self.subjects: dict[int, dict[str, Any]] = {}  # number -> subject_entry, from the issues listing
        self.key = state_key(repo.id)
        self.result = BackfillResult(repo.full_name, repo.id)
        self.position = self._load()
        self._restore_subjects()
        self._meter: tuple[str, int, int | None] = (ISSUES, 0, None)  # stage, done before this page, total

    def go(self) -> BackfillResult:
        base = f"/repos/{self.repo.full_name}"
        since = {"since": self.position.since} if self.position.since else {}
        ordered = {"sort": "created", "direction": "asc"}
        self._stage(ISSUES, f"{base}/issues", {"state": "all", **ordered, **since}, self._issues)
        self._stage(PULLS, f"{base}/pulls", {"state": "all", **ordered}, self._pulls)
        self._stage(COMMENTS, f"{base}/issues/comments", {**ordered, **since}, self._comments)
        self.ledger.set_state(self.key, None)
        self.ledger.drop_states(subjects_key(self.repo.id))
        self.ledger.observe_repository(self.repo)  # its row, even when it had nothing to record
        self.ledger.mark_complete(self.repo.id, self.since)
        self.result.calls = self.patient.calls
        return self.result

    # --- position

    def _load(self) -> Position:
        since = self.since.strftime("%Y-%m-%dT%H:%M:%SZ") if self.since else None
        stored = self.ledger.get_state(self.key)
        if not stored:
            return Position(since=since)
        try:
            position = Position(**json.loads(stored))
        except (ValueError, TypeError):
            log.warning("unreadable backfill position, starting over", extra={"repo": self.repo.full_name})
            return Position(since=since)
        if position.since != since or position.stage not in STAGES:
            self.patient.say(RESTARTING.format(full_name=self.repo.full_name, before=position.since or "none"))
            return Position(since=since)
        self.patient.say(RESUMING.format(full_name=self.repo.full_name, page=position.page, stage=position.stage))
        for name, count in position.counts.items():
            setattr(self.result, name, count)
        self.result.resumed = True
        return position

    def _save(self, stage: str, page: int) -> None:
        counts = {k: v for k, v in asdict(self.result).items() if isinstance(v, int) and k not in ("repo_id", "calls")}
        saved_at = utcnow().isoformat()
        self.position = Position(
            stage, page, self.position.since, counts, self.position.subject_pages, saved_at, self.scheduled
        )
        self.ledger.set_state(self.key, json.dumps(asdict(self.position)))

    def _restore_subjects(self) -> None:
        """What the kept pages of the issues listing said, for a run that resumes after them."""
        if not self.position.subject_pages:
            self.ledger.drop_states(subjects_key(self.repo.id))  # a fresh run, or a position without them
            return
        for value in self.ledger.states_under(subjects_key(self.repo.id)).values():
            for entry in json.loads(value):
                self.subjects[int(entry["number"])] = entry

    def _keep_subjects(self, page: int, items: list[Any]) -> None:
        """Kept before the page's position is saved, so a resumed run finds every page it skips."""
        entries = [subject_entry(item) for item in items]
        self.ledger.set_state(subjects_key(self.repo.id, page), json.dumps(entries, separators=(",", ":")))
        self.position.subject_pages = page

    # --- walking a stage

    def _stage(self, stage: str, path: str, params: dict[str, Any], build: Callable[[list[Any]], Built]) -> None:
        """Walk a stage from its saved page. A stage an earlier run finished is skipped; so is the issues
        listing, unless the position predates keeping its subjects (then it is read again, recording nothing)."""
        recording = self.position.stage == stage
        if not recording and (stage != ISSUES or self.position.subject_pages):
            return
        page = self.position.page if recording else 1
        while True:
            if not self.keep_going(self.patient.calls):
                raise Paused(f"paused at page {page} of {stage}", self.patient.calls)
            try:
                contributions, counts, more = self._page(stage, path, {**params, "page": page}, build)
            except GitHubError as exc:
                raise BackfillError(STOPPED.format(page=page, stage=stage, error=exc)) from exc
            if recording:
                self._record(contributions, counts)
            if not more:
                break
            page += 1
            if recording:
                self._save(stage, page)
        if recording and stage != STAGES[-1]:
            self._save(STAGES[STAGES.index(stage) + 1], 1)

    def _page(
        self, stage: str, path: str, params: dict[str, Any], build: Callable[[list[Any]], Built]
    ) -> tuple[list[Contribution | None], dict[str, int], bool]:
        """One page of a stage: its contributions, its counts, and whether another page follows."""
        answer = self.patient(self.client.request, "GET", path, params={**params, "per_page": PER_PAGE})
        items = answer.data if isinstance(answer.data, list) else []
        link = answer.headers.get("Link")
        more = next_link(link) is not None
        before = (int(params["page"]) - 1) * PER_PAGE
        last = last_page(link)
        # While pages follow, an upper bound from the last page's number; exact on the last page.
        total = (last * PER_PAGE if last else None) if more else before + len(items)
        self._meter = (stage, before, total)
        contributions, counts = build(items)
        if stage == ISSUES and self.position.stage == ISSUES:
            self._keep_subjects(int(params["page"]), items)
        self.progress(stage, before + len(items), total)
        return contributions, counts, more

    def _record(self, built: list[Contribution | None], counts: Mapping[str, int]) -> None:
        wanted = [c for c in built if c is not None and (self.since is None or c.occurred_at >= self.since)]
        new = self.ledger.record(wanted, source=SOURCE, cap=self.cap)
        self.result.new += new
        self.result.existing += len(wanted) - new
        for name, count in counts.items():
            setattr(self.result, name, getattr(self.result, name) + count)

    def _tick(self, done_on_page: int) -> None:
        stage, before, total = self._meter
        self.progress(stage, before + done_on_page, total)

    # --- the stages' contributions

    def _issues(self, items: list[Any]) -> Built:
        built: list[Contribution | None] = []
        issues = 0
        for item in items:
            self.subjects[int(item["number"])] = subject_entry(item)
            if item.get("pull_request"):
                continue  # the pulls stage has it
            issues += 1
            built.append(opened_issue(self.repo, item))
            if item.get("state") == "closed":
                built.append(closed_issue(self.repo, item, item.get("closed_by")))
        return built, {"issues": issues}

    def _pulls(self, pulls: list[Any]) -> Built:
        built: list[Contribution | None] = []
        counts = {"pulls": 0, "reviews": 0}
        for done, pull in enumerate(pulls, 1):
            updated = github_time(pull.get("updated_at"))
            if self.since is not None and updated is not None and updated < self.since:
                continue  # nothing happened to it since: no need to read its reviews
            counts["pulls"] += 1
            built += self._pull(pull)
            reviews = f"/repos/{self.repo.full_name}/pulls/{pull['number']}/reviews"
            for page in walk(self.patient, self.client.request, reviews):
                counts["reviews"] += len(page)
                built += [submitted_review(self.repo, pull, review) for review in page]
            self._tick(done)
        return built, counts

    def _pull(self, pull: Mapping[str, Any]) -> list[Contribution | None]:
        entry = self.subjects.get(int(pull["number"]), {})
        built = [opened_pull(self.repo, pull)]
        if pull.get("state") == "closed":
            built.append(closed_pull(self.repo, pull, entry.get("closed_by"), reactions(entry)))
        if pull.get("merged_at"):
            built += [solved_good_first_issue(self.repo, pull, n) for n in self._good_first_issues_closed(pull)]
        return built

    def _good_first_issues_closed(self, pull: Mapping[str, Any]) -> list[int]:
        """Issues the merged pull request closes that carry the good-first-issue label or a synonym."""
        found = []
        for number in sorted(closing_references(str(pull.get("body") or ""))):
            entry = self.subjects.get(number)
            if entry is None or "pull_request" in entry:
                continue
            if any(has_label(entry["labels"], label) for label in self.gfi_labels):
                found.append(number)
        return found

    def _comments(self, comments: list[Any]) -> Built:
        built: list[Contribution | None] = []
        for comment in comments:
            number = issue_number(comment)
            if number is None:
                continue
            subject = self.subjects.get(number) or minimal_subject(number, comment)
            built.append(created_comment(self.repo, subject, comment))
        return built, {"comments": len(comments)}
