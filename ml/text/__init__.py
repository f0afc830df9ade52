"""Product and review text: embeddings, inferred categories, content neighbours, cold start."""
