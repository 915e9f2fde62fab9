"""Multi-label classification from the user's files: a label column of lists is inferred as multi-label, labels
become 0/1 indicators, predictions are sigmoid > 0.5, micro-F1 is the default metric (macro-F1 on request), bad
labels are one line (exit 2, nothing written), and a generated task goes through train-supernet, search, export,
the transformers pipeline and recovery with the user's label names."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_model, wordpiece_vocabulary
from helpers import fails, searched_alike_on_every_backend
from sklearn.metrics import f1_score
from transformers import BertTokenizerFast

from syne_prune.data import TASK_TYPES, TaskSpec, load_task, resolve_task

TOPICS = {"billing": ["invoice", "charge", "refund"], "login": ["password", "account", "signin"], "shipping": ["parcel", "delivery", "courier"]}
FILLER = ["my", "the", "is", "late", "please", "help", "with", "again", "today"]


def tickets(count: int, seed: int) -> list[tuple[str, list[str]]]:
    """Generated tickets: each mentions words of zero to three topics among filler words; its labels are exactly
    those topics (sorted)."""
    rng = np.random.RandomState(seed)
    rows = []
    for _ in range(count):
        topics = sorted(t for t in TOPICS if rng.rand() < 0.4)
        words = [w for t in topics for w in rng.choice(TOPICS[t], 1)] + list(rng.choice(FILLER, 4))
        rng.shuffle(words)
        rows.append((" ".join(words), topics))
    return rows


def write_jsonl(path: Path, rows) -> Path:
    pd.DataFrame([{"text": t, "topics": labels} for t, labels in rows]).to_json(path, orient="records", lines=True)
    return path


def test_lists_of_labels_are_inferred_as_multi_label_with_indicator_labels(tmp_path):
    rows = tickets(40, seed=0)
    task = resolve_task(TaskSpec(train_file=str(write_jsonl(tmp_path / "t.jsonl", rows)), label_column="topics"))
    assert (task.task_type, task.metric_name, task.label_values, task.num_labels) == ("multi-label", "micro-f1", tuple(TOPICS), 3)
    data = load_task(task, validation_fraction=0.25)
    want = {text: [name in labels for name in TOPICS] for text, labels in rows}
    assert data.train.labels.dtype == np.float32 and data.train.labels.shape == (30, 3)
    assert all(list(row.astype(bool)) == want[text] for text, row in zip(data.train.texts[0], data.train.labels))
    macro = resolve_task(TaskSpec(train_file=str(tmp_path / "t.jsonl"), label_column="topics", metric="macro-f1"))
    truth, guess = np.array([[1, 0, 1], [0, 0, 1]]), np.array([[1, 1, 0], [0, 0, 1]])
    assert macro.metric(truth, guess) == pytest.approx(f1_score(truth, guess, average="macro", zero_division=0))
    assert task.metric(truth, guess) == pytest.approx(f1_score(truth, guess, average="micro"))


def test_predictions_are_sigmoid_above_one_half_and_distillation_is_binary_cross_entropy():
    kind = TASK_TYPES["multi-label"]
    logits = torch.tensor([[0.1, -0.1, 3.0], [-2.0, 0.0, 0.5]])
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    predictions, gold = kind.batch_outputs(logits, labels)
    assert predictions.tolist() == [[1, 0, 1], [0, 0, 1]] and gold.tolist() == [[1, 0, 1], [0, 1, 0]]
    teacher, T = torch.tensor([[1.0, -1.0, 0.0], [0.5, 0.5, -0.5]]), 2.0
    expected = T**2 * F.binary_cross_entropy_with_logits(logits / T, torch.sigmoid(teacher / T)) + F.binary_cross_entropy_with_logits(logits, labels)
    assert kind.distillation_loss(logits, teacher, labels, T).item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory) -> Path:
    """A tiny random BERT base model with a WordPiece tokenizer over the tickets' words."""
    path = tmp_path_factory.mktemp("bert") / "model"
    path.mkdir()
    (path / "vocab.txt").write_text("\n".join(wordpiece_vocabulary([t for t, _ in tickets(100, seed=0)])) + "\n")
    BertTokenizerFast(vocab=str(path / "vocab.txt")).save_pretrained(path)
    tiny_model("bert", "base").save_pretrained(path)
    return path


def test_a_label_that_is_not_a_list_is_one_line_and_writes_nothing(base_dir, tmp_path, capsys):
    (tmp_path / "t.jsonl").write_text('{"text": "a", "topics": ["x"]}\n{"text": "b", "topics": "y"}\n')
    out = tmp_path / "out"
    fails(capsys, ["train-supernet", "--model", str(base_dir), "--train-file", str(tmp_path / "t.jsonl"), "--label-column", "topics",
                   "--output", str(out)], "t.jsonl line 2 has the label 'y' in column 'topics', not a list of labels")
    assert not out.exists()


def test_a_label_the_model_does_not_know_is_one_line(base_dir, tmp_path, capsys):
    from transformers import AutoConfig

    model = tmp_path / "classifier"
    shutil.copytree(base_dir, model)
    config = AutoConfig.from_pretrained(model)
    config.architectures, config.problem_type = ["BertForSequenceClassification"], "multi_label_classification"
    config.id2label, config.label2id = {0: "billing", 1: "login"}, {"billing": 0, "login": 1}
    config.save_pretrained(model)
    (tmp_path / "t.jsonl").write_text('{"text": "a", "topics": ["billing"]}\n{"text": "b", "topics": ["login", "refunds"]}\n')
    out = tmp_path / "out"
    fails(capsys, ["train-supernet", "--model", str(model), "--train-file", str(tmp_path / "t.jsonl"), "--label-column", "topics",
                   "--output", str(out)], "t.jsonl line 2 has the label 'refunds' in column 'topics', which is not one of ['billing', 'login']")
    assert not out.exists()


@pytest.mark.slow
def test_a_multi_label_classifier_goes_through_search_export_the_pipeline_and_recovery(base_dir, sagemaker, tmp_path):
    """Trained (standard fine-tuning of the full network), its unpruned network beats the best constant answer; searched
    (alike on the pool, local and SageMaker backends, the files read from the jobs' channel), exported (problem_type
    multi_label_classification, the user's label names), scored by transformers' pipeline with a sigmoid per label
    (a ticket about an invoice and a password gets billing and login), recovered."""
    from transformers import AutoConfig, pipeline

    import syne_prune  # noqa: F401  # registers the pruned classes with transformers' Auto classes
    from syne_prune.cli import main

    (tmp_path / "files").mkdir()
    files = {split: write_jsonl(tmp_path / "files" / f"{split}.jsonl", tickets(count, seed)) for seed, (split, count) in
             enumerate((("train", 300), ("validation", 80), ("test", 80)))}
    assert main(["train-supernet", "--model", str(base_dir), "--train-file", str(files["train"]), "--validation-file", str(files["validation"]),
                 "--test-file", str(files["test"]), "--label-column", "topics", "--search-space", "small", "--lr", "3e-3", "--epochs", "20",
                 "--batch-size", "16", "--max-length", "16", "--strategy", "standard", "--teacher", "none", "--output", str(tmp_path / "sn")]) == 0
    record = json.loads((tmp_path / "sn" / "supernet.json").read_text())
    largest = record["metrics"]["largest"]["test"]["micro-f1"]
    assert largest >= 0.9 and largest > record["constant_answer"]["validation"]["micro-f1"] + 0.2, record["metrics"]
    assert main(["search", "--supernet", str(tmp_path / "sn"), "--output", str(tmp_path / "se"), "--max-trials", "3", "--n-workers", "1"]) == 0
    searched_alike_on_every_backend(tmp_path / "sn", tmp_path / "backends")
    assert main(["export", "--search-dir", str(tmp_path / "se"), "--output", str(tmp_path / "ex"), "--max-params", "1.0"]) == 0
    assert main(["recover", "--model", str(tmp_path / "ex"), "--teacher", str(tmp_path / "sn"), "--epochs", "1",
                 "--output", str(tmp_path / "rec")]) == 0
    for directory in ("ex", "rec"):
        config = AutoConfig.from_pretrained(tmp_path / directory)
        assert config.problem_type == "multi_label_classification" and list(config.id2label.values()) == list(TOPICS)
        scores = pipeline("text-classification", model=str(tmp_path / directory), top_k=None)(["my invoice and password again"])[0]
        assert {s["label"] for s in scores} == set(TOPICS) and all(0 <= s["score"] <= 1 for s in scores)  # a sigmoid per label
        assert {s["label"] for s in scores if s["score"] > 0.5} == {"billing", "login"}, scores


def test_integer_labels_are_ids_into_the_models_names_unless_the_names_are_numbers(tmp_path):
    from types import SimpleNamespace

    from syne_prune import SynePruneError

    path = write_jsonl(tmp_path / "ids.jsonl", [("a", [0, 2]), ("b", [1]), ("c", [])])
    spec = TaskSpec(train_file=str(path), test_file=str(path), label_column="topics", task_type="multi-label")
    named = resolve_task(spec, SimpleNamespace(id2label={0: "billing", 1: "login", 2: "shipping"}))
    assert named.label_values == ("billing", "login", "shipping")
    assert load_task(named, validation_fraction=0.34).test.labels.tolist() == [[1, 0, 1], [0, 1, 0], [0, 0, 0]]
    numbered = resolve_task(spec, SimpleNamespace(id2label={0: "1", 1: "2", 2: "0"}))  # names that are numbers: by name
    assert numbered.label_values == ("1", "2", "0")
    assert load_task(numbered, validation_fraction=0.34).test.labels.tolist() == [[0, 1, 1], [1, 0, 0], [0, 0, 0]]
    with pytest.raises(SynePruneError, match=r"has the label '2' in column 'topics', which is not one of the ids 0..1"):
        resolve_task(spec, SimpleNamespace(id2label={0: "billing", 1: "login"}))
