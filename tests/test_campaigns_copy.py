"""The built-in copy writer and the guardrails, fully; the runner's regenerate/fallback
path with real writers; the MLflow record of a copy run."""

from __future__ import annotations

import json
import random
import re

import pytest

from ml.campaigns.copy import (
    FIRST_NAME,
    GOALS,
    BriefProduct,
    BuiltinWriter,
    CopyBrief,
    CopyRunner,
    Draft,
    Guardrails,
    TemplateWriter,
    Violation,
    brief_products,
    infer_goal,
    limits_for,
)
from ml.campaigns.copy.guardrails import RULES, strip_markers
from ml.campaigns.messages import message_context

CATALOGUE = [
    "Walnut Dark Roast Green Tea",
    "Olive Wooden Board Game",
    "Terracotta Pocket Sketchbook",
    "Sage Metal Sideboard",
    "Harbour Smoked Olive Oil",
    "Coastal Wireless Mouse",
    "Candle",  # one word: only checked when marked
]
TEA = BriefProduct(
    "Walnut Dark Roast Green Tea",
    "Coffee & Tea",
    10.99,
    "because you bought Terracotta Pocket Sketchbook",
    ("flavour", "aroma"),
)
GAME = BriefProduct(
    "Olive Wooden Board Game", "Toys & Games", 20.99, "popular with Champions customers"
)
REASONS = [
    "because you bought Terracotta Pocket Sketchbook",
    "because you viewed Sage Metal Sideboard",
    "because you bought {self} before",
    "popular with At Risk customers",
    "popular in United Kingdom",
    "popular right now",
    "recommended for you",
    None,
]


def brief(channel="email", products=(TEA, GAME), **overrides) -> CopyBrief:
    values = {
        "campaign_name": "Win back",
        "goal": "win_back",
        "channel": channel,
        "limits": limits_for(channel),
        "products": tuple(products),
        "segment": "At Risk",
        "cluster": "lapsed occasional mid spenders",
        "variant": 7,
    }
    values.update(overrides)
    return CopyBrief(**values)


def random_briefs(n: int, seed: int = 0) -> list[CopyBrief]:
    """Seeded briefs over every goal, channel, reason kind, offer and name length."""
    rng = random.Random(seed)
    names = [*CATALOGUE[:6], "A" * 70 + " Extra Long Name", "WHITE HANGING HEART T-LIGHT HOLDER"]
    out = []
    for _ in range(n):
        chosen = rng.sample(names, k=rng.randint(0, 3))
        products = tuple(
            BriefProduct(
                name,
                "Home",
                round(rng.uniform(1, 300), 2) if rng.random() < 0.9 else None,
                (rng.choice(REASONS) or "recommended for you").replace("{self}", name),
                tuple(rng.sample(["comfort", "fit", "value", "quality"], k=rng.randint(0, 2))),
            )
            for name in chosen
        )
        discount = rng.choice([None, 10, 15, 12.5])
        out.append(
            brief(
                rng.choice(["email", "push", "sms", "whatsapp"]),
                products,
                goal=rng.choice(GOALS),
                offer=rng.choice([None, f"{discount:g}% off your next order"])
                if discount
                else None,
                discount_percent=discount,
                variant=rng.randrange(2**31),
            )
        )
    return out


# --------------------------------------------------------------------------- built-in writer


def test_builtin_copy_always_passes_the_guardrails() -> None:
    guardrails, writer = Guardrails(CATALOGUE), BuiltinWriter()
    for b in random_briefs(600):
        for draft in (writer.write(b), writer.write(b, feedback=["retry"]), writer.fallback(b)):
            assert guardrails.check(draft, b) == [], (b, draft)
            assert FIRST_NAME in draft.body
            assert (draft.subject is not None) == (b.channel == "email")


def test_builtin_copy_is_deterministic_per_variant_and_varied_across_customers() -> None:
    writer = BuiltinWriter()
    assert writer.write(brief(variant=11)) == writer.write(brief(variant=11))
    bodies = {writer.write(brief(variant=v)).body for v in range(40)}
    subjects = {writer.write(brief(variant=v)).subject for v in range(40)}
    assert len(bodies) >= 15 and len(subjects) >= 3
    pushes = {writer.write(brief("push", variant=v)).body for v in range(40)}
    assert len(pushes) >= 5


def test_builtin_copy_uses_the_brief_reasons_aspects_offer_and_channel_length() -> None:
    writer = BuiltinWriter()
    draft = writer.write(brief(offer="15% off your next order", discount_percent=15, variant=3))
    assert "Walnut Dark Roast Green Tea" in draft.body
    assert "Terracotta Pocket Sketchbook" in draft.body  # the reason
    assert "flavour and aroma" in draft.body  # the praised aspects
    assert "15% off your next order" in draft.body or "15% off" in draft.subject
    push = writer.write(brief("push", offer="15% off your next order", discount_percent=15))
    sms = writer.write(brief("sms", offer="15% off your next order", discount_percent=15))
    assert len(push.body) <= 120 and len(sms.body) <= 160
    assert push.subject is None and sms.subject is None


def test_builtin_copy_reads_as_sentences() -> None:
    writer = BuiltinWriter()
    for b in random_briefs(300, seed=1):
        draft = writer.write(b)
        for text in filter(None, (draft.subject, draft.body)):
            assert "  " not in text and " ," not in text and " ." not in text, text
            assert ".." not in text and ",," not in text, text
            assert not re.search(r"\b(\w+(?: \w+)?) \1\b", text), text  # "now right now"
            flat = text.replace(FIRST_NAME, "Alex").replace("\n\n", " ")
            for sentence in re.split(r"(?<=[.!?])\s+", flat):
                assert sentence[:1].isupper() or sentence[:1].isdigit(), (sentence, text)
        assert draft.body.rstrip()[-1] in ".!?", draft.body


def test_a_name_too_long_for_push_gives_a_message_without_a_product() -> None:
    long_name = BriefProduct("X" * 130, None, 5.0, None)
    draft = BuiltinWriter().write(brief("push", products=(long_name,)))
    assert "X" * 130 not in draft.body and len(draft.body) <= 120 and FIRST_NAME in draft.body


def test_goal_inference_and_brief_products() -> None:
    assert (
        infer_goal(None, name="Restock your tea", target_type="category", target_value="Tea")
        == "replenish"
    )
    assert (
        infer_goal(None, name="Spring", target_type="segment", target_value="At Risk|Lost")
        == "win_back"
    )
    assert (
        infer_goal(None, name="Spring", target_type="segment", target_value="Champions")
        == "loyalty"
    )
    assert (
        infer_goal(None, name="Spring", target_type="category", target_value="Tea") == "cross_sell"
    )
    assert infer_goal("welcome", name="x", target_type="rule", target_value="a>1") == "welcome"
    products = brief_products(
        [
            {"product_id": "P1", "name": "WHITE HANGING HEART T-LIGHT HOLDER", "price": 2.555,
             "category": None, "reason": "popular right now"},
            {"product_id": "P2", "name": "  Oak   mug ", "price": None, "category": "Home",
             "reason": None},
        ],
        {"P1": ["value", " ", "looks"]},
    )  # fmt: skip
    assert products[0].name == "White Hanging Heart T-light Holder"
    assert products[0].price == 2.56 or products[0].price == 2.55
    assert products[0].praised_aspects == ("value", "looks")
    assert products[1].name == "Oak mug"


def test_the_brief_payload_holds_no_variant_and_keys_change_with_the_writer() -> None:
    b = brief()
    payload = json.dumps(b.payload())
    assert "variant" not in payload and "Walnut Dark Roast Green Tea" in payload
    assert b.key("llm", "1", "m") == brief(variant=99).key("llm", "1", "m")  # variant unused
    assert b.key("builtin", "1") != brief(variant=99).key("builtin", "1")
    assert b.key("llm", "1", "m") != b.key("llm", "2", "m") != b.key("llm", "1", "other")


# --------------------------------------------------------------------------- guardrails


def rules(draft: Draft, b: CopyBrief | None = None) -> set[str]:
    return {v.rule for v in Guardrails(CATALOGUE).check(draft, b or brief())}


GOOD = f"Hi {FIRST_NAME}, we picked Walnut Dark Roast Green Tea for you."


@pytest.mark.parametrize(
    ("body", "subject", "expected"),
    [
        (GOOD, "Hello", set()),
        ("", "Hello", {"empty"}),
        (GOOD, None, {"empty"}),
        (GOOD + " x" * 400, "Hello", {"length"}),
        (GOOD, "S" * 71, {"length"}),
        (GOOD + " Try Sage Metal Sideboard too.", "Hello", {"not_recommended"}),
        (GOOD + " You bought Terracotta Pocket Sketchbook.", "Hello", set()),  # the reason's
        (GOOD + " Try sage METAL sideboard too.", "Hello", {"not_recommended"}),
        (GOOD + " A Candle for you.", "Hello", set()),  # one-word names: marked only
        (GOOD + " It is £10.99.", "Hello", set()),
        (GOOD + " It is £9.99.", "Hello", {"price"}),
        (GOOD + " It is 12.00 GBP.", "Hello", {"price"}),
        (GOOD + " Enjoy 20% off.", "Hello", {"discount"}),
        (GOOD + " Half price today.", "Hello", {"discount"}),
        (GOOD + " Free delivery on us.", "Hello", {"offer"}),
        (GOOD.replace(FIRST_NAME, "{{ first_name }}"), "Hello", {"placeholder"}),
        (GOOD + " Dear [Name].", "Hello", {"placeholder"}),
        (GOOD + " Your {product} awaits.", "Hello", {"placeholder"}),
        (GOOD + " Hello <name>.", "Hello", {"placeholder"}),
        (GOOD + " {{last_name}}", "Hello", {"placeholder"}),
        (GOOD + " Act now!", "Hello", {"banned_phrase"}),
        (GOOD, "Guaranteed savings", {"banned_phrase"}),
        (GOOD + " Write to help@shop.example.", "Hello", {"contact_detail"}),
        (GOOD + " See https://shop.example/x", "Hello", {"contact_detail"}),
        (GOOD + " Call 0800 123 4567.", "Hello", {"contact_detail"}),
        (GOOD + " Call +44 20 7946 0958.", "Hello", {"contact_detail"}),
        # A dated reason ("because you bought X on 2026-09-14") is no phone number.
        (GOOD + " You bought Terracotta Pocket Sketchbook on 2026-09-14.", "Hello", set()),
    ],
)
def test_each_guardrail(body: str, subject: str | None, expected: set[str]) -> None:
    assert rules(Draft(body=body, subject=subject)) == expected


def test_prices_after_the_discount_and_amounts_of_the_offer_are_allowed() -> None:
    b = brief(offer="£5 off orders over £40", discount_percent=10)
    assert rules(Draft(GOOD + " Now £9.89, and £5 off orders over £40. 10% off.", "Hi"), b) == set()
    assert rules(Draft(GOOD + " Now £9.80.", "Hi"), b) == {"price"}
    assert rules(Draft(GOOD + " Half price!", "Hi"), brief(discount_percent=50)) == set()


def test_marked_products_must_be_in_the_brief() -> None:
    body, marked = strip_markers(
        f"Hi {FIRST_NAME}, try [[Walnut Dark Roast Green Tea]] and [[Candle]]."
    )
    assert marked == ("Walnut Dark Roast Green Tea", "Candle") and "[[" not in body
    assert rules(Draft(body, "Hi", marked)) == {"not_recommended"}  # in the catalogue
    assert rules(Draft(body, "Hi", ("walnut dark roast green tea",))) == set()
    invented = Draft(f"Hi {FIRST_NAME}, try Moon Lamp.", "Hi", ("Moon Lamp",))
    assert Guardrails(CATALOGUE).check(invented, brief()) == [
        Violation("unknown_product", "Moon Lamp")
    ]


def test_sms_must_stay_in_the_gsm7_alphabet_and_push_within_120() -> None:
    sms = brief("sms")
    assert rules(Draft(GOOD), sms) == set()
    assert rules(Draft(GOOD + " It’s here — enjoy 🎉"), sms) == {"sms_charset"}
    assert rules(Draft(GOOD + " £10.99, enjoy!"), sms) == set()
    assert rules(Draft(GOOD + " x" * 40), brief("push")) == {"length"}


def test_every_rule_is_documented_and_reachable() -> None:
    assert set(RULES) == {
        "empty", "length", "unknown_product", "not_recommended", "price", "discount",
        "offer", "placeholder", "banned_phrase", "contact_detail", "sms_charset",
    }  # fmt: skip


# --------------------------------------------------------------------------- runner


def template_writer(template: str) -> TemplateWriter:
    return TemplateWriter(template, "CMP042", "Win back")


def template_brief(discount: float | None) -> CopyBrief:
    products = [{"product_id": "P1", "name": TEA.name, "reason": TEA.reason, "category": "Tea",
                 "price": 10.99}]  # fmt: skip
    context = message_context(
        campaign_name="Win back", channel="email", category=None, segment="At Risk",
        cluster=None, top_category=None, products=products,
    )  # fmt: skip
    return brief(products=(TEA,), discount_percent=discount, extra={"template_context": context})


def test_a_template_that_breaks_a_rule_is_retried_once_then_falls_back_to_builtin() -> None:
    runner = CopyRunner(
        template_writer("Hi {{first_name}}, 20% off {{top_product_name}}!"),
        Guardrails(CATALOGUE),
        BuiltinWriter(),
    )
    outcomes = runner.write_all([template_brief(15), template_brief(20)])
    assert [o.produced_by for o in outcomes] == ["builtin", "template"]
    assert outcomes[0].fallback_reason == "discount" and not outcomes[0].first_attempt_passed
    assert outcomes[1].draft.body == f"Hi {FIRST_NAME}, 20% off {TEA.name}!"
    report = runner.report
    assert (report.messages, report.first_attempt_passed, report.fallbacks) == (2, 1, 1)
    assert report.failure_reasons["discount"] == 2  # the first draft and its regeneration
    assert report.fallback_reasons == {"discount": 1}
    assert report.guardrail_pass_rate == 0.5 and report.final_failures == 0
    assert len(report.samples) == 2


def test_a_writer_that_is_not_configured_falls_back_and_says_why() -> None:
    runner = CopyRunner(None, Guardrails(CATALOGUE), BuiltinWriter(), writer_name="llm")
    outcome = runner.write(brief())
    assert outcome.produced_by == "builtin" and outcome.fallback_reason == "not_configured"
    assert runner.report.writer == "llm" and runner.report.fallbacks == 1


def test_copy_run_is_logged_to_mlflow(affinity_home) -> None:
    from mlflow.tracking import MlflowClient

    from ml.campaigns.copy.tracking import log_copy_run
    from ml.config import paths

    runner = CopyRunner(BuiltinWriter(), Guardrails(CATALOGUE), BuiltinWriter(), samples=2)
    runner.write_all(random_briefs(5, seed=3))
    from datetime import date

    run_id = log_copy_run(
        runner.report, experiment="copy-test", campaign_id="CMP001", campaign_name="Win back",
        channel="email", logical_date=date(2026, 10, 1), arms=("builtin", "llm"),
    )  # fmt: skip
    client = MlflowClient(paths().mlflow_tracking_uri)
    run = client.get_run(run_id)
    assert run.data.params["writer"] == "builtin" and run.data.params["arms"] == "builtin|llm"
    assert run.data.metrics["messages"] == 5 and run.data.metrics["guardrail_pass_rate"] == 1.0
    assert run.data.tags["campaign_id"] == "CMP001"
    with open(client.download_artifacts(run_id, "samples.json")) as handle:
        samples = json.load(handle)
    assert len(samples) == 2 and all(FIRST_NAME in s["body"] for s in samples)
