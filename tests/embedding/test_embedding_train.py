"""Embedding super-network training: the checkpoint (sentence-transformers files, metrics against the teacher),
importance ordering, and a killed run resumed to the same weights as an uninterrupted one."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import syne_prune.embedding.train as train_module
from syne_prune.data import TaskSpec
from syne_prune.embedding import EmbeddingTrainingConfig, Pooling, read_pooling, train_embedding_supernet


def _config(model, data, output, **changes):
    task = TaskSpec(train_file=str(data["sentences"]), task_type="embedding")
    values = dict(model=str(model), task=task, epochs=2, batch_size=8, search_space="small", strategy="sandwich", max_length=32, output=str(output))
    return EmbeddingTrainingConfig(**(values | changes))


def test_checkpoint_holds_the_pooling_and_scores_against_the_teacher(st_dir, embedding_data, tmp_path):
    metadata = train_embedding_supernet(_config(st_dir, embedding_data, tmp_path / "sn", epochs=1), progress=False)
    assert read_pooling(tmp_path / "sn") == Pooling("mean", True)
    assert metadata["metric"] == "cosine" and metadata["task"]["task_type"] == "embedding"
    largest, smallest = (metadata["metrics"][n]["validation"] for n in ("largest", "smallest"))
    assert largest["error"] == pytest.approx(1 - largest["cosine"])
    assert largest["cosine"] > smallest["cosine"]  # the whole network is closer to the teacher than a one-unit one
    assert metadata["importance"]["method"] == "fisher"
    orders = metadata["importance"]["head_order"]
    assert all(sorted(layer) == list(range(4)) for layer in orders)  # a permutation of every layer's heads
    teacher = np.load(tmp_path / "sn" / "teacher_embeddings.npy")
    assert teacher.shape == (metadata["num_validation_examples"], 32)


def test_pairs_give_the_spearman_objective(st_dir, embedding_data, tmp_path):
    task = TaskSpec(train_file=str(embedding_data["sentences"]), validation_file=str(embedding_data["pairs"]), task_type="embedding")
    metadata = train_embedding_supernet(_config(st_dir, embedding_data, tmp_path / "sn", task=task, epochs=1, importance="magnitude"), progress=False)
    assert metadata["metric"] == "spearman" and metadata["num_validation_examples"] == 24
    assert -1 <= metadata["metrics"]["largest"]["validation"]["spearman"] <= 1


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_same_weights(st_dir, embedding_data, tmp_path, monkeypatch):
    torch.set_num_threads(1)
    train_embedding_supernet(_config(st_dir, embedding_data, tmp_path / "straight"), progress=False)
    real = train_module.save_training_state
    calls = []

    def save_then_die(*args, **kwargs):
        real(*args, **kwargs)
        calls.append(1)
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "save_training_state", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_embedding_supernet(_config(st_dir, embedding_data, tmp_path / "resumed"), progress=False)
    monkeypatch.setattr(train_module, "save_training_state", real)
    metadata = train_embedding_supernet(_config(st_dir, embedding_data, tmp_path / "resumed"), resume=True, progress=False)
    assert calls == [1] and len(metadata["history"]) == 2
    straight, resumed = (load_file(tmp_path / d / "model.safetensors") for d in ("straight", "resumed"))
    assert all(torch.allclose(straight[k], resumed[k], atol=1e-6) for k in straight)
    assert json.loads((tmp_path / "resumed" / "config.json").read_text())["syne_prune_importance"] == "fisher"


def test_search_data_read_from_a_folder_of_copies_equal_the_originals_and_a_changed_copy_is_refused(embedding_data, tmp_path):
    """A SageMaker job reads the data files from its channel (``spec_files``' names, ``task_files``): the same
    held-out sentences and pairs as from the original files; a copy that differs is one line naming the file."""
    import shutil

    from syne_prune import SynePruneError
    from syne_prune.data import spec_files
    from syne_prune.embedding import embedding_search_data, resolve_embedding_task

    spec = resolve_embedding_task(TaskSpec(train_file=str(embedding_data["sentences"]), validation_file=str(embedding_data["pairs"]),
                                           task_type="embedding"))
    metadata = {"task": spec.to_json(), "hyperparameters": {"validation_fraction": 0.25, "seed": 3}}
    channel = tmp_path / "channel"
    names = spec_files(spec)
    assert sorted(names) == ["train.csv", "validation.csv"]
    for name, path in names.items():
        (channel / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, channel / name)
    here, there = embedding_search_data(metadata, 10), embedding_search_data(metadata, 10, str(channel))
    assert len(here.validation) == 10 and there.validation == here.validation
    assert there.pairs.first == here.pairs.first and np.array_equal(there.pairs.scores, here.pairs.scores)
    (channel / "train.csv").write_text((channel / "train.csv").read_text() + "one more sentence\n")
    with pytest.raises(SynePruneError, match=r"channel/train.csv \(train\) changed since the task was recorded"):
        embedding_search_data(metadata, 10, str(channel))
