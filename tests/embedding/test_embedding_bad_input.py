"""Bad input to an embedding run: one line naming the problem and the fix, exit code 2, nothing written."""
from __future__ import annotations

import pandas as pd
import pytest
from embedding_fixtures import tiny_encoder
from helpers import fails
from transformers import BertForSequenceClassification


def _train(model, train_file, output, *extra):
    return ["train-supernet", "--model", str(model), "--task-type", "embedding", "--train-file", str(train_file), "--epochs", "1",
            "--output", str(output), *extra]


def test_a_model_without_pooling_files_needs_pooling(plain_dir, embedding_data, tmp_path, capsys):
    fails(capsys, _train(plain_dir, embedding_data["sentences"], tmp_path / "out"), "has no sentence-transformers pooling files")
    assert not (tmp_path / "out").exists()


def test_a_pairs_file_without_scores(st_dir, embedding_data, tmp_path, capsys):
    pairs = tmp_path / "pairs.csv"
    pd.read_csv(embedding_data["pairs"]).drop(columns="score").to_csv(pairs, index=False)
    line = fails(capsys, _train(st_dir, embedding_data["sentences"], tmp_path / "out", "--validation-file", str(pairs)), "has no score column")
    assert "--label-column" in line
    assert not (tmp_path / "out").exists()


def test_a_training_file_with_an_empty_text_column(st_dir, tmp_path, capsys):
    train = tmp_path / "train.csv"
    pd.DataFrame({"text": [""] * 4, "id": range(4)}).to_csv(train, index=False)
    fails(capsys, _train(st_dir, train, tmp_path / "out", "--text-columns", "text"), "the text column 'text' is empty")
    assert not (tmp_path / "out").exists()


def test_a_task_model_without_pooling(embedding_data, tmp_path, capsys):
    classifier = BertForSequenceClassification(tiny_encoder().config)
    classifier.save_pretrained(tmp_path / "classifier")
    (tmp_path / "classifier" / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\n")
    from transformers import BertTokenizerFast

    BertTokenizerFast(vocab=str(tmp_path / "classifier" / "vocab.txt")).save_pretrained(tmp_path / "classifier")
    line = fails(capsys, _train(tmp_path / "classifier", embedding_data["sentences"], tmp_path / "out"), "is a task model")
    assert "--pooling" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flag", [["--pooling", "mean"], ["--embedding-loss", "mse"]])
def test_embedding_options_need_the_embedding_task_type(bert_dir, glue_dir, tmp_path, capsys, flag):
    fails(capsys, ["train-supernet", "--model", str(bert_dir), "--task", "rte", "--data-dir", str(glue_dir), "--output", str(tmp_path / "o"),
                   *flag], "go with --task-type embedding")
