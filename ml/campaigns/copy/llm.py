"""The optional language-model writer: any OpenAI-compatible chat-completions endpoint.

No model is bundled. Point it at a local server (llama.cpp ``llama-server``, vLLM,
Ollama) or a hosted one:

``AFFINITY_LLM_BASE_URL``  e.g. ``http://localhost:8080/v1`` (``/chat/completions`` is
                           appended); unset, the writer is not configured;
``AFFINITY_LLM_MODEL``     the model name the server expects (required with a base URL);
``AFFINITY_LLM_API_KEY``   sent as ``Authorization: Bearer ...`` when set;
``AFFINITY_LLM_TIMEOUT``   seconds per request (default 30);
``AFFINITY_LLM_MAX_RETRIES``  retries of a failed request (default 3);
``AFFINITY_LLM_MAX_RPS``   at most this many requests per second (default: no limit).

Only the brief's :meth:`~ml.campaigns.copy.brief.CopyBrief.payload` is sent: campaign,
goal, offer, channel limits, the customer's segment and cluster names, and the products
(name, category, price, reason, praised aspects). Never a customer id, an e-mail or a
name; the model is told to greet ``{{first_name}}`` and leave it as it is.

Requests use the standard library (``urllib``). A timeout, a connection error, HTTP 408,
409, 429 or 5xx is retried with exponential backoff, waiting what ``Retry-After`` asks
when the server says (capped); other HTTP errors (a wrong URL, model or key) fail at once
with a message saying what to fix. The reply must be a JSON object ``{"subject": ...,
"body": ...}`` (code fences and text around it are tolerated); products are marked
``[[name]]`` so the guardrails can check every one.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ml.campaigns.copy.brief import FIRST_NAME, CopyBrief
from ml.campaigns.copy.guardrails import Draft, strip_markers

log = logging.getLogger(__name__)

PROMPT_VERSION = "1"
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
SYSTEM_PROMPT = f"""You write one short marketing message for an online shop.
Reply with a JSON object only: {{"subject": string or null, "body": string}}.
Rules:
- Greet the customer with the placeholder {FIRST_NAME}, written exactly like that. Use no other placeholder.
- Name only products listed in the brief, each exactly as spelled there and wrapped in double brackets, e.g. [[Oak Mug]]. Name no other product.
- State no price except a listed product's price, and no discount or promise except the brief's offer.
- The body has at most max_body_chars characters. Give a subject of at most max_subject_chars characters when max_subject_chars is set, else null.
- No links, e-mail addresses or phone numbers. No pressure tactics ("act now", "guaranteed", "urgent").
- Use the reason a product is recommended and what reviewers praise, when given. Plain, warm, grammatical English."""


class LLMError(RuntimeError):
    """The endpoint could not produce a reply (after retries); the message says why."""


class UnparseableReply(ValueError):
    """The model replied, but not with the JSON object asked for."""


@dataclass(frozen=True)
class LLMSettings:
    """Endpoint settings (see the module docstring for the environment variables)."""

    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    timeout_seconds: float = 30.0
    max_retries: int = 3
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 30.0
    max_requests_per_second: float | None = None
    temperature: float = 0.0
    max_tokens: int = 400
    max_consecutive_failures: int = 5

    @property
    def endpoint(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LLMSettings | None:
        """Settings from ``AFFINITY_LLM_*`` (``None`` when no base URL is set).

        Raises
        ------
        ValueError
            A base URL without a model, or a number that does not parse.
        """
        env = os.environ if env is None else env
        base_url = env.get("AFFINITY_LLM_BASE_URL", "").strip()
        if not base_url:
            return None
        model = env.get("AFFINITY_LLM_MODEL", "").strip()
        if not model:
            raise ValueError(
                "AFFINITY_LLM_BASE_URL is set but AFFINITY_LLM_MODEL is not: set it to the "
                "model name your server serves (e.g. the name `GET /v1/models` lists)"
            )
        rps = env.get("AFFINITY_LLM_MAX_RPS", "").strip()
        return cls(
            base_url=base_url,
            model=model,
            api_key=env.get("AFFINITY_LLM_API_KEY") or None,
            timeout_seconds=float(env.get("AFFINITY_LLM_TIMEOUT", "30")),
            max_retries=int(env.get("AFFINITY_LLM_MAX_RETRIES", "3")),
            max_requests_per_second=float(rps) if rps else None,
        )


class ChatClient:
    """A minimal chat-completions client with timeouts, retries and a rate limit.

    Parameters
    ----------
    settings : LLMSettings
    sleep : callable, optional
        ``time.sleep`` (tests may pass a recorder).
    """

    def __init__(self, settings: LLMSettings, sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self._sleep = sleep
        self._last_request = 0.0
        self.requests = 0
        self.retries = 0

    def complete(self, messages: list[dict[str, str]]) -> str:
        """Send ``messages``; return the first choice's content.

        Raises
        ------
        LLMError
            The request failed ``max_retries + 1`` times, or failed in a way retrying
            cannot fix (the message names the status and what to check).
        """
        s = self.settings
        body = json.dumps(
            {
                "model": s.model,
                "messages": messages,
                "temperature": s.temperature,
                "max_tokens": s.max_tokens,
            }
        ).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if s.api_key:
            headers["Authorization"] = f"Bearer {s.api_key}"
        last_error = "no attempt"
        for attempt in range(s.max_retries + 1):
            self._throttle()
            wait = s.backoff_seconds * 2**attempt
            request = urllib.request.Request(s.endpoint, data=body, headers=headers, method="POST")
            self.requests += 1
            try:
                with urllib.request.urlopen(request, timeout=s.timeout_seconds) as response:
                    return _content(response.read())
            except urllib.error.HTTPError as error:
                if error.code not in RETRY_STATUSES:
                    raise LLMError(
                        f"{s.endpoint} answered HTTP {error.code}: check AFFINITY_LLM_BASE_URL, "
                        f"AFFINITY_LLM_MODEL ({s.model!r}) and AFFINITY_LLM_API_KEY"
                    ) from error
                last_error = f"HTTP {error.code}"
                wait = _retry_after(error.headers.get("Retry-After")) or wait
            except TimeoutError as error:
                last_error = f"no reply within {s.timeout_seconds:g}s"
                log.debug("chat completion timed out: %s", error)
            except urllib.error.URLError as error:
                if isinstance(error.reason, TimeoutError):
                    last_error = f"no reply within {s.timeout_seconds:g}s"
                else:
                    last_error = f"cannot connect ({error.reason})"
            except ConnectionError as error:
                last_error = f"connection failed ({error})"
            if attempt < s.max_retries:
                self.retries += 1
                self._sleep(min(wait, s.max_backoff_seconds))
        raise LLMError(f"{s.endpoint}: {last_error} after {s.max_retries + 1} attempts")

    def _throttle(self) -> None:
        rps = self.settings.max_requests_per_second
        if rps:
            gap = 1.0 / rps - (time.monotonic() - self._last_request)
            if gap > 0:
                self._sleep(gap)
        self._last_request = time.monotonic()


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: use our own backoff


def _content(raw: bytes) -> str:
    try:
        reply = json.loads(raw)
        content = reply["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as error:
        raise LLMError(
            "the endpoint's reply is not an OpenAI chat completion "
            f"(choices[0].message.content missing): {raw[:200]!r}"
        ) from error
    if not isinstance(content, str):
        raise LLMError("the endpoint's reply has no text content")
    return content


_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


def parse_reply(content: str) -> Draft:
    """The draft in a model's reply (markers stripped and recorded).

    Raises
    ------
    UnparseableReply
        No JSON object with a string ``body``.
    """
    match = _OBJECT.search(content)
    try:
        data = json.loads(match.group(0)) if match else None
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("body"), str):
        raise UnparseableReply(f"not a JSON object with a body: {content[:120]!r}")
    body, marked = strip_markers(data["body"].strip())
    subject = data.get("subject")
    subject_marked: tuple[str, ...] = ()
    if isinstance(subject, str) and subject.strip():
        subject, subject_marked = strip_markers(subject.strip())
    else:
        subject = None
    return Draft(body=body, subject=subject, marked_products=marked + subject_marked)


class LLMWriter:
    """Drafts copy with a chat model; see the module docstring."""

    name = "llm"
    version = PROMPT_VERSION
    cacheable = True

    def __init__(self, settings: LLMSettings, client: ChatClient | None = None) -> None:
        self.settings = settings
        self.model = settings.model
        self.client = client or ChatClient(settings)

    def messages(self, brief: CopyBrief, feedback: list[str] | None = None) -> list[dict]:
        """The chat messages for ``brief`` (with the reasons a previous draft failed)."""
        user = "Brief:\n" + json.dumps(brief.payload(), ensure_ascii=False, indent=1)
        messages = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": user},
        ]
        if feedback:
            messages.append(
                {
                    "role": "user",
                    "content": "Your previous draft broke these rules: "
                    + "; ".join(feedback)
                    + ". Write a new message that follows every rule.",
                }
            )
        return messages

    def write(self, brief: CopyBrief, feedback: list[str] | None = None) -> Draft:
        """Draft one message.

        Raises
        ------
        LLMError
            The endpoint failed (after retries).
        UnparseableReply
            The reply was not the JSON object asked for.
        """
        return parse_reply(self.client.complete(self.messages(brief, feedback)))
