"""Lexicon features from VADER's bundled lexicon, computed for a whole batch with polars.

``vaderSentiment`` ships a 7,500-word valence lexicon (-4..+4) with rules for negation
("not good"), intensifiers and contrast ("..., but"). Its reference scorer runs those rules
in Python word by word (~6,000 reviews/s per core); the model only needs a few numbers
per review, so this applies VADER's lexicon and its two strongest rules, negation within
three words and the "but" shift, to all tokens of a batch at once.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from vaderSentiment import vaderSentiment as vader

# VADER's constants: a negated word's valence is scaled by -0.74; words after "but" weigh
# 1.5, words before it 0.5; compound = s / sqrt(s^2 + 15).
NEGATION_SCALAR = vader.N_SCALAR
NEGATION_WINDOW = 3
AFTER_BUT, BEFORE_BUT = 1.5, 0.5
ALPHA = 15.0
TOKEN_PATTERN = r"[a-z]+(?:'[a-z]+)?"
FEATURE_NAMES = ("lexicon_compound", "lexicon_positive", "lexicon_negative", "lexicon_negated")


def _lexicon_table() -> pl.DataFrame:
    words = [w for w in vader.SentimentIntensityAnalyzer().lexicon.items() if w[0].isalpha()]
    return pl.DataFrame(words, schema={"token": pl.String, "valence": pl.Float64}, orient="row")


_LEXICON: pl.DataFrame | None = None
_NEGATIONS = sorted(
    {w.replace("'", "") for w in vader.NEGATE} | set(vader.NEGATE) | {"never", "no"}
)


def lexicon(refresh: bool = False) -> pl.DataFrame:
    """The alphabetic entries of VADER's lexicon: ``token, valence`` (loaded once)."""
    global _LEXICON
    if _LEXICON is None or refresh:
        _LEXICON = _lexicon_table()
    return _LEXICON


def lexicon_features(texts: list[str]) -> np.ndarray:
    """VADER-lexicon features of each text.

    Parameters
    ----------
    texts : list of str

    Returns
    -------
    numpy.ndarray
        ``len(texts) x 4`` float32: ``lexicon_compound`` (VADER's normalised sum, -1..1),
        ``lexicon_positive`` / ``lexicon_negative`` (summed positive / negative valence,
        after negation and the "but" shift, normalised the same way to 0..1) and
        ``lexicon_negated`` (share of lexicon words under a negation).
    """
    if not texts:
        return np.zeros((0, len(FEATURE_NAMES)), dtype=np.float32)
    tokens = (
        pl.DataFrame({"text": texts})
        .with_row_index("doc")
        .select(
            "doc", pl.col("text").str.to_lowercase().str.extract_all(TOKEN_PATTERN).alias("token")
        )
        .explode("token")
        .drop_nulls("token")
        .with_columns(pl.col("token").str.replace_all("'", "").is_in(_NEGATIONS).alias("_neg"))
    )
    flags = [
        pl.col("_neg").shift(k).over("doc").fill_null(False) for k in range(1, NEGATION_WINDOW + 1)
    ]
    is_but = pl.col("token") == "but"
    tokens = tokens.with_columns(
        pl.any_horizontal(flags).alias("negated"),
        # Position relative to the doc's first "but": before (-1), none (0), after (1).
        pl.when(is_but.any().over("doc"))
        .then(pl.when(is_but.cum_sum().over("doc") > 0).then(AFTER_BUT).otherwise(BEFORE_BUT))
        .otherwise(1.0)
        .alias("but_weight"),
    )
    scored = tokens.join(lexicon(), on="token", how="inner").with_columns(
        (
            pl.col("valence")
            * pl.when(pl.col("negated")).then(NEGATION_SCALAR).otherwise(1.0)
            * pl.col("but_weight")
        ).alias("signed")
    )
    per_doc = scored.group_by("doc").agg(
        pl.col("signed").sum().alias("total"),
        pl.col("signed").filter(pl.col("signed") > 0).sum().alias("positive"),
        (-pl.col("signed").filter(pl.col("signed") < 0)).sum().alias("negative"),
        pl.col("negated").mean().alias("negated_share"),
    )
    frame = (
        pl.DataFrame({"doc": np.arange(len(texts), dtype=np.uint32)})
        .join(per_doc, on="doc", how="left")
        .fill_null(0.0)
        .sort("doc")
    )
    # Every feature in [-1, 1], like the TF-IDF values beside it (saga needs similar scales).
    columns = [_squash(frame[c].to_numpy()) for c in ("total", "positive", "negative")]
    columns.append(frame["negated_share"].to_numpy())
    return np.column_stack(columns).astype(np.float32)


def _squash(values: np.ndarray) -> np.ndarray:
    """VADER's normalisation ``x / sqrt(x^2 + 15)``: -1..1, near-linear for small sums."""
    return values / np.sqrt(values * values + ALPHA)
