"""Super-network training strategies: each is one call, (model, batch, step) -> loss, that runs the
forward and backward passes of one step (gradients accumulate; the optimizer steps outside).

Sub-networks are switched with ``InPlaceMask`` (hooks, no weight copies):

- ``standard``: plain fine-tuning of the full network.
- ``random``: one (or ``num_random_subnets``) random sub-network(s) per step.
- ``random_linear``: a random sub-network with probability p = step / total_steps, rising linearly
  from 0 to 1 over training, else the full network (Bender et al. 2018; the paper's code).
- ``sandwich``: the largest, ``num_random_subnets`` random and the smallest sub-network every step,
  all on the labels (Yu & Huang 2019).
- ``kd``: random sub-networks distilled from the full network's outputs (not updated in that pass)
  plus the labels.
- ``full``: sandwich with in-place distillation: the largest learns from the labels, the random and
  smallest sub-networks from the largest's detached outputs plus the labels (the paper's best strategy).

With a fixed teacher (``teacher=``, a fine-tuned model that is never updated, see ``teacher.py``), every
sub-network every strategy trains, the largest included, learns from ``distillation_loss`` against the
teacher's logits and the labels; ``kd`` and ``full`` then distil from that teacher, not in place.
No strategy ever trains a sub-network without the labels.

With ``layer_distillation=`` (``layer_distillation.LayerDistillation``, which is then also the teacher), every
distilled sub-network adds the layer-wise hidden-state term to its loss.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping

import numpy as np
import torch
from transformers import PreTrainedModel

from syne_prune.data import TaskType, get_task_type
from syne_prune.errors import SynePruneError
from syne_prune.masks import SubnetMask
from syne_prune.precision import backward
from syne_prune.search_spaces import SearchSpace
from syne_prune.supernet.layer_distillation import LayerDistillation
from syne_prune.surgery import InPlaceMask


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    temperature: float = 1.0,
    is_regression: bool = False,
    task_type: TaskType | str | None = None,
) -> torch.Tensor:
    """Knowledge-distillation loss of a student against a teacher's outputs plus the labels (a scalar).

    Classification and multiple choice (logits [batch, num_labels] or [batch, num_choices], integer
    labels [batch]): ``T² · CE(student / T, softmax(teacher / T)) + CE(student, labels)``, the soft
    cross-entropy (equal to T² · KL up to the teacher's entropy, which has no gradient) scaled by T² so its
    gradients keep their size at any temperature T (Hinton et al. 2015, "Distilling the Knowledge in a Neural
    Network", sec. 2), as in DynaBERT (Hou et al. 2020) and the paper's code (Klein et al. 2024).

    Regression (scores [batch], float labels [batch]): ``MSE(student, teacher) + MSE(student, labels)``. DynaBERT
    and the paper's code use the first term only; the label term is added so no step ever ignores the labels.

    Other task types (multi-label, token classification): ``task_type``, a ``syne_prune.data.TaskType`` or its name,
    whose ``distillation_loss`` documents its terms and shapes (it overrides ``is_regression``).

    The teacher's logits are detached (no gradient reaches the teacher). Raises ValueError when ``labels`` is None.
    """
    if labels is None:
        raise ValueError("distillation_loss needs the labels: every distilled step also learns from them")
    kind = get_task_type(task_type if task_type is not None else is_regression)
    return kind.distillation_loss(student_logits, teacher_logits.detach(), labels, temperature)


class Strategy(ABC):
    """One training step of a super-network: ``strategy(model, batch, step) -> summed loss`` (a detached scalar
    tensor, on the model's device: the training loop reads it without a device synchronisation per step).

    ``task_type``: the task's ``syne_prune.data.TaskType`` (or its name; a bool: whether it is a regression), whose
    distillation loss distilled steps use. ``teacher``: optional fixed teacher, a callable batch -> logits computed without gradients (e.g.
    ``syne_prune.supernet.teacher.Teacher``); with one, every sub-network learns from its logits plus the labels.
    ``layer_distillation``: optional layer-wise term, with the fixed teacher inside it (it then replaces ``teacher``).
    ``loss``: optional ``(student_outputs, teacher_outputs) -> scalar`` that replaces ``distillation_loss`` and the
    labels in every distilled step (an embedding model's, ``syne_prune.embedding``, whose batches carry no labels).
    """

    name: str

    def __init__(
        self,
        space: SearchSpace,
        masker: InPlaceMask,
        random_state: np.random.RandomState,
        task_type: TaskType | str | bool,
        total_steps: int,
        temperature: float = 1.0,
        num_random_subnets: int = 1,
        teacher: Callable[[Mapping[str, torch.Tensor]], torch.Tensor] | None = None,
        layer_distillation: LayerDistillation | None = None,
        loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.space = space
        self.masker = masker
        self.random_state = random_state
        self.task_type = get_task_type(task_type)
        self.total_steps = max(1, total_steps)
        self.temperature = temperature
        self.num_random_subnets = num_random_subnets
        self.teacher = layer_distillation or teacher
        self.layer_distillation = layer_distillation
        self.loss = loss
        self.smallest = space.to_mask(space.smallest())

    @abstractmethod
    def __call__(self, model: PreTrainedModel, batch: Mapping[str, torch.Tensor], step: int) -> torch.Tensor:
        """Forward and backward passes of one step; returns the summed loss (detached)."""

    def random_mask(self) -> SubnetMask:
        return self.space.to_mask(self.space.sample(self.random_state))

    def teacher_logits(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
        """The fixed teacher's logits for ``batch`` (no gradients), or None without a teacher."""
        return None if self.teacher is None else self.teacher(batch)

    def _loss(self, model, batch, mask: SubnetMask | None, teacher_logits: torch.Tensor | None) -> torch.Tensor:
        """One sub-network's step: on the labels alone without teacher logits, else distilled plus labels."""
        if teacher_logits is None:
            return self._label_loss(model, batch, mask)[0]
        return self._distilled_loss(model, batch, mask, teacher_logits)

    def _label_loss(self, model, batch, mask: SubnetMask | None) -> tuple[torch.Tensor, torch.Tensor]:
        self.masker.set(mask)
        output = model(**batch)
        backward(output.loss)
        self.masker.set(None)
        return output.loss.detach(), output.logits.detach()

    def _distilled_loss(self, model, batch, mask: SubnetMask | None, teacher_logits: torch.Tensor) -> torch.Tensor:
        self.masker.set(mask)
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        output = model(**inputs, output_hidden_states=self.layer_distillation is not None)
        logits = output.logits
        if self.loss is not None:
            loss = self.loss(logits, teacher_logits)
            backward(loss)
            self.masker.set(None)
            return loss.detach()
        loss = distillation_loss(logits, teacher_logits, batch["labels"], self.temperature, task_type=self.task_type)
        if self.layer_distillation is not None:
            loss = loss + self.layer_distillation.loss(output.hidden_states, mask, batch)
        backward(loss)
        self.masker.set(None)
        return loss.detach()

    def _random_losses(self, model, batch, teacher_logits: torch.Tensor | None) -> torch.Tensor:
        return sum(self._loss(model, batch, self.random_mask(), teacher_logits) for _ in range(self.num_random_subnets))


class StandardStrategy(Strategy):
    name = "standard"

    def __call__(self, model, batch, step):
        return self._loss(model, batch, None, self.teacher_logits(batch))


class RandomStrategy(Strategy):
    name = "random"

    def __call__(self, model, batch, step):
        return self._random_losses(model, batch, self.teacher_logits(batch))


class RandomLinearStrategy(Strategy):
    name = "random_linear"

    def probability_random(self, step: int) -> float:
        return min(1.0, step / max(1, self.total_steps - 1))

    def __call__(self, model, batch, step):
        teacher = self.teacher_logits(batch)
        if self.random_state.rand() < self.probability_random(step):
            return self._random_losses(model, batch, teacher)
        return self._loss(model, batch, None, teacher)


class SandwichStrategy(Strategy):
    name = "sandwich"

    def __call__(self, model, batch, step):
        teacher = self.teacher_logits(batch)
        total = self._loss(model, batch, None, teacher) + self._random_losses(model, batch, teacher)
        return total + self._loss(model, batch, self.smallest, teacher)


class DistillationStrategy(Strategy):
    name = "kd"

    def __call__(self, model, batch, step):
        teacher = self.teacher_logits(batch)
        if teacher is None:  # the full network being trained, in this pass not updated
            self.masker.set(None)
            with torch.no_grad():
                teacher = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
        return sum(self._distilled_loss(model, batch, self.random_mask(), teacher) for _ in range(self.num_random_subnets))


class FullStrategy(Strategy):
    name = "full"

    def __call__(self, model, batch, step):
        teacher = self.teacher_logits(batch)
        if teacher is None:  # in-place distillation: the largest learns from the labels and teaches the rest
            total, teacher = self._label_loss(model, batch, None)
        else:
            total = self._distilled_loss(model, batch, None, teacher)
        for _ in range(self.num_random_subnets):
            total = total + self._distilled_loss(model, batch, self.random_mask(), teacher)
        return total + self._distilled_loss(model, batch, self.smallest, teacher)


STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (StandardStrategy, RandomStrategy, RandomLinearStrategy, SandwichStrategy, DistillationStrategy, FullStrategy)
}


def get_strategy(name: str) -> type[Strategy]:
    if name not in STRATEGIES:
        raise SynePruneError(f"unknown strategy '{name}'; choose one of {', '.join(STRATEGIES)}")
    return STRATEGIES[name]
