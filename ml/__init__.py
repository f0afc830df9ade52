"""Affinity: personalized-marketing warehouse."""
