"""The review rules downstream, as pure functions: demotion, exclusion, target, copy, audit."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl

from ml.campaigns.copy import BriefProduct, BuiltinWriter, CopyBrief, Guardrails, limits_for
from ml.campaigns.copy.brief import infer_goal
from ml.campaigns.definitions import Campaign, CampaignConfig, campaign_problems
from ml.campaigns.targeting import select_audiences
from ml.ingest.contract import CAMPAIGN_TARGET_TYPES
from ml.serving.reason_audit import reason_contradictions
from ml.serving.review_demotion import demote_products


def test_demotion_moves_flagged_products_to_the_end_of_each_list_in_order() -> None:
    recs = pl.DataFrame(
        {
            "customer_id": ["A"] * 4 + ["B"] * 3,
            "rank": [1, 2, 3, 4, 1, 2, 3],
            "product_id": ["P1", "BAD", "P2", "BAD2", "P3", "P4", "P5"],
            "score": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3],
        },
        schema_overrides={"rank": pl.Int32},
    )
    out = demote_products(recs, ["BAD2", "BAD", "UNSEEN"])
    assert out.schema == recs.schema
    assert out["product_id"].to_list() == ["P1", "P2", "BAD", "BAD2", "P3", "P4", "P5"]
    assert out["rank"].to_list() == [1, 2, 3, 4, 1, 2, 3]
    assert out.filter(pl.col("product_id") == "BAD")["score"].item() == 0.8  # the model's
    assert demote_products(recs, []).equals(recs)


def _campaign(target_type: str, target_value: str, cid: str, priority: int = 0) -> Campaign:
    return Campaign(
        campaign_id=cid,
        name=cid,
        channel="email",
        target_type=target_type,
        target_value=target_value,
        starts_at=datetime(2026, 7, 1),
        ends_at=datetime(2026, 7, 8),
        max_audience=100,
        control_share=0.2,
        priority=priority,
    )


ELIGIBLE = pl.DataFrame(
    {
        "customer_id": ["C1", "C2", "C3", "C4"],
        "frequency": [3, 1, 2, 0],
        "monetary": [10.0, 5.0, 7.0, 0.0],
        "negative_reviews_30d": [0, 2, 1, 0],
        "segment": ["Champions"] * 4,
        "cluster_name": ["x"] * 4,
    }
)


def test_unhappy_reviewers_are_left_out_of_promotions_and_targeted_by_service() -> None:
    promo = _campaign("rule", "frequency >= 1", "PROMO")
    service = _campaign("review_sentiment", "negative", "SERVICE", priority=5)
    nan = np.full(ELIGIBLE.height, np.nan)
    affinity = {"PROMO": nan, "SERVICE": nan}

    def audiences(config: CampaignConfig) -> dict[str, list[str]]:
        chosen, _ = select_audiences([promo, service], ELIGIBLE, affinity, {}, config)
        return {k: sorted(ELIGIBLE["customer_id"].gather(v).to_list()) for k, v in chosen.items()}

    assert audiences(CampaignConfig()) == {"PROMO": ["C1"], "SERVICE": ["C2", "C3"]}
    switched_off = audiences(CampaignConfig(exclude_negative_reviewers=False))
    assert switched_off == {"PROMO": ["C1", "C2", "C3"], "SERVICE": ["C2", "C3"]}
    # Features built before review insight: nobody to exclude, promotions still run.
    legacy = ELIGIBLE.drop("negative_reviews_30d")
    chosen, _ = select_audiences([promo], legacy, {"PROMO": nan}, {}, CampaignConfig())
    assert len(chosen["PROMO"]) == 3


def test_review_sentiment_is_a_contract_target_type_with_a_checked_value() -> None:
    assert "review_sentiment" in CAMPAIGN_TARGET_TYPES
    assert campaign_problems(_campaign("review_sentiment", "negative", "OK")) == []
    (problem,) = campaign_problems(_campaign("review_sentiment", "angry", "BAD"))
    assert "target_value 'angry'" in problem and "negative" in problem
    assert not _campaign("review_sentiment", "negative", "S").is_promotional
    assert _campaign("segment", "Champions", "P").is_promotional


def test_service_outreach_apologises_and_sells_nothing() -> None:
    goal = infer_goal(None, name="Summer sale", target_type="review_sentiment", target_value="x")
    assert goal == "service"
    product = BriefProduct("Walnut Dark Roast Green Tea", "Tea", 4.5, "popular right now")
    guardrails, writer = Guardrails(["Walnut Dark Roast Green Tea"]), BuiltinWriter()
    for channel in ("email", "sms", "push"):
        for offer in (None, "10% off your next order"):
            brief = CopyBrief(
                campaign_name="We are listening",
                goal=goal,
                channel=channel,
                limits=limits_for(channel),
                products=(product,),
                offer=offer,
                discount_percent=10 if offer else None,
                variant=3,
            )
            draft = writer.write(brief)
            assert guardrails.check(draft, brief) == [], (channel, draft)
            assert "Walnut" not in draft.body
            text = f"{draft.subject or ''} {draft.body}".lower()
            assert "sorry" in text or "review" in text
            assert offer is None or "apology" in draft.body or "10% off" in draft.body


def test_the_reason_audit_reads_the_claim_before_the_praise() -> None:
    recs = pl.DataFrame(
        {
            "customer_id": ["C1", "C1"],
            "product_id": ["P2", "P3"],
            "reason_code": ["bought_similar", "popular_in_country"],
            "reason_product_id": ["P1", None],
            "reason": [
                'because you bought Mug on 2026-06-01; reviewers say "soft"',
                'popular in France; reviewers say "true to size"',
            ],
        }
    )
    history = pl.DataFrame(
        {
            "customer_id": ["C1"],
            "product_id": ["P1"],
            "bought": [True],
            "viewed": [False],
            "last_bought_day": ["2026-06-01"],
        }
    )
    customers = pl.DataFrame(
        {"customer_id": ["C1"], "segment": ["Champions"], "country": ["France"]}
    )
    assert reason_contradictions(recs, history, customers).height == 0
    wrong_day = recs.with_columns(pl.col("reason").str.replace("2026-06-01", "2026-05-01"))
    assert reason_contradictions(wrong_day, history, customers).height == 1
