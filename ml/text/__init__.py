"""The language layer: product text and reviews, read with models that run on a CPU offline.

Products (the ``product_text`` stage, :mod:`.products`)
    :mod:`.embeddings` (wordllama, incremental store), :mod:`.taxonomy` (inferred
    categories carried night to night), :mod:`.content_neighbours` (hybrid similar
    products), :mod:`.cold_start` (new products in recommendation lists).

Reviews (the ``review_insight`` stage)
    :mod:`.sentiment` -- the model recipe, training with a time (or random) split, the
    bundled VADER fallback; :mod:`.scoring` -- one ``review_sentiment`` row per review;
    :mod:`.registry` -- MLflow runs, the ``affinity-review-sentiment`` registry and its
    gate; :mod:`.aspects` -- praised and complaint aspects per product, in a marketer's
    words; :mod:`.signals` -- product insights, products turning negative, unhappy
    customers (the reference of the dbt review marts); :mod:`.stage` -- the whole review
    stage on a frame; :mod:`.review_insight` -- the pipeline stage (reads ``raw.reviews``,
    writes ``ml.review_sentiment`` and ``ml.product_review_aspects``).
"""
