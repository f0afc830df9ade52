"""Personalized campaign messages: sandboxed Jinja templates, validated before use.

Each campaign's ``message_template`` renders once per treatment customer from data the
warehouse holds about them (segment, cluster, recommended products and why). PII never
enters the warehouse: ``{{first_name}}`` and ``{{email}}`` render to themselves, so the
text keeps the placeholder for the sending system to fill in.

Templates run in Jinja's :class:`~jinja2.sandbox.SandboxedEnvironment` (no attribute
access to Python internals) with :class:`~jinja2.StrictUndefined` (a misspelt variable is
an error, never an empty string), and :func:`validate_template` rejects a template that
names an unknown variable, does not compile, fails on a sample customer, alters a PII
placeholder, or writes an e-mail address (publish refuses e-mail-like values).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import jinja2
from jinja2 import meta
from jinja2.sandbox import SandboxedEnvironment

# Placeholders left for the sending system (the PII columns of the customers entity).
PII_PLACEHOLDERS = ("first_name", "email")
# Everything else a template may use (see :func:`message_context`).
TEMPLATE_VARIABLES = (
    "campaign_name",
    "channel",
    "category",
    "segment",
    "cluster",
    "top_category",
    "top_product_id",
    "top_product_name",
    "top_product_reason",
    "products",
)
ALLOWED_VARIABLES = frozenset(PII_PLACEHOLDERS + TEMPLATE_VARIABLES)
MAX_MESSAGE_LENGTH = 2_000
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")

_SAMPLE_PRODUCTS = [
    {
        "product_id": f"P{i}",
        "name": f"Sample product {i}",
        "reason": "because you bought Sample product 0",
        "category": "Sample category",
        "price": 9.99,
    }
    for i in range(1, 4)
]


class TemplateError(ValueError):
    """A campaign template that cannot be used; the message names the campaign."""


def environment() -> SandboxedEnvironment:
    """The Jinja environment every campaign template renders in."""
    return SandboxedEnvironment(
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False
    )


_ENV = environment()


def placeholder(name: str) -> str:
    """The literal placeholder the sending system fills in, e.g. ``{{first_name}}``."""
    return "{{" + name + "}}"


def message_context(
    *,
    campaign_name: str,
    channel: str,
    category: str | None,
    segment: str | None,
    cluster: str | None,
    top_category: str | None,
    products: list[Mapping[str, Any]],
) -> dict[str, Any]:
    """The variables of one customer's message (no PII: placeholders only).

    ``products`` are the recommended products to feature, best first, each with
    ``product_id, name, reason, category, price``.
    """
    top = products[0] if products else {}
    return {
        **{name: placeholder(name) for name in PII_PLACEHOLDERS},
        "campaign_name": campaign_name,
        "channel": channel,
        "category": category or "",
        "segment": segment or "",
        "cluster": cluster or "",
        "top_category": top_category or "",
        "top_product_id": top.get("product_id", ""),
        "top_product_name": top.get("name", ""),
        "top_product_reason": top.get("reason", ""),
        "products": [dict(p) for p in products],
    }


def _label(campaign_id: str, campaign_name: str | None) -> str:
    return f"campaign {campaign_id}" + (f" ({campaign_name!r})" if campaign_name else "")


def compile_template(
    template: str, campaign_id: str, campaign_name: str | None = None
) -> jinja2.Template:
    """Validate ``template`` (see :func:`validate_template`) and return it compiled."""
    validate_template(template, campaign_id, campaign_name)
    return _ENV.from_string(template)


def validate_template(template: str, campaign_id: str, campaign_name: str | None = None) -> None:
    """Check a campaign's message template before any message is rendered.

    Raises
    ------
    TemplateError
        Naming the campaign: the template is empty or does not compile, uses a variable
        outside :data:`ALLOWED_VARIABLES`, fails to render for a sample customer, changes
        a PII placeholder (e.g. ``{{ first_name | upper }}``), or contains an e-mail
        address.
    """
    label = _label(campaign_id, campaign_name)
    if template is None or not str(template).strip():
        raise TemplateError(
            f"{label} has no message_template: write one (see ml/campaigns/messages.py)"
        )
    try:
        parsed = _ENV.parse(template)
    except jinja2.TemplateSyntaxError as error:
        raise TemplateError(
            f"{label}: message_template does not compile (line {error.lineno}: {error.message})"
        ) from error
    unknown = sorted(meta.find_undeclared_variables(parsed) - ALLOWED_VARIABLES)
    if unknown:
        raise TemplateError(
            f"{label}: message_template uses unknown variable(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(ALLOWED_VARIABLES))}"
        )
    sample = message_context(
        campaign_name=campaign_name or campaign_id,
        channel="email",
        category="Sample category",
        segment="Champions",
        cluster="recent frequent high spenders",
        top_category="Sample category",
        products=_SAMPLE_PRODUCTS,
    )
    try:
        text = _ENV.from_string(template).render(sample)
    except jinja2.TemplateError as error:
        raise TemplateError(f"{label}: message_template fails to render: {error}") from error
    except Exception as error:  # a sandbox violation or a Python error inside the template
        raise TemplateError(
            f"{label}: message_template fails to render: {type(error).__name__}: {error}"
        ) from error
    for name in sorted(set(PII_PLACEHOLDERS) & meta.find_undeclared_variables(parsed)):
        if placeholder(name) not in text:
            raise TemplateError(
                f"{label}: message_template alters the PII placeholder {name!r}; write "
                f"{{{{{name}}}}} as it is so the sending system can fill it in"
            )
    if _EMAIL.search(text):
        raise TemplateError(
            f"{label}: message_template contains an e-mail address; the published tables "
            "must hold none (link to a contact page instead)"
        )


def render_message(
    template: jinja2.Template,
    context: Mapping[str, Any],
    campaign_id: str,
    campaign_name: str | None = None,
) -> str:
    """Render one customer's message; errors name the campaign.

    Raises
    ------
    TemplateError
        The template failed for this customer (e.g. it indexes a product the customer
        does not have), or the text is longer than :data:`MAX_MESSAGE_LENGTH`.
    """
    try:
        text = template.render(context)
    except Exception as error:
        raise TemplateError(
            f"{_label(campaign_id, campaign_name)}: message_template fails to render: {error}"
        ) from error
    text = text.strip()
    if len(text) > MAX_MESSAGE_LENGTH:
        raise TemplateError(
            f"{_label(campaign_id, campaign_name)}: a message is {len(text)} characters long, "
            f"over {MAX_MESSAGE_LENGTH}: shorten the template"
        )
    return text
