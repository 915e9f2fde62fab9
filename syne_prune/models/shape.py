"""The prunable shape of a transformer encoder, read from any supported model config."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EncoderShape:
    """L layers, H heads of size ``head_dim`` and I FFN neurons per layer, hidden size h."""

    num_layers: int
    num_heads: int
    num_neurons: int
    hidden_size: int

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads
