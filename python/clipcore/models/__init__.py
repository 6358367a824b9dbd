"""Flax NNX models on top of CLIP embeddings (neural MDS, DEC, IIN) and the VAE of managed synthesis.

Each model is a small fit / transform API around a Flax NNX module trained
with optax (../SPEC_MODELS.md). Imported lazily by ``clipcore.models`` so
that the scores never pay for Flax.

The three share :mod:`clipcore.models._common` (one MLP, one batched apply,
one scan trainer, one save format); their evaluations (what ``clipcore mds``,
``clipcore cluster`` and ``clipcore iin`` report) are in
:mod:`~clipcore.models.mds_eval`, :mod:`~clipcore.models.dec_eval` and
:mod:`~clipcore.models.iin_eval`.
"""

__all__: list[str] = []

# --- neural MDS (issue 6) ---
from .mds import MDSConfig, MDSMetrics, NeuralMDS, mds_metrics  # noqa: E402
from .mds_data import TopicPairs, topic_pairs  # noqa: E402
from .mds_eval import run_mds  # noqa: E402

__all__ += ["NeuralMDS", "MDSConfig", "MDSMetrics", "mds_metrics", "run_mds", "topic_pairs", "TopicPairs"]

# --- DEC (issue 7) ---
from .dec import DEC, Autoencoder, DECConfig, DECHistory, kl_divergence, soft_assignment, target_distribution  # noqa: E402
from .dec_eval import DECEvaluation, evaluate_dec  # noqa: E402

__all__ += ["DEC", "DECConfig", "DECHistory", "Autoencoder", "soft_assignment", "target_distribution",
            "kl_divergence", "DECEvaluation", "evaluate_dec"]

# --- IIN (issue 8) ---
from .iin import IIN, IINConfig, estimate_factor_sizes, flow_loss, pair_loss, read_attributes  # noqa: E402
from .iin_data import (AttributeSet, fashion_mnist_attributes, fashion_mnist_images, mixed_attributes,  # noqa: E402
                       synthetic_attributes)
from .iin_eval import IINEvaluation, evaluate_iin  # noqa: E402

__all__ += ["IIN", "IINConfig", "IINEvaluation", "pair_loss", "flow_loss", "estimate_factor_sizes",
            "evaluate_iin", "read_attributes", "AttributeSet", "synthetic_attributes", "mixed_attributes",
            "fashion_mnist_attributes", "fashion_mnist_images"]

# --- managed synthesis: a VAE whose latent the IIN edits ---
from .vae import VAE, VAEConfig  # noqa: E402
from .vae_eval import DecodedEdits, edit_grid, evaluate_decoded_edits  # noqa: E402

__all__ += ["VAE", "VAEConfig", "DecodedEdits", "evaluate_decoded_edits", "edit_grid"]

# --- correlation of semantic features with embedding directions ---
from .correlation import (SemanticCorrelation, correlation_matrix, factor_correlation,  # noqa: E402
                          principal_components, prompt_similarities, semantic_correlation)

__all__ += ["correlation_matrix", "factor_correlation", "principal_components", "prompt_similarities",
            "semantic_correlation", "SemanticCorrelation"]
