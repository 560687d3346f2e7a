"""The pages' words in English and Chinese, and which of the two a visitor gets.

The LLMasOS community works in both languages, so every word a page shows comes from here: labels,
the names of contribution kinds and insight series, trend words and the scoring formula, which is
built from the numbers in use rather than from the English sentence the leaderboard module writes.
A `?lang=` in the address wins (and is kept in the page's links); otherwise the browser's
Accept-Language decides, and English is the fallback.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

LANGUAGES = ("en", "zh")
DEFAULT = "en"
HTML_LANG = {"en": "en", "zh": "zh-CN"}
LANGUAGE_NAMES = {"en": "English", "zh": "中文"}

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "brand": "LLMasOS Engage",
        "nav.overview": "Overview",
        "nav.leaderboard": "Leaderboard",
        "nav.insights": "Insights",
        "nav.good_first_issues": "Good first issues",
        "nav.main": "Main",
        "language": "Language",
        "footer": "Contributions recorded by LLMasOS Engage from GitHub events. Only public repositories are shown.",
        "overview.title": "Community overview",
        "overview.lead": "Repositories where LLMasOS Engage is installed, with their last 30 days at a glance.",
        "overview.empty": "No public repository has the app installed yet.",
        "overview.owner_board": "Leaderboard of all {owner} repositories",
        "overview.active": "Active contributors",
        "overview.merged": "Merged pull requests",
        "overview.new": "New contributors",
        "overview.gfi": "Good first issues",
        "overview.last_active": "Last active in the week of {week}",
        "overview.no_activity": "No activity recorded yet",
        "overview.leaderboard_off": "Leaderboard turned off",
        "overview.window_note": "Figures cover the last 30 days.",
        "leaderboard.title": "Leaderboard",
        "leaderboard.title_for": "Leaderboard · {name}",
        "leaderboard.scope_repository": "Repository",
        "leaderboard.scope_owner": "All public repositories of {name}",
        "leaderboard.period": "{window} · {start} to {end}",
        "leaderboard.period_all": "All time · up to {end}",
        "leaderboard.showing": "Showing {shown} of {total} contributors.",
        "leaderboard.empty": "Nobody has contributed in this window yet.",
        "leaderboard.choose": "Choose a repository or an owner to see its leaderboard.",
        "leaderboard.rank": "Rank",
        "leaderboard.change": "Change",
        "leaderboard.contributor": "Contributor",
        "leaderboard.points": "Points",
        "leaderboard.newcomer": "new here",
        "leaderboard.newcomer_title": "First contribution in this window",
        "leaderboard.change_new": "new",
        "leaderboard.change_same": "=",
        "leaderboard.change_up_title": "up {n} since the previous {window}",
        "leaderboard.change_down_title": "down {n} since the previous {window}",
        "leaderboard.change_new_title": "not ranked in the previous {window}",
        "leaderboard.change_same_title": "same rank as in the previous {window}",
        "leaderboard.formula": "How points are counted",
        "leaderboard.formula_note": "Opening a pull request earns points once it is merged.",
        "leaderboard.csv": "Download CSV",
        "leaderboard.json": "JSON",
        "leaderboard.insights": "Insights for {name}",
        "leaderboard.owner_board": "All {owner} repositories",
        "window": "Window",
        "window.7d": "7 days",
        "window.30d": "30 days",
        "window.90d": "90 days",
        "window.365d": "365 days",
        "window.all": "All time",
        "switch.scope": "Repository or owner",
        "switch.repository": "Repository",
        "switch.repositories": "Repositories",
        "switch.owners": "Owners (all public repositories)",
        "switch.show": "Show",
        "switch.none": "No public repository yet",
        "insights.title": "Insights",
        "insights.title_for": "Insights · {name}",
        "insights.lead": "Weekly community health, {first} to {last} (ISO weeks, UTC).",
        "insights.choose": "Choose a repository to see its community health.",
        "insights.span": "Span",
        "insights.weeks": "{n} weeks",
        "insights.mean": "Mean",
        "insights.stddev": "Spread (σ)",
        "insights.trend": "Trend",
        "insights.per_week": "{slope} per week",
        "insights.anomalies": "Unusual weeks",
        "insights.anomalies_none": "none",
        "insights.no_data": "no data",
        "insights.legend": "How to read the charts",
        "insights.legend_value": "a week's value (point at it for the number)",
        "insights.legend_mean": "the mean over the span (dashed line)",
        "insights.legend_anomaly": "an unusual week: more than two standard deviations from the mean (red)",
        "insights.legend_gap": "no bar or point: no data that week",
        "insights.leaderboard": "Leaderboard of {name}",
        "insights.json": "JSON",
        "gfi.title": "Good first issues",
        "gfi.title_for": "Good first issues · {name}",
        "gfi.lead": "Open issues picked for newcomers that nobody has taken yet: not assigned, not claimed, "
        "no pull request open for them. Newest first.",
        "gfi.empty": "No good first issue is free right now. Check back soon!",
        "gfi.all": "All repositories",
        "gfi.open": "Open on GitHub",
        "gfi.count": "{n} issues",
        "error.not_found": "Not found",
        "error.not_found_text": "There is no public repository or owner by that name here.",
        "error.bad_request": "That request does not work",
        "error.bad_window": "The window must be one of: {choices}.",
        "error.bad_weeks": "The span must be a whole number of weeks from 1 to {max}.",
        "error.bad_limit": "The limit must be a whole number.",
        "error.back": "Back to the overview",
    },
    "zh": {
        "brand": "LLMasOS Engage",
        "nav.overview": "概览",
        "nav.leaderboard": "排行榜",
        "nav.insights": "社区洞察",
        "nav.good_first_issues": "新手任务",
        "nav.main": "主导航",
        "language": "语言",
        "footer": "贡献数据由 LLMasOS Engage 根据 GitHub 事件记录，仅展示公开仓库。",
        "overview.title": "社区概览",
        "overview.lead": "已安装 LLMasOS Engage 的仓库，以及它们最近 30 天的概况。",
        "overview.empty": "还没有安装本应用的公开仓库。",
        "overview.owner_board": "{owner} 全部仓库的排行榜",
        "overview.active": "活跃贡献者",
        "overview.merged": "已合并的 PR",
        "overview.new": "新贡献者",
        "overview.gfi": "新手任务",
        "overview.last_active": "最近活跃：{week} 当周",
        "overview.no_activity": "尚无活动记录",
        "overview.leaderboard_off": "排行榜已关闭",
        "overview.window_note": "数据范围为最近 30 天。",
        "leaderboard.title": "排行榜",
        "leaderboard.title_for": "排行榜 · {name}",
        "leaderboard.scope_repository": "仓库",
        "leaderboard.scope_owner": "{name} 的全部公开仓库",
        "leaderboard.period": "{window} · {start} 至 {end}",
        "leaderboard.period_all": "全部时间 · 截至 {end}",
        "leaderboard.showing": "显示 {total} 位贡献者中的 {shown} 位。",
        "leaderboard.empty": "这个时间段内还没有人贡献。",
        "leaderboard.choose": "请选择一个仓库或所有者查看排行榜。",
        "leaderboard.rank": "名次",
        "leaderboard.change": "变化",
        "leaderboard.contributor": "贡献者",
        "leaderboard.points": "积分",
        "leaderboard.newcomer": "新人",
        "leaderboard.newcomer_title": "首次贡献发生在这个时间段内",
        "leaderboard.change_new": "新上榜",
        "leaderboard.change_same": "=",
        "leaderboard.change_up_title": "比上一个{window}上升 {n} 名",
        "leaderboard.change_down_title": "比上一个{window}下降 {n} 名",
        "leaderboard.change_new_title": "上一个{window}未上榜",
        "leaderboard.change_same_title": "与上一个{window}名次相同",
        "leaderboard.formula": "积分规则",
        "leaderboard.formula_note": "PR 在合并之后才计分。",
        "leaderboard.csv": "下载 CSV",
        "leaderboard.json": "JSON",
        "leaderboard.insights": "{name} 的社区洞察",
        "leaderboard.owner_board": "{owner} 的全部仓库",
        "window": "时间段",
        "window.7d": "7 天",
        "window.30d": "30 天",
        "window.90d": "90 天",
        "window.365d": "365 天",
        "window.all": "全部时间",
        "switch.scope": "仓库或所有者",
        "switch.repository": "仓库",
        "switch.repositories": "仓库",
        "switch.owners": "所有者（全部公开仓库）",
        "switch.show": "查看",
        "switch.none": "还没有公开仓库",
        "insights.title": "社区洞察",
        "insights.title_for": "社区洞察 · {name}",
        "insights.lead": "每周社区健康状况，{first} 至 {last}（ISO 周，UTC）。",
        "insights.choose": "请选择一个仓库查看社区健康状况。",
        "insights.span": "跨度",
        "insights.weeks": "{n} 周",
        "insights.mean": "平均值",
        "insights.stddev": "离散度（σ）",
        "insights.trend": "趋势",
        "insights.per_week": "每周 {slope}",
        "insights.anomalies": "异常周",
        "insights.anomalies_none": "无",
        "insights.no_data": "无数据",
        "insights.legend": "图表说明",
        "insights.legend_value": "每周的数值（指向点或柱可查看具体数字）",
        "insights.legend_mean": "整个跨度的平均值（虚线）",
        "insights.legend_anomaly": "异常周：与平均值相差超过两个标准差（红色）",
        "insights.legend_gap": "没有点或柱：那一周没有数据",
        "insights.leaderboard": "{name} 的排行榜",
        "insights.json": "JSON",
        "gfi.title": "新手任务",
        "gfi.title_for": "新手任务 · {name}",
        "gfi.lead": "专为新人挑选、尚未被认领的开放 issue：没有指派、没有认领，也没有对应的开放 PR。最新的在前。",
        "gfi.empty": "目前没有空闲的新手任务，请稍后再来看看！",
        "gfi.all": "全部仓库",
        "gfi.open": "在 GitHub 上打开",
        "gfi.count": "{n} 个 issue",
        "error.not_found": "未找到",
        "error.not_found_text": "这里没有这个名字的公开仓库或所有者。",
        "error.bad_request": "无法处理这个请求",
        "error.bad_window": "时间段必须是以下之一：{choices}。",
        "error.bad_weeks": "跨度必须是 1 到 {max} 之间的整数周。",
        "error.bad_limit": "数量上限必须是整数。",
        "error.back": "返回概览",
    },
}

# The leaderboard's count columns (`board()["kinds"]`).
KIND_NAMES = {
    "en": {
        "issues": "Issues",
        "pull_requests": "Pull requests",
        "merged": "Merged",
        "reviews": "Reviews",
        "comments": "Comments",
        "review_comments": "Review comments",
        "good_first_issues": "Good first issues",
    },
    "zh": {
        "issues": "Issue",
        "pull_requests": "PR",
        "merged": "已合并",
        "reviews": "评审",
        "comments": "评论",
        "review_comments": "代码评审评论",
        "good_first_issues": "新手任务",
    },
}

# The point kinds of the scoring formula (`board()["formula"]["points"]`).
POINT_NAMES = {
    "en": {
        "merged_pull_request": "merged pull requests",
        "review": "reviews",
        "issue": "issues opened",
        "comment": "comments",
        "review_comment": "review comments",
        "good_first_issue": "good first issues solved",
    },
    "zh": {
        "merged_pull_request": "已合并的 PR",
        "review": "评审",
        "issue": "提交的 issue",
        "comment": "评论",
        "review_comment": "代码评审评论",
        "good_first_issue": "解决的新手任务",
    },
}
FORMULA = {
    "en": {
        "points": "Points",
        "cap": "Comments and review comments earn points for the first {cap} a day per person and repository.",
        "none": "Nothing earns points here.",
    },
    "zh": {
        "points": "积分",
        "cap": "评论与代码评审评论：每人在每个仓库每天仅前 {cap} 条计分。",
        "none": "这里没有可以计分的贡献。",
    },
}

# `engagement.insights.SERIES`: a name and a one-line definition each.
SERIES_NAMES = {
    "en": {
        "active_contributors": "Active contributors",
        "new_contributors": "New contributors",
        "returning_contributors": "Returning contributors",
        "retention_30d": "Retention after 30 days",
        "retention_90d": "Retention after 90 days",
        "issues_opened": "Issues opened",
        "comments": "Comments",
        "prs_opened": "Pull requests opened",
        "prs_merged": "Pull requests merged",
        "reviews": "Reviews",
        "first_response_issues_hours": "Time to first response: issues",
        "first_response_pulls_hours": "Time to first response: pull requests",
        "pr_acceptance": "Pull request acceptance",
        "satisfaction": "Satisfaction",
    },
    "zh": {
        "active_contributors": "活跃贡献者",
        "new_contributors": "新贡献者",
        "returning_contributors": "回访贡献者",
        "retention_30d": "30 天留存率",
        "retention_90d": "90 天留存率",
        "issues_opened": "新建 issue",
        "comments": "评论",
        "prs_opened": "新建 PR",
        "prs_merged": "合并的 PR",
        "reviews": "评审",
        "first_response_issues_hours": "首次响应时间：issue",
        "first_response_pulls_hours": "首次响应时间：PR",
        "pr_acceptance": "PR 接受率",
        "satisfaction": "满意度",
    },
}
SERIES_HELP = {
    "en": {
        "active_contributors": "People with at least one issue, pull request, review or comment that week.",
        "new_contributors": "People whose first contribution to the repository fell in that week.",
        "returning_contributors": "Active people who had contributed before.",
        "retention_30d": "Of the week's new contributors, the share who came back 30 days or more later.",
        "retention_90d": "Of the week's new contributors, the share who came back 90 days or more later.",
        "issues_opened": "Issues opened that week.",
        "comments": "Comments on issues and pull requests, and on their diffs.",
        "prs_opened": "Pull requests opened that week.",
        "prs_merged": "Pull requests merged that week.",
        "reviews": "Reviews submitted that week.",
        "first_response_issues_hours": "Median hours until someone other than the author answered, by week opened.",
        "first_response_pulls_hours": "Median hours until someone other than the author answered, by week opened.",
        "pr_acceptance": "Merged among the pull requests closed that week.",
        "satisfaction": "Positive reactions among all reactions on issues and pull requests closed that week.",
    },
    "zh": {
        "active_contributors": "当周至少有一次 issue、PR、评审或评论的人数。",
        "new_contributors": "首次为该仓库做出贡献发生在当周的人数。",
        "returning_contributors": "当周活跃、且之前贡献过的人数。",
        "retention_30d": "当周新贡献者中，30 天或更久之后再次贡献的比例。",
        "retention_90d": "当周新贡献者中，90 天或更久之后再次贡献的比例。",
        "issues_opened": "当周新建的 issue 数。",
        "comments": "issue 与 PR 下的评论，以及代码评审评论。",
        "prs_opened": "当周新建的 PR 数。",
        "prs_merged": "当周合并的 PR 数。",
        "reviews": "当周提交的评审数。",
        "first_response_issues_hours": "作者以外的人首次回应所需小时数的中位数，按创建周统计。",
        "first_response_pulls_hours": "作者以外的人首次回应所需小时数的中位数，按创建周统计。",
        "pr_acceptance": "当周关闭的 PR 中被合并的比例。",
        "satisfaction": "当周关闭的 issue 与 PR 上，正面表情回应占全部回应的比例。",
    },
}
DIRECTIONS = {
    "en": {"rising": "rising", "falling": "falling", "steady": "steady"},
    "zh": {"rising": "上升", "falling": "下降", "steady": "平稳"},
}
UNITS = {"en": {"hours": "h", "ratio": "%", "count": ""}, "zh": {"hours": "小时", "ratio": "%", "count": ""}}


def choose(requested: str | None, accepted: Any) -> tuple[str, bool]:
    """(language, chosen explicitly): `?lang=` when it names one of ours, else the best Accept-Language
    match (`accepted` is Werkzeug's LanguageAccept: zh-CN and zh-TW match zh), else English."""
    if requested in LANGUAGES:
        return str(requested), True
    match = accepted.best_match(LANGUAGES) if accepted is not None else None
    return (str(match) if match in LANGUAGES else DEFAULT), False


@dataclass(frozen=True)
class Translator:
    """Every word of one language, for templates: `t("key", name=...)`, `t.kind("merged")`, ..."""

    lang: str

    def __call__(self, key: str, **fields: Any) -> str:
        text = TEXT[self.lang].get(key) or TEXT[DEFAULT][key]
        return text.format(**fields) if fields else text

    @property
    def html_lang(self) -> str:
        return HTML_LANG[self.lang]

    def kind(self, name: str) -> str:
        return KIND_NAMES[self.lang].get(name, name)

    def series(self, name: str) -> str:
        return SERIES_NAMES[self.lang].get(name, name)

    def series_help(self, name: str) -> str:
        return SERIES_HELP[self.lang].get(name, "")

    def direction(self, word: str) -> str:
        return DIRECTIONS[self.lang].get(word, word)

    def unit(self, unit: str) -> str:
        return UNITS[self.lang].get(unit, unit)

    def window(self, name: str) -> str:
        return self(f"window.{name}")

    def formula(self, formula: Mapping[str, Any]) -> tuple[str, str]:
        """(the sum, the comment cap sentence or ""), in this language, from the weights in use."""
        words = FORMULA[self.lang]
        terms = [
            f"{weight} × {POINT_NAMES[self.lang].get(kind, kind)}"
            for kind, weight in dict(formula.get("points") or {}).items()
            if weight
        ]
        total = f"{words['points']} = " + " + ".join(terms) if terms else words["none"]
        cap = int(formula.get("daily_comment_cap") or 0)
        return total, words["cap"].format(cap=cap) if cap else ""
