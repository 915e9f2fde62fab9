"""The prunable shape of a transformer encoder, read from any supported model config."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EncoderShape:
    """L layers, H heads of size ``head_dim`` and I FFN neurons per layer, hidden size h.

    ``head_size``: the size of one head where the config sets it apart from h / H (DeBERTa's
    ``attention_head_size``); None: h / H. The last four fields describe DeBERTa's disentangled
    attention for the size formulas (``syne_prune.objectives``), all 0 for other encoders:
    ``relative_positions`` R relative embeddings that every layer projects per head,
    ``position_projections`` such h -> heads x head size projections per layer,
    ``position_projection_weights`` how many of them have their own weights (the others reuse the
    query/key projections), ``position_scores`` score matmuls against them (n x R per head).
    """

    num_layers: int
    num_heads: int
    num_neurons: int
    hidden_size: int
    head_size: int | None = None
    relative_positions: int = 0
    position_projections: int = 0
    position_projection_weights: int = 0
    position_scores: int = 0

    @property
    def head_dim(self) -> int:
        return self.head_size if self.head_size is not None else self.hidden_size // self.num_heads
