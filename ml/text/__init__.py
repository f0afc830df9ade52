"""The language layer for reviews: sentiment learned from the shop's ratings, and aspects.

* :mod:`.sentiment` -- the model recipe, training with a time (or random) split, the
  bundled VADER fallback; :mod:`.scoring` -- one ``review_sentiment`` row per review;
  :mod:`.registry` -- MLflow runs, the ``affinity-review-sentiment`` registry and its gate.
* :mod:`.aspects` -- praised and complaint aspects per product, in a marketer's words.
* :mod:`.signals` -- product insights, products turning negative, unhappy customers.
* :mod:`.stage` -- the whole review stage for the pipeline.
"""
