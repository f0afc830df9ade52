"""Configuration of one training run: data weighting, models, search budget, gate.

Every field has a default, and the defaults are the values tuned on Online Retail II
(see ``bench/notes/train_online_retail.md``). A config is plain frozen dataclasses so it
can be logged as MLflow params, stored with the model (the model's *recipe*) and read back.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal

QuantityTransform = Literal["log1p", "sqrt", "one", "linear"]
StrengthTransform = Literal["counts", "log", "binary"]
ConfidenceScheme = Literal["linear", "log", "bm25", "tfidf"]
Family = Literal["als", "spark_als", "bpr", "itemknn", "blend", "popularity"]
# Families that learn from each customer's own history (the blend only re-ranks popularity).
# spark_als: ALS fit by Spark MLlib on Spark homes (ml/spark/als.py).
PERSONALIZED_FAMILIES = ("als", "spark_als", "bpr", "itemknn")


@dataclass(frozen=True)
class InteractionWeighting:
    """How ``interaction_events`` become one strength per customer and product.

    ``strength = sum(kind_weight * f(quantity) * 0.5 ** (age_days / half_life_days))``
    over the customer's events on the product before the cut-off, as in the dbt model
    ``marts.interactions``. The defaults of the first five fields equal the dbt vars, so
    with them the strength equals ``marts.interactions.strength`` at the same cut-off.

    Parameters
    ----------
    purchase_weight, add_to_cart_weight, view_weight : float
        Weight of one event of each kind.
    half_life_days : float or None
        Recency half-life; ``None`` switches the decay off.
    purchase_quantity : {"log1p", "sqrt", "one", "linear"}
        ``f(quantity)`` for purchases (other kinds always count 1).
    repeat_exponent : float
        Exponent applied to the summed strength of a pair (1 keeps the sum; below 1
        damps customers who re-order the same product many times).
    strength_transform : {"counts", "log", "binary"}
        Last step on a pair's strength: ``counts`` keeps it, ``log`` takes ``log1p``,
        ``binary`` makes every pair 1 (who interacted with what, nothing more: what
        review-like data with one event per pair needs).
    """

    purchase_weight: float = 1.0
    add_to_cart_weight: float = 0.3
    view_weight: float = 0.05
    half_life_days: float | None = 90.0
    purchase_quantity: QuantityTransform = "log1p"
    repeat_exponent: float = 1.0
    strength_transform: StrengthTransform = "counts"

    def kind_weights(self) -> dict[str, float]:
        """Return the weight of each event kind."""
        return {
            "purchase": self.purchase_weight,
            "add_to_cart": self.add_to_cart_weight,
            "view": self.view_weight,
        }


# The dbt vars (purchase 1.0, add_to_cart 0.3, view 0.05, half-life 90 days, log1p quantity):
# aggregating with these reproduces marts.interactions.strength.
DBT_WEIGHTING = InteractionWeighting()
# Tuned on the Online Retail II validation window: recency matters more than in the dbt
# defaults and quantities (wholesale pack sizes) carry no preference signal.
TUNED_WEIGHTING = InteractionWeighting(half_life_days=21.0, purchase_quantity="one")


@dataclass(frozen=True)
class ConfidenceScaling:
    """How strengths become the confidences a matrix-factorization model is fit on.

    Parameters
    ----------
    scheme : {"linear", "log", "bm25", "tfidf"}
        ``linear``: ``alpha * s``; ``log``: ``alpha * log1p(s / epsilon)`` (Hu et al.);
        ``bm25`` / ``tfidf``: implicit's item-frequency weightings (popular products count
        less), then ``alpha *``.
    alpha : float
        Scale of positive confidences (unobserved pairs have confidence 1 in ALS).
    epsilon : float
        Scale inside the ``log`` scheme.
    bm25_k1, bm25_b : float
        BM25 saturation and length normalisation.
    normalize : bool
        Divide the strengths by their mean before the scheme, so ``alpha`` means the same
        whatever the weighting: with a short half-life on years of data most strengths
        are tiny (below 1e-3), and ``alpha * s`` then tells ALS almost nothing.
    """

    scheme: ConfidenceScheme = "linear"
    alpha: float = 2.0
    epsilon: float = 1.0
    bm25_k1: float = 100.0
    bm25_b: float = 0.8
    normalize: bool = False


@dataclass(frozen=True)
class ALSParams:
    """Hyperparameters of ``implicit`` ALS (confidence scaling lives in the recipe)."""

    factors: int = 128
    regularization: float = 10.0
    iterations: int = 15


@dataclass(frozen=True)
class BPRParams:
    """Hyperparameters of ``implicit`` BPR."""

    factors: int = 128
    learning_rate: float = 0.005
    regularization: float = 0.01
    iterations: int = 100


@dataclass(frozen=True)
class ItemKNNParams:
    """Hyperparameters of ``implicit``'s item-item nearest-neighbour models.

    Parameters
    ----------
    weighting : {"bm25", "cosine", "tfidf"}
        ``BM25Recommender``, ``CosineRecommender`` or ``TFIDFRecommender``.
    neighbours : int
        Neighbours kept per product (``K``).
    bm25_k1, bm25_b : float
        BM25 saturation and length normalisation.
    """

    weighting: Literal["bm25", "cosine", "tfidf"] = "bm25"
    neighbours: int = 100
    bm25_k1: float = 1.2
    bm25_b: float = 0.75


@dataclass(frozen=True)
class BlendParams:
    """Popularity re-ranked by the customer's own categories and history.

    ``score = popularity * (1 + category_weight * category_share + history_weight * seen)``
    where ``popularity`` is the products' summed (recency-weighted) strength,
    ``category_share`` the share of the customer's history in the product's category and
    ``seen`` 1 for products in the customer's history (views included). Both weights 0
    is plain (recency-weighted) popularity.
    """

    category_weight: float = 1.0
    history_weight: float = 1.0


@dataclass(frozen=True)
class Recipe:
    """Everything that turns events into a fitted model: weighting, scaling, hyperparameters.

    Stored with every registered model, so the champion can be re-fit on a new split.
    ``family`` says which model it builds (the other families' parameters are carried
    along unused, so a recipe can switch family without losing them).
    """

    family: Family = "als"
    weighting: InteractionWeighting = field(default_factory=lambda: TUNED_WEIGHTING)
    confidence: ConfidenceScaling = field(default_factory=ConfidenceScaling)
    als: ALSParams = field(default_factory=ALSParams)
    bpr: BPRParams = field(default_factory=BPRParams)
    itemknn: ItemKNNParams = field(default_factory=ItemKNNParams)
    blend: BlendParams = field(default_factory=BlendParams)

    def to_dict(self) -> dict[str, Any]:
        """Return the recipe as nested plain data (JSON-serialisable)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        """Rebuild a recipe from :meth:`to_dict` output; unknown keys are ignored."""

        def build(klass, values):
            names = {f.name for f in dataclasses.fields(klass)}
            return klass(**{k: v for k, v in (values or {}).items() if k in names})

        return cls(
            family=data.get("family", "als"),
            weighting=build(InteractionWeighting, data.get("weighting")),
            confidence=build(ConfidenceScaling, data.get("confidence")),
            als=build(ALSParams, data.get("als")),
            bpr=build(BPRParams, data.get("bpr")),
            itemknn=build(ItemKNNParams, data.get("itemknn")),
            blend=build(BlendParams, data.get("blend")),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Recipe:
        """Rebuild a recipe from :meth:`to_json` output."""
        return cls.from_dict(json.loads(text))


@dataclass(frozen=True)
class SearchSpace:
    """The bounded recipe search: candidate values per knob, explored around the start.

    The search is coordinate-wise (one knob at a time, keeping the best value; see
    :mod:`ml.train.tuning`), so its cost is about the number of values listed, capped by
    :attr:`SearchConfig.budget` and :attr:`SearchConfig.max_seconds`. Empty tuples switch
    a knob off.

    Parameters
    ----------
    half_life_days : tuple of float or None
        Fixed half-lives to try (``None``: no decay).
    half_life_span_fractions : tuple of float
        Half-lives tied to the data: these fractions of the history's span (a shop with
        ten years of reviews and one with ninety days of orders need different ones).
    strength_transform, purchase_quantity, repeat_exponent : tuple
        Weighting knobs (see :class:`InteractionWeighting`).
    normalize, scheme, alpha : tuple
        Confidence scaling of ALS.
    regularization, factors : tuple
        ALS hyperparameters.
    iterations : tuple of int
        ALS early stopping: the fit is continued through these iteration counts and
        validated at each; the best count is kept (empty: the recipe's count).
    families : tuple of str
        Other families compared after ALS with the chosen weighting: ``bpr``,
        ``itemknn`` (implicit's item-item models), ``blend`` (popularity re-ranked by the
        customer's categories and history).
    bpr_learning_rate, bpr_iterations : tuple
        BPR knobs (``bpr_iterations`` are early-stopping checkpoints like ALS's).
    itemknn_weighting : tuple of str
        Item-item models tried (``bm25``, ``cosine``, ``tfidf``).
    blend_category_weight, blend_history_weight : tuple of float
        Blend weights tried.
    """

    half_life_days: tuple[float | None, ...] = (None,)
    half_life_span_fractions: tuple[float, ...] = (0.5, 0.125, 0.03)
    strength_transform: tuple[str, ...] = ("log", "binary")
    purchase_quantity: tuple[str, ...] = ("log1p",)
    repeat_exponent: tuple[float, ...] = (0.5,)
    normalize: tuple[bool, ...] = (True,)
    scheme: tuple[str, ...] = ()
    alpha: tuple[float, ...] = (0.5, 1.0, 4.0, 8.0, 16.0)
    regularization: tuple[float, ...] = (1.0, 5.0, 20.0)
    factors: tuple[int, ...] = (64,)
    iterations: tuple[int, ...] = (5, 10, 15, 25, 40)
    families: tuple[str, ...] = ("bpr", "itemknn", "blend")
    bpr_learning_rate: tuple[float, ...] = (0.05,)
    bpr_iterations: tuple[int, ...] = (25, 50, 100, 200)
    itemknn_weighting: tuple[str, ...] = ("bm25", "cosine", "tfidf")
    blend_category_weight: tuple[float, ...] = (0.0, 4.0)
    blend_history_weight: tuple[float, ...] = (0.0, 4.0)


@dataclass(frozen=True)
class SearchConfig:
    """Budget and space of the recipe search on the validation window.

    Parameters
    ----------
    budget : int
        Maximum number of model fits in the search (0 disables it: the recipe is used as
        is). An early-stopped fit counts once.
    space : SearchSpace
        Values tried per knob.
    max_customers : int
        The search fits on a seeded sample of at most this many customers (0: all). Its
        job is to rank recipes, which a sample does at a fraction of the cost on a large
        shop; the chosen recipe is then fit and tested on every customer.
    reuse_days : int
        A nightly run reuses the champion's recipe instead of searching when that recipe
        was tuned at most this many days before the run (0: search every run). The
        tuning run is then weekly.
    max_seconds : float
        Wall-time bound of the search: no new fit starts after it (0: none). Only the
        fit budget is deterministic; the run is tagged when the time bound cut it short.
    min_gain_se : float
        A knob value (weighting, ALS, blend) or ALS iteration count replaces the
        incumbent only when its validation NDCG@10 is higher by more than this many
        standard errors of the paired per-customer difference (0: any strict gain). Guards against picking validation
        noise among dozens of trials (:mod:`ml.train.significance`).
    """

    budget: int = 32
    space: SearchSpace = field(default_factory=SearchSpace)
    max_customers: int = 50_000
    reuse_days: int = 6
    max_seconds: float = 300.0
    min_gain_se: float = 1.0


@dataclass(frozen=True)
class TrainConfig:
    """One training run.

    Parameters
    ----------
    recipe : Recipe
        The start point of the search (an ALS recipe by default); used as is when the
        search is off.
    bpr_enabled : bool
        Fit the BPR candidate besides ALS and popularity, in the runs that tune the recipe
        (see :attr:`SearchConfig.reuse_days`) on at most ``bpr_max_pairs`` training pairs:
        single-threaded SGD, it costs more than every other candidate on a large shop.
    bpr_max_pairs : int
        Above this many customer-product pairs BPR is skipped (tagged ``bpr.skipped``).
    eval_days : int
        Shortest test window (the days before ``as_of``); grown when it holds too few
        customers to evaluate (see ``window_min_customers``).
    validation_days : int
        Shortest validation window, just before the test window (tuning only); grown
        like the test window.
    window_min_customers : int
        A window is doubled in length until this many customers have held-out purchases
        in it, up to ``window_max_share`` of the data's span; when no length gets there,
        the length holding the most such customers wins (0: fixed windows).
    window_max_share : float
        Longest window, as a share of the time between the first event and ``as_of``.
    dense_max_cells : int
        ``itemknn`` and the blend's history part serve as dense customers x products
        arrays: they are only considered while that many cells fit in this bound.
    ks : tuple of int
        Cut-offs of the ranking metrics.
    seed : int
        Seed of every model (fits are single-threaded, so results are reproducible).
    search : SearchConfig
        The bounded recipe search (every family, see :mod:`ml.train.tuning`).
    promotion_margin : float
        Relative NDCG@10 margin a candidate must beat the champion by (0.02 = 2 %).
    max_eval_customers : int
        The test window scores a seeded sample of at most this many of its customers,
        the same for every candidate and the champion (0: all).
    min_eval_customers : int
        Fewer evaluated customers than this and no model is promoted (too little evidence).
    refit_on_full_history : bool
        Register a model re-fit on everything up to ``as_of`` (what scoring serves) besides
        the evaluated one; the evaluated one is stored too and is what the gate compares.
    refit_iterations : int
        Iterations of that serving re-fit, which starts from the evaluated model's factors
        (its history is the evaluated one plus the test window). 0: a cold re-fit with
        the recipe's iterations.
    experiment_name, registered_model_name : str
        MLflow experiment and registry name.
    log_plots : bool
        Log the review plots (slow-ish; tests may switch them off).
    """

    recipe: Recipe = field(default_factory=Recipe)
    bpr_enabled: bool = True
    bpr_max_pairs: int = 2_000_000
    eval_days: int = 30
    validation_days: int = 30
    window_min_customers: int = 200
    window_max_share: float = 0.25
    dense_max_cells: int = 40_000_000
    ks: tuple[int, ...] = (10, 20)
    seed: int = 42
    search: SearchConfig = field(default_factory=SearchConfig)
    promotion_margin: float = 0.02
    max_eval_customers: int = 50_000
    min_eval_customers: int = 20
    refit_on_full_history: bool = True
    refit_iterations: int = 5
    experiment_name: str = "affinity-recommenders"
    registered_model_name: str = "affinity-recommender"
    log_plots: bool = True

    def __post_init__(self) -> None:
        problems = []
        if self.eval_days < 1 or self.validation_days < 1:
            problems.append("eval_days and validation_days must be at least 1")
        if not self.ks or min(self.ks) < 1:
            problems.append("ks must list positive cut-offs, e.g. (10, 20)")
        if 10 not in self.ks:
            problems.append("ks must include 10: the gate compares NDCG@10")
        if self.refit_iterations < 0:
            problems.append("refit_iterations must be >= 0 (0: a cold re-fit)")
        if self.search.max_customers < 0 or self.search.reuse_days < 0:
            problems.append("search.max_customers and search.reuse_days must be >= 0")
        if self.search.budget < 0:
            problems.append("search.budget must be >= 0 (0 switches the search off)")
        if not self.search.min_gain_se >= 0:
            problems.append("search.min_gain_se must be >= 0 (0: any strict validation gain)")
        if self.promotion_margin < 0:
            problems.append("promotion_margin must be >= 0 (0.02 means 2 % better)")
        if self.recipe.family == "popularity":
            problems.append(
                "recipe.family cannot be 'popularity': the baseline is never registered "
                "(use als, bpr, itemknn or blend)"
            )
        if self.window_min_customers < 0 or not 0 < self.window_max_share <= 1:
            problems.append("window_min_customers must be >= 0 and window_max_share in (0, 1]")
        if self.search.max_seconds < 0:
            problems.append("search.max_seconds must be >= 0 (0: no time bound)")
        if problems:
            raise ValueError("invalid TrainConfig: " + "; ".join(problems))
