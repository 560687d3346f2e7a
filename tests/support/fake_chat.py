"""A fake of the chat platforms the notifier posts to, checking every request against their contracts.

Serves real HTTP on 127.0.0.1:
- Telegram's Bot API, `/bot<token>/<method>` for the methods in `tests/contract/telegram/api.subset.json`
  (sendMessage, getMe, getWebhookInfo): parameters are checked against the method's fields in that file (names,
  required ones, types, nested objects), and HTML text against "Formatting options" (prose, not in
  the spec: only the listed tags, `<`, `>` and `&` escaped elsewhere; text 1-4096 characters). Answers
  are the recorded examples in `tests/contract/telegram/examples/`; getWebhookInfo answers `webhook_info`
  (a test sets it), checked against the WebhookInfo type.
- Rocket.Chat's incoming webhook, `POST /hooks/<id>/<token>`: a JSON body whose fields are the ones
  `tests/contract/rocketchat/webhooks.md` section 2 lists, `text` a string; answers `{"success": true}`.
- A Slack-compatible incoming webhook, `POST /services/<path>`: `{"text": "..."}` (no contract data is
  held for Slack; its documented minimum), answered with the text `ok`.
- Discourse's `POST /posts.json` (createTopicPostPM): the body checked against its request schema in
  `tests/contract/discourse/openapi.subset.json`, the `Api-Key` and `Api-Username` headers required
  (a wrong key answers 403, a topic other than `DISCOURSE_TOPIC_ID` 404, as Discourse words them);
  answered with `tests/contract/discourse/examples/createTopicPostPM.200.json`. And `GET /u/{username}.json`
  (getUser), the same headers required: a wrong key answers 403, another user than
  `DISCOURSE_API_USERNAME` 404; answered with `examples/getUser.200.json`. And `GET /posts.json`
  (listPosts, the forum backfill): the query's parameters checked against the operation's (`before`, an
  integer), both headers required; answered with the test's `forum_posts` newest first,
  `posts_per_page` at a time below `before`, each the fields of `examples/listPosts.200.json` overlaid with
  the test's, the answer checked against the 200 schema (discourse-solved's `accepted_answer` aside, and
  `reply_to_post_number` as the contract types it: text).

A request that breaks the contract is answered 400 and recorded in `violations`; tests call
`assert_no_violations()`. `fail_next(...)` makes the next valid requests of a kind answer an error
(429 with retry_after, 5xx, Telegram's 403 "bot was kicked", Discourse's 429 with `extras.wait_seconds`);
`delay` slows every post (for races).
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Self

import jsonschema
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

CONTRACT = Path(__file__).resolve().parents[1] / "contract"
TELEGRAM = CONTRACT / "telegram"
TELEGRAM_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawq"
ROCKETCHAT_HOOK = "/hooks/6HhP2qkzq8Btp4Yjm/TbbRKBvCNBN4HntNdq3TYpYEYa5wxbm5SyAHdQz6DNHqwrKr"
SLACK_HOOK = "/services/T0000FAKE/B0000FAKE/XXXXXXXXXXXXXXXXXXXXXXXX"
DISCOURSE = CONTRACT / "discourse"
DISCOURSE_API_KEY = "714552c6148e1617aeab526d0606184b94a80ec048fc09894ff1a72b740c5f19"
DISCOURSE_API_USERNAME = "engage-bot"
DISCOURSE_TOPIC_ID = 1042  # the topic that exists; any other answers 404
# webhooks.md section 2: the incoming webhook body fields and their JSON types.
ROCKETCHAT_FIELDS: dict[str, tuple[type, ...]] = {
    "text": (str,),
    "msg": (str,),
    "attachments": (list,),
    "channel": (str, list),
    "roomId": (str, list),
    "alias": (str,),
    "username": (str,),
    "emoji": (str,),
    "icon_emoji": (str,),
    "avatar": (str,),
    "icon_url": (str,),
    "tmid": (str,),
    "parseUrls": (bool,),
    "groupable": (bool,),
    "customFields": (dict,),
    "separateResponse": (bool,),
}
# Telegram "Formatting options", HTML style: the tags it accepts.
HTML_TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a", "tg-emoji",
    "code", "pre", "blockquote", "tg-time",
}  # fmt: skip
_SCALARS: dict[str, tuple[type, ...]] = {"Integer": (int,), "String": (str,), "Boolean": (bool,), "Float": (float, int)}


def telegram_example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((TELEGRAM / "examples" / f"{name}.json").read_text())
    return data


@dataclass
class Post:
    kind: str  # telegram | rocketchat | slack | discourse
    body: dict[str, Any]


@dataclass
class _Failure:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class _QuietHandler(WSGIRequestHandler):
    def log(self, type: str, message: str, *args: Any) -> None:
        pass


class FakeChat:
    def __init__(self) -> None:
        self.spec = json.loads((TELEGRAM / "api.subset.json").read_text())
        posts = json.loads((DISCOURSE / "openapi.subset.json").read_text())["paths"]["/posts.json"]["post"]
        self.discourse_request = posts["requestBody"]["content"]["application/json"]["schema"]
        self.webhook_info: dict[str, Any] = telegram_example("getWebhookInfo.ok")["result"]
        self.discourse_reads: list[str] = []  # the paths of Discourse GETs (getUser, listPosts with its query)
        list_posts = json.loads((DISCOURSE / "openapi.subset.json").read_text())["paths"]["/posts.json"]["get"]
        self.list_posts_params = {p["name"]: p["schema"]["type"] for p in list_posts["parameters"]}
        self.list_posts_answer = list_posts["responses"]["200"]["content"]["application/json"]["schema"]
        self.forum_posts: list[dict[str, Any]] = []  # what GET /posts.json lists: each overlays the example
        self.posts_per_page = 50
        self.fail_listing_before: int | None = None  # GET /posts.json?before=<this> answers 500, every time
        self._lock = threading.Lock()
        self.posts: list[Post] = []
        self.violations: list[str] = []
        self.delay = 0.0
        self._failures: dict[str, list[_Failure]] = {}
        self._server: Any = None

    # --- the test's controls

    def fail_next(self, kind: str, status: int, retry_after: int | None = None, times: int = 1) -> None:
        """The next `times` valid posts of `kind` answer `status`, as that platform words it."""
        if kind == "telegram":
            example = {403: "error.403.bot_kicked", 429: "error.429.too_many_requests", 400: "error.400.chat_not_found"}
            body: Any = (
                telegram_example(example[status])
                if status in example
                else {"ok": False, "error_code": status, "description": "Internal Server Error"}
            )
            if retry_after is not None:
                body["parameters"] = {"retry_after": retry_after}
                body["description"] = f"Too Many Requests: retry after {retry_after}"
            failure = _Failure(status, body)
        elif kind == "discourse":
            failure = _Failure(status, _discourse_error(status, retry_after))
        else:
            failure = _Failure(status, {"success": False, "error": "error"} if kind == "rocketchat" else "error")
            if retry_after is not None:
                failure.headers["Retry-After"] = str(retry_after)
        with self._lock:
            self._failures.setdefault(kind, []).extend([failure] * times)

    def texts(self, kind: str | None = None) -> list[str]:
        return [p.body.get("text", "") for p in self.posts if kind is None or p.kind == kind]

    def assert_no_violations(self) -> None:
        assert not self.violations, "requests broke the chat contracts:\n" + "\n".join(self.violations)

    # --- serving

    def start(self) -> Self:
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True, request_handler=_QuietHandler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        return self._answer(request)(environ, start_response)

    def _answer(self, request: Request) -> Response:
        path = request.path
        if match := re.fullmatch(r"/bot([^/]+)/(\w+)", path):
            return self._telegram(request, match.group(1), match.group(2))
        if path.startswith("/hooks/") or path.startswith("/services/"):
            kind = "rocketchat" if path.startswith("/hooks/") else "slack"
            if path != (ROCKETCHAT_HOOK if kind == "rocketchat" else SLACK_HOOK):
                return _json(404, {"success": False, "error": "Invalid integration id or token provided."})
            return self._webhook(request, kind)
        if path == "/posts.json" and request.method == "POST":
            return self._discourse(request)
        if path == "/posts.json" and request.method == "GET":
            return self._discourse_posts(request)
        if (match := re.fullmatch(r"/u/([^/]+)\.json", path)) and request.method == "GET":
            return self._discourse_user(request, match.group(1))
        return self._violation(f"{request.method} {path}: no such endpoint", 404, {})

    def _telegram(self, request: Request, token: str, method: str) -> Response:
        if token != TELEGRAM_TOKEN:
            return _json(401, telegram_example("error.401.unauthorized"))
        spec = self.spec["methods"].get(method)
        if spec is None:
            return self._violation(f"Telegram {method}: not in the contract subset", 404, {})
        params = request.get_json(silent=True) if request.data else {}
        if not isinstance(params, dict):
            return self._violation(f"Telegram {method}: the body is not a JSON object", 400, {})
        problems = self._check_fields(method, spec.get("fields", []), params)
        if method == "sendMessage" and not problems:
            problems = _check_text(params)
        if problems:
            return self._violation(f"Telegram {method}: " + "; ".join(problems), 400, {"ok": False, "error_code": 400})
        if method == "getMe":
            return _json(200, telegram_example("getMe.ok"))
        if method == "getWebhookInfo":
            if problems := self._check_fields(
                "WebhookInfo", self.spec["types"]["WebhookInfo"]["fields"], self.webhook_info
            ):
                return self._violation("the test's webhook_info: " + "; ".join(problems), 500, {"ok": False})
            return _json(200, {"ok": True, "result": self.webhook_info})
        if failure := self._take_failure("telegram"):
            return _json(failure.status, failure.body, failure.headers)
        time.sleep(self.delay)
        with self._lock:
            self.posts.append(Post("telegram", params))
        answer = telegram_example("sendMessage.ok")
        answer["result"]["text"] = params["text"]
        return _json(200, answer)

    def _check_fields(self, where: str, fields: list[dict[str, Any]], value: dict[str, Any]) -> list[str]:
        known = {f["name"]: f for f in fields}
        problems = [f"{where}.{name}: unknown parameter" for name in value if name not in known]
        problems += [f"{where}.{f['name']}: required" for f in fields if f["required"] and f["name"] not in value]
        for name, item in value.items():
            if name in known and not any(
                self._fits(where + "." + name, t, item, problems) for t in known[name]["types"]
            ):
                problems.append(f"{where}.{name}: {item!r} is not {' or '.join(known[name]['types'])}")
        return problems

    def _fits(self, where: str, type_name: str, item: Any, problems: list[str]) -> bool:
        if type_name.startswith("Array of "):
            inner = type_name.removeprefix("Array of ")
            return isinstance(item, list) and all(self._fits(where, inner, x, problems) for x in item)
        if type_name in _SCALARS:
            return isinstance(item, _SCALARS[type_name]) and not (type_name == "Integer" and isinstance(item, bool))
        spec = self.spec["types"].get(type_name)
        if spec is None:
            problems.append(f"{where}: type {type_name} is not in the contract subset")
            return True
        if not isinstance(item, dict):
            return False
        problems += self._check_fields(where, spec.get("fields", []), item)
        return True

    def _webhook(self, request: Request, kind: str) -> Response:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return self._violation(f"{kind} hook: the body is not a JSON object", 400, {"success": False})
        fields: dict[str, tuple[type, ...]] = ROCKETCHAT_FIELDS if kind == "rocketchat" else {"text": (str,)}
        problems = [f"{name}: not a field of the incoming webhook" for name in body if name not in fields]
        problems += [
            f"{name}: wrong type" for name, v in body.items() if name in fields and not isinstance(v, fields[name])
        ]
        if not isinstance(body.get("text"), str) or not body["text"].strip():
            problems.append("text: required, a non-empty string")
        if problems:
            return self._violation(f"{kind} hook: " + "; ".join(problems), 400, {"success": False, "error": "invalid"})
        if failure := self._take_failure(kind):
            return _json(failure.status, failure.body, failure.headers)
        time.sleep(self.delay)
        with self._lock:
            self.posts.append(Post(kind, body))
        return _json(200, {"success": True}) if kind == "rocketchat" else Response("ok", 200)

    def _discourse(self, request: Request) -> Response:
        body = request.get_json(silent=True)
        problems = [] if isinstance(body, dict) else ["the body is not a JSON object"]
        problems += [
            f"{header}: header required" for header in ("Api-Key", "Api-Username") if not request.headers.get(header)
        ]
        if isinstance(body, dict):
            validator = jsonschema.Draft202012Validator(self.discourse_request)
            problems += [f"{'.'.join(map(str, e.path)) or 'body'}: {e.message}" for e in validator.iter_errors(body)]
            if "topic_id" not in body and not body.get("title"):
                problems.append("title: required for a new topic (or topic_id for a reply)")
        if problems:
            return self._violation("Discourse POST /posts.json: " + "; ".join(problems), 400, _discourse_error(400))
        if request.headers["Api-Key"] != DISCOURSE_API_KEY:
            return _json(403, _discourse_error(403))
        if "topic_id" in body and body["topic_id"] != DISCOURSE_TOPIC_ID:
            return _json(404, _discourse_error(404))
        if failure := self._take_failure("discourse"):
            return _json(failure.status, failure.body, failure.headers)
        with self._lock:
            self.posts.append(Post("discourse", body))
        answer = json.loads((DISCOURSE / "examples" / "createTopicPostPM.200.json").read_text())
        answer.update(
            raw=body["raw"], topic_id=body.get("topic_id", answer["topic_id"]), username=request.headers["Api-Username"]
        )
        return _json(200, answer)

    def _discourse_user(self, request: Request, username: str) -> Response:
        """getUser: both headers are required parameters in the contract; the key decides before the user."""
        missing = [header for header in ("Api-Key", "Api-Username") if not request.headers.get(header)]
        if missing:
            text = f"Discourse GET {request.path}: " + "; ".join(f"{h}: header required" for h in missing)
            return self._violation(text, 400, _discourse_error(400))
        with self._lock:
            self.discourse_reads.append(request.path)
        if request.headers["Api-Key"] != DISCOURSE_API_KEY or request.headers["Api-Username"] != DISCOURSE_API_USERNAME:
            return _json(403, _discourse_error(403))
        if username != DISCOURSE_API_USERNAME:
            return _json(404, _discourse_error(404))
        return _json(200, json.loads((DISCOURSE / "examples" / "getUser.200.json").read_text()))

    def _discourse_posts(self, request: Request) -> Response:
        """listPosts: newest first, below `before`; a failure queued for "discourse" answers first."""
        problems = [f"{h}: header required" for h in ("Api-Key", "Api-Username") if not request.headers.get(h)]
        problems += [
            f"{name}: not a parameter of listPosts" for name in request.args if name not in self.list_posts_params
        ]
        before = request.args.get("before")
        if before is not None and not before.isdigit():
            problems.append(f"before: {before!r} is not an integer")
        if problems:
            return self._violation("Discourse GET /posts.json: " + "; ".join(problems), 400, _discourse_error(400))
        with self._lock:
            self.discourse_reads.append(request.full_path)
        if request.headers["Api-Key"] != DISCOURSE_API_KEY or request.headers["Api-Username"] != DISCOURSE_API_USERNAME:
            return _json(403, _discourse_error(403))
        if failure := self._take_failure("discourse"):
            return _json(failure.status, failure.body, failure.headers)
        if before is not None and int(before) == self.fail_listing_before:
            return _json(502, _discourse_error(502))
        example = json.loads((DISCOURSE / "examples" / "listPosts.200.json").read_text())["latest_posts"][0]
        below = [p for p in self.forum_posts if before is None or p["id"] < int(before)]
        page = sorted(below, key=lambda p: p["id"], reverse=True)[: self.posts_per_page]
        answer = {"latest_posts": [{**example, **post} for post in page]}
        # Checked as the contract types it: `reply_to_post_number` is typed text there though Discourse sends
        # the number (SOURCES.md: known upstream), and discourse-solved's `accepted_answer` is not in it.
        plain = {"latest_posts": [_as_typed_in_contract(p) for p in answer["latest_posts"]]}
        validator = jsonschema.Draft202012Validator(self.list_posts_answer)
        if errors := [f"{'.'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(plain)]:
            return self._violation("the test's forum_posts: " + "; ".join(errors[:3]), 500, {})
        return _json(200, answer)

    def _take_failure(self, kind: str) -> _Failure | None:
        with self._lock:
            queue = self._failures.get(kind)
            return queue.pop(0) if queue else None

    def _violation(self, text: str, status: int, body: Any) -> Response:
        with self._lock:
            self.violations.append(text)
        return _json(status, {**body, "description": text} if isinstance(body, dict) else body)


def _as_typed_in_contract(post: dict[str, Any]) -> dict[str, Any]:
    typed = {k: v for k, v in post.items() if k != "accepted_answer"}
    if isinstance(typed.get("reply_to_post_number"), int):
        typed["reply_to_post_number"] = str(typed["reply_to_post_number"])
    return typed


def _discourse_error(status: int, retry_after: int | None = None) -> dict[str, Any]:
    """Discourse's error body, `{"errors": [...], "error_type": ...}` (not in its OpenAPI file: assumed as
    Discourse's ApplicationController words them); a 429 also carries `extras.wait_seconds`."""
    texts = {
        403: (
            "You are not permitted to view the requested resource. The API username or key is invalid.",
            "invalid_access",
        ),
        404: ("The requested URL or resource could not be found.", "not_found"),
        429: (
            "You've performed this action too many times. Please wait a few seconds before trying again.",
            "rate_limit",
        ),
    }
    text, kind = texts.get(status, ("Internal Server Error" if status >= 500 else "Invalid request", "error"))
    body: dict[str, Any] = {"errors": [text], "error_type": kind}
    if status == 429:
        body["extras"] = {"wait_seconds": retry_after or 1, "time_left": f"{retry_after or 1} seconds"}
    return body


def _check_text(params: dict[str, Any]) -> list[str]:
    """sendMessage's text: 1-4096 characters; with parse_mode HTML, only Telegram's tags, the rest escaped."""
    text = params["text"]
    if not 1 <= len(text) <= 4096:
        return [f"sendMessage.text: {len(text)} characters (1-4096)"]
    if params.get("parse_mode") not in (None, "HTML", "MarkdownV2", "Markdown"):
        return [f"sendMessage.parse_mode: {params['parse_mode']!r} is not HTML, MarkdownV2 or Markdown"]
    if params.get("parse_mode") != "HTML":
        return []
    checker = _TelegramHTML()
    checker.feed(text)
    checker.close()
    return checker.problems


class _TelegramHTML(HTMLParser):
    """Telegram's HTML: listed tags only; `<`, `>` and `&` outside them must be written as entities."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in HTML_TAGS:
            self.problems.append(f"sendMessage.text: <{tag}> is not a tag Telegram accepts (escape '<' as &lt;)")

    def handle_data(self, data: str) -> None:
        if "<" in data or ">" in data or "&" in data:
            self.problems.append(f"sendMessage.text: unescaped '<', '>' or '&' in {data[:40]!r}")

    def handle_entityref(self, name: str) -> None:
        if name not in ("lt", "gt", "amp", "quot"):
            self.problems.append(f"sendMessage.text: &{name}; is not an entity Telegram accepts")

    def unknown_decl(self, data: str) -> None:
        self.problems.append(f"sendMessage.text: unescaped markup {data[:40]!r}")


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status, headers=headers, content_type="application/json")
