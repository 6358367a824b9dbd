"""Flax NNX models on top of CLIP embeddings (neural MDS, DEC, IIN).

Each model is a small fit / transform API around a Flax NNX module trained
with optax (../SPEC_MODELS.md). Imported lazily by ``clipcore.models`` so
that the scores never pay for Flax.
"""

__all__: list[str] = []

# --- neural MDS (issue 6) ---

# --- DEC (issue 7) ---

# --- IIN (issue 8) ---
