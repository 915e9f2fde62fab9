"""Super-network training: strategies, the training loop and the checkpoint format."""
from __future__ import annotations

from syne_prune.supernet.checkpoint import Supernet, load_supernet, verify_checkpoint
from syne_prune.supernet.strategies import STRATEGIES, Strategy, distillation_loss, get_strategy
from syne_prune.supernet.teacher import Teacher, load_teacher
from syne_prune.supernet.train import TrainingConfig, train_supernet

__all__ = ["STRATEGIES", "Strategy", "Supernet", "Teacher", "TrainingConfig", "distillation_loss", "get_strategy",
           "load_supernet", "load_teacher", "train_supernet", "verify_checkpoint"]
