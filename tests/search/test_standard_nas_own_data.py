"""Standard NAS on the user's own data: the task is resolved once, before any trial; every trial reads that resolved
specification (the same files, columns and class names); search.json records it with the files' sha256; a file
changed under a resumed search is one line naming it."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import fails

from syne_prune.cli import main
from syne_prune.data import TaskSpec, encode, eval_batches, load_task, resolve_task, task_record
from syne_prune.evaluation import evaluate
from syne_prune.search.finetune import FineTuneSettings, load_pretrained, load_trained
from syne_prune.search.protocol import task_of_word, task_word

WORDS = ["good", "great", "fine", "bad", "dull", "awful", "the", "film", "was", "plot", "is", "really"]


def tickets(folder: Path, rows: int = 48, seed: int = 0) -> tuple[Path, Path]:
    """A generated CSV task in ``folder``: column ``review`` (a few words), ``verdict`` the string label ``praise``
    when the first adjective is positive, else ``complaint``; train.csv and test.csv."""
    rng = np.random.RandomState(seed)
    folder.mkdir(parents=True, exist_ok=True)

    def table(count: int) -> pd.DataFrame:
        reviews, verdicts = [], []
        for _ in range(count):
            adjective = WORDS[rng.randint(6)]
            reviews.append(" ".join(["the", WORDS[7 + rng.randint(2)], "was", adjective, *rng.choice(WORDS, 3)]))
            verdicts.append("praise" if WORDS.index(adjective) < 3 else "complaint")
        return pd.DataFrame({"review": reviews, "verdict": verdicts})

    train, test = folder / "train.csv", folder / "test.csv"
    table(rows).to_csv(train, index=False)
    table(rows // 2).to_csv(test, index=False)
    return train, test


def _argv(model: Path, train: Path, test: Path, output: Path, *extra: str) -> list[str]:
    return ["search", "--trial-kind", "standard", "--model", str(model), "--train-file", str(train), "--test-file", str(test),
            "--text-columns", "review", "--label-column", "verdict", "--search-space", "small", "--epochs", "1", "--batch-size", "8",
            "--max-length", "16", "--lr", "1e-3", "--scheduler", "random", "--n-workers", "1", "--max-trials", "2", "--seed", "3",
            "--output", str(output), *extra]


def test_a_resolved_task_travels_to_every_trial_as_one_word(tmp_path):
    train, test = tickets(tmp_path)
    record = task_record(resolve_task(TaskSpec(train_file=str(train), test_file=str(test), text_columns=("review",), label_column="verdict")))
    word = task_word(record)
    assert " " not in word and task_of_word(word) == json.loads(json.dumps(record)) and task_of_word("rte") == "rte"
    settings = FineTuneSettings(model="m", task=record, task_files="/channel")
    again, objectives = FineTuneSettings.from_constants({k: str(v) for k, v in settings.as_constants(("error", "params")).items()})
    assert again == FineTuneSettings(model="m", task=json.loads(json.dumps(record)), task_files="/channel") and objectives == ("error", "params")


@pytest.mark.parametrize("argv, message", [
    (["--trial-kind", "standard", "--model", "m", "--task", "rte", "--train-file", "t.csv"], "give either --task or your own data"),
    (["--trial-kind", "standard", "--model", "m", "--train-file", "t.csv", "--data-dir", "d"], "with your own data drop it"),
    (["--trial-kind", "standard", "--model", "m", "--label-column", "y"], "--label-column describes your own data"),
    (["--supernet", "s", "--train-file", "t.csv"], "--train-file/--dataset belong to --trial-kind standard"),
])
def test_own_data_options_that_do_not_fit_the_search_are_one_line(tmp_path, capsys, argv, message):
    (tmp_path / "t.csv").write_text("text,label\na,x\nb,y\n")
    fails(capsys, [a if a != "t.csv" else str(tmp_path / a) for a in ["search", *argv, "--max-trials", "1", "--output", str(tmp_path / "out")]],
          message)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_standard_nas_on_a_csv_task_scores_every_trial_on_the_users_files(tiny_model_dirs, tmp_path, capsys):
    """The trials fine-tune on the user's train file and are scored on a seeded share of it (validation) and on the
    test file with the class names sorted (complaint = 0, praise = 1): a finished trial's weights, evaluated here
    on those splits, give the errors its trial reported; search.json records the resolved task with the sha256."""
    train, test = tickets(tmp_path / "data")
    output = tmp_path / "search"
    assert main(_argv(tiny_model_dirs["bert"], train, test, output)) == 0
    record = json.loads((output / "search.json").read_text())
    task = record["task"]
    assert task["labels"] == ["complaint", "praise"] and task["text_columns"] == ["review"] and task["label_column"] == "verdict"
    assert dict(map(tuple, task["sha256"])) == {split: hashlib.sha256(path.read_bytes()).hexdigest() for split, path in (("train", train), ("test", test))}
    assert record["settings"]["trial_settings"]["task"] == task  # what every trial got, and what a resume must match
    trials = pd.read_csv(output / "trials.csv")
    assert len(trials) == 2 and (trials["status"] == "completed").all(), trials["failure_reason"].tolist()
    settings = FineTuneSettings(**record["settings"]["trial_settings"])
    data = load_task(TaskSpec.from_json(task), validation_fraction=settings.validation_fraction, seed=settings.seed)
    assert len(data.test) == 24 and data.test.labels.tolist() == [int(v == "praise") for v in pd.read_csv(test)["verdict"]]
    for _, row in trials.iterrows():
        model, tokenizer, space = load_pretrained(settings)
        sub = load_trained(model, space, space.validate({k: int(row[k]) for k in space.config_space}), output / row["checkpoint"])
        with torch.no_grad():
            errors = [evaluate(sub, eval_batches(encode(split, tokenizer, settings.max_length, False), tokenizer, settings.eval_batch_size),
                               data.task)["error"] for split in (data.validation, data.test)]
        assert errors == [pytest.approx(row["error"], abs=1e-9), pytest.approx(row["test_error"], abs=1e-9)]


@pytest.mark.slow
def test_a_data_file_changed_under_a_resumed_standard_search_is_one_line(tiny_model_dirs, tmp_path, capsys):
    train, test = tickets(tmp_path / "data")
    output = tmp_path / "search"
    assert main(_argv(tiny_model_dirs["bert"], train, test, output)) == 0
    recorded = hashlib.sha256(train.read_bytes()).hexdigest()
    before = {p: p.read_bytes() for p in output.rglob("*") if p.is_file()}
    tickets(tmp_path / "data", seed=1)  # the same files, other rows
    now = hashlib.sha256(train.read_bytes()).hexdigest()
    line = fails(capsys, _argv(tiny_model_dirs["bert"], train, test, output, "--resume"), f"data file {train} (train) changed")
    assert recorded[:12] in line and now[:12] in line
    assert {p: p.read_bytes() for p in output.rglob("*") if p.is_file()} == before
