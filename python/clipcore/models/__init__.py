"""Flax NNX models on top of CLIP embeddings (neural MDS, DEC, IIN).

Each model is a small fit / transform API around a Flax NNX module trained
with optax (../SPEC_MODELS.md). Imported lazily by ``clipcore.models`` so
that the scores never pay for Flax.
"""

__all__: list[str] = []

# --- neural MDS (issue 6) ---
from .mds import MDSConfig, MDSMetrics, NeuralMDS, mds_metrics  # noqa: E402

__all__ += ["NeuralMDS", "MDSConfig", "MDSMetrics", "mds_metrics"]

# --- DEC (issue 7) ---
from .dec import DEC, Autoencoder, DECConfig, DECHistory, kl_divergence, soft_assignment, target_distribution  # noqa: E402

__all__ += ["DEC", "DECConfig", "DECHistory", "Autoencoder", "soft_assignment", "target_distribution",
            "kl_divergence"]

# --- IIN (issue 8) ---
from .iin import (IIN, IINConfig, IINEvaluation, estimate_factor_sizes, evaluate_iin, flow_loss,  # noqa: E402
                  pair_loss, read_attributes)
from .iin_data import AttributeSet, fashion_mnist_attributes, synthetic_attributes  # noqa: E402

__all__ += ["IIN", "IINConfig", "IINEvaluation", "pair_loss", "flow_loss", "estimate_factor_sizes",
            "evaluate_iin", "read_attributes", "AttributeSet", "synthetic_attributes", "fashion_mnist_attributes"]
