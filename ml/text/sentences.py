"""Review text -> sentences: split, normalised for matching, scrubbed for quoting.

Aspect extraction matches phrases in a normalised copy of each sentence (lower case,
typographic apostrophes straightened, whitespace collapsed, spelling variants merged:
``color``/``colors``/``colour`` -> ``colour``) and quotes the original sentence as the
example, with contact details (e-mail addresses, URLs, @handles, phone numbers) masked:
example sentences are published, review text is not.
"""

from __future__ import annotations

import polars as pl

# The sentence a marketer reads: up to a terminator (kept) or a line break.
SENTENCE_PATTERN = r"[^.!?\n]+[.!?]*"
# Spelling variants merged before matching (British spelling, as marketers here write it).
VARIANTS = {
    r"\bcolou?rs?\b": "colour",
    r"\bcolou?red\b": "coloured",
    r"\bgr[ae]y\b": "grey",
    r"\bfavou?rite\b": "favourite",
    r"\bflavou?rs?\b": "flavour",
    r"\bodou?rs?\b": "odour",
    r"\btrue-to-size\b": "true to size",
}
# Masked in quoted examples.
CONTACT_PATTERNS = {
    r"[\w.+-]+@[\w-]+\.[\w.-]+": "[email]",
    r"(?:https?://|www\.)\S+": "[link]",
    r"(?:^|\s)@\w+": " [handle]",
    r"\+?\d[\d\s().-]{7,}\d": "[number]",
}
MIN_SENTENCE_CHARS = 3


def review_sentences(reviews: pl.DataFrame) -> pl.DataFrame:
    """One row per sentence of each review's title and body.

    Parameters
    ----------
    reviews : polars.DataFrame
        ``review_id, product_id, rating, title, body``.

    Returns
    -------
    polars.DataFrame
        ``review_id, product_id, rating, sentence_no, from_title, sentence`` (original
        text, stripped) and ``norm`` (normalised for matching).
    """
    parts = []
    for column, from_title in (("title", True), ("body", False)):
        part = reviews.select(
            "review_id",
            "product_id",
            "rating",
            pl.col(column)
            .cast(pl.String)
            .fill_null("")
            .str.extract_all(SENTENCE_PATTERN)
            .alias("sentence"),
            pl.lit(from_title).alias("from_title"),
        )
        parts.append(part.explode("sentence"))
    sentences = pl.concat(parts).with_columns(pl.col("sentence").str.strip_chars())
    sentences = sentences.filter(pl.col("sentence").str.len_chars() >= MIN_SENTENCE_CHARS)
    sentences = sentences.with_columns(
        pl.int_range(pl.len()).over("review_id").alias("sentence_no"),
        normalise(pl.col("sentence")).alias("norm"),
    )
    return sentences.select(
        "review_id", "product_id", "rating", "sentence_no", "from_title", "sentence", "norm"
    )


def normalise(text: pl.Expr) -> pl.Expr:
    """Lower case, straight apostrophes, single spaces, spelling variants merged."""
    out = text.str.to_lowercase().str.replace_all("[\u2019\u2018`]", "'")
    out = out.str.replace_all(r"[^a-z0-9' -]+", " ").str.replace_all(r"\s+", " ").str.strip_chars()
    for pattern, replacement in VARIANTS.items():
        out = out.str.replace_all(pattern, replacement)
    return out


def scrub(text: pl.Expr) -> pl.Expr:
    """Mask contact details in a quoted sentence (see :data:`CONTACT_PATTERNS`)."""
    for pattern, mask in CONTACT_PATTERNS.items():
        text = text.str.replace_all(pattern, mask)
    return text.str.strip_chars()
