"""Layer-wise distillation: a sub-network's hidden states matched to a fixed teacher's, next to the logit distillation.

``--layer-distillation hidden`` adds, to every distilled step of super-network training (``strategies.py``) and of
recovery (``recovery.py``), ``weight · mean over mapped layers of MSE(student hidden state, teacher hidden state)``,
the hidden-state term of TinyBERT (Jiao et al. 2020, eq. 8) and CoFi (Xia et al. 2022, sec. 3.3). The MSE is taken
over the hidden dimension and the real (unpadded) tokens; the teacher's states carry no gradient.

Layer mapping (``layer_mapping``): of a student with M layers kept (a sub-network's layers with a head or a neuron
left, in order; an export's layers) and a teacher with N layers, the j-th kept layer's output (j = 1..M) learns from
the teacher's layer ``floor(j · N / M)``, TinyBERT's uniform mapping: with every layer kept each layer learns from
its own, and the last kept layer always from the teacher's last. The embeddings are not matched. Student and teacher
have the same hidden size (sub-networks prune heads and neurons, never the hidden dimension), so no projection is
needed. The teacher must be a fixed model (``--teacher auto`` or a directory), whose hidden states exist apart from
the network being trained.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from transformers import PreTrainedModel

from syne_prune.masks import SubnetMask

LAYER_DISTILLATION = ("none", "hidden")  # the choices of --layer-distillation


def layer_mapping(kept_layers: Sequence[int], num_teacher_layers: int) -> list[tuple[int, int]]:
    """``[(student index, teacher index), ...]`` into ``hidden_states`` (index 0 is the embeddings, layer l's output
    is index l + 1): the j-th of the M ``kept_layers`` (0-based layer numbers, ascending) is paired with the
    teacher's layer ``floor(j · N / M)`` (N = ``num_teacher_layers``). An empty ``kept_layers`` gives no pairs."""
    count = len(kept_layers)
    return [(layer + 1, (j * num_teacher_layers) // count) for j, layer in enumerate(kept_layers, start=1)]


def kept_layers(mask: SubnetMask | None, num_layers: int) -> list[int]:
    """The layers a sub-network computes: those with a head or a neuron kept (all ``num_layers`` for ``mask=None``)."""
    if mask is None:
        return list(range(num_layers))
    return [layer for layer in range(mask.num_layers) if bool(mask.heads[layer].any() or mask.neurons[layer].any())]


def hidden_state_loss(student_hidden: Sequence[torch.Tensor], teacher_hidden: Sequence[torch.Tensor], pairs: Sequence[tuple[int, int]],
                      attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """The mean over ``pairs`` of the MSE between ``student_hidden[s]`` and ``teacher_hidden[t]`` (each
    [batch, tokens, hidden]), averaged over the hidden dimension and the tokens where ``attention_mask`` (any shape
    with batch · tokens elements, e.g. [batch, choices, tokens]) is 1; all tokens without a mask. Computed in float32;
    the teacher's states are detached. A scalar; 0 for no pairs (a sub-network or export without layers)."""
    losses = []
    for student_index, teacher_index in pairs:
        student, teacher = student_hidden[student_index].float(), teacher_hidden[teacher_index].detach().float()
        squared = (student - teacher).pow(2).mean(dim=-1)  # [batch, tokens]
        if attention_mask is None:
            losses.append(squared.mean())
        else:
            weights = attention_mask.reshape(squared.shape).to(squared.dtype)
            losses.append((squared * weights).sum() / weights.sum().clamp_min(1.0))
    if losses:
        return torch.stack(losses).mean()
    device = next((tensor.device for tensor in (*student_hidden, *teacher_hidden, attention_mask) if tensor is not None), None)
    return torch.zeros((), device=device)


class LayerDistillation:
    """The layer-wise term against a fixed teacher model: ``self(batch) -> teacher logits`` runs the teacher (eval
    mode, no gradients, ``output_hidden_states``) and keeps its hidden states for the batch; ``loss(student_hidden,
    mask, batch)`` is ``weight · hidden_state_loss`` of the student's hidden states (a sub-network given by ``mask``,
    None = every layer) against those kept states, with ``layer_mapping``. Call it as the teacher once per batch,
    before the losses of that batch's sub-networks."""

    def __init__(self, teacher: PreTrainedModel, weight: float = 1.0) -> None:
        self.teacher, self.weight = teacher, weight
        self.teacher_hidden: tuple[torch.Tensor, ...] | None = None

    @torch.no_grad()
    def __call__(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        self.teacher.eval()
        output = self.teacher(**{k: v for k, v in batch.items() if k != "labels"}, output_hidden_states=True)
        self.teacher_hidden = output.hidden_states
        return output.logits

    def loss(self, student_hidden: Sequence[torch.Tensor], mask: SubnetMask | None, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``weight`` times the hidden-state loss of the current batch; RuntimeError before the teacher has run."""
        if self.teacher_hidden is None:
            raise RuntimeError("LayerDistillation.loss before the teacher ran on the batch; call it as the teacher first")
        pairs = layer_mapping(kept_layers(mask, len(student_hidden) - 1), len(self.teacher_hidden) - 1)
        return self.weight * hidden_state_loss(student_hidden, self.teacher_hidden, pairs, batch.get("attention_mask"))
