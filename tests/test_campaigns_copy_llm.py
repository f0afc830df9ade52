"""The language-model writer against a local OpenAI-compatible server the test starts
(stdlib ``http.server`` in a thread): protocol, privacy, timeout, retry, fallback, cache."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ml.campaigns.copy import (
    FIRST_NAME,
    BriefProduct,
    BuiltinWriter,
    ChatClient,
    CopyBrief,
    CopyCache,
    CopyRunner,
    Guardrails,
    LLMError,
    LLMSettings,
    LLMWriter,
    limits_for,
)
from ml.campaigns.copy.llm import parse_reply

CATALOGUE = ["Walnut Dark Roast Green Tea", "Olive Wooden Board Game", "Sage Metal Sideboard"]
TEA = BriefProduct("Walnut Dark Roast Green Tea", "Coffee & Tea", 10.99, "popular right now")
GOOD = {"subject": f"For you, {FIRST_NAME}", "body": f"Hi {FIRST_NAME}, meet [[{TEA.name}]]."}
BAD = {"subject": "Hi", "body": f"Hi {FIRST_NAME}, try [[Sage Metal Sideboard]]."}

Reply = tuple[int, dict[str, str], bytes, float]  # status, headers, body, delay seconds


def chat(content: dict | str) -> bytes:
    text = content if isinstance(content, str) else json.dumps(content)
    return json.dumps(
        {"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": {
            "role": "assistant", "content": text}, "finish_reason": "stop"}]}
    ).encode()  # fmt: skip


class FakeEndpoint:
    """A real HTTP server on localhost answering chat completions from a script."""

    def __init__(self, script: Callable[[int, dict], Reply]) -> None:
        self.script = script
        self.requests: list[dict] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                endpoint.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                status, headers, payload, delay = endpoint.script(len(endpoint.requests), body)
                time.sleep(delay)
                try:
                    self.send_response(status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> FakeEndpoint:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def ok(content=GOOD) -> Reply:
    return 200, {}, chat(content), 0.0


def settings(base_url: str, **overrides) -> LLMSettings:
    values = {"base_url": base_url, "model": "test-model", "api_key": "sk-test",
              "timeout_seconds": 2.0, "max_retries": 2, "backoff_seconds": 0.01}  # fmt: skip
    values.update(overrides)
    return LLMSettings(**values)


def brief(**overrides) -> CopyBrief:
    values = {"campaign_name": "Spring picks", "goal": "recommend", "channel": "email",
              "limits": limits_for("email"), "products": (TEA,), "segment": "Champions",
              "cluster": "recent frequent high spenders", "variant": 5}  # fmt: skip
    values.update(overrides)
    return CopyBrief(**values)


def runner(endpoint: FakeEndpoint, cache: CopyCache | None = None, **overrides) -> CopyRunner:
    return CopyRunner(
        LLMWriter(settings(endpoint.base_url, **overrides)),
        Guardrails(CATALOGUE),
        BuiltinWriter(),
        cache=cache,
        max_consecutive_failures=3,
    )


def test_protocol_and_only_the_brief_is_sent() -> None:
    with FakeEndpoint(lambda n, body: ok()) as endpoint:
        run = runner(endpoint)
        outcome = run.write(brief())
    assert outcome.produced_by == "llm" and outcome.first_attempt_passed
    assert outcome.draft.body == f"Hi {FIRST_NAME}, meet {TEA.name}."  # markers removed
    assert outcome.draft.subject == f"For you, {FIRST_NAME}"
    (request,) = endpoint.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-test"
    assert request["headers"]["Content-Type"] == "application/json"
    body = request["body"]
    assert body["model"] == "test-model" and body["temperature"] == 0.0
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert FIRST_NAME in body["messages"][0]["content"]
    sent = json.loads(body["messages"][1]["content"].removeprefix("Brief:\n"))
    assert sent == brief().payload()


def test_no_customer_id_email_or_name_reaches_the_endpoint(affinity_home) -> None:
    """Briefs built by the campaign step from real customers carry none of their PII."""
    import polars as pl

    from ml.campaigns.definitions import Campaign
    from ml.campaigns.messaging import CopyContext, campaign_copy
    from ml.datagen import generate_shop

    landing = affinity_home / "shop"
    generate_shop(landing, customers=60, products=30, days=20, seed=4)
    customers = pl.read_parquet(landing / "customers.parquet")
    products = pl.read_parquet(landing / "products.parquet").head(3)
    featured = [
        {"product_id": r["product_id"], "name": r["name"], "category": r["category"],
         "price": r["price"], "reason": "popular right now"}
        for r in products.iter_rows(named=True)
    ]  # fmt: skip
    ids = customers["customer_id"].to_list()
    members = pl.DataFrame(
        {"customer_id": ids, "segment": ["Champions"] * len(ids), "cluster_name": [None] * len(ids)}
    )
    good = {"subject": "Hi", "body": f"Hi {FIRST_NAME}, meet [[{featured[0]['name']}]]."}
    campaign = Campaign(
        "CMP900", "Spring", "email", "rule", "tenure_days>=0", None, None, 100, 0.0,
        copy_writers="llm",
    )  # fmt: skip
    with FakeEndpoint(lambda n, body: ok(good)) as endpoint:
        from ml.campaigns.copy import CopyConfig

        config = CopyConfig(llm=settings(endpoint.base_url), log_to_mlflow=False, use_cache=False)
        context = CopyContext(Guardrails(products["name"].to_list()), config)
        written = campaign_copy(
            campaign, members, ["treatment"] * len(ids), dict.fromkeys(ids, featured), context, "s"
        )
    assert written.reports["llm"].messages == len(ids) == len(endpoint.requests)
    assert written.reports["llm"].fallbacks == 0
    sent = json.dumps([r["body"] for r in endpoint.requests], ensure_ascii=False).lower()
    # Product names may share a word with a first name ("Sage"): drop them first.
    for name in sorted(products["name"].to_list(), key=len, reverse=True):
        sent = sent.replace(name.lower(), " ")
    words = set(re.findall(r"[a-z0-9]+", sent))
    for column in ("customer_id", "first_name"):
        for value in customers[column].drop_nulls().to_list():
            assert value.lower() not in words, (column, value)
    assert "@" not in sent


def test_a_timeout_is_retried_then_succeeds() -> None:
    script = lambda n, body: (200, {}, chat(GOOD), 1.0 if n == 1 else 0.0)  # noqa: E731
    with FakeEndpoint(script) as endpoint:
        run = runner(endpoint, timeout_seconds=0.3)
        outcome = run.write(brief())
    assert outcome.produced_by == "llm" and len(endpoint.requests) == 2


def test_429_with_retry_after_and_500_are_retried_and_401_is_not() -> None:
    waits: list[float] = []

    def script(n: int, body: dict) -> Reply:
        if n == 1:
            return 429, {"Retry-After": "0.05"}, b'{"error": "slow down"}', 0.0
        if n == 2:
            return 500, {}, b"{}", 0.0
        return ok()

    with FakeEndpoint(script) as endpoint:
        client = ChatClient(settings(endpoint.base_url), sleep=waits.append)
        writer = LLMWriter(settings(endpoint.base_url), client)
        draft = writer.write(brief())
    assert draft.body.startswith("Hi") and len(endpoint.requests) == 3
    assert waits[0] == pytest.approx(0.05)  # what Retry-After asked
    assert waits[1] == pytest.approx(0.02)  # exponential backoff: 0.01 * 2**1
    assert client.retries == 2

    refused = FakeEndpoint(lambda n, body: (401, {}, b'{"error": "bad key"}', 0.0))
    with refused as endpoint, pytest.raises(LLMError, match="AFFINITY_LLM_API_KEY"):
        LLMWriter(settings(endpoint.base_url)).write(brief())
    assert len(endpoint.requests) == 1


def test_an_endpoint_that_keeps_failing_falls_back_and_is_then_left_alone() -> None:
    with FakeEndpoint(lambda n, body: (503, {}, b"{}", 0.0)) as endpoint:
        run = runner(endpoint, max_retries=1)
        outcomes = run.write_all([brief(variant=v) for v in range(6)])
    assert all(o.produced_by == "builtin" for o in outcomes)
    # 3 failing briefs x 2 attempts; then the endpoint is not called again.
    assert len(endpoint.requests) == 6
    assert run.report.fallback_reasons == {"endpoint_error": 3, "endpoint_unavailable": 3}
    assert run.report.final_failures == 0


def test_a_rule_breaking_draft_is_regenerated_with_the_reasons_then_falls_back() -> None:
    replies = iter([BAD, GOOD, BAD, "not json at all"])
    with FakeEndpoint(lambda n, body: ok(next(replies))) as endpoint:
        run = runner(endpoint)
        first, second = run.write(brief()), run.write(brief(segment="At Risk"))
    assert first.produced_by == "llm" and first.regenerated
    # The reason of a fallback is what broke the last attempt.
    assert second.produced_by == "builtin" and second.fallback_reason == "unparseable"
    feedback = endpoint.requests[1]["body"]["messages"][-1]["content"]
    assert "not_recommended: Sage Metal Sideboard" in feedback
    report = run.report
    assert report.failure_reasons == {"not_recommended": 2, "unparseable": 1}
    assert (report.first_attempt_passed, report.regenerated, report.fallbacks) == (0, 1, 1)


def test_outputs_are_cached_by_brief_and_writer_version(tmp_path) -> None:
    briefs = [brief(segment=s) for s in ("Champions", "At Risk", "Champions")]
    with FakeEndpoint(lambda n, body: ok()) as endpoint:
        cache = CopyCache(tmp_path / "copy.sqlite")
        first = runner(endpoint, cache).write_all(briefs)
        assert len(endpoint.requests) == 2  # the third brief equals the first
        second = runner(endpoint, CopyCache(tmp_path / "copy.sqlite")).write_all(briefs)
        assert len(endpoint.requests) == 2
        texts = [(o.draft.subject, o.draft.body) for o in first]
        assert [(o.draft.subject, o.draft.body) for o in second] == texts
        assert all(o.cached for o in second)
        other_model = runner(endpoint, CopyCache(tmp_path / "copy.sqlite"), model="other")
        other_model.write_all(briefs[:1])
        assert len(endpoint.requests) == 3


def test_failed_endpoints_are_not_cached_so_the_next_run_retries(tmp_path) -> None:
    with FakeEndpoint(lambda n, body: (503, {}, b"{}", 0.0) if n == 1 else ok()) as endpoint:
        cache = CopyCache(tmp_path / "copy.sqlite")
        assert runner(endpoint, cache, max_retries=0).write(brief()).produced_by == "builtin"
        assert runner(endpoint, cache, max_retries=0).write(brief()).produced_by == "llm"


def test_settings_from_the_environment() -> None:
    assert LLMSettings.from_env({}) is None
    with pytest.raises(ValueError, match="AFFINITY_LLM_MODEL"):
        LLMSettings.from_env({"AFFINITY_LLM_BASE_URL": "http://localhost:8080/v1"})
    s = LLMSettings.from_env(
        {"AFFINITY_LLM_BASE_URL": "http://h/v1/", "AFFINITY_LLM_MODEL": "m",
         "AFFINITY_LLM_API_KEY": "sk-secret-42", "AFFINITY_LLM_MAX_RPS": "2"}
    )  # fmt: skip
    assert s.endpoint == "http://h/v1/chat/completions" and s.max_requests_per_second == 2
    assert s.api_key == "sk-secret-42" and "sk-secret-42" not in repr(s)


def test_replies_are_parsed_leniently_but_must_be_a_json_object_with_a_body() -> None:
    draft = parse_reply('Sure! ```json\n{"subject": null, "body": "Hi [[A B]]"}\n```')
    assert draft.body == "Hi A B" and draft.subject is None and draft.marked_products == ("A B",)
    from ml.campaigns.copy.llm import UnparseableReply

    for reply in ("no object", '{"subject": "x"}', '{"body": 3}'):
        with pytest.raises(UnparseableReply):
            parse_reply(reply)
