"""The paper's four search spaces: each is a Syne Tune config space plus its mapping to a SubnetMask.

Hyperparameter names (L layers, H heads, I FFN neurons per layer):

- ``small``:  ``num_layers`` in [0, L], ``num_heads`` in [1, H], ``num_units`` in [1, I]; the first
  ``num_layers`` layers are kept, each with its first ``num_heads`` heads and ``num_units`` neurons.
- ``medium``: ``num_heads_{i}`` in [0, H] and ``num_units_{i}`` in [0, I] for every layer i (first k / u).
- ``layer``:  ``layer_{i}`` in {0, 1} for every layer i (1 keeps the whole layer).
- ``large``:  an arbitrary binary mask, packed into integers of at most 32 bits so that it stays a
  Syne Tune config space whose values pass LocalBackend's ``--key value`` command line:
  ``head_mask_{i}_{c}`` holds heads 32c .. 32c+31 of layer i and ``unit_mask_{i}_{c}`` holds FFN
  neurons 32c .. 32c+31; bit b (``value >> b & 1``) keeps head/neuron 32c+b. Each word ranges over
  [0, 2^w - 1], w = number of heads/neurons it covers; sampling it uniformly keeps every head and
  neuron with probability 1/2.
"""
from __future__ import annotations

import itertools
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from syne_tune.config_space import Categorical, Domain, Integer, choice, randint

from syne_prune.errors import SynePruneError
from syne_prune.masks import SubnetMask
from syne_prune.models import EncoderShape

Config = dict[str, int]

WORD_BITS = 32


class SearchSpace(ABC):
    """A Syne Tune config space over sub-networks of one encoder shape, and its mask mapping."""

    name: str

    def __init__(self, shape: EncoderShape) -> None:
        self.shape = shape
        self.config_space: dict[str, Domain] = self._build_config_space()

    @abstractmethod
    def _build_config_space(self) -> dict[str, Domain]: ...

    @abstractmethod
    def _mask(self, config: Config) -> SubnetMask:
        """Map an already validated configuration to its mask."""

    @abstractmethod
    def largest(self) -> Config: ...

    @abstractmethod
    def smallest(self) -> Config: ...

    @abstractmethod
    def midpoint(self) -> Config: ...

    def initial_points(self) -> list[Config]:
        """Largest, smallest and midpoint: the first configurations a search evaluates."""
        return [self.largest(), self.smallest(), self.midpoint()]

    def num_configurations(self) -> int:
        """How many configurations the config space holds (product of its domains' sizes)."""
        return math.prod(_size(domain) for domain in self.config_space.values())

    def num_subnetworks(self) -> int:
        """How many distinct sub-networks (masks) the configurations select; at most ``num_configurations``
        (spaces where several configurations select the same mask override this)."""
        return self.num_configurations()

    def configurations(self):
        """Every configuration of the space, in order (an iterator; ``num_configurations`` of them)."""
        names = list(self.config_space)
        for values in itertools.product(*(_values(self.config_space[n]) for n in names)):
            yield dict(zip(names, values))

    def sample(self, random_state: np.random.RandomState) -> Config:
        return {name: int(domain.sample(random_state=random_state)) for name, domain in self.config_space.items()}

    def to_mask(self, config: Mapping[str, Any]) -> SubnetMask:
        """Validate ``config`` (keys outside the space, e.g. Syne Tune constants, are ignored) and map it."""
        return self._mask(self.validate(config))

    def validate(self, config: Mapping[str, Any]) -> Config:
        """Return the space's hyperparameters as ints; a missing or out-of-range value raises SynePruneError."""
        clean: Config = {}
        for name, domain in self.config_space.items():
            if name not in config:
                raise SynePruneError(
                    f"configuration lacks hyperparameter '{name}' ({_describe(domain)}) of the "
                    f"'{self.name}' search space; give every hyperparameter of the space"
                )
            value = _as_int(config[name])
            if value is None or not _contains(domain, value):
                raise SynePruneError(
                    f"hyperparameter '{name}' must be {_describe(domain)}, got {config[name]!r}"
                )
            clean[name] = value
        return clean


class SmallSearchSpace(SearchSpace):
    name = "small"

    def _build_config_space(self) -> dict[str, Domain]:
        s = self.shape
        return {
            "num_layers": randint(0, s.num_layers),
            "num_heads": randint(1, s.num_heads),
            "num_units": randint(1, s.num_neurons),
        }

    def _mask(self, config: Config) -> SubnetMask:
        s = self.shape
        kept = [i < config["num_layers"] for i in range(s.num_layers)]
        return SubnetMask.from_counts(
            [config["num_heads"] if k else 0 for k in kept],
            [config["num_units"] if k else 0 for k in kept],
            s.num_heads,
            s.num_neurons,
        )

    def largest(self) -> Config:
        return {"num_layers": self.shape.num_layers, "num_heads": self.shape.num_heads, "num_units": self.shape.num_neurons}

    def num_subnetworks(self) -> int:
        """With ``num_layers`` = 0 the heads and units select nothing: one empty network plus L x H x I others."""
        s = self.shape
        return 1 + s.num_layers * s.num_heads * s.num_neurons

    def smallest(self) -> Config:
        return {"num_layers": 0, "num_heads": 1, "num_units": 1}

    def midpoint(self) -> Config:
        return {name: _middle(domain) for name, domain in self.config_space.items()}


class MediumSearchSpace(SearchSpace):
    name = "medium"

    def _build_config_space(self) -> dict[str, Domain]:
        s = self.shape
        space: dict[str, Domain] = {}
        for i in range(s.num_layers):
            space[f"num_heads_{i}"] = randint(0, s.num_heads)
            space[f"num_units_{i}"] = randint(0, s.num_neurons)
        return space

    def _mask(self, config: Config) -> SubnetMask:
        s = self.shape
        return SubnetMask.from_counts(
            [config[f"num_heads_{i}"] for i in range(s.num_layers)],
            [config[f"num_units_{i}"] for i in range(s.num_layers)],
            s.num_heads,
            s.num_neurons,
        )

    def largest(self) -> Config:
        return {name: domain.upper for name, domain in self.config_space.items()}

    def smallest(self) -> Config:
        return {name: domain.lower for name, domain in self.config_space.items()}

    def midpoint(self) -> Config:
        return {name: _middle(domain) for name, domain in self.config_space.items()}


class LayerSearchSpace(SearchSpace):
    name = "layer"

    def _build_config_space(self) -> dict[str, Domain]:
        return {f"layer_{i}": choice([0, 1]) for i in range(self.shape.num_layers)}

    def _mask(self, config: Config) -> SubnetMask:
        s = self.shape
        kept = [config[f"layer_{i}"] == 1 for i in range(s.num_layers)]
        return SubnetMask.from_counts(
            [s.num_heads if k else 0 for k in kept], [s.num_neurons if k else 0 for k in kept], s.num_heads, s.num_neurons
        )

    def largest(self) -> Config:
        return {name: 1 for name in self.config_space}

    def smallest(self) -> Config:
        return {name: 0 for name in self.config_space}

    def midpoint(self) -> Config:
        """The first half of the layers (rounded up)."""
        keep = math.ceil(self.shape.num_layers / 2)
        return {f"layer_{i}": int(i < keep) for i in range(self.shape.num_layers)}


class LargeSearchSpace(SearchSpace):
    name = "large"

    def _build_config_space(self) -> dict[str, Domain]:
        s = self.shape
        space: dict[str, Domain] = {}
        for i in range(s.num_layers):
            for c, width in enumerate(_word_widths(s.num_heads)):
                space[f"head_mask_{i}_{c}"] = randint(0, 2**width - 1)
            for c, width in enumerate(_word_widths(s.num_neurons)):
                space[f"unit_mask_{i}_{c}"] = randint(0, 2**width - 1)
        return space

    def _mask(self, config: Config) -> SubnetMask:
        s = self.shape
        heads = [_unpack(config, f"head_mask_{i}", s.num_heads) for i in range(s.num_layers)]
        neurons = [_unpack(config, f"unit_mask_{i}", s.num_neurons) for i in range(s.num_layers)]
        return SubnetMask(torch.stack(heads), torch.stack(neurons))

    def config_from_mask(self, mask: SubnetMask) -> Config:
        """Encode any mask of this shape (the inverse of ``to_mask``)."""
        s = self.shape
        if tuple(mask.heads.shape) != (s.num_layers, s.num_heads) or tuple(mask.neurons.shape) != (s.num_layers, s.num_neurons):
            raise SynePruneError(f"mask shape {tuple(mask.heads.shape)}/{tuple(mask.neurons.shape)} does not fit this model")
        config: Config = {}
        for i in range(s.num_layers):
            config.update(_pack(mask.heads[i], f"head_mask_{i}"))
            config.update(_pack(mask.neurons[i], f"unit_mask_{i}"))
        return config

    def largest(self) -> Config:
        return {name: domain.upper for name, domain in self.config_space.items()}

    def smallest(self) -> Config:
        return {name: 0 for name in self.config_space}

    def midpoint(self) -> Config:
        """The first half (rounded up) of the heads and of the neurons of every layer."""
        s = self.shape
        half = SubnetMask.from_counts(
            [math.ceil(s.num_heads / 2)] * s.num_layers, [math.ceil(s.num_neurons / 2)] * s.num_layers, s.num_heads, s.num_neurons
        )
        return self.config_from_mask(half)


SEARCH_SPACES: dict[str, type[SearchSpace]] = {
    cls.name: cls for cls in (SmallSearchSpace, MediumSearchSpace, LayerSearchSpace, LargeSearchSpace)
}


def get_search_space(name: str, shape: EncoderShape) -> SearchSpace:
    """The search space called ``name`` over a model of the given shape."""
    if name not in SEARCH_SPACES:
        raise SynePruneError(f"unknown search space '{name}'; choose one of {', '.join(SEARCH_SPACES)}")
    return SEARCH_SPACES[name](shape)


def _word_widths(n: int) -> list[int]:
    return [min(WORD_BITS, n - start) for start in range(0, n, WORD_BITS)]


def _unpack(config: Config, prefix: str, n: int) -> torch.Tensor:
    bits = []
    for c, width in enumerate(_word_widths(n)):
        word = config[f"{prefix}_{c}"]
        bits.extend(bool(word >> b & 1) for b in range(width))
    return torch.tensor(bits, dtype=torch.bool)


def _pack(bits: torch.Tensor, prefix: str) -> Config:
    out: Config = {}
    for c, width in enumerate(_word_widths(len(bits))):
        chunk = bits[c * WORD_BITS : c * WORD_BITS + width].tolist()
        out[f"{prefix}_{c}"] = sum(1 << b for b, on in enumerate(chunk) if on)
    return out


def _middle(domain: Integer) -> int:
    return (domain.lower + domain.upper + 1) // 2


def _values(domain: Domain) -> list[int]:
    if isinstance(domain, Categorical):
        return [int(c) for c in domain.categories]
    return list(range(domain.lower, domain.upper + 1))


def _size(domain: Domain) -> int:
    return len(domain.categories) if isinstance(domain, Categorical) else domain.upper - domain.lower + 1


def _describe(domain: Domain) -> str:
    if isinstance(domain, Categorical):
        return "one of {" + ", ".join(str(c) for c in domain.categories) + "}"
    return f"an integer in [{domain.lower}, {domain.upper}]"


def _contains(domain: Domain, value: int) -> bool:
    if isinstance(domain, Categorical):
        return value in domain.categories
    return domain.lower <= value <= domain.upper


def _as_int(value: Any) -> int | None:
    """Integers as they arrive from Python, JSON, pandas or a command line; anything else is None."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None
