"""Synthetic shop generator: any scale, seeded, byte-for-byte reproducible.

``generate_shop`` writes the input contract (:mod:`ml.ingest.contract`) as Parquet files for
customers, products, orders, order_lines, events, reviews and campaigns. The shop has
the structure the models need: customers with latent category and brand tastes,
long-tailed product popularity, a view -> cart -> purchase funnel whose purchases are
the orders, repeat buying of consumables, cold-start customers and products, reviews
whose text matches the rating, and campaigns around the end of the period. Optionally it
mixes in bad rows of every kind the ingest quarantines, listed in
``_expected_defects.parquet``.

Scale: about 0.23 events per customer-day; 500k customers x 90 days ~ 10M events.

Modules: :mod:`.vocab` (words and names), :mod:`.catalog` (products), :mod:`.people`
(customers and tastes), :mod:`.activity` (sessions, events, orders), :mod:`.activity_frames`
(their contract frames), :mod:`.reviews`, :mod:`.campaigns`, :mod:`.defects`, :mod:`.shop`
(orchestration and writing).
"""

from ml.datagen.shop import EXPECTED_DEFECTS_FILE, GENERATED_ENTITIES, generate_shop

__all__ = ["EXPECTED_DEFECTS_FILE", "GENERATED_ENTITIES", "generate_shop"]
