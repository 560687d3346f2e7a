"""Good first issues, the words: the guide for newcomers and the replies to commands, in English and
Chinese, with the hidden markers the bot finds its own comments by."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote_plus

from engagement.good_first_issues.decide import (
    CAP_REACHED,
    CLOSED,
    HELD,
    NOT_ALLOWED,
    NOT_ASSIGNED,
    NOT_GOOD_FIRST,
    NOT_YOURS,
    Issue,
    Plan,
    canonical,
)

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
