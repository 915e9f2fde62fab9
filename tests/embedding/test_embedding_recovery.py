"""Recovery of an embedding export: distils again on the recorded sentences, keeps the best weights on validation,
and writes an embedding export with its sentence-transformers files; a labelled option is refused in one line."""
from __future__ import annotations

import json

import pytest
import torch
from helpers import fails

from syne_prune.cli import main
from syne_prune.data import TaskSpec
from syne_prune.embedding import (
    EmbeddingScorer,
    EmbeddingTrainingConfig,
    Pooling,
    embed,
    load_embedding_data,
    load_encoder,
    read_pooling,
    recover_embedding,
    train_embedding_supernet,
)
from syne_prune.models import load_tokenizer

pytestmark = pytest.mark.slow  # trains a super-network and exports it first (about 6 s)


@pytest.fixture(scope="module")
def small_export(st_dir, embedding_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("recovery")
    task = TaskSpec(train_file=str(embedding_data["sentences"]), task_type="embedding")
    train_embedding_supernet(EmbeddingTrainingConfig(model=str(st_dir), task=task, epochs=1, batch_size=8, search_space="small", max_length=32,
                                                     importance="none", output=str(root / "sn")), progress=False)
    assert main(["export", "--model", str(root / "sn"), "--search-space", "small", "--config",
                 '{"num_layers": 1, "num_heads": 2, "num_units": 10}', "--output", str(root / "small")]) == 0
    return root / "small"


def test_recovery_keeps_the_best_validation_weights(small_export, st_dir, tmp_path):
    torch.set_num_threads(1)
    record = recover_embedding(small_export, st_dir, 2, tmp_path / "rec", batch_size=8, lr=1e-3, progress=False)
    recovery = record["recovery"]
    validated = [recovery["before"]["validation"]["error"]] + [h["validation"]["error"] for h in recovery["history"]]
    assert recovery["kept_epoch"] == validated.index(min(validated))
    assert recovery["after"]["validation"]["error"] == min(validated)
    assert read_pooling(tmp_path / "rec") == Pooling("mean", True)
    # the written weights score what the record says
    spec = TaskSpec.from_json(record["embedding_task"])
    data = load_embedding_data(spec, record["data"]["validation_fraction"], record["data"]["seed"])
    tokenizer = load_tokenizer(str(tmp_path / "rec"))
    teacher = embed(load_encoder(str(st_dir)), Pooling(), data.validation, tokenizer, 32)
    scorer = EmbeddingScorer(Pooling(), tokenizer, 32, None, data.validation, teacher)
    assert scorer.scores(load_encoder(str(tmp_path / "rec")))["error"] == pytest.approx(recovery["after"]["validation"]["error"], abs=1e-5)
    assert json.loads((tmp_path / "rec" / "syne_prune.json").read_text())["heads_per_layer"] == record["heads_per_layer"]


def test_labelled_options_are_refused(small_export, st_dir, tmp_path, capsys):
    fails(capsys, ["recover", "--model", str(small_export), "--teacher", str(st_dir), "--epochs", "1", "--output", str(tmp_path / "r"),
                   "--max-length", "16"], "--max-length does not apply to an embedding export")
    assert not (tmp_path / "r").exists()
