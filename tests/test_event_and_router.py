import pytest

from tests.conftest import example, installed
from webhooks.event import MalformedEvent, parse
from webhooks.router import Router, compose


@pytest.mark.parametrize(
    "delivery, event, body, problem",
    [
        pytest.param(None, "issues", b"{}", "X-GitHub-Delivery", id="no delivery id"),
        pytest.param("d1", None, b"{}", "X-GitHub-Event", id="no event name"),
        pytest.param("d1", "issues", b"", "empty body", id="empty body"),
        pytest.param("d1", "issues", b'{"action": "opened"', "not valid JSON", id="truncated JSON"),
        pytest.param("d1", "issues", b"\xff\xfe{}", "not valid JSON", id="not UTF-8"),
        pytest.param("d1", "issues", b"[1, 2]", "JSON object", id="JSON that is not an object"),
        pytest.param("x" * 65, "issues", b"{}", "too long", id="absurd delivery id"),
    ],
)
def test_malformed_deliveries_say_what_is_wrong(delivery, event, body, problem):
    with pytest.raises(MalformedEvent, match=problem):
        parse(delivery, event, body)


def test_event_exposes_what_handlers_and_logs_need():
    import json

    payload = installed(example("issues.opened.1"))
    event = parse("d1", "issues", json.dumps(payload).encode())
    assert (event.key, event.repository, event.installation_id, event.sender_login) == (
        "issues.opened",
        "Codertocat/Hello-World",
        9001,
        "Codertocat",
    )
    assert event.bot_reason() is None


@pytest.mark.parametrize(
    "edit, reason",
    [
        pytest.param(lambda p: p["sender"].update(type="Bot", login="dependabot[bot]"), "is a bot", id="bot sender"),
        pytest.param(
            lambda p: p["sender"].update(type="Bot", login="llmasos-engage[bot]"), "is a bot", id="this app itself"
        ),
        pytest.param(
            lambda p: p["issue"].update(performed_via_github_app={"slug": "other"}),
            "made by a GitHub App",
            id="issue made through an app",
        ),
    ],
)
def test_events_from_bots_carry_a_reason_to_stay_quiet(edit, reason):
    payload = example("issues.opened.1")
    edit(payload)
    from webhooks.event import Event

    assert reason in (Event("d", "issues", payload).bot_reason() or "")


def test_router_matches_event_and_event_action_in_registration_order():
    router = Router()
    seen = []

    @router.on("issues")
    def any_issue(ctx):
        seen.append("any")

    @router.on("issues.opened", "pull_request.opened")
    def opened(ctx):
        seen.append("opened")

    assert [h.fn for h in router.handlers_for("issues", "opened")] == [any_issue, opened]
    assert [h.fn for h in router.handlers_for("issues", "closed")] == [any_issue]
    assert router.handlers_for("push", None) == []
    assert router.events == {"issues", "pull_request"}

    @router.on("issues.opened", "issues")  # registered after a lookup, and on both keys: listed once
    def both(ctx):
        seen.append("both")

    assert [h.fn for h in router.handlers_for("issues", "opened")] == [any_issue, opened, both]
    assert [h.fn for h in router.handlers_for("issues", "closed")] == [any_issue, both]
    assert [h.fn for h in compose([router]).handlers_for("issues", "opened")] == [any_issue, opened, both]


def test_a_handler_name_can_only_be_registered_once():
    router = Router()
    router.on("issues", name="x")(lambda ctx: None)
    with pytest.raises(ValueError, match="registered twice"):
        router.on("push", name="x")(lambda ctx: None)
