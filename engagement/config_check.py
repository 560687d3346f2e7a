"""Tell maintainers, on the pull request that changes it, what is wrong with `.github/engage.yml`."""

from __future__ import annotations

from collections.abc import Sequence

import catalogs
from engagement.common import config as repo_config
from engagement.common.comments import ours
from engagement.common.config import CONFIG_PATH, Problem
from engagement.common.templates import inline_code
from webhooks.context import Context
from webhooks.router import Router

NAME = "config_check"
SHOWN = 10  # problems listed; a file can have thousands, and one fix often clears many
HELP = f"""Checks `{CONFIG_PATH}` in pull requests that change it. When the new file has problems
(invalid YAML, unknown sections or settings, wrong types, values out of range, a file over
{repo_config.MAX_FILE_BYTES // 1024} KiB, nested too deep or using YAML aliases), one comment lists each
with its line and key (the first {SHOWN}, then how many more), because the app would fall back to its
defaults for them; the comment is updated as the pull request changes, and says so once the file is
fixed. Always on; it says nothing when the file is fine."""

MARKER = "<!-- engage:config-check -->"
# Keys in the bot's English catalog (bot.po): the problems listed come from the parser, in English.
PROBLEMS, FIXED, MORE = "config_check.problems", "config_check.fixed", "config_check.more"
LANGUAGE = "en"


def message(problems: Sequence[Problem]) -> str:
    """The comment; the file's own text (its keys, YAML's complaint) is quoted as code, so a key such as
    `@org/everyone` or a Markdown link mentions and links nobody."""
    if not problems:
        return f"{MARKER}\n{catalogs.text(LANGUAGE, FIXED, path=CONFIG_PATH)}"
    listed = [f"- {problem.render(inline_code)}" for problem in problems[:SHOWN]]
    if len(problems) > SHOWN:
        listed.append(catalogs.text(LANGUAGE, MORE, count=str(len(problems) - SHOWN)))
    return f"{MARKER}\n{catalogs.text(LANGUAGE, PROBLEMS, path=CONFIG_PATH)}\n" + "\n".join(listed)


router = Router()


@router.on("pull_request.opened", "pull_request.synchronize", "pull_request.reopened", name="config_check.pull_request")
def changed_config(ctx: Context) -> None:
    pull, repository = ctx.payload["pull_request"], ctx.payload["repository"]
    if repository.get("archived"):
        return
    repo, number = repository["full_name"], int(pull["number"])
    github = ctx.github
    # The head commit of any pull request, forks included, can be read from the base repository.
    proposed = github.read_file(repo, CONFIG_PATH, ref=pull["head"]["sha"])
    current = github.read_file(repo, CONFIG_PATH, ref=pull["base"]["ref"])
    if proposed == current or proposed is None:
        ctx.log.debug("skipped: the pull request does not change %s", CONFIG_PATH)
        return
    problems = repo_config.parse(proposed, ctx.configurable).problems
    earlier = next((c for c in github.list_comments(repo, number) if ours(c, MARKER)), None)
    body = message(problems)
    if earlier is None:
        if problems:
            github.create_comment(repo, number, body)
    elif earlier.get("body") != body:
        github.update_comment(repo, int(earlier["id"]), body)
