"""What every baseline pruning method shares: the budget, the pruning context, the result.

A *budget* is a ratio of the full fine-tuned model's parameters (``params``, as the search's ``params``
objective: embeddings + encoder + task head), of its prunable encoder parameters (``encoder_params``: the heads'
and FFN neurons' layers, what the paper's and our budgets "of the prunable parameters" mean) or of its MACs per
sequence (``macs``), all counted by ``objectives.subnet_size`` (the one counter). A mask meets a budget when its count is at most
``floor(ratio * full count)``, so the ratio recorded with an export never exceeds the budget.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from transformers import PreTrainedModel

from syne_prune.data import EVAL_BATCH_SIZE, Task, eval_batches
from syne_prune.errors import SynePruneError
from syne_prune.masks import SubnetMask
from syne_prune.models import EncoderShape, get_family
from syne_prune.objectives import SubnetSize, subnet_size
from syne_prune.training import FINETUNE_LR

BUDGET_KINDS = ("params", "encoder_params", "macs")
BUDGET_FLAGS = {kind: "--max-" + kind.replace("_", "-") for kind in BUDGET_KINDS}  # the CLI option of each kind


@dataclass(frozen=True)
class Budget:
    """``kind``: one of ``BUDGET_KINDS``; ``ratio``: share of the full model's count of that kind, in (0, 1]."""

    kind: str
    ratio: float

    def __post_init__(self) -> None:
        if self.kind not in BUDGET_KINDS:
            raise SynePruneError(f"unknown budget kind '{self.kind}'; choose one of {', '.join(BUDGET_KINDS)}")
        if not (isinstance(self.ratio, (int, float)) and 0 < self.ratio <= 1):
            raise SynePruneError(f"{self.flag} must be a ratio in (0, 1] of the full model, got {self.ratio}")

    @property
    def flag(self) -> str:
        """The CLI option that gives this kind of budget, e.g. ``--max-encoder-params``."""
        return BUDGET_FLAGS[self.kind]

    @property
    def label(self) -> str:
        """Directory name of this budget's export in a sweep, e.g. ``0.5``."""
        return f"{self.ratio:g}"


@dataclass(frozen=True)
class PruneSettings:
    """Settings every method may read. ``examples``: training examples for Fisher scores, head importance and
    mask tuning (Kwon et al. 2022 use 2048); ``finetune_epochs``: None = the method's default;
    ``head_fraction``: share of all heads head-prune removes per re-scoring step (Michel et al. 2019: 10%)."""

    examples: int = 2048
    finetune_epochs: int | None = None
    lr: float = FINETUNE_LR
    batch_size: int = 32
    seed: int = 0
    eval_batch_size: int = EVAL_BATCH_SIZE
    head_fraction: float = 0.1
    seq_len: int = 128  # sequence length MACs are counted at
    progress: bool = False


@dataclass
class PruneContext:
    """A fine-tuned task model and its task's tokenized training examples, shared by the budgets of a sweep.

    ``model`` is never modified by a method (methods copy or extract); ``cache`` keeps what a method can reuse
    across budgets (Fisher matrices, head-pruning state). Every registered family is supported (what differs per
    family comes from its ``Family``); another model type is a one-line SynePruneError naming the supported ones."""

    model: PreTrainedModel
    task: Task
    tokenizer: Any
    train: list[dict]
    settings: PruneSettings
    cache: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.arch = get_family(self.model.config)
        self.shape: EncoderShape = self.arch.shape(self.model.config)
        self.full: SubnetSize = subnet_size(self.model, seq_len=self.settings.seq_len)

    def size(self, mask: SubnetMask) -> SubnetSize:
        return subnet_size(self.model, mask, seq_len=self.settings.seq_len)

    def count(self, mask: SubnetMask, kind: str) -> int:
        """Parameters or MACs per sequence of ``mask``'s sub-network."""
        return getattr(self.size(mask), kind)

    def limit(self, budget: Budget) -> int:
        """The largest count that meets ``budget``."""
        return math.floor(budget.ratio * getattr(self.full, budget.kind))

    def fits(self, mask: SubnetMask, budget: Budget) -> bool:
        return self.count(mask, budget.kind) <= self.limit(budget)

    def ratio(self, mask: SubnetMask, kind: str) -> float:
        return self.count(mask, kind) / getattr(self.full, kind)

    def batches(self, batch_size: int | None = None) -> list[dict[str, torch.Tensor]]:
        """The first ``settings.examples`` training examples (the training split is in seeded random order) in
        labelled batches, shortest first (``data.eval_batches``: less padding; scores and sums ignore the order)."""
        examples = self.train[: self.settings.examples]
        if not examples:
            raise SynePruneError("no training examples to score or tune on; give a task with training data")
        return eval_batches(examples, self.tokenizer, batch_size or self.settings.eval_batch_size)

    def empty_mask(self) -> SubnetMask:
        """Nothing of the encoder kept (embeddings and task head only)."""
        s = self.shape
        return SubnetMask(torch.zeros(s.num_layers, s.num_heads, dtype=torch.bool), torch.zeros(s.num_layers, s.num_neurons, dtype=torch.bool))


@dataclass
class Pruned:
    """What a method returns for one budget: the ``mask`` (kept heads/neurons of the fine-tuned model), the
    pruned sub-network when the method changed its weights (None: plain extraction of ``mask``), and ``info``
    (JSON-able details the export records under ``baseline``)."""

    mask: SubnetMask
    subnetwork: PreTrainedModel | None = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Method:
    """A baseline: ``run(context, budget) -> Pruned``; ``smallest(context) -> mask``: the smallest sub-network
    it can reach (a budget below it is refused before any work); ``finetune_epochs``: default epochs of
    fine-tuning after pruning (the shared training loop, labels only)."""

    name: str
    run: Callable[[PruneContext, Budget], Pruned]
    smallest: Callable[[PruneContext], SubnetMask]
    finetune_epochs: int
    summary: str
