"""Super-network training: strategies, the training loop and the checkpoint format."""
from __future__ import annotations

from syne_prune.supernet.checkpoint import Supernet, check_supernet_settings, load_supernet, verify_checkpoint
from syne_prune.supernet.layer_distillation import LAYER_DISTILLATION, LayerDistillation, hidden_state_loss, layer_mapping
from syne_prune.supernet.strategies import STRATEGIES, Strategy, distillation_loss, get_strategy
from syne_prune.supernet.teacher import AUTO as AUTO_TEACHER
from syne_prune.supernet.teacher import TEACHER_DIR, Teacher, load_teacher
from syne_prune.supernet.train import IMPORTANCE_CHOICES, TrainingConfig, train_supernet

__all__ = ["AUTO_TEACHER", "IMPORTANCE_CHOICES", "LAYER_DISTILLATION", "LayerDistillation", "STRATEGIES", "Strategy", "Supernet",
           "TEACHER_DIR", "Teacher", "TrainingConfig", "check_supernet_settings", "distillation_loss", "get_strategy", "hidden_state_loss",
           "layer_mapping", "load_supernet", "load_teacher", "train_supernet", "verify_checkpoint"]
