"""The one mask type: which attention heads and FFN neurons of each layer a sub-network keeps.

A layer that keeps no head and no neuron is an identity and is dropped by extraction, so "layers
kept" is derived from the two boolean matrices rather than stored beside them.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SubnetMask:
    """Boolean masks over a model with L layers, H heads and I FFN neurons per layer.

    ``heads[l, h]`` keeps head h of layer l; ``neurons[l, i]`` keeps FFN neuron i of layer l.
    A block with nothing kept (no head, or no neuron) is removed entirely: its output projection,
    bias and LayerNorm are skipped and the residual passes through unchanged.
    """

    heads: torch.Tensor
    neurons: torch.Tensor

    def __post_init__(self) -> None:
        if self.heads.dtype != torch.bool or self.neurons.dtype != torch.bool:
            raise TypeError("SubnetMask wants boolean tensors")
        if self.heads.dim() != 2 or self.neurons.dim() != 2 or self.heads.shape[0] != self.neurons.shape[0]:
            raise ValueError(
                f"SubnetMask wants heads [L, H] and neurons [L, I] with the same L; "
                f"got {tuple(self.heads.shape)} and {tuple(self.neurons.shape)}"
            )

    @classmethod
    def full(cls, num_layers: int, num_heads: int, num_neurons: int) -> "SubnetMask":
        return cls(
            torch.ones(num_layers, num_heads, dtype=torch.bool),
            torch.ones(num_layers, num_neurons, dtype=torch.bool),
        )

    @classmethod
    def from_counts(
        cls, heads_per_layer: list[int], neurons_per_layer: list[int], num_heads: int, num_neurons: int
    ) -> "SubnetMask":
        """First-k heads and first-u neurons of each layer (the paper's small/medium spaces)."""
        heads = torch.arange(num_heads)[None, :] < torch.tensor(heads_per_layer)[:, None]
        neurons = torch.arange(num_neurons)[None, :] < torch.tensor(neurons_per_layer)[:, None]
        return cls(heads, neurons)

    @property
    def num_layers(self) -> int:
        return self.heads.shape[0]

    @property
    def heads_per_layer(self) -> list[int]:
        return self.heads.sum(1).tolist()

    @property
    def neurons_per_layer(self) -> list[int]:
        return self.neurons.sum(1).tolist()

    @property
    def kept_layers(self) -> list[int]:
        """Indices of layers that still compute something (the others are identities)."""
        return torch.nonzero(self.heads.any(1) | self.neurons.any(1)).flatten().tolist()

    def is_full(self) -> bool:
        return bool(self.heads.all() and self.neurons.all())

    def is_prefix(self) -> bool:
        """True when every layer keeps its first k heads and first u neurons (slices become views)."""
        return _rows_are_prefixes(self.heads) and _rows_are_prefixes(self.neurons)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SubnetMask):
            return NotImplemented
        return torch.equal(self.heads, other.heads) and torch.equal(self.neurons, other.neurons)

    def __hash__(self) -> int:
        return hash((self.heads.numpy().tobytes(), self.neurons.numpy().tobytes()))


def _rows_are_prefixes(mask: torch.Tensor) -> bool:
    counts = mask.sum(1, keepdim=True)
    return bool(torch.equal(mask, torch.arange(mask.shape[1])[None, :] < counts))
