"""`/metrics`: counters equal what happened, the same from every process sharing Redis, in valid
Prometheus text (format 0.0.4), and still answering when Redis is away."""

from __future__ import annotations

import re
from collections import Counter
from urllib.parse import urlparse

import pytest

from ops import metrics
from storage import db
from tests.conftest import REPO, example, installed, pushed, run_rq_worker, services, table_count, wait_for
from tests.support import behaviours
from tests.support.proxy import Proxy

SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')
UNESCAPE = {"n": "\n", "\\": "\\", '"': '"'}


class Scrape:
    """A parsed exposition; parsing fails on any line the format does not allow."""

    def __init__(self, text: str):
        self.text = text
        self.help: dict[str, str] = {}
        self.type: dict[str, str] = {}
        self.samples: list[tuple[str, dict[str, str], float]] = []
        self.typed_before_sample: list[str] = []  # samples whose family had no TYPE line yet
        for line in text.splitlines():
            if line.startswith("# HELP "):
                name, _, doc = line[len("# HELP ") :].partition(" ")
                assert name not in self.help, f"two HELP lines for {name}"
                self.help[name] = doc
            elif line.startswith("# TYPE "):
                name, _, kind = line[len("# TYPE ") :].partition(" ")
                assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
                assert name not in self.type, f"two TYPE lines for {name}"
                self.type[name] = kind
            elif line and not line.startswith("#"):
                match = SAMPLE.fullmatch(line)
                assert match, f"not a sample line: {line!r}"
                name, raw, value = match.groups()
                self.samples.append((name, self._labels(raw or ""), float(value)))
                if self.family(name) not in self.type:
                    self.typed_before_sample.append(name)

    @staticmethod
    def _labels(raw: str) -> dict[str, str]:
        labels, position = {}, 0
        for match in LABEL.finditer(raw):
            assert match.start() == position, f"bad label text {raw!r}"
            labels[match[1]] = re.sub(r"\\(.)", lambda m: UNESCAPE[m[1]], match[2])
            position = match.end()
        assert position == len(raw), f"bad label text {raw!r}"
        return labels

    def family(self, sample: str) -> str:
        for suffix in ("_bucket", "_sum", "_count"):
            base = sample.removesuffix(suffix)
            if base != sample and self.type.get(base) == "histogram":
                return base
        return sample

    def value(self, name: str, **labels: str) -> float | None:
        found = [v for n, ls, v in self.samples if n == name and ls == labels]
        assert len(found) <= 1, f"{name}{labels} appears twice"
        return found[0] if found else None

    def by(self, name: str, *keys: str) -> dict[tuple[str, ...], float]:
        """Every sample of `name`, keyed by the values of `keys`."""
        return {tuple(ls[k] for k in keys): v for n, ls, v in self.samples if n == name}


def assert_valid(scrape: Scrape) -> None:
    """Every sample's metric has HELP and TYPE (before it); histograms are cumulative up to +Inf == _count."""
    assert scrape.typed_before_sample == []
    for name, _, _ in scrape.samples:
        assert scrape.family(name) in scrape.help, f"{name} has no HELP"
    for family in (name for name, kind in scrape.type.items() if kind == "histogram"):
        series: dict[tuple, list[tuple[float, float]]] = {}
        for name, labels, value in scrape.samples:
            if name == family + "_bucket":
                key = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
                series.setdefault(key, []).append((float(labels["le"]), value))
        for key, buckets in series.items():
            bounds, counts = [b for b, _ in buckets], [c for _, c in buckets]
            assert bounds == sorted(bounds) and bounds[-1] == float("inf"), f"{family}{key} buckets out of order"
            assert counts == sorted(counts), f"{family}{key} buckets decrease"
            assert scrape.value(family + "_count", **dict(key)) == counts[-1], f"{family}{key}: +Inf != _count"
            assert scrape.value(family + "_sum", **dict(key)) is not None, f"{family}{key} has no _sum"


def scrape(server, token: str | None = None) -> Scrape:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = server.session.get(server.url + "/metrics", headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    parsed = Scrape(answer.text)
    assert_valid(parsed)
    return parsed


def opened(number: int = 1, login: str = "octo-newcomer") -> dict:
    payload = installed(example("issues.opened.1"))
    payload["issue"].update(number=number)
    payload["issue"]["user"].update(login=login)
    payload["sender"].update(login=login)
    return payload


@pytest.fixture(autouse=True)
def handlers_behave():
    behaviours.BREAK["crash"] = False
    yield
    behaviours.BREAK["crash"] = False


def test_counters_equal_what_happened(make_app, serve, redis_url, github):
    github.set_file(REPO, ".github/engage.yml", "thanks:\n  mode: on_merge\n")  # read with ETags: 304s
    github.add_issue(REPO, 3, "Codertocat", title="Boot fails on ARM")
    server = serve(make_app(redis_url=redis_url))
    bot = opened(2, login="renovate[bot]")
    bot["sender"]["type"] = "Bot"
    answers = [
        server.deliver("issues", opened(1), delivery_id="first").status_code,
        server.deliver("issues", opened(1), delivery_id="first").status_code,  # GitHub redelivers it
        server.deliver("issues", opened(1), secret="not-the-secret").status_code,
        server.deliver("issues", b"not json").status_code,
        server.deliver("issues", bot).status_code,
        server.deliver("ping", example("ping.none.1")).status_code,
    ]
    assert answers == [202, 200, 401, 400, 202, 200]
    run_rq_worker(server.app)
    server.deliver("push", pushed([".github/engage.yml"]))  # the config is read again: a 304
    behaviours.BREAK["crash"] = True
    server.deliver("issues", opened(2), delivery_id="crashes")
    run_rq_worker(server.app)
    behaviours.BREAK["crash"] = False
    github.fail_next("POST", r"/issues/3/comments$", 502)
    server.deliver("issues", opened(3), delivery_id="flaky")
    store = services(server.app).store
    run_rq_worker(server.app)
    assert store.get("flaky").status == "retrying"
    wait_for(lambda: store.due(0), message="retry due")
    run_rq_worker(server.app)
    assert [store.get(d).status for d in ("first", "crashes", "flaky")] == ["done", "failed", "done"]

    found = scrape(server)
    assert found.by(metrics.RECEIVED, "event", "outcome") == {
        ("issues", "accepted"): 3,
        ("issues", "duplicate"): 1,
        ("unknown", "rejected_signature"): 1,
        ("issues", "malformed"): 1,
        ("issues", "ignored"): 1,
        ("ping", "ignored"): 1,
        ("push", "accepted"): 1,
    }
    assert found.by(metrics.PROCESSED, "event", "outcome") == {
        ("issues", "done"): 2,
        ("issues", "failed"): 1,
        ("issues", "retrying"): 1,
        ("push", "done"): 1,
    }
    assert found.value(metrics.JOB_DURATION + "_count", event="issues") == 4
    assert found.value(metrics.HANDLER_DURATION + "_count", handler="test.ack") == 4, "3 deliveries, 1 retried"
    github_answers = Counter((r.method, str(r.status)) for r in github.requests)
    assert found.by(metrics.GITHUB_REQUESTS, "method", "status") == github_answers
    assert github_answers[("GET", "304")] and github_answers[("POST", "502")], "the scenario covers both"
    assert 0 < found.value(metrics.RATE_LIMIT_REMAINING, installation="9001") < 5000
    assert found.by(metrics.DELIVERIES, "status") == {
        ("pending",): 0,
        ("processing",): 0,
        ("retrying",): 0,
        ("done",): 3,
        ("ignored",): 2,
        ("failed",): 1,
    }
    assert found.value(metrics.FAILED_RECENTLY) == 1
    assert found.value(metrics.CONTRIBUTIONS) == table_count(server.app, db.contributions) > 0
    assert found.value(metrics.QUEUE_DEPTH) == 0
    assert found.by(metrics.SOURCE_UP, "source") == {("recorded",): 1, ("database",): 1, ("queue",): 1}

    # Once the app is uninstalled, its installation's last rate-limit reading is no longer reported.
    server.deliver("installation", installed(example("installation.deleted.1")))
    run_rq_worker(server.app)
    assert not [
        s for s in scrape(server).samples if s[0] == metrics.RATE_LIMIT_REMAINING and s[1] == {"installation": "9001"}
    ]


def test_app_processes_sharing_redis_report_the_same_totals(make_app, serve, redis_url, github):
    first, second = serve(make_app(redis_url=redis_url)), serve(make_app(redis_url=redis_url))
    for n in range(3):
        first.deliver("issues", opened(1 + n % 2), delivery_id=f"first-{n}")
    for n in range(2):
        second.deliver("issues", opened(1 + n % 2), delivery_id=f"second-{n}")
    assert services(second.app).dispatcher.wait_idle()  # its deliveries are in the shared queue too
    run_rq_worker(first.app)
    scrape(first)  # each scrape adds its own process's latest counts to Redis first
    from_second, from_first = scrape(second), scrape(first)
    assert from_first.samples == from_second.samples
    assert from_first.value(metrics.RECEIVED, event="issues", outcome="accepted") == 5
    assert from_first.value(metrics.PROCESSED, event="issues", outcome="done") == 5
    assert from_first.value(metrics.JOB_DURATION + "_count", event="issues") == 5


def test_without_redis_the_embedded_process_counts_in_memory(make_app, serve, github):
    server = serve(make_app())
    server.deliver("issues", opened(), delivery_id="embedded")
    assert services(server.app).dispatcher.wait_idle()
    found = scrape(server)
    assert found.value(metrics.RECEIVED, event="issues", outcome="accepted") == 1
    assert found.value(metrics.PROCESSED, event="issues", outcome="done") == 1
    assert found.value(metrics.QUEUE_DEPTH) == 0, "pending deliveries, without a queue"
    assert found.value(metrics.SOURCE_UP, source="recorded") == 1


def test_with_a_token_only_its_bearer_may_scrape(make_app, serve, github):
    server = serve(make_app(metrics_token="s3cret-token"))
    url = server.url + "/metrics"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-token"}):
        answer = server.session.get(url, headers=headers)
        assert answer.status_code == 401 and "METRICS_TOKEN" in answer.text, headers
    assert scrape(server, token="s3cret-token").value(metrics.SOURCE_UP, source="database") == 1


def test_redis_going_away_breaks_neither_intake_nor_the_scrape(make_app, serve, redis_url, github):
    proxy = Proxy("127.0.0.1", 6379)
    try:
        app = make_app(redis_url=f"redis://127.0.0.1:{proxy.port}{urlparse(redis_url).path}")
        server = serve(app)
        proxy.cut()
        assert server.deliver("issues", opened(), delivery_id="while-down").status_code == 202
        found = scrape(server)
        assert found.value(metrics.DELIVERIES, status="pending") == 1, "the database still answers"
        assert found.by(metrics.SOURCE_UP, "source") == {("recorded",): 0, ("database",): 1, ("queue",): 0}
        assert found.value(metrics.QUEUE_DEPTH) is None, "unknown is left out, not reported as 0"

        proxy.restore()
        services(app).metrics._open_until = 0  # skip the breaker's pause instead of sleeping through it
        found = scrape(server)
        assert found.value(metrics.RECEIVED, event="issues", outcome="accepted") == 1, "kept until Redis came back"
        assert found.value(metrics.SOURCE_UP, source="recorded") == 1
    finally:
        proxy.close()


def test_label_values_are_escaped_and_histograms_cumulate():
    recorder = metrics.MemoryRecorder()
    odd = 'a "quoted"\\back\nslash'
    for seconds in (0.003, 0.2, 0.2, 45.0):
        recorder.observe(metrics.HANDLER_DURATION, {"handler": odd}, seconds)
    recorder.inc(metrics.GITHUB_REQUESTS, {"method": "GET", "status": "200"}, 2)
    snapshot = recorder.snapshot()
    assert snapshot is not None
    found = Scrape(metrics.exposition(metrics.recorded_samples(snapshot)))
    assert_valid(found)
    buckets = found.by(metrics.HANDLER_DURATION + "_bucket", "handler", "le")
    assert buckets[(odd, "0.005")] == 1 and buckets[(odd, "0.25")] == 3 and buckets[(odd, "30")] == 3
    assert buckets[(odd, "+Inf")] == found.value(metrics.HANDLER_DURATION + "_count", handler=odd) == 4
    assert found.value(metrics.HANDLER_DURATION + "_sum", handler=odd) == pytest.approx(45.403)
    assert found.value(metrics.GITHUB_REQUESTS, method="GET", status="200") == 2
    assert set(found.help) == set(found.type) == set(metrics.FAMILIES), "every metric is described, even unseen"
