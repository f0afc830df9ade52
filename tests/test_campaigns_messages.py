"""Campaign templates: sandboxed, strict, validated up front, PII left as placeholders."""

from __future__ import annotations

import pytest

from ml.campaigns.messages import (
    TemplateError,
    compile_template,
    message_context,
    render_message,
    validate_template,
)

PRODUCTS = [
    {
        "product_id": "P1",
        "name": "Oak Mug",
        "reason": "because you bought Oak Plate",
        "category": "Kitchen",
        "price": 12.5,
    },
    {
        "product_id": "P2",
        "name": "Slate Bowl",
        "reason": "popular right now",
        "category": "Kitchen",
        "price": 9.0,
    },
]


def render(template: str, **overrides) -> str:
    compiled = compile_template(template, "CMP042", "Spring picks")
    context = message_context(
        campaign_name="Spring picks",
        channel="email",
        category="Kitchen",
        segment="Champions",
        cluster="recent frequent high spenders",
        top_category="Kitchen",
        products=overrides.pop("products", PRODUCTS),
    )
    return render_message(compiled, context, "CMP042", "Spring picks")


def test_message_renders_products_reasons_and_keeps_pii_placeholders() -> None:
    text = render(
        "Hi {{first_name}}, as one of our {{ segment }} customers: {{top_product_name}} "
        "({{ top_product_reason }}){% for p in products[1:] %}, {{ p.name }}{% endfor %}. "
        "Reply to {{ email }}."
    )
    assert text == (
        "Hi {{first_name}}, as one of our Champions customers: Oak Mug "
        "(because you bought Oak Plate), Slate Bowl. Reply to {{email}}."
    )


@pytest.mark.parametrize("unknown", ["firstname", "customer_email", "last_name"])
def test_unknown_variable_is_an_error_naming_the_campaign(unknown: str) -> None:
    with pytest.raises(TemplateError) as error:
        validate_template(f"Hi {{{{ {unknown} }}}}!", "CMP042", "Spring picks")
    message = str(error.value)
    assert "CMP042" in message and "Spring picks" in message and unknown in message


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("Hi {{ first_name ", "does not compile"),
        ("", "no message_template"),
        ("Hi {{ first_name | upper }}", "alters the PII placeholder"),
        ("Write to help@shop.example", "e-mail address"),
        ("{{ products[5].name }}", "fails to render"),
        ("{{ products.__class__.__mro__ }}", "fails to render"),
        ("{{ top_product_name.nope }}", "fails to render"),
    ],
)
def test_bad_templates_are_refused_before_use(template: str, reason: str) -> None:
    with pytest.raises(TemplateError, match=reason) as error:
        validate_template(template, "CMP007", "Win back")
    assert "CMP007" in str(error.value)


def test_a_customer_without_enough_products_fails_naming_the_campaign() -> None:
    with pytest.raises(TemplateError, match="CMP042"):
        render("{{ products[1].name }}", products=PRODUCTS[:1])
