"""Precision: the registry and its resolution, bf16 and fp16 training through the one loop (finite float32 weights,
outputs close to fp32's), and the precision kept in the resume state and checked on resume."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import VOCAB, tiny_model

from syne_prune import SynePruneError
from syne_prune.precision import PRECISION_ENV, PRECISIONS, autocast, backward, make_scaler, resolve_precision, scaling, use_precision
from syne_prune.training import LoopSettings, TrainingLoop, label_loss_step, seed_everything

CPU = torch.device("cpu")
SETTINGS = LoopSettings(epochs=3, lr=1e-3, batch_size=4, seed=0, progress=False)
# bf16 keeps 8 bits of mantissa (relative rounding 2^-9 = 0.002 per product): after 9 AdamW steps the tiny model's
# logits (magnitude ~1) stay within this of the fp32 run's, while training itself moves them by more than 5x as much
BF16_LOGIT_TOLERANCE = 0.05


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import BertTokenizerFast

    vocab = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(VOCAB - 5)]) + "\n")
    return BertTokenizerFast(vocab=str(vocab))


def _examples(count: int = 12) -> list[dict]:
    rng = np.random.RandomState(5)
    return [{"input_ids": rng.randint(5, VOCAB, int(rng.randint(4, 12))).tolist(), "labels": i % 3} for i in range(count)]


def _batch() -> dict[str, torch.Tensor]:
    return {"input_ids": torch.tensor(np.random.RandomState(7).randint(5, VOCAB, (6, 9)))}


def _trained(tokenizer, precision: str) -> tuple[torch.nn.Module, TrainingLoop]:
    seed_everything(0)
    model = tiny_model("bert", "classifier").train()
    examples = [{**e, "attention_mask": [1] * len(e["input_ids"])} for e in _examples()]
    loop = TrainingLoop(model, examples, tokenizer, label_loss_step, SETTINGS, device=CPU, precision=precision)
    loop.run()
    return model.eval(), loop


@torch.no_grad()
def _logits(model) -> torch.Tensor:
    return model(**_batch()).logits.float()


def test_registry_and_auto_on_the_cpu(monkeypatch):
    monkeypatch.delenv(PRECISION_ENV, raising=False)
    assert set(PRECISIONS) == {"fp32", "bf16", "fp16"}
    assert resolve_precision("auto", CPU) == "fp32" and resolve_precision(None, CPU) == "fp32"
    assert [PRECISIONS[n].needs_scaler for n in ("fp32", "bf16", "fp16")] == [False, False, True]
    with use_precision("bf16"):
        assert resolve_precision(None, CPU) == "bf16"
        with use_precision("auto"):  # auto keeps the enclosing choice
            assert resolve_precision(None, CPU) == "bf16"
    assert resolve_precision(None, CPU) == "fp32"
    with pytest.raises(SynePruneError, match=r"unknown --precision 'fp8'; choose one of auto, fp32, bf16, fp16"):
        resolve_precision("fp8", CPU)


def test_fp32_is_no_autocast_and_bf16_computes_in_bfloat16():
    a = torch.randn(4, 4)
    with autocast("fp32", CPU):
        assert torch.equal(a @ a, torch.mm(a, a)) and (a @ a).dtype == torch.float32
    with autocast("bf16", CPU):
        assert (a @ a).dtype == torch.bfloat16
    assert make_scaler("fp32", CPU) is None and make_scaler("bf16", CPU) is None


def test_backward_scales_the_loss_only_inside_scaling():
    weight = torch.ones(3, requires_grad=True)
    backward((weight * 2).sum())
    assert torch.equal(weight.grad, torch.full((3,), 2.0))
    weight.grad = None
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    with scaling(scaler):
        backward((weight * 2).sum())
    assert torch.equal(weight.grad, torch.full((3,), 2048.0))


def test_bf16_training_gives_finite_float32_weights_close_to_fp32(tokenizer):
    untrained = _logits(tiny_model("bert", "classifier"))
    fp32, fp32_loop = _trained(tokenizer, "fp32")
    bf16, bf16_loop = _trained(tokenizer, "bf16")
    assert bf16_loop.precision == "bf16" and bf16_loop.scaler is None
    assert all(p.dtype == torch.float32 and bool(torch.isfinite(p).all()) for p in bf16.parameters())
    moved = (_logits(fp32) - untrained).abs().max().item()
    gap = (_logits(bf16) - _logits(fp32)).abs().max().item()
    assert moved > 5 * BF16_LOGIT_TOLERANCE, moved  # training changed the outputs: agreement below is not for free
    assert gap < BF16_LOGIT_TOLERANCE, gap
    assert 0 < gap  # and bf16 did compute differently
    assert abs(bf16_loop.history[-1]["train_loss"] - fp32_loop.history[-1]["train_loss"]) < 0.05


def test_fp16_training_steps_through_the_gradient_scaler(tokenizer):
    model, loop = _trained(tokenizer, "fp16")
    assert loop.scaler is not None and loop.compute_record()["scaler"]["scale"] > 0
    assert all(p.dtype == torch.float32 and bool(torch.isfinite(p).all()) for p in model.parameters())
    assert loop.history[-1]["train_loss"] < loop.history[0]["train_loss"]


def test_resume_in_another_precision_is_one_line_error_and_another_device_is_said(tokenizer, tmp_path, capsys):
    _, loop = _trained(tokenizer, "bf16")
    loop.save(tmp_path / "state.pt")
    saved = torch.load(tmp_path / "state.pt", weights_only=False)
    assert saved["compute"]["precision"] == "bf16" and saved["compute"]["device"] == "cpu"

    other = TrainingLoop(tiny_model("bert", "classifier"), _examples(), tokenizer, label_loss_step, SETTINGS, device=CPU, precision="fp32")
    with pytest.raises(SynePruneError, match=r"--resume in precision fp32, but the interrupted run trained in bf16; resume with "
                                             r"--precision bf16, or start again \(--overwrite\)"):
        other.resume(tmp_path / "state.pt")

    saved["compute"]["device"] = "cuda"  # as if the interrupted run had trained on a GPU
    torch.save(saved, tmp_path / "state.pt")
    same = TrainingLoop(tiny_model("bert", "classifier"), _examples(), tokenizer, label_loss_step, SETTINGS, device=CPU, precision="bf16")
    assert same.resume(tmp_path / "state.pt") and same.epochs_done == SETTINGS.epochs
    assert "note: resuming on cpu; the interrupted run trained on cuda" in capsys.readouterr().err


def test_a_resume_state_without_a_precision_was_fp32(tokenizer, tmp_path):
    _, loop = _trained(tokenizer, "fp32")
    loop.save(tmp_path / "state.pt")
    saved = torch.load(tmp_path / "state.pt", weights_only=False)
    del saved["compute"]
    torch.save(saved, tmp_path / "state.pt")
    fresh = TrainingLoop(tiny_model("bert", "classifier"), _examples(), tokenizer, label_loss_step, SETTINGS, device=CPU, precision="fp32")
    assert fresh.resume(tmp_path / "state.pt")
    bf16 = TrainingLoop(tiny_model("bert", "classifier"), _examples(), tokenizer, label_loss_step, SETTINGS, device=CPU, precision="bf16")
    with pytest.raises(SynePruneError, match="trained in fp32"):
        bf16.resume(tmp_path / "state.pt")


@pytest.mark.slow
def test_train_supernet_records_its_precision_and_device(tiny_model_dirs, glue_dir, tmp_path):
    from helpers import train_args

    from syne_prune.artifacts import SupernetDir
    from syne_prune.cli import main

    assert main(train_args(tiny_model_dirs["bert"], glue_dir, tmp_path / "bf16", "--precision", "bf16", "--device", "cpu")) == 0
    assert SupernetDir(tmp_path / "bf16").read()["compute"] == {"precision": "bf16", "device": "cpu"}
    assert main(train_args(tiny_model_dirs["bert"], glue_dir, tmp_path / "auto")) == 0
    assert SupernetDir(tmp_path / "auto").read()["compute"] == {"precision": "fp32", "device": "cpu"}  # auto on the CPU


def _linear_dtypes(model) -> list[torch.dtype]:
    """Records the dtype of every ``nn.Linear`` output of ``model`` while it runs."""
    seen: list[torch.dtype] = []
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            module.register_forward_hook(lambda m, args, out: seen.append(out.dtype))
    return seen


@pytest.mark.parametrize("precision, dtype", [("fp32", torch.float32), ("bf16", torch.bfloat16)])
def test_every_evaluation_computes_in_the_runs_precision(precision, dtype, tokenizer):
    """Predictions, the latency objective and embeddings run their matrix products in the run's precision (as training
    does), and still give float32 outputs."""
    from syne_prune.embedding.objectives import embed
    from syne_prune.embedding.pooling import Pooling
    from syne_prune.evaluation import predict
    from syne_prune.objectives import measure_latency_ms

    model = tiny_model("bert", "classifier")
    seen = _linear_dtypes(model)
    batches = [{**_batch(), "attention_mask": torch.ones(6, 9, dtype=torch.long), "labels": torch.zeros(6, dtype=torch.long)}]
    encoder = tiny_model("bert", "base")
    encoded = _linear_dtypes(encoder)
    with use_precision(precision):
        predictions, _ = predict(model, batches, "classification")
        measure_latency_ms(model, seq_len=8, repeats=1, warmup=0, vocab_size=VOCAB)
        embeddings = embed(encoder, Pooling("mean", normalize=True), ["w5 w6", "w7"], tokenizer, max_length=8)
    assert seen and set(seen) == {dtype} and encoded and set(encoded) == {dtype}
    assert predictions.shape == (6,) and embeddings.dtype == np.float32 and np.isfinite(embeddings).all()
