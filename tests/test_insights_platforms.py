"""Insights per platform and combined (README, "Metric definitions"), against a history computed by hand.

One community, three places: GitHub (llmasos/kernel), the forum (Discourse) and the Telegram group, all
in llmasos's owner scope. Today is Sunday 2026-11-29; the four ISO weeks shown start on Mondays
2026-11-02 (W0), 11-09 (W1), 11-16 (W2) and 11-23 (W3, still running). Identity linking is not built,
so alice's GitHub and forum accounts are two people, as are vic's forum and chat accounts.
"""

from __future__ import annotations

from datetime import date, datetime

import pytest
import requests
from sqlalchemy.engine import Engine

from domain import contributions as kinds
from domain.contributions import TELEGRAM, TELEGRAM_HOST, Chat, Contribution, Forum, Repo, Subject
from readmodels.insights import UnknownPlatform, report
from storage.ledger import LedgerStore
from tests.conftest import services

TODAY = date(2026, 11, 29)
ORG = "llmasos"
REPO = Repo(42, f"{ORG}/kernel", private=False, installation_id=7)
FORUM = Forum("https://forum.example.org", ORG)
CHAT = Chat(TELEGRAM, TELEGRAM_HOST, ORG, url="https://t.me")
ALICE, BOB, CAROL, DAVE = 1, 2, 3, 4  # GitHub ids
# Forum and Telegram ids (each platform's own): alice's and bob's forum accounts, vic on both.
F_ALICE, F_BOB, UMA, VIC, XENA = 1, 2, 11, 12, 13
T_VIC, WEN, YAN = 500, 501, 502
ISSUE_1 = Subject(1, False, ALICE, datetime(2026, 11, 2, 9))
PULL_2 = Subject(2, True, BOB, datetime(2026, 11, 17, 10))


def github(kind: str, actor: int, at: datetime, subject: Subject) -> Contribution:
    return Contribution(
        f"{kind}:{actor}:{at.isoformat()}", kind, REPO, actor, f"user{actor}", at, subject.number, "", subject
    )


def forum(kind: str, user: int, at: datetime, topic: int, key: str = "") -> Contribution:
    """A forum item: `topic` is its topic's id (the ledger's `number` for every forum kind)."""
    key = f"{kind}:{FORUM.host}:{key or f'{topic}:{user}:{at.isoformat()}'}"
    return Contribution(key, kind, FORUM.place, FORUM.person(user), f"forum{user}", at, topic, "")


def chat(kind: str, user: int, at: datetime) -> Contribution:
    key = f"{kind}:{TELEGRAM}:-100:{user}:{at.isoformat()}"
    return Contribution(key, kind, CHAT.place, CHAT.person(user), f"chat{user}", at, None, "")


HISTORY = [
    # W0. GitHub: alice opens issue 1.
    github(kinds.ISSUE_OPENED, ALICE, datetime(2026, 11, 2, 9), ISSUE_1),
    # Forum: uma opens topic 100 and follows up herself 1 h later (not a response); vic answers 4 h
    # after the opening and his reply is accepted as the solution (at the reply's time).
    forum(kinds.FORUM_TOPIC, UMA, datetime(2026, 11, 3, 10), 100, key="100"),
    forum(kinds.FORUM_REPLY, UMA, datetime(2026, 11, 3, 11), 100),
    forum(kinds.FORUM_REPLY, VIC, datetime(2026, 11, 3, 14), 100, key="1002"),
    forum(kinds.FORUM_SOLUTION, VIC, datetime(2026, 11, 3, 14), 100, key="1002"),
    # alice's forum account opens topic 101, never solved; vic answers 24 h later.
    forum(kinds.FORUM_TOPIC, F_ALICE, datetime(2026, 11, 4, 9), 101, key="101"),
    forum(kinds.FORUM_REPLY, VIC, datetime(2026, 11, 5, 9), 101),
    # Chat: wen writes, vic's Telegram account replies.
    chat(kinds.CHAT_MESSAGE, WEN, datetime(2026, 11, 5, 12)),
    chat(kinds.CHAT_REPLY, T_VIC, datetime(2026, 11, 5, 12, 5)),
    # W1. wen writes again; bob's forum account replies on topic 101 (its first reply stays vic's).
    chat(kinds.CHAT_MESSAGE, WEN, datetime(2026, 11, 10, 8)),
    forum(kinds.FORUM_REPLY, F_BOB, datetime(2026, 11, 11, 10), 101),
    # W2. GitHub: bob's first contribution (pull request 2; his forum account wrote in W1, unlinked),
    # carol's first, alice back.
    github(kinds.PR_OPENED, BOB, datetime(2026, 11, 17, 10), PULL_2),
    github(kinds.COMMENT, CAROL, datetime(2026, 11, 18, 9), ISSUE_1),
    github(kinds.COMMENT, ALICE, datetime(2026, 11, 18, 10), ISSUE_1),
    # Forum: xena opens topic 102 (not solved), uma answers 12 h later.
    forum(kinds.FORUM_TOPIC, XENA, datetime(2026, 11, 16, 9), 102, key="102"),
    forum(kinds.FORUM_REPLY, UMA, datetime(2026, 11, 16, 21), 102),
    # W3 (running). vic's Telegram account writes in the week's first second; yan joins the group and
    # uma receives a like (neither is taking part); dave comments in the week's last second.
    chat(kinds.CHAT_MESSAGE, T_VIC, datetime(2026, 11, 23, 0, 0, 0)),
    chat(kinds.CHAT_MEMBER_JOINED, YAN, datetime(2026, 11, 24, 9)),
    forum(kinds.FORUM_LIKE, UMA, datetime(2026, 11, 24, 10), 102, key="1021:like"),
    github(kinds.COMMENT, DAVE, datetime(2026, 11, 29, 23, 59, 59), ISSUE_1),
]


def values(engine: Engine, platform: str = "all") -> dict[str, list]:
    result = report(engine, None, weeks=4, today=TODAY, org=ORG, platform=platform)
    assert result["weeks"] == ["2026-11-02", "2026-11-09", "2026-11-16", "2026-11-23"]
    return {name: s["values"] for name, s in result["series"].items()}


def test_every_platform_together_equals_the_hand_computed_values(engine: Engine) -> None:
    LedgerStore(engine).record(HISTORY)
    v = values(engine)
    # W0: alice (GitHub); uma, vic, alice's forum account; wen, vic's chat account: 6 ids, alice and vic
    # each counted twice while unlinked. W1: wen, bob's forum account. W2: bob, carol, alice; xena, uma.
    # W3: vic's chat account, dave (yan's joining and uma's like are not activity).
    assert v["active_users"] == [6, 2, 5, 2]
    assert v["new_users"] == [6, 1, 3, 1]  # all six; bob's forum account; bob, carol, xena; dave
    assert v["returning_users"] == [0, 1, 2, 1]  # -; wen; alice, uma; vic's chat account
    assert v["forum_topics"] == [2, 0, 1, 0]
    assert v["forum_replies"] == [3, 1, 1, 0]  # uma's follow-up counts as a reply, not as a response
    assert v["forum_solved_share"] == [0.5, None, 0.0, None]  # 100 solved, 101 not; 102 not
    assert v["forum_first_reply_hours"] == [14.0, None, 12.0, None]  # median of 4 h (not uma's 1 h) and 24 h
    assert v["chat_messages"] == [2, 1, 0, 1]
    assert v["chat_active_members"] == [2, 1, 0, 1]
    assert v["forum_chat_to_first_contribution"] == [0, 0, 0, 0], "bob's forum account is not linked to him"


def test_todays_series_stay_github_only(engine: Engine) -> None:
    LedgerStore(engine).record(HISTORY)
    v = values(engine)
    assert v["active_contributors"] == [1, 0, 3, 1]
    assert v["new_contributors"] == [1, 0, 2, 1], "forum and chat newcomers are not GitHub's new contributors"
    assert v["returning_contributors"] == [0, 0, 1, 0]


@pytest.mark.parametrize(
    ("platform", "active", "new"),
    [
        pytest.param("github", [1, 0, 3, 1], [1, 0, 2, 1], id="github: the same people as active contributors"),
        pytest.param("forum", [3, 1, 2, 0], [3, 1, 1, 0], id="forum: uma, vic, alice; bob; xena, uma"),
        pytest.param("chat", [2, 1, 0, 1], [2, 0, 0, 0], id="chat: wen, vic; wen; -; vic"),
    ],
)
def test_a_platform_alone(engine: Engine, platform: str, active: list[int], new: list[int]) -> None:
    LedgerStore(engine).record(HISTORY)
    v = values(engine, platform)
    assert (v["active_users"], v["new_users"]) == (active, new)
    assert v["returning_users"] == [a - n for a, n in zip(active, new, strict=True)]
    others = {
        "github": ("forum_topics", "chat_messages", "forum_chat_to_first_contribution"),
        "forum": ("chat_messages",),
    }
    for name in others.get(platform, ("forum_topics", "forum_solved_share")):
        assert v[name] == [None] * 4, f"{name}: its platform is not chosen"
    github_series = [1, 0, 3, 1] if platform == "github" else [None] * 4
    assert v["active_contributors"] == github_series, "today's series are GitHub's"


def test_mean_spread_trend_leave_the_running_week_out(engine: Engine) -> None:
    LedgerStore(engine).record(HISTORY)
    result = report(engine, None, weeks=4, today=TODAY, org=ORG)
    assert result["partial_week"] == "2026-11-23"
    active = result["series"]["active_users"]
    # [6, 2, 5] complete: mean 13/3; variance ((5/3)² + (7/3)² + (2/3)²) / 3 = 78/27; slope Σ(x-1)(y-13/3) /
    # Σ(x-1)² = (-5/3 + 2/3) / 2 = -0.5, beyond 1% of the mean: falling.
    assert (active["mean"], active["stddev"], active["slope"]) == (4.3333, 1.6997, -0.5)
    assert active["direction"] == "falling" and active["anomalies"] == []
    solved = result["series"]["forum_solved_share"]
    assert (solved["mean"], solved["slope"]) == (0.25, -0.25)  # weeks 0 and 2: 0.5 then 0.0


def test_the_funnel_counts_a_linked_person_once_their_first_contribution_comes(engine: Engine) -> None:
    """The funnel joins forum and chat activity to the first GitHub contribution by the person's id: it
    can only count someone whose forum account is linked to their GitHub one, shown here as linking
    will record it (the forum activity under the GitHub id)."""
    linked = Contribution(
        "forum_reply:linked", kinds.FORUM_REPLY, FORUM.place, BOB, "bob", datetime(2026, 11, 12, 9), 101, ""
    )
    LedgerStore(engine).record([*HISTORY, linked])
    assert values(engine)["forum_chat_to_first_contribution"] == [0, 0, 1, 0]  # bob's pull request, W2
    assert values(engine, "chat")["forum_chat_to_first_contribution"] == [0, 0, 0, 0], "he wrote on the forum"


def test_platforms_a_scope_cannot_have_are_refused(engine: Engine) -> None:
    LedgerStore(engine).record(HISTORY)
    with pytest.raises(UnknownPlatform):
        report(engine, None, weeks=4, today=TODAY, org=ORG, platform="irc")
    with pytest.raises(UnknownPlatform):
        report(engine, REPO.full_name, weeks=4, today=TODAY, platform="forum")
    one = report(engine, REPO.full_name, weeks=4, today=TODAY, platform="github")["series"]
    assert one["active_users"]["values"] == one["active_contributors"]["values"] == [1, 0, 3, 1]
    assert one["forum_topics"]["values"] == [None] * 4


def test_the_page_and_the_api_choose_the_platform(make_app, serve) -> None:
    app = make_app()
    engine = services(app).store.engine
    LedgerStore(engine).record(HISTORY)
    server = serve(app)

    def get(path: str) -> requests.Response:
        return requests.get(server.url + path, timeout=10)

    answer = get(f"/api/insights?org={ORG}&weeks=4&platform=forum")
    assert answer.status_code == 200
    expected = report(engine, None, weeks=4, org=ORG, platform="forum")
    assert {**answer.json(), "generated_at": None} == {**expected, "generated_at": None}
    assert answer.json()["platforms"] == ["forum"]
    for path in (f"/api/insights?org={ORG}&platform=irc", f"/api/insights?repo={REPO.full_name}&platform=chat"):
        refused = get(path)
        assert refused.status_code == 400 and "platform" in refused.json()["error"], path
    assert get(f"/insights?org={ORG}&platform=irc").status_code == 400

    page = get(f"/insights?org={ORG}&weeks=4&platform=forum")
    assert page.status_code == 200
    html = page.text
    for platform in ("all", "github", "forum", "chat"):
        assert f'data-platform="{platform}"' in html
    assert 'data-platform="forum" aria-current="true"' in html
    assert 'data-series="forum_first_reply_hours"' in html and 'data-series="chat_messages"' not in html
    assert 'data-series="active_users"' in html and "Forum: time to first reply" in html
    zh = get(f"/insights?org={ORG}&weeks=4&platform=all&lang=zh").text
    assert "论坛" in zh and 'data-series="chat_messages"' in zh
    repo_page = get(f"/insights?repo={REPO.full_name}&weeks=4").text
    assert "data-platform=" not in repo_page, "one repository has no forum or chat to choose"
