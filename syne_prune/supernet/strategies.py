"""Super-network training strategies: each is one call, (model, batch) -> loss, that runs the
forward and backward passes of one step (gradients accumulate; the optimizer steps outside).

Sub-networks are switched with ``InPlaceMask`` (hooks, no weight copies):

- ``standard``: plain fine-tuning of the full network.
- ``random``: one (or ``num_random_subnets``) random sub-network(s) per step.
- ``random_linear``: a random sub-network with probability p = step / total_steps, rising linearly
  from 0 to 1 over training, else the full network (Bender et al. 2018; the paper's code).
- ``sandwich``: the largest, ``num_random_subnets`` random and the smallest sub-network every step,
  all on the labels (Yu & Huang 2019).
- ``kd``: random sub-networks distilled from the full network's outputs (the teacher is not updated).
- ``full``: sandwich with in-place distillation: the largest learns from the labels, the random and
  smallest sub-networks from the largest's detached outputs (the paper's best strategy).

Distillation loss, as in the paper's code: for classification
T² · CE(student / T, softmax(teacher / T)) + CE(student, labels); for regression MSE(student, teacher).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from transformers import PreTrainedModel

from syne_prune.errors import SynePruneError
from syne_prune.masks import SubnetMask
from syne_prune.search_spaces import SearchSpace
from syne_prune.surgery import InPlaceMask


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    temperature: float = 1.0,
    is_regression: bool = False,
) -> torch.Tensor:
    teacher_logits = teacher_logits.detach()
    if is_regression:
        return F.mse_loss(student_logits, teacher_logits)
    soft = F.cross_entropy(student_logits / temperature, F.softmax(teacher_logits / temperature, dim=-1))
    return temperature**2 * soft + F.cross_entropy(student_logits, labels)


class Strategy(ABC):
    name: str

    def __init__(
        self,
        space: SearchSpace,
        masker: InPlaceMask,
        random_state: np.random.RandomState,
        is_regression: bool,
        total_steps: int,
        temperature: float = 1.0,
        num_random_subnets: int = 1,
    ) -> None:
        self.space = space
        self.masker = masker
        self.random_state = random_state
        self.is_regression = is_regression
        self.total_steps = max(1, total_steps)
        self.temperature = temperature
        self.num_random_subnets = num_random_subnets
        self.smallest = space.to_mask(space.smallest())

    @abstractmethod
    def __call__(self, model: PreTrainedModel, batch: Mapping[str, torch.Tensor], step: int) -> float:
        """Forward and backward passes of one step; returns the summed loss."""

    def random_mask(self) -> SubnetMask:
        return self.space.to_mask(self.space.sample(self.random_state))

    def _label_loss(self, model, batch, mask: SubnetMask | None) -> tuple[float, torch.Tensor]:
        self.masker.set(mask)
        output = model(**batch)
        output.loss.backward()
        self.masker.set(None)
        return output.loss.item(), output.logits.detach()

    def _distilled_loss(self, model, batch, mask: SubnetMask, teacher_logits: torch.Tensor) -> float:
        self.masker.set(mask)
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        logits = model(**inputs).logits
        if self.is_regression:
            logits, teacher = logits.squeeze(-1), teacher_logits.squeeze(-1)
        else:
            teacher = teacher_logits
        loss = distillation_loss(logits, teacher, batch["labels"], self.temperature, self.is_regression)
        loss.backward()
        self.masker.set(None)
        return loss.item()


class StandardStrategy(Strategy):
    name = "standard"

    def __call__(self, model, batch, step):
        return self._label_loss(model, batch, None)[0]


class RandomStrategy(Strategy):
    name = "random"

    def __call__(self, model, batch, step):
        return sum(self._label_loss(model, batch, self.random_mask())[0] for _ in range(self.num_random_subnets))


class RandomLinearStrategy(Strategy):
    name = "random_linear"

    def probability_random(self, step: int) -> float:
        return min(1.0, step / max(1, self.total_steps - 1))

    def __call__(self, model, batch, step):
        if self.random_state.rand() < self.probability_random(step):
            return sum(self._label_loss(model, batch, self.random_mask())[0] for _ in range(self.num_random_subnets))
        return self._label_loss(model, batch, None)[0]


class SandwichStrategy(Strategy):
    name = "sandwich"

    def __call__(self, model, batch, step):
        total = self._label_loss(model, batch, None)[0]
        for _ in range(self.num_random_subnets):
            total += self._label_loss(model, batch, self.random_mask())[0]
        return total + self._label_loss(model, batch, self.smallest)[0]


class DistillationStrategy(Strategy):
    name = "kd"

    def __call__(self, model, batch, step):
        self.masker.set(None)
        with torch.no_grad():
            teacher = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
        return sum(self._distilled_loss(model, batch, self.random_mask(), teacher) for _ in range(self.num_random_subnets))


class FullStrategy(Strategy):
    name = "full"

    def __call__(self, model, batch, step):
        total, teacher = self._label_loss(model, batch, None)
        for _ in range(self.num_random_subnets):
            total += self._distilled_loss(model, batch, self.random_mask(), teacher)
        return total + self._distilled_loss(model, batch, self.smallest, teacher)


STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (StandardStrategy, RandomStrategy, RandomLinearStrategy, SandwichStrategy, DistillationStrategy, FullStrategy)
}


def get_strategy(name: str) -> type[Strategy]:
    if name not in STRATEGIES:
        raise SynePruneError(f"unknown strategy '{name}'; choose one of {', '.join(STRATEGIES)}")
    return STRATEGIES[name]
