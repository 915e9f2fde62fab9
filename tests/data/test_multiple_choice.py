"""SWAG (multiple choice) end to end on tiny models: data, super-network training, search, export.

No SWAG files are available offline, so the tests write small files in the layout of the SWAG
repository's ``train.csv`` / ``val.csv`` (same header, quoted CSV), generated in code: each context
has one ending that repeats a word of it, which a model can learn."""
from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import tiny_batch, tiny_model

from syne_prune import SynePruneError, extract_subnetwork, get_family, get_search_space, masked
from syne_prune.data import data_loader, encode, get_task, load_task

HEADER = ["", "video-id", "fold-ind", "startphrase", "sent1", "sent2", "gold-source",
          "ending0", "ending1", "ending2", "ending3", "label"]
WORDS = ["river", "kitchen", "guitar", "garden", "ladder", "window", "bicycle", "camera", "pillow", "bridge"]


def write_swag(path, rows: int, seed: int) -> None:
    rng = np.random.RandomState(seed)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for i in range(rows):
            topic, *others = rng.choice(WORDS, size=4, replace=False)
            label = int(rng.randint(4))
            endings = [f"walks to the {w}, slowly." for w in others]
            endings.insert(label, f"walks to the {topic}, slowly.")
            sent1 = f'Someone looks at the "{topic}", then turns.'  # quotes and commas: real CSV quoting
            writer.writerow([i, f"video{i}", i, f"{sent1} He", sent1, "He", "gold", *endings, label])


@pytest.fixture(scope="module")
def swag_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("swag")
    (root / "SWAG").mkdir()
    write_swag(root / "SWAG" / "train.csv", 120, seed=0)
    write_swag(root / "SWAG" / "val.csv", 40, seed=1)
    return root


def test_swag_splits_encoding_and_batches(swag_dir, tiny_model_dirs):
    from transformers import AutoTokenizer

    data = load_task("swag", swag_dir, validation_fraction=0.25, seed=3)
    assert get_task("swag").is_multiple_choice and get_task("swag").metric_name == "accuracy"
    assert (len(data.train), len(data.validation), len(data.test)) == (90, 30, 40)
    assert data.train.num_choices == data.test.num_choices == 4 and len(data.train.texts) == 6
    raw = pd.read_csv(swag_dir / "SWAG" / "val.csv")
    assert data.test.texts[0][0] == raw["sent1"][0] and '"' in data.test.texts[0][0]  # quoted field read as text
    assert data.test.labels.tolist() == raw["label"].tolist()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dirs["bert"])
    examples = encode(data.test, tokenizer, 32, False)
    assert len(examples[0]["input_ids"]) == 4 and examples[0]["labels"] == raw["label"][0]
    ending = raw[f"ending{raw['label'][0]}"][0]
    want = tokenizer(raw["sent1"][0], f"He {ending}", truncation=True, max_length=32)["input_ids"]
    assert examples[0]["input_ids"][raw["label"][0]] == want
    batch = next(iter(data_loader(examples, tokenizer, 8)))
    assert batch["input_ids"].shape[:2] == (8, 4) and batch["labels"].shape == (8,)


def test_a_malformed_swag_file_is_a_one_line_error(swag_dir, tmp_path):
    (tmp_path / "SWAG").mkdir()
    frame = pd.read_csv(swag_dir / "SWAG" / "train.csv").drop(columns=["ending3"])
    frame.to_csv(tmp_path / "SWAG" / "train.csv", index=False)
    frame.to_csv(tmp_path / "SWAG" / "val.csv", index=False)
    with pytest.raises(SynePruneError, match=r"lacks column\(s\) \['ending3'\]; expected the SWAG repository \(CSV\) SWAG layout"):
        load_task("swag", tmp_path)
    with pytest.raises(SynePruneError, match=r"--data-dir must hold SWAG/train.csv and SWAG/val.csv"):
        load_task("swag", tmp_path / "nowhere")


def test_onnx_export_of_a_multiple_choice_model_is_refused(tmp_path):
    from syne_prune.export import export_onnx

    with pytest.raises(SynePruneError, match="not multiple choice; drop --onnx"):
        export_onnx(tiny_model("bert", "multiple_choice"), tmp_path / "m.onnx")


def test_latency_of_a_multiple_choice_model_is_measured_on_one_choice(monkeypatch):
    from helpers import TimedForward

    from syne_prune.objectives import measure_latency_ms

    model = tiny_model("roberta", "multiple_choice")
    clock = TimedForward(monkeypatch, model, [0.009, 0.009, 0.003, 0.005])  # two warm-up calls, two timed: median 4 ms
    assert measure_latency_ms(model, batch_size=2, seq_len=8, repeats=2, vocab_size=50) == pytest.approx(4.0, rel=1e-9)
    # every call: [batch, 1 choice, length], the encoder's work of a classifier on the same batch
    assert [tuple(c["input_ids"].shape) for c in clock.calls] == [(2, 1, 8)] * 4
    assert all(tuple(c["attention_mask"].shape) == (2, 1, 8) for c in clock.calls)


@pytest.fixture(scope="module")
def swag_supernet(swag_dir, tiny_model_dirs, tmp_path_factory):
    from syne_prune.supernet import TrainingConfig, train_supernet

    out = tmp_path_factory.mktemp("swag-supernet") / "bert"
    config = TrainingConfig(teacher=None, model=str(tiny_model_dirs["bert"]), task="swag", output=str(out), data_dir=str(swag_dir),
                            search_space="medium", strategy="full", epochs=2, batch_size=8, lr=2e-3, max_length=32)
    return out, train_supernet(config, progress=False)


def test_a_swag_supernet_trains_with_every_step_and_loads_as_multiple_choice(swag_supernet, swag_dir):
    from syne_prune.supernet import load_supernet

    out, metadata = swag_supernet
    assert metadata["task"] == "swag" and metadata["metric"] == "accuracy"
    assert all(np.isfinite(h["train_loss"]) for h in metadata["history"])
    loaded = load_supernet(out, task="swag")
    assert type(loaded.model).__name__ == "BertForMultipleChoice"
    # the checkpoint's largest-network accuracy is what evaluating the loaded model gives
    from syne_prune.evaluation import evaluate

    data = load_task("swag", swag_dir, metadata["hyperparameters"]["validation_fraction"], metadata["seed"])
    batches = data_loader(encode(data.test, loaded.tokenizer, 32, False), loaded.tokenizer, 16)
    assert evaluate(loaded.model, batches, get_task("swag"))["accuracy"] == pytest.approx(metadata["metrics"]["largest"]["test"]["accuracy"])


@pytest.mark.slow
def test_a_swag_search_and_its_export_reload_as_multiple_choice(swag_supernet, swag_dir, tmp_path):
    from transformers import AutoModelForMultipleChoice

    from syne_prune.search import SearchConfig, WeightSharingSettings, export_from_search, run_search
    from syne_prune.supernet import load_supernet

    out, _ = swag_supernet
    summary = run_search(SearchConfig(trial_settings=WeightSharingSettings(str(out)), output=str(tmp_path / "search"), scheduler="random", n_workers=2,
                                      max_trials=6, seed=0, data_dir=str(swag_dir), eval_batch_size=16), progress=False)
    trials = pd.read_csv(tmp_path / "search" / "trials.csv")
    assert len(trials) == 6 and (trials["status"] == "completed").all(), trials.get("failure_reason")
    assert trials["error"].between(0, 1).all() and summary["pareto_size"] >= 1
    chosen = pd.read_csv(tmp_path / "search" / "pareto.csv").sort_values("params").iloc[0]
    exported, _ = export_from_search(str(tmp_path / "search"), str(tmp_path / "model"), trial_id=int(chosen["trial_id"]))
    model = AutoModelForMultipleChoice.from_pretrained(exported).eval()
    # the exported network computes what the masked super-network computes
    loaded = load_supernet(out)
    space = get_search_space("medium", get_family(loaded.model.config).shape(loaded.model.config))
    config = {name: int(chosen[name]) for name in space.config_space}
    batch = tiny_batch(batch=2, choices=4)
    batch = {k: v.clamp(max=loaded.model.config.vocab_size - 1) for k, v in batch.items()}
    with torch.inference_mode(), masked(loaded.model, space.to_mask(config)):
        want = loaded.model(**batch).logits
    with torch.inference_mode():
        got = model(**batch).logits
        again = extract_subnetwork(loaded.model, space.to_mask(config))(**batch).logits
    assert got.shape == (2, 4) and (got - want).abs().max() <= 1e-4 and (again - want).abs().max() <= 1e-4
    meta = json.loads((tmp_path / "search" / "summary.json").read_text())
    assert meta["unpruned"]["test_error"] == pytest.approx(1 - loaded.metadata["metrics"]["largest"]["test"]["accuracy"])


def test_standard_nas_fine_tunes_a_swag_subnetwork(swag_dir, tiny_model_dirs, tmp_path, monkeypatch):
    from syne_prune.models import head_of
    from syne_prune.search import finetune
    from syne_prune.search.finetune import WEIGHTS_FILE, FineTuneSettings, fine_tune, load_pretrained, load_trained

    timed = []  # (task head, parameters, batch size, length) of each latency measurement; its "time" is its parameter count

    def parameters_as_latency(model, batch_size, seq_len, **kwargs):
        timed.append((head_of(model), sum(p.numel() for p in model.parameters()), batch_size, seq_len))
        return float(timed[-1][1])
    monkeypatch.setattr(finetune, "measure_latency_ms", parameters_as_latency)

    settings = FineTuneSettings(model=str(tiny_model_dirs["roberta"]), task="swag", search_space="small", epochs=2, lr=2e-3,
                                batch_size=8, max_length=32, data_dir=str(swag_dir), eval_batch_size=16)
    model, _, space = load_pretrained(settings)
    assert type(model).__name__ == "RobertaForMultipleChoice"
    config = space.midpoint()
    before = extract_subnetwork(model, space.to_mask(config), share_weights=False).state_dict()
    reports: list[dict] = []
    fine_tune(settings, config, tmp_path, reports.append, ("error", "params", "latency"))
    assert [r["epoch"] for r in reports] == [1, 2] and all(0 <= r["error"] <= 1 for r in reports)
    # latency: the sub-network's time over the full model's, both timed as multiple-choice models on one sequence of
    # max_length tokens; with parameter counts as times that ratio is the params objective
    sub_params, full_params = (sum(p.numel() for p in m.parameters()) for m in (extract_subnetwork(model, space.to_mask(config)), model))
    assert timed == [("AutoModelForMultipleChoice", sub_params, 1, 32), ("AutoModelForMultipleChoice", full_params, 1, 32)]
    assert all(r["latency"] == pytest.approx(sub_params / full_params, rel=1e-12) == r["params"] for r in reports)
    assert all(np.isfinite(r["train_loss"]) for r in reports) and (tmp_path / WEIGHTS_FILE).is_file()
    after = load_trained(model, space, config, tmp_path).state_dict()
    changed = [name for name in before if not torch.equal(before[name], after[name])]
    assert "classifier.weight" in changed and any(".layer.0." in name for name in changed)  # head and encoder trained
