from __future__ import annotations

import hashlib

import numpy as np
import pytest
from conftest import GLUE_FIXTURES, GLUE_FOLDERS
from scipy.stats import spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from syne_prune import SynePruneError
from syne_prune.data import TASKS, load_task


@pytest.mark.parametrize("task, size, labels", [("rte", 100, {0, 1}), ("mrpc", 100, {0, 1}), ("cola", 100, {0, 1}), ("sst2", 100, {0, 1})])
def test_local_glue_files_are_read_with_their_quirks(glue_dir, task, size, labels):
    data = load_task(task, glue_dir)
    assert len(data.train) + len(data.validation) == size and len(data.test) == 40
    assert set(np.unique(data.train.labels)) <= labels
    assert all(isinstance(t, str) and t for column in data.train.texts for t in column)


def test_mrpc_byte_order_mark_and_cola_without_header(glue_dir):
    mrpc = load_task("mrpc", glue_dir, validation_fraction=0.5)
    assert len(mrpc.train.texts) == 2  # the BOM did not break the '#1 String' column
    cola = load_task("cola", glue_dir)
    assert len(cola.train.texts) == 1
    assert len(cola.train) + len(cola.validation) == 100 and len(cola.test) == 40  # no row lost to the missing header
    first = (glue_dir / "CoLA" / "train.tsv").read_text(encoding="utf-8").split("\n")[0].split("\t")[3]
    assert first in cola.train.texts[0] + cola.validation.texts[0]  # the first line is a row, not a header


def test_committed_glue_slices_keep_the_original_bytes():
    """The slices are the originals' first lines byte for byte (SHA256SUMS): MRPC's byte-order mark, CoLA's missing
    header and the stray quotes are there, not re-encoded or re-quoted away."""
    sums = dict(reversed(line.split("  ", 1)) for line in (GLUE_FIXTURES / "SHA256SUMS").read_text().splitlines())
    files = {f"{folder}/{name}": (GLUE_FIXTURES / folder / name).read_bytes() for folder in GLUE_FOLDERS for name in ("train.tsv", "dev.tsv")}
    assert sums == {path: hashlib.sha256(data).hexdigest() for path, data in files.items()}
    assert all(files[f"MRPC/{name}"].startswith(b"\xef\xbb\xbfQuality\t") for name in ("train.tsv", "dev.tsv"))
    assert files["CoLA/train.tsv"].startswith(b"gj04\t1\t\t") and files["CoLA/train.tsv"].count(b"\n") == 100
    assert b'"' in files["RTE/train.tsv"] and b'"' in files["MRPC/train.tsv"]


def test_stsb_is_regression_with_float_scores(glue_dir):
    data = load_task("stsb", glue_dir)
    assert TASKS["stsb"].is_regression and data.train.labels.dtype == np.float32
    assert 0 <= data.train.labels.min() and data.train.labels.max() <= 5


def test_validation_is_a_seeded_held_out_part_of_train(glue_dir):
    a, b = load_task("rte", glue_dir, seed=1), load_task("rte", glue_dir, seed=1)
    c = load_task("rte", glue_dir, seed=2)
    assert a.validation.texts == b.validation.texts and a.validation.texts != c.validation.texts
    assert len(a.validation) == 30 and len(a.train) == 70
    assert not set(a.validation.texts[0]) & set(a.train.texts[0])


def test_caps_on_examples(glue_dir):
    data = load_task("rte", glue_dir, max_train_examples=10, max_eval_examples=5)
    assert (len(data.train), len(data.validation), len(data.test)) == (10, 5, 5)


def test_metrics_equal_sklearn_and_scipy():
    rng = np.random.RandomState(0)
    labels, predictions = rng.randint(0, 2, 50), rng.randint(0, 2, 50)
    assert TASKS["rte"].metric(labels, predictions) == accuracy_score(labels, predictions)
    assert TASKS["mrpc"].metric(labels, predictions) == f1_score(labels, predictions)
    assert TASKS["qqp"].metric(labels, predictions) == f1_score(labels, predictions)
    assert TASKS["cola"].metric(labels, predictions) == matthews_corrcoef(labels, predictions)
    scores, guesses = rng.rand(50) * 5, rng.rand(50) * 5
    assert TASKS["stsb"].metric(scores, guesses) == spearmanr(scores, guesses).statistic
    assert TASKS["rte"].error(labels, predictions) == 1 - accuracy_score(labels, predictions)
    assert TASKS["stsb"].metric(scores, np.ones(50)) == 0.0  # constant predictions: no correlation, not NaN


def test_bad_data_is_a_one_line_error(tmp_path, glue_dir):
    with pytest.raises(SynePruneError, match="unknown task 'glue'; choose one of rte, mrpc"):
        load_task("glue", glue_dir)
    with pytest.raises(SynePruneError, match=r"RTE/train.tsv not found; --data-dir must hold RTE/train.tsv and RTE/dev.tsv"):
        load_task("rte", tmp_path)
    (tmp_path / "RTE").mkdir()
    (tmp_path / "RTE" / "train.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\ta\tb\tmaybe\n")
    (tmp_path / "RTE" / "dev.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n")
    with pytest.raises(SynePruneError, match=r"unknown label\(s\) \['maybe'\]"):
        load_task("rte", tmp_path)
    (tmp_path / "RTE" / "train.tsv").write_text("index\tsentence1\tlabel\n0\ta\tentailment\n")
    with pytest.raises(SynePruneError, match=r"lacks column\(s\) \['sentence2'\]"):
        load_task("rte", tmp_path)
    (tmp_path / "RTE" / "train.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\textra\tcells\n")
    with pytest.raises(SynePruneError, match="is malformed"):
        load_task("rte", tmp_path)
    (tmp_path / "STS-B").mkdir()
    (tmp_path / "STS-B" / "train.tsv").write_text("index\tsentence1\tsentence2\tscore\n0\ta\tb\thigh\n")
    (tmp_path / "STS-B" / "dev.tsv").write_text("index\tsentence1\tsentence2\tscore\n0\ta\tb\t1.0\n")
    with pytest.raises(SynePruneError, match="non-numeric score 'high'"):
        load_task("stsb", tmp_path)


def test_evaluation_batches_are_length_sorted_and_score_as_unsorted_ones(tiny_model_dirs, glue_dir):
    """Sorting only removes padding: the same examples, the same predictions, the same metric (to float error)."""
    from transformers import AutoTokenizer

    from syne_prune.data import data_loader, encode, eval_batches, get_task
    from syne_prune.evaluation import evaluate, predict
    from syne_prune.models import load_task_model

    task = get_task("rte")
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dirs["bert"])
    examples = encode(load_task("rte", glue_dir).test, tokenizer, 128, False)
    batches = eval_batches(examples, tokenizer, 8)
    lengths = [int(b["attention_mask"].sum(1).max()) for b in batches]
    assert lengths == sorted(lengths) and lengths[0] < lengths[-1]
    padded = sum(b["input_ids"].numel() for b in batches)
    unsorted = list(data_loader(examples, tokenizer, 8))
    assert padded < sum(b["input_ids"].numel() for b in unsorted)  # less padding to compute on
    model = load_task_model(tiny_model_dirs["bert"], task).eval()
    sorted_p, sorted_y = predict(model, batches, False)
    p, y = predict(model, unsorted, False)
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]["input_ids"]))  # the order eval_batches uses
    assert (sorted_y == y[order]).all() and (sorted_p == p[order]).all()
    assert evaluate(model, batches, task) == pytest.approx(evaluate(model, unsorted, task))


def test_length_grouped_training_batches_hold_every_example_once_with_less_padding(tiny_model_dirs, glue_dir):
    """The megabatch order of ``--group-by-length``: a permutation of the examples in ceil(N / B) batches, the longest
    example in the first batch, less padding than a plain shuffle, and random (another seed, another order)."""
    import torch
    from transformers import AutoTokenizer

    from syne_prune.data import data_loader, encode, length_grouped_order

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dirs["bert"])
    examples = encode(load_task("sst2", glue_dir).train, tokenizer, 128, False)  # 70 sentences of 6 to 122 tokens
    lengths = [len(e["input_ids"]) for e in examples]
    order = length_grouped_order(lengths, 8, torch.Generator().manual_seed(0), megabatch_batches=4)
    assert sorted(order) == list(range(len(examples))) and len(examples) % 8 != 0  # a last, smaller batch too
    assert max(lengths) in [lengths[i] for i in order[:8]]
    assert order == length_grouped_order(lengths, 8, torch.Generator().manual_seed(0), megabatch_batches=4)
    assert order != length_grouped_order(lengths, 8, torch.Generator().manual_seed(1), megabatch_batches=4)
    grouped = list(data_loader(examples, tokenizer, 8, shuffle=True, seed=0, group_by_length=True))
    plain = list(data_loader(examples, tokenizer, 8, shuffle=True, seed=0))
    assert len(grouped) == len(plain) == -(-len(examples) // 8)
    assert sum(len(b["labels"]) for b in grouped) == len(examples)
    # measured: 3,604 token slots against 6,890 (0.52); sorting the whole slice would give the least
    assert sum(b["input_ids"].numel() for b in grouped) < 0.6 * sum(b["input_ids"].numel() for b in plain)
