"""Good first issues: maintainers mark them with a command, newcomers get a guide and claim one.

Commands in issue comments (see `engagement.common.commands` for what counts as a command):
`/good-first-issue` and `/remove-good-first-issue` for people with triage access or more, `/claim` and
`/unclaim` for anyone. Labels that mean "good first issue" bring the canonical label along, and keyword
rules (off by default) label new issues. Every event about a tracked issue updates its state in
`storage.good_first_issues`, which lists the good first issues really open for a newcomer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import quote_plus

from domain.contributions import github_time
from engagement.common import commands
from engagement.common import config as repo_config
from engagement.common.comments import comment_once, ours
from engagement.common.language import detect
from engagement.common.links import CONTRIBUTING_FILES, file_url
from githubapp.errors import Forbidden
from storage.db import utcnow
from storage.good_first_issues import GoodFirstIssueStore, Snapshot, has_label
from webhooks.context import Context
from webhooks.router import Router

NAME = "good_first_issues"
HELP = """Runs good first issues. A maintainer (triage access or more) comments `/good-first-issue` on
an issue to add the good-first-issue labels, created with a colour and description if the repository
lacks them, and one guide for newcomers: how to claim the issue, where to ask, how to submit a pull
request, in English or Chinese (`language: auto` follows the language of the issue).
`/remove-good-first-issue` takes the labels and the guide away. Anyone may comment `/claim` on a good
first issue to have it assigned to them while nobody holds it, up to `claim_cap` open claims each in a
repository, and `/unclaim` to give it back. Labels that mean the same (`synonyms`, such as `easy` or
`beginner`) bring the canonical label (the first of `labels`) along, and `keywords` (empty: off)
label new issues whose title or text mention one. Commands inside code, quotes or HTML comments are
ignored, and an edited comment only runs the commands the edit added."""

DEFAULTS: dict[str, Any] = {
    "enabled": True,
    "language": "auto",  # auto | en | zh
    "labels": ["good first issue", "help wanted"],  # the first one marks a good first issue
    "label_colour": "7057ff",  # for labels the app creates (six hex digits)
    "label_description": "Good for newcomers",
    "synonyms": ["easy", "beginner", "starter", "E-easy", "low hanging fruit", "good-first-issue", "新手", "入门"],
    "keywords": [],  # words in a new issue's title or text that make it a good first issue; empty: off
    "claim_cap": 2,  # open claims per person in a repository; 0: no limit
    "contributing_url": "",  # empty: CONTRIBUTING.md if the repository has one
    "forum_url": "",
    "chat_url": "",
}

SETTINGS_HELP = {
    "enabled": "turn the whole behaviour on or off",
    "language": "`auto` (follows the issue's text), `en` or `zh` for the guide and replies",
    "labels": "labels `/good-first-issue` adds; the first one marks a good first issue",
    "label_colour": "colour (six hex digits) of labels the app creates",
    "label_description": "description of labels the app creates",
    "synonyms": "labels that mean the same; the first of `labels` is added next to them",
    "keywords": "words in a new issue's title or text that make it a good first issue; empty: off",
    "claim_cap": "open claims per person in a repository; 0: no limit",
    "contributing_url": "linked from the guide; empty: CONTRIBUTING.md if the repository has one",
    "forum_url": "where to ask, linked from the guide when set",
    "chat_url": "the community chat, linked from the guide when set",
}

MARK, UNMARK, CLAIM, UNCLAIM = "good-first-issue", "remove-good-first-issue", "claim", "unclaim"
COMMANDS = (MARK, UNMARK, CLAIM, UNCLAIM)
LANGUAGES = ("en", "zh")
# Roles from repos/get-collaborator-permission-level. Its `permission` field only says admin, write,
# read or none (maintain shows as write, triage as read); `role_name` has the real role.
TRIAGE_OR_MORE = frozenset({"admin", "maintain", "write", "triage"})
ROLES = TRIAGE_OR_MORE | {"read", "none"}
# Labels GitHub creates in new repositories, with GitHub's colours and descriptions.
KNOWN_LABELS = {
    "good first issue": ("7057ff", "Good for newcomers"),
    "help wanted": ("008672", "Extra attention is needed"),
}

# What a plan does about a command.
LABEL, UNLABEL, ASSIGN, UNASSIGN, ACKNOWLEDGE, REPLY = "label", "unlabel", "assign", "unassign", "acknowledge", "reply"
# The replies, each posted at most once per comment.
NOT_ALLOWED, NOT_GOOD_FIRST, CLOSED, HELD, CAP_REACHED, NOT_YOURS, NOT_ASSIGNED = (
    "not-allowed",
    "not-good-first",
    "closed",
    "held",
    "cap-reached",
    "not-yours",
    "not-assigned",
)
ROLE, OPEN_CLAIMS = "role", "open_claims"  # facts a decision can ask for

GUIDE_MARKER = "<!-- engage:good-first-issues:guide -->"
GUIDE = {
    "en": "🌱 **This is a good first issue**: a good way to make a first contribution to {repo}.\n\n"
    "**How to take part**\n"
    "1. **Claim it**: comment `/claim` and the issue is assigned to you, so that nobody else starts on it "
    "at the same time{cap_note}. If you cannot go on, comment `/unclaim` so that someone else can take it.\n"
    "2. **Ask**: questions are welcome right here in the comments{ask_links}.\n"
    "3. **Submit**: fork the repository, make your change on a new branch and open a pull request that "
    "says `Fixes #{number}` in its description, so that this issue closes when it is merged.{contributing}",
    "zh": "🌱 **这是一个适合新手的 issue**，很适合作为你在 {repo} 的第一次贡献。\n\n"
    "**如何参与**\n"
    "1. **认领**：评论 `/claim`，这个 issue 就会分配给你，避免多人同时做同一件事{cap_note}。"
    "如果无法继续，请评论 `/unclaim`，让其他人接手。\n"
    "2. **提问**：欢迎直接在下面的评论里提问{ask_links}。\n"
    "3. **提交**：Fork 仓库，在新分支上完成修改，然后提交 pull request，并在描述中写上 `Fixes #{number}`，"
    "合并后这个 issue 会自动关闭。{contributing}",
}
GUIDE_CAP = {"en": " (each person can hold {cap} at a time)", "zh": "（每人同时最多认领 {cap} 个）"}
GUIDE_ASK = {
    "forum_url": {"en": "[the forum]({url})", "zh": "[论坛]({url})"},
    "chat_url": {"en": "[the chat]({url})", "zh": "[聊天室]({url})"},
}
GUIDE_ASK_INTRO = {"en": ", or on {places}", "zh": "，也可以去{places}"}
GUIDE_ASK_JOIN = {"en": " or in ", "zh": "或"}
GUIDE_CONTRIBUTING = {
    "en": " The [contributing guide]({url}) explains how the project works.",
    "zh": "[贡献指南]({url}) 介绍了项目的协作方式。",
}
SIGNATURE = {
    "en": "\n\n<sub>I am the LLMasOS Engage bot; the people of {repo} will help you along.</sub>",
    "zh": "\n\n<sub>我是 LLMasOS Engage 机器人，{repo} 的维护者会帮助你。</sub>",
}
REPLIES: dict[tuple[str, str], str] = {
    (NOT_ALLOWED, "en"): "Thanks, @{login}! Only people with triage access (or more) to {repo} can use "
    "`/{command}`; a maintainer will take a look.",
    (NOT_ALLOWED, "zh"): "谢谢你，@{login}！只有在 {repo} 拥有 triage 或更高权限的成员才能使用 `/{command}`，"
    "维护者会来看看。",
    (NOT_GOOD_FIRST, "en"): "Thanks for offering to help, @{login}! `/claim` works on issues labelled "
    "**{label}**. If you would like to work on this one, say so here and a maintainer will get back to you; "
    "or pick one of the [good first issues]({list_url}).",
    (NOT_GOOD_FIRST, "zh"): "谢谢你愿意帮忙，@{login}！`/claim` 只适用于带有 **{label}** 标签的 issue。"
    "如果你想做这个 issue，请在这里说一声，维护者会回复你；也可以看看这些 [适合新手的 issue]({list_url})。",
    (CLOSED, "en"): "@{login}, this issue is closed, so there is nothing to claim. "
    "Have a look at the open [good first issues]({list_url})!",
    (CLOSED, "zh"): "@{login}，这个 issue 已经关闭，无需认领。看看其他 [适合新手的 issue]({list_url}) 吧！",
    (HELD, "en"): "Thanks for your interest, @{login}! @{holder} is already working on this issue. "
    "Have a look at the other [good first issues]({list_url}), or ask here whether help is welcome.",
    (HELD, "zh"): "谢谢你的关注，@{login}！@{holder} 已经在处理这个 issue 了。"
    "可以看看其他 [适合新手的 issue]({list_url})，或者在这里问问是否需要帮手。",
    (CAP_REACHED, "en"): "Thanks for your enthusiasm, @{login}! You already hold {count} open claimed issues "
    "in {repo}, and the limit is {cap}. Please finish one, or `/unclaim` it, before claiming another.",
    (CAP_REACHED, "zh"): "谢谢你的热情，@{login}！你在 {repo} 已经认领了 {count} 个未完成的 issue，"
    "上限是 {cap} 个。请先完成其中一个，或用 `/unclaim` 释放，再认领新的。",
    (NOT_YOURS, "en"): "@{login}, this issue is not assigned to you, so there is nothing to release.",
    (NOT_YOURS, "zh"): "@{login}，这个 issue 没有分配给你，无需释放。",
    (NOT_ASSIGNED, "en"): "Sorry, @{login}: GitHub did not let me assign this issue to you. "
    "A maintainer will assign it by hand.",
    (NOT_ASSIGNED, "zh"): "抱歉，@{login}：GitHub 没有允许我把这个 issue 分配给你，维护者会手动分配。",
}


def reply_marker(kind: str, comment_id: int) -> str:
    return f"<!-- engage:good-first-issues:{kind}:{comment_id} -->"


@dataclass(frozen=True)
class Issue:
    """The issue an event is about, as its payload shows it."""

    repo: str
    repo_id: int
    number: int
    title: str
    body: str
    html_url: str
    labels: tuple[str, ...]
    assignees: tuple[str, ...]
    state: str
    pull_request: bool
    archived: bool
    updated_at: datetime | None = None

    @property
    def text(self) -> str:
        return f"{self.title}\n{self.body}"


@dataclass(frozen=True)
class Facts:
    """What a decision asked to look up; None: not looked up. `role` "" means the lookup failed."""

    role: str | None = None
    open_claims: int | None = None


@dataclass(frozen=True)
class Lookup:
    """The decision needs this fact (ROLE or OPEN_CLAIMS) first."""

    fact: str


@dataclass(frozen=True)
class Plan:
    command: str
    action: str  # LABEL | UNLABEL | ASSIGN | UNASSIGN | ACKNOWLEDGE | REPLY
    language: str
    reply: str = ""  # for REPLY: which one
    holder: str = ""  # for HELD
    count: int = 0  # for CAP_REACHED


@dataclass(frozen=True)
class AddLabel:
    label: str
    reason: str


def canonical(config: Mapping[str, Any]) -> str:
    """The label that makes an issue a good first issue: the first of `labels`."""
    return next((str(name).strip() for name in config["labels"] if str(name).strip()), "")


def language_for(issue: Issue, config: Mapping[str, Any]) -> str:
    return str(config["language"]) if config["language"] in LANGUAGES else detect(issue.text)


def _off(issue: Issue, config: Mapping[str, Any]) -> str | None:
    if not config["enabled"]:
        return "good first issues are turned off"
    if issue.archived:
        return "repository is archived"
    if not canonical(config):
        return "no labels are configured"
    return None


def decide(command: str, issue: Issue, actor: str, config: Mapping[str, Any], facts: Facts) -> Plan | Lookup | str:
    """What to do about `/command` by `actor`: a plan, a fact to look up first, or why nothing."""
    reason = _off(issue, config)
    if reason:
        return reason
    if issue.pull_request:
        return "commands work on issues, not pull requests"
    language = language_for(issue, config)
    if command in (MARK, UNMARK):
        if facts.role is None:
            return Lookup(ROLE)
        if not facts.role:
            return "could not check the commenter's permission"
        if facts.role not in TRIAGE_OR_MORE:
            return Plan(command, REPLY, language, NOT_ALLOWED)
        return Plan(command, LABEL if command == MARK else UNLABEL, language)
    mine = actor.lower() in {a.lower() for a in issue.assignees}
    if command == UNCLAIM:
        return Plan(command, UNASSIGN, language) if mine else Plan(command, REPLY, language, NOT_YOURS)
    if command != CLAIM:
        return f"/{command} is not a good-first-issue command"
    if issue.state != "open":
        return Plan(command, REPLY, language, CLOSED)
    if not has_label(issue.labels, canonical(config)):
        return Plan(command, REPLY, language, NOT_GOOD_FIRST)
    if mine:
        return Plan(command, ACKNOWLEDGE, language)  # already theirs
    if issue.assignees:
        return Plan(command, REPLY, language, HELD, holder=issue.assignees[0])
    cap = int(config["claim_cap"])
    if cap > 0:
        if facts.open_claims is None:
            return Lookup(OPEN_CLAIMS)
        if facts.open_claims >= cap:
            return Plan(command, REPLY, language, CAP_REACHED, count=facts.open_claims)
    return Plan(command, ASSIGN, language)


def decide_synonym(issue: Issue, label: str, config: Mapping[str, Any]) -> AddLabel | str:
    """Labelled with `label`: add the canonical label too when `label` is one of its synonyms."""
    reason = _off(issue, config)
    if reason:
        return reason
    wanted = canonical(config)
    if label.lower() == wanted.lower():
        return "it is the canonical label"
    if label.lower() not in {str(s).lower() for s in config["synonyms"]}:
        return f"{label!r} is not a synonym"
    if has_label(issue.labels, wanted):
        return "already labelled"
    return AddLabel(wanted, f"synonym {label!r}")


def matching_keyword(text: str, keywords: list[str]) -> str | None:
    """The first keyword in `text`, ignoring case; words in Latin script must stand as whole words."""
    for keyword in (k.strip() for k in keywords):
        if not keyword:
            continue
        pattern = rf"(?<![\w-]){re.escape(keyword)}(?![\w-])" if keyword.isascii() else re.escape(keyword)
        if re.search(pattern, text, re.IGNORECASE):
            return keyword
    return None


def decide_keywords(issue: Issue, config: Mapping[str, Any]) -> AddLabel | str:
    """A new issue: label it when its title or text mentions a configured keyword."""
    reason = _off(issue, config)
    if reason:
        return reason
    if not any(str(k).strip() for k in config["keywords"]):
        return "keyword rules are off"
    wanted = canonical(config)
    if has_label(issue.labels, wanted):
        return "already labelled"
    found = matching_keyword(issue.text, [str(k) for k in config["keywords"]])
    return AddLabel(wanted, f"keyword {found!r}") if found else "no keyword matches"


def role_from(answer: Mapping[str, Any] | None) -> str:
    """The role in a collaborator-permission answer: `role_name` when it is a built-in role (a custom
    role falls back to the `permission` it is based on); "none" for an unknown user."""
    if not answer:
        return "none"
    role = str(answer.get("role_name") or "").lower()
    return role if role in ROLES else str(answer.get("permission") or "none").lower()


def colour(value: Any) -> str:
    """Six hex digits without '#', as GitHub wants them; the default for anything else."""
    text = str(value or "").strip().lstrip("#")
    return text.lower() if re.fullmatch(r"[0-9a-fA-F]{6}", text) else str(DEFAULTS["label_colour"])


def label_specs(config: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(name, colour, description) of each configured label, for creating missing ones."""
    specs = []
    wanted = canonical(config)
    for name in (str(n).strip() for n in config["labels"]):
        if not name:
            continue
        if name == wanted:
            specs.append((name, colour(config["label_colour"]), str(config["label_description"])[:100]))
        else:
            known = KNOWN_LABELS.get(name.lower(), (colour(config["label_colour"]), ""))
            specs.append((name, known[0], known[1]))
    return specs


def list_url(repository: Mapping[str, Any], label: str) -> str:
    """The repository's open good first issues that nobody holds, on GitHub."""
    html = str(repository.get("html_url") or f"https://github.com/{repository['full_name']}")
    return f"{html}/issues?q=" + quote_plus(f'is:issue is:open label:"{label}" no:assignee')


def render_guide(issue: Issue, config: Mapping[str, Any], language: str, contributing_url: str) -> str:
    places = [GUIDE_ASK[key][language].format(url=config[key]) for key in GUIDE_ASK if config[key]]
    ask = GUIDE_ASK_INTRO[language].format(places=GUIDE_ASK_JOIN[language].join(places)) if places else ""
    cap = int(config["claim_cap"])
    text = GUIDE[language].format(
        repo=issue.repo,
        number=issue.number,
        cap_note=GUIDE_CAP[language].format(cap=cap) if cap > 0 else "",
        ask_links=ask,
        contributing=GUIDE_CONTRIBUTING[language].format(url=contributing_url) if contributing_url else "",
    )
    return f"{GUIDE_MARKER}\n{text}{SIGNATURE[language].format(repo=issue.repo)}"


def render_reply(plan: Plan, issue: Issue, actor: str, comment_id: int, config: Mapping[str, Any], url: str) -> str:
    text = REPLIES[(plan.reply, plan.language)].format(
        login=actor,
        repo=issue.repo,
        command=plan.command,
        label=canonical(config),
        list_url=url,
        holder=plan.holder,
        count=plan.count,
        cap=config["claim_cap"],
    )
    return f"{reply_marker(plan.reply, comment_id)}\n{text}"


# --- reading events and GitHub (no writes)


def issue_from(repository: Mapping[str, Any], item: Mapping[str, Any]) -> Issue:
    return Issue(
        repo=str(repository["full_name"]),
        repo_id=int(repository["id"]),
        number=int(item["number"]),
        title=str(item.get("title") or ""),
        body=str(item.get("body") or ""),
        html_url=str(item.get("html_url") or ""),
        labels=tuple(str(label["name"]) for label in item.get("labels") or [] if isinstance(label, Mapping)),
        assignees=tuple(str(a["login"]) for a in item.get("assignees") or [] if isinstance(a, Mapping)),
        state=str(item.get("state") or "open"),
        pull_request=bool(item.get("pull_request")),
        archived=bool(repository.get("archived")),
        updated_at=github_time(item.get("updated_at")),
    )


def snapshot(issue: Issue, ours: bool = False) -> Snapshot:
    """The issue for the store. After our own write (`ours`) the issue is as we left it now, so it is
    stamped with the present: events older than the write, delivered late or again, cannot undo it."""
    return Snapshot(
        repo_id=issue.repo_id,
        repository=issue.repo,
        number=issue.number,
        title=issue.title,
        html_url=issue.html_url,
        state=issue.state,
        labels=issue.labels,
        assignees=issue.assignees,
        updated_at=utcnow() if ours else issue.updated_at,
    )


def role_of(ctx: Context, repo: str, login: str) -> str:
    """The person's role on the repository, or "" when GitHub would not say."""
    try:
        return role_from(ctx.github.collaborator_permission(repo, login))
    except Forbidden as exc:
        ctx.log.warning("cannot check a commenter's permission", extra={"error": str(exc)})
        return ""


def look_up(ctx: Context, fact: str, issue: Issue, actor: str, store: GoodFirstIssueStore, facts: Facts) -> Facts:
    if fact == ROLE:
        return replace(facts, role=role_of(ctx, issue.repo, actor))
    return replace(facts, open_claims=store.open_claims(issue.repo_id, actor, excluding=issue.number))


def contributing_link(ctx: Context, repository: Mapping[str, Any], config: Mapping[str, Any]) -> str:
    return str(config["contributing_url"]) or file_url(ctx.github, repository, CONTRIBUTING_FILES)


# --- acting (idempotent)


def ensure_labels(ctx: Context, repo: str, specs: list[tuple[str, str, str]]) -> None:
    """Create the labels the repository lacks, with their colour and description."""
    for name, hex_colour, description in specs:
        if ctx.github.get_label(repo, name) is None and ctx.github.create_label(repo, name, hex_colour, description):
            ctx.log.info("created label", extra={"reason": name})


def add_label(
    ctx: Context, issue: Issue, plan: AddLabel, config: Mapping[str, Any], store: GoodFirstIssueStore
) -> None:
    """The canonical label, for a synonym or a keyword."""
    spec = next(s for s in label_specs(config) if s[0] == plan.label)
    ensure_labels(ctx, issue.repo, [spec])
    ctx.github.add_labels(issue.repo, issue.number, [plan.label])
    if not ctx.dry_run:
        store.observe(snapshot(replace(issue, labels=(*issue.labels, plan.label)), ours=True), plan.label)
    ctx.log.info("labelled a good first issue", extra={"reason": plan.reason})


def post_guide(
    ctx: Context, issue: Issue, config: Mapping[str, Any], language: str, store: GoodFirstIssueStore
) -> None:
    """One guide per issue: once per round (a removal starts a new one), and never beside another."""
    intent = f"good-first-issues:guide:{issue.repo_id}:{issue.number}:{store.guide_round(issue.repo_id, issue.number)}"

    def guide() -> str:
        link = contributing_link(ctx, ctx.payload["repository"], config)
        return render_guide(issue, config, language, link)

    comment_once(ctx, issue.repo, issue.number, intent, GUIDE_MARKER, guide)


def remove_guide(ctx: Context, issue: Issue, store: GoodFirstIssueStore) -> None:
    for comment in ctx.github.list_comments(issue.repo, issue.number):
        if ours(comment, GUIDE_MARKER):
            ctx.github.delete_comment(issue.repo, int(comment["id"]))
    if not ctx.dry_run:
        store.next_guide_round(issue.repo_id, issue.number)


def reply(ctx: Context, plan: Plan, issue: Issue, actor: str, comment_id: int, config: Mapping[str, Any]) -> None:
    """Answer a command once per comment and kind of answer."""
    marker = reply_marker(plan.reply, comment_id)
    if any(ours(c, marker) for c in ctx.github.list_comments(issue.repo, issue.number)):
        ctx.log.info("skipped: answered this comment already", extra={"reason": plan.reply})
        return
    url = list_url(ctx.payload["repository"], canonical(config))
    ctx.github.create_comment(issue.repo, issue.number, render_reply(plan, issue, actor, comment_id, config, url))


def apply(
    ctx: Context,
    plan: Plan,
    issue: Issue,
    actor: str,
    comment: Mapping[str, Any],
    config: Mapping[str, Any],
    store: GoodFirstIssueStore,
) -> Issue:
    """Carry out one command, once per version of the comment; returns the issue as it is now."""
    github, dry_run, comment_id = ctx.github, ctx.dry_run, int(comment["id"])
    intent = f"good-first-issues:{issue.repo_id}:{comment_id}:{comment.get('updated_at') or ''}:{plan.command}"
    if not dry_run and not ctx.stores.intents.claim(intent, ctx.event.delivery_id):
        ctx.log.info("skipped: command handled already", extra={"reason": intent})
        return issue
    outcome = plan.reply or plan.action
    if plan.action == REPLY:
        reply(ctx, plan, issue, actor, comment_id, config)
    elif plan.action == LABEL:
        specs = [spec for spec in label_specs(config) if not has_label(issue.labels, spec[0])]
        ensure_labels(ctx, issue.repo, specs)
        missing = [name for name, _, _ in specs]
        if missing:
            github.add_labels(issue.repo, issue.number, missing)
        issue = replace(issue, labels=(*issue.labels, *missing))
        if not dry_run:
            store.observe(snapshot(issue, ours=True), canonical(config))
        post_guide(ctx, issue, config, plan.language, store)
        github.react_to_comment(issue.repo, comment_id, "+1")
    elif plan.action == UNLABEL:
        names = [name for name, _, _ in label_specs(config)]
        for name in names:
            github.remove_label(issue.repo, issue.number, name)
        issue = replace(issue, labels=tuple(n for n in issue.labels if not has_label(names, n)))
        if not dry_run:
            store.observe(snapshot(issue, ours=True), canonical(config))
        remove_guide(ctx, issue, store)
        github.react_to_comment(issue.repo, comment_id, "+1")
    elif plan.action in (ASSIGN, ACKNOWLEDGE):
        issue, outcome = claim(ctx, plan, issue, actor, comment_id, config, store)
    elif plan.action == UNASSIGN:
        answer = github.remove_assignees(issue.repo, issue.number, [actor])
        if not dry_run:
            store.release(issue.repo_id, issue.number, actor)
            if isinstance(answer, Mapping):
                issue = issue_from(ctx.payload["repository"], answer)
                store.observe(snapshot(issue, ours=True), canonical(config))
        github.react_to_comment(issue.repo, comment_id, "+1")
    if not dry_run:
        ctx.stores.intents.done(intent, outcome)
    ctx.log.info("ran /%s: %s", plan.command, outcome)
    return issue


def claim(
    ctx: Context,
    plan: Plan,
    issue: Issue,
    actor: str,
    comment_id: int,
    config: Mapping[str, Any],
    store: GoodFirstIssueStore,
) -> tuple[Issue, str]:
    """Reserve the issue for `actor` in the store (so two claims at once cannot both win), then assign."""
    github, dry_run = ctx.github, ctx.dry_run
    if not dry_run and plan.action == ACKNOWLEDGE:
        store.claim(issue.repo_id, issue.number, actor)  # GitHub says it is theirs: it counts as a claim
    elif not dry_run:
        holder = store.reserve(issue.repo_id, issue.number, actor)
        if holder:
            reply(ctx, replace(plan, action=REPLY, reply=HELD, holder=holder), issue, actor, comment_id, config)
            return issue, HELD
    if plan.action == ASSIGN:
        answer = github.add_assignees(issue.repo, issue.number, [actor])
        if not dry_run:
            now = issue_from(ctx.payload["repository"], answer) if isinstance(answer, Mapping) else issue
            if actor.lower() not in {a.lower() for a in now.assignees}:
                store.release(issue.repo_id, issue.number, actor)
                reply(ctx, replace(plan, action=REPLY, reply=NOT_ASSIGNED), issue, actor, comment_id, config)
                return issue, NOT_ASSIGNED
            issue = now
            store.observe(snapshot(issue, ours=True), canonical(config))
            store.claim(issue.repo_id, issue.number, actor)  # in case the issue was not tracked yet
    github.react_to_comment(issue.repo, comment_id, "+1")
    return issue, plan.action


# --- wiring

router = Router()


def plan_for(
    ctx: Context, command: str, issue: Issue, actor: str, config: Mapping[str, Any], store: GoodFirstIssueStore
) -> Plan | str:
    facts = Facts()
    for _ in range(3):  # each fact is looked up at most once
        result = decide(command, issue, actor, config, facts)
        if not isinstance(result, Lookup):
            return result
        facts = look_up(ctx, result.fact, issue, actor, store, facts)
    return "the decision kept asking for facts"


@router.on("issue_comment.created", "issue_comment.edited", name="good_first_issues.commands")
def commented(ctx: Context) -> None:
    comment = ctx.payload["comment"]
    if (comment.get("user") or {}).get("type") == "Bot":
        ctx.log.debug("skipped: comment by a bot")
        return
    if ctx.event.action == "edited":
        before = (ctx.payload.get("changes") or {}).get("body")
        if not isinstance(before, Mapping) or "from" not in before:
            return  # the edit did not touch the text
        found = commands.added(before["from"], comment.get("body"))
    else:
        found = commands.parse(comment.get("body"))
    wanted = list(dict.fromkeys(c.name for c in found if c.name in COMMANDS))
    if not wanted:
        return
    repository = ctx.payload["repository"]
    if repository.get("archived"):
        ctx.log.debug("skipped: repository is archived")
        return
    config = repo_config.for_event(ctx).section(NAME)
    issue = issue_from(repository, ctx.payload["issue"])
    store = ctx.stores.good_first_issues
    if _off(issue, config) is None and not issue.pull_request:
        store.observe(snapshot(issue), canonical(config))
    actor = str(ctx.payload["sender"]["login"])
    for command in wanted:
        plan = plan_for(ctx, command, issue, actor, config, store)
        if isinstance(plan, str):
            ctx.log.info("not running /%s: %s", command, plan)
            continue
        issue = apply(ctx, plan, issue, actor, comment, config, store)


@router.on(
    "issues.opened",
    "issues.edited",
    "issues.labeled",
    "issues.unlabeled",
    "issues.assigned",
    "issues.unassigned",
    "issues.closed",
    "issues.reopened",
    name="good_first_issues.track",
)
def track(ctx: Context) -> None:
    """Keep the state of good first issues: every event about one says how it is now."""
    issue = issue_from(ctx.payload["repository"], ctx.payload["issue"])
    if issue.archived:
        return
    config = repo_config.for_event(ctx).section(NAME)
    if _off(issue, config) is None:
        unassigned = (ctx.payload.get("assignee") or {}).get("login") if ctx.event.action == "unassigned" else None
        ctx.stores.good_first_issues.observe(snapshot(issue), canonical(config), unassigned=unassigned)


@router.on("issues.labeled", name="good_first_issues.synonyms")
def labelled(ctx: Context) -> None:
    issue = issue_from(ctx.payload["repository"], ctx.payload["issue"])
    if issue.archived:
        return
    label = str((ctx.payload.get("label") or {}).get("name") or "")
    config = repo_config.for_event(ctx).section(NAME)
    plan = decide_synonym(issue, label, config)
    if isinstance(plan, str):
        ctx.log.debug("no canonical label: %s", plan)
        return
    add_label(ctx, issue, plan, config, ctx.stores.good_first_issues)


@router.on("issues.opened", name="good_first_issues.keywords")
def opened(ctx: Context) -> None:
    issue = issue_from(ctx.payload["repository"], ctx.payload["issue"])
    if issue.archived:
        return
    config = repo_config.for_event(ctx).section(NAME)
    plan = decide_keywords(issue, config)
    if isinstance(plan, str):
        ctx.log.debug("no keyword label: %s", plan)
        return
    add_label(ctx, issue, plan, config, ctx.stores.good_first_issues)


# GitHub's closing keywords ("Linking a pull request to an issue"): close, fix, resolve and their forms.
_CLOSES = re.compile(r"\b(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?)\s*:?\s+#(\d+)\b", re.I)


def closing_references(text: str) -> set[int]:
    """Issue numbers a pull request says it closes (`Fixes #12`), ignoring code."""
    from engagement.common.language import strip_code

    return {int(n) for n in _CLOSES.findall(strip_code(text or ""))}


@router.on(
    "pull_request.opened",
    "pull_request.edited",
    "pull_request.reopened",
    "pull_request.closed",
    name="good_first_issues.linked_pull",
)
def linked_pull_request(ctx: Context) -> None:
    """Keep which good first issues have a pull request open for them (off the newcomers' list)."""
    pull, repository = ctx.payload["pull_request"], ctx.payload["repository"]
    if repository.get("archived") or not repo_config.for_event(ctx).enabled(NAME):
        return
    linked = set() if pull.get("state") == "closed" else closing_references(pull.get("body") or "")
    ctx.stores.good_first_issues.link_pull(int(repository["id"]), sorted(linked), int(pull["number"]))


@router.on("issues.deleted", "issues.transferred", name="good_first_issues.forget")
def gone(ctx: Context) -> None:
    """Forget a deleted or transferred issue. This only removes the app's record of something that no
    longer exists, so it runs even where the behaviour is turned off (no stale entries in the lists)."""
    repository, item = ctx.payload["repository"], ctx.payload["issue"]
    if not repository.get("archived"):
        ctx.stores.good_first_issues.forget(int(repository["id"]), int(item["number"]))
