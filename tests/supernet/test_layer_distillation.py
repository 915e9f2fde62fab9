"""Layer-wise distillation: the hidden-state loss, its layer mapping, and its use in super-network training and recovery."""
from __future__ import annotations

import copy
import math

import pytest
import torch
from conftest import tiny_batch, tiny_model
from helpers import FAST
from safetensors.torch import load_file

from syne_prune.errors import SynePruneError
from syne_prune.masks import SubnetMask
from syne_prune.recovery import recover
from syne_prune.supernet import LayerDistillation, TrainingConfig, hidden_state_loss, layer_mapping, train_supernet
from syne_prune.supernet import layer_distillation as layer_module
from syne_prune.surgery import InPlaceMask


def test_the_uniform_mapping_pairs_the_jth_kept_layer_with_the_teachers_layer_j_times_n_over_m():
    assert layer_mapping([0, 1, 2, 3, 4, 5], 6) == [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 6)]  # all kept: each its own
    assert layer_mapping([0, 1, 2], 6) == [(1, 2), (2, 4), (3, 6)]  # TinyBERT's 3 of 6
    assert layer_mapping([0, 2, 5, 7], 12) == [(1, 3), (3, 6), (6, 9), (8, 12)]  # hidden_states index = layer + 1
    assert layer_mapping([1], 2) == [(2, 2)] and layer_mapping([], 2) == []


def test_the_loss_is_the_mean_squared_error_over_real_tokens_and_mapped_layers():
    student = [torch.zeros(2, 3, 4), torch.ones(2, 3, 4), torch.zeros(2, 3, 4)]
    teacher = [torch.zeros(2, 3, 4), torch.zeros(2, 3, 4), torch.zeros(2, 3, 4)]
    teacher[2][1, 2] = 10.0  # a padded token of example 1: ignored with the attention mask
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    # pair (1, 1): every element 1 -> MSE 1; pair (2, 2): 0 on the 5 real tokens -> mean 0.5
    assert hidden_state_loss(student, teacher, [(1, 1), (2, 2)], mask).item() == pytest.approx(0.5, abs=1e-7)
    # without the mask the padded token counts: 100 on 1 of 6 tokens
    assert hidden_state_loss(student, teacher, [(2, 2)]).item() == pytest.approx(100 / 6, abs=1e-5)
    assert hidden_state_loss(student, teacher, []).item() == 0.0
    assert hidden_state_loss((), teacher, [], mask).item() == 0.0  # an export without layers


@pytest.mark.parametrize("head", ["classifier", "multiple_choice"])
def test_the_loss_is_zero_when_the_student_is_the_teacher(head):
    teacher = tiny_model("bert", head)
    student = copy.deepcopy(teacher)
    batch = tiny_batch(choices=3 if head == "multiple_choice" else 0)
    layer = LayerDistillation(teacher, weight=2.0)
    assert torch.equal(layer(batch), student(**batch).logits)  # as the teacher: its logits
    assert layer.loss(student(**batch, output_hidden_states=True).hidden_states, None, batch).item() == 0.0
    different = tiny_model("bert", head, seed=1)
    assert layer.loss(different(**batch, output_hidden_states=True).hidden_states, None, batch).item() > 0.01


def test_a_masked_subnetwork_is_matched_layer_for_layer_through_the_mapping():
    teacher = tiny_model("bert")
    student = copy.deepcopy(teacher)
    batch = tiny_batch()
    layer = LayerDistillation(teacher)
    teacher_hidden = teacher(**batch, output_hidden_states=True).hidden_states
    layer(batch)
    masker = InPlaceMask(student)
    full = SubnetMask.full(2, 4, 37)
    masker.set(full)
    assert layer.loss(student(**batch, output_hidden_states=True).hidden_states, full, batch).item() == pytest.approx(0.0, abs=1e-10)
    top_removed = SubnetMask(full.heads.clone(), full.neurons.clone())
    top_removed.heads[1], top_removed.neurons[1] = False, False  # one layer kept: its output learns from the teacher's last
    masker.set(top_removed)
    hidden = student(**batch, output_hidden_states=True).hidden_states
    expected = hidden_state_loss(hidden, teacher_hidden, [(1, 2)], batch["attention_mask"])
    assert layer.loss(hidden, top_removed, batch).item() == pytest.approx(expected.item(), rel=1e-6) and expected.item() > 0.01
    masker.remove()


def test_the_loss_falls_when_a_student_learns_a_planted_teachers_hidden_states():
    torch.manual_seed(0)
    teacher, student = tiny_model("bert", seed=1), tiny_model("bert", seed=0).train()
    for module in student.modules():  # no dropout: the planted target is reachable exactly
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    batch = tiny_batch(batch=4)
    layer = LayerDistillation(teacher)
    layer(batch)
    optimizer = torch.optim.Adam(student.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = layer.loss(student(**batch, output_hidden_states=True).hidden_states, None, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0], losses


def _counting(monkeypatch) -> list[float]:
    """Every layer-wise loss computed, as a float."""
    real, values = LayerDistillation.loss, []

    def counted(self, *args):
        value = real(self, *args)
        values.append(value.item())
        return value

    monkeypatch.setattr(layer_module.LayerDistillation, "loss", counted)
    return values


@pytest.mark.slow
def test_a_supernetwork_trains_with_layer_distillation_to_finite_weights(tiny_model_dirs, glue_dir, tmp_path, monkeypatch):
    values = _counting(monkeypatch)
    config = TrainingConfig(model=str(tiny_model_dirs["bert"]), task="rte", output=str(tmp_path / "out"), data_dir=str(glue_dir),
                            search_space="medium", strategy="sandwich", epochs=1, batch_size=8, max_train_examples=16,
                            max_eval_examples=8, lr=1e-3, max_length=32, importance="none", teacher="auto",
                            teacher_learning_rates=None, layer_distillation="hidden", layer_distillation_weight=0.5)
    metadata = train_supernet(config, progress=False)
    assert len(values) == 2 * 3 and all(math.isfinite(v) for v in values)  # 2 steps x (largest, random, smallest)
    # the medium space's smallest sub-network keeps no layer: nothing to match; the largest and random ones learn from it
    assert values[2] == values[5] == 0.0 and min(values[0], values[1], values[3], values[4]) > 0
    assert metadata["hyperparameters"]["layer_distillation"] == "hidden"
    assert metadata["hyperparameters"]["layer_distillation_weight"] == 0.5
    weights = load_file(tmp_path / "out" / "model.safetensors")
    assert all(torch.isfinite(tensor).all() for tensor in weights.values())
    for name in ("largest", "smallest"):
        assert math.isfinite(metadata["metrics"][name]["validation"]["error"])


def test_recovery_adds_the_layer_wise_term(exported, tmp_path, monkeypatch):  # noqa: F811
    supernet, export = exported
    values = _counting(monkeypatch)
    recovery = recover(export, supernet, 1, tmp_path / "out", layer_distillation="hidden", **FAST).record["recovery"]
    assert len(values) == 3 and all(math.isfinite(v) and v > 0 for v in values)  # 24 examples in batches of 8
    assert recovery["settings"]["layer_distillation"] == "hidden" and math.isfinite(recovery["last"]["validation"]["error"])
    with pytest.raises(SynePruneError, match="^--layer-distillation must be one of none, hidden, got 'attention'$"):
        recover(export, supernet, 1, tmp_path / "bad", layer_distillation="attention", **FAST)


def test_layer_distillation_needs_a_fixed_teacher():
    for teacher, strategy in ((None, "full"), ("none", "kd"), ("auto", "standard")):
        with pytest.raises(SynePruneError, match="^--layer-distillation needs a fixed teacher to match"):
            TrainingConfig(model="m", task="rte", output="o", teacher=teacher, strategy=strategy, layer_distillation="hidden").check()


@pytest.mark.parametrize("name", ["roberta", "distilbert", "electra", "deberta-v3", "modernbert"])
def test_every_family_gives_hidden_states_the_mapping_can_match(name):
    """Student = teacher scores 0 on every family; with the top layer removed the kept layer learns from the teacher's last."""
    from models.test_family_contract import VARIANTS

    from syne_prune.models import get_family

    variant = VARIANTS[name]
    teacher, batch = variant.build("classifier", "sdpa"), variant.batch("classifier")
    student = copy.deepcopy(teacher)
    shape = get_family(teacher.config).shape(teacher.config)
    layer = LayerDistillation(teacher)
    with torch.no_grad():
        layer(batch)
        masker = InPlaceMask(student)
        full = SubnetMask.full(shape.num_layers, shape.num_heads, shape.num_neurons)
        masker.set(full)
        assert layer.loss(student(**batch, output_hidden_states=True).hidden_states, full, batch).item() == pytest.approx(0.0, abs=1e-10)
        top_removed = SubnetMask(full.heads.clone(), full.neurons.clone())
        top_removed.heads[-1], top_removed.neurons[-1] = False, False
        masker.set(top_removed)
        hidden = student(**batch, output_hidden_states=True).hidden_states
        count = shape.num_layers - 1  # the kept layers 0 .. count - 1: hidden state j learns from the teacher's j * N // count
        pairs = [(j, j * shape.num_layers // count) for j in range(1, count + 1)]
        expected = hidden_state_loss(hidden, layer.teacher_hidden, pairs, batch.get("attention_mask"))
        assert layer.loss(hidden, top_removed, batch).item() == pytest.approx(expected.item(), rel=1e-6) and expected.item() > 1e-4
        masker.remove()
