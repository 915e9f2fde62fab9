"""A task from the user's own files: every format gives the same splits, defaults are inferred, class names come
from the model and reach the export, a task without test data reports no test metric, and bad data is one line
(exit 2) naming the file, the row and the fix, with no output written. MRPC and STS-B written as the user's files
train the same super-network and search the same trials as the built-in tasks."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import tiny_model
from helpers import fails

from syne_prune import SynePruneError
from syne_prune.cli import main
from syne_prune.data import TaskSpec, get_task, load_task, resolve_task
from syne_prune.data.glue import read_local

MRPC_NAMES = {0: "not_equivalent", 1: "equivalent"}  # MRPC's Quality: 1 = the sentences are paraphrases


def _glue_rows(glue_dir: Path, task: str, file: str) -> pd.DataFrame:
    """A built-in task's file as the user's table: MRPC with renamed columns and string labels, STS-B with scores."""
    split = read_local(get_task(task), glue_dir, file)
    if task == "mrpc":
        return pd.DataFrame({"first": split.texts[0], "second": split.texts[1], "paraphrase": [MRPC_NAMES[int(v)] for v in split.labels]})
    return pd.DataFrame({"sentence1": split.texts[0], "sentence2": split.texts[1], "label": split.labels.astype(float)})


def _write(frame: pd.DataFrame, path: Path) -> Path:
    writers = {".csv": lambda: frame.to_csv(path, index=False), ".tsv": lambda: frame.to_csv(path, sep="\t", index=False),
               ".jsonl": lambda: frame.to_json(path, orient="records", lines=True), ".json": lambda: frame.to_json(path, orient="records"),
               ".parquet": lambda: frame.to_parquet(path)}
    writers[path.suffix]()
    return path


def _own_spec(glue_dir: Path, task: str, folder: Path, suffix: str) -> TaskSpec:
    folder.mkdir(parents=True, exist_ok=True)
    train = _write(_glue_rows(glue_dir, task, "train.tsv"), folder / f"train{suffix}")
    test = _write(_glue_rows(glue_dir, task, "dev.tsv"), folder / f"test{suffix}")
    if task == "mrpc":
        return TaskSpec(train_file=str(train), test_file=str(test), text_columns=("first", "second"), label_column="paraphrase", metric="f1")
    return TaskSpec(train_file=str(train), test_file=str(test))


def _same_splits(first, second) -> None:
    for name in ("train", "validation", "test"):
        a, b = getattr(first, name), getattr(second, name)
        assert a.texts == b.texts, name
        assert a.labels.dtype == b.labels.dtype and np.array_equal(a.labels, b.labels), name


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".json", ".jsonl", ".parquet"])
def test_mrpc_in_every_format_gives_the_built_in_splits(glue_dir, tmp_path, suffix):
    task = resolve_task(_own_spec(glue_dir, "mrpc", tmp_path, suffix), SimpleNamespace(id2label=MRPC_NAMES))
    assert (task.num_labels, task.label_values, task.metric_name) == (2, ("not_equivalent", "equivalent"), "f1")
    _same_splits(load_task("mrpc", glue_dir), load_task(task))


def test_stsb_as_csv_is_inferred_as_regression_and_gives_the_built_in_splits(glue_dir, tmp_path):
    task = resolve_task(_own_spec(glue_dir, "stsb", tmp_path, ".csv"))
    assert (task.spec.task_type, task.metric_name, task.num_labels, task.spec.text_columns) == ("regression", "spearman", 1, ("sentence1", "sentence2"))
    _same_splits(load_task("stsb", glue_dir), load_task(task))


def test_a_saved_dataset_dict_gives_the_same_splits_as_its_files(glue_dir, tmp_path):
    import datasets

    spec = _own_spec(glue_dir, "mrpc", tmp_path / "files", ".csv")
    frames = {"train": pd.read_csv(spec.train_file), "test": pd.read_csv(spec.test_file)}
    datasets.DatasetDict({k: datasets.Dataset.from_pandas(v) for k, v in frames.items()}).save_to_disk(tmp_path / "saved")
    saved = TaskSpec(dataset=str(tmp_path / "saved"), text_columns=("first", "second"), label_column="paraphrase", metric="f1")
    model = SimpleNamespace(id2label=MRPC_NAMES)
    _same_splits(load_task(resolve_task(spec, model)), load_task(resolve_task(saved, model)))


def test_without_a_model_the_class_names_are_sorted_and_integers_stay_ids(tmp_path):
    strings = _write(pd.DataFrame({"text": ["a", "b", "c", "d"], "label": ["zeta", "alpha", "zeta", "beta"]}), tmp_path / "s.csv")
    assert resolve_task(TaskSpec(train_file=str(strings))).label_values == ("alpha", "beta", "zeta")
    integers = _write(pd.DataFrame({"text": ["a", "b", "c"], "label": [2, 0, 2]}), tmp_path / "i.csv")
    task = resolve_task(TaskSpec(train_file=str(integers)))
    assert task.label_values == ("0", "1", "2") and task.spec.task_type == "classification"
    data = load_task(task, validation_fraction=0.34)
    assert sorted(np.concatenate([data.train.labels, data.validation.labels]).tolist()) == [0, 2, 2]
    generic = SimpleNamespace(id2label={0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"})  # a model without task-specific names
    assert resolve_task(TaskSpec(train_file=str(strings)), generic).label_values == ("alpha", "beta", "zeta")


@pytest.mark.parametrize("columns, expected", [
    ({"text": ["x", "y"], "other": ["p", "q"]}, ("text",)),
    ({"sentence2": ["x", "y"], "sentence1": ["p", "q"], "extra": ["s", "t"]}, ("sentence1", "sentence2")),
    ({"question": ["x", "y"], "passage": ["p", "q"], "id": [1, 2]}, ("question", "passage")),
])
def test_text_columns_are_inferred(tmp_path, columns, expected):
    path = _write(pd.DataFrame({**columns, "label": ["a", "b"]}), tmp_path / "t.csv")
    assert resolve_task(TaskSpec(train_file=str(path))).spec.text_columns == expected


def test_without_a_test_file_there_is_no_test_split(tmp_path):
    path = _write(pd.DataFrame({"text": list("abcdef"), "label": [0, 1] * 3}), tmp_path / "t.jsonl")
    assert load_task(TaskSpec(train_file=str(path))).test is None


def test_a_file_changed_after_resolving_is_refused(tmp_path):
    path = _write(pd.DataFrame({"text": list("abcd"), "label": [0, 1, 0, 1]}), tmp_path / "t.csv")
    task = resolve_task(TaskSpec(train_file=str(path)))
    _write(pd.DataFrame({"text": list("abcd"), "label": [1, 1, 0, 1]}), path)
    with pytest.raises(SynePruneError, match=rf"^data file {path} \(train\) changed since the task was recorded \(sha256 "
                                             rf"{task.spec.sha256[0][1][:12]} recorded, [0-9a-f]{{12}} now\)"):
        load_task(task)


def _bad(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


BAD_DATA = {  # file name, content, extra options, expected words of the one error line
    "empty file": ("t.csv", "", [], "t.csv is empty"),
    "header only": ("t.csv", "text,label\n", [], "t.csv has no rows"),
    "misspelled column": ("t.csv", "text,lable\na,x\nb,y\n", [], "has no column 'label'; its columns are text, lable"),
    "mixed label types": ("t.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": "x"}\n', [], "t.jsonl line 2: column 'label' mixes label types"),
    "empty label": ("t.csv", "text,label\na,x\nb,\nc,y\n", [], "t.csv line 3 has an empty or missing label"),
    "NaN score": ("t.csv", "text,label\na,0.5\nb,nan\nc,1.5\n", ["--task-type", "regression"], "t.csv line 3 has the score"),
    "stray delimiter": ("t.csv", "text,label\na,x\nb,c,y\n", [], "line 3 has 3 fields, the header 2"),
    "not UTF-8": ("t.csv", b"text,label\n\xff\xfe,x\nb,y\n", [], "t.csv is not UTF-8 text"),
    "single class": ("t.csv", "text,label\na,x\nb,x\nc,x\n", [], "the train split has a single class"),
    "unknown format": ("t.xlsx", "whatever", [], "unknown data file format '.xlsx'"),
    "unknown metric for the type": ("t.csv", "text,label\na,x\nb,y\n", ["--metric", "spearman"], "unknown metric 'spearman' for classification"),
}


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory) -> Path:
    """A tiny BERT base model (no task-specific class names)."""
    path = tmp_path_factory.mktemp("bert") / "model"
    tiny_model("bert", "classifier").save_pretrained(path)
    return path


@pytest.mark.parametrize("case", list(BAD_DATA))
def test_bad_data_is_one_line_and_writes_nothing(bert_dir, tmp_path, capsys, case):
    name, content, extra, message = BAD_DATA[case]
    path = _bad(tmp_path, name, content)
    out = tmp_path / "out"
    fails(capsys, ["train-supernet", "--model", str(bert_dir), "--train-file", str(path), *extra, "--output", str(out)], message)
    assert not out.exists()


def test_integer_labels_are_ids_into_the_models_names_unless_the_names_are_numbers(tmp_path):
    """A fine-tuned ticket classifier (id2label: billing, login, shipping) with its data's labels stored as ids 0..2;
    a star-rating model whose names are the numbers 1..5, with data labelled 1..5 (names, not ids)."""
    tickets = SimpleNamespace(id2label={0: "billing", 1: "login", 2: "shipping"})
    ids = _write(pd.DataFrame({"text": ["a", "b", "c", "d"], "label": [2, 0, 1, 2]}), tmp_path / "ids.csv")
    task = resolve_task(TaskSpec(train_file=str(ids), test_file=str(ids)), tickets)
    assert task.label_values == ("billing", "login", "shipping")
    assert load_task(task, validation_fraction=0.25).test.labels.tolist() == [2, 0, 1, 2]
    floats = _write(pd.DataFrame({"text": ["a", "b", "c"], "label": [1.0, 0.0, 2.0]}), tmp_path / "floats.jsonl")
    floats_task = resolve_task(TaskSpec(train_file=str(floats), test_file=str(floats)), tickets)
    assert load_task(floats_task, validation_fraction=0.34).test.labels.tolist() == [1, 0, 2]
    stars = SimpleNamespace(id2label={i: str(i + 1) for i in range(5)})
    rated = _write(pd.DataFrame({"text": list("abcde"), "label": [5, 1, 3, 2, 4]}), tmp_path / "stars.csv")
    rated_task = resolve_task(TaskSpec(train_file=str(rated), test_file=str(rated)), stars)
    assert load_task(rated_task, validation_fraction=0.2).test.labels.tolist() == [4, 0, 2, 1, 3]
    beyond = _write(pd.DataFrame({"text": ["a", "b"], "label": [0, 3]}), tmp_path / "beyond.csv")
    with pytest.raises(SynePruneError, match=r"beyond.csv line 3 has the label '3', which is not one of the ids 0..2 of the classes "
                                             r"\['billing', 'login', 'shipping'\]; fix the label"):
        resolve_task(TaskSpec(train_file=str(beyond)), tickets)


def test_a_label_the_model_does_not_know_names_the_label_file_and_line(tmp_path):
    path = _bad(tmp_path, "t.csv", "text,label\na,equivalent\nb,maybe\n")
    with pytest.raises(SynePruneError, match=r"t.csv line 3 has the label 'maybe', which is not one of the classes"):
        resolve_task(TaskSpec(train_file=str(path)), SimpleNamespace(id2label=MRPC_NAMES))


@pytest.mark.parametrize("argv, message", [
    (["--task", "rte", "--train-file", "t.csv"], "give either --task or your own data"),
    (["--train-file", "t.csv", "--dataset", "d"], "either --train-file"),
    (["--label-column", "y"], "--label-column describes your own data; add --train-file or --dataset"),
    ([], "give a built-in --task or your own data"),
])
def test_task_options_that_contradict_each_other_are_one_line(tmp_path, capsys, argv, message):
    (tmp_path / "t.csv").write_text("text,label\na,x\nb,y\n")
    fails(capsys, ["train-supernet", "--model", "m", *[str(tmp_path / a) if a == "t.csv" else a for a in argv],
                    "--output", str(tmp_path / "out")], message)
    assert not (tmp_path / "out").exists()


TIMINGS = ["setup_s", "eval_s", "wall_time_s", "finished_s"]


@pytest.mark.slow
@pytest.mark.parametrize("task", ["mrpc", "stsb"])
def test_built_in_tasks_as_own_files_train_the_same_supernet_and_search_the_same_trials(task, tiny_model_dirs, glue_dir, tmp_path):
    """MRPC as JSON Lines (renamed columns, string labels mapped through the model's id2label) and STS-B as CSV:
    the same super-network weights, bit for bit, and the same trials as the built-in task (same seed)."""
    from safetensors.torch import load_file
    from transformers import AutoConfig

    from syne_prune.artifacts import SearchDir
    from syne_prune.search import SearchConfig, WeightSharingSettings, run_search
    from syne_prune.supernet import TrainingConfig, train_supernet

    model = tmp_path / "model"
    config = AutoConfig.from_pretrained(tiny_model_dirs["bert"])
    config.id2label, config.label2id = dict(MRPC_NAMES), {v: k for k, v in MRPC_NAMES.items()}  # a fine-tuned classifier's names
    shutil.copytree(tiny_model_dirs["bert"], model)
    config.save_pretrained(model)
    own = _own_spec(glue_dir, task, tmp_path / "files", ".jsonl" if task == "mrpc" else ".csv")
    tables = {}
    for name, spec, data_dir in (("built-in", task, str(glue_dir)), ("own", own, None)):
        train_supernet(TrainingConfig(teacher=None, model=str(model), task=spec, data_dir=data_dir, output=str(tmp_path / name / "supernet"),
                                      search_space="medium", strategy="sandwich", epochs=1, batch_size=16, lr=1e-3, max_length=48),
                       progress=False)
        run_search(SearchConfig(trial_settings=WeightSharingSettings(str(tmp_path / name / "supernet")), output=str(tmp_path / name / "search"),
                                scheduler="random", n_workers=1, max_trials=5, seed=1), progress=False)
        tables[name] = SearchDir(tmp_path / name / "search").trials().drop(columns=TIMINGS)  # with the Pareto set's test errors
    weights = [load_file(tmp_path / name / "supernet" / "model.safetensors") for name in ("built-in", "own")]
    assert weights[0].keys() == weights[1].keys()
    assert all(bool((weights[0][k] == weights[1][k]).all()) for k in weights[0])
    pd.testing.assert_frame_equal(tables["built-in"], tables["own"])
    assert tables["own"]["test_error"].notna().any()  # the own test file was scored (Pareto set)


@pytest.mark.slow
def test_class_names_reach_the_export_the_pipeline_and_the_recovered_model(bert_dir, tmp_path, capsys):
    """A CSV with string categories, no test file: train-supernet, search, export and recover through the CLI; the
    exported and recovered models answer with the user's class names and no test metric is reported anywhere."""
    from transformers import BertTokenizerFast, pipeline

    import syne_prune  # noqa: F401  # registers the pruned classes with transformers' Auto classes

    model = tmp_path / "model"
    shutil.copytree(bert_dir, model)
    BertTokenizerFast(vocab=str(_vocabulary(tmp_path))).save_pretrained(model)
    (tmp_path / "tickets").mkdir()
    rows = [(f"ticket {i} about {topic}", topic) for i in range(30) for topic in ("billing", "login", "shipping")]
    train = _write(pd.DataFrame(rows, columns=["body", "category"]), tmp_path / "tickets" / "train.csv")
    assert main(["train-supernet", "--model", str(model), "--train-file", str(train), "--label-column", "category",
                 "--epochs", "1", "--max-length", "16", "--teacher", "none", "--output", str(tmp_path / "sn")]) == 0
    assert "no test data" in capsys.readouterr().out
    record = json.loads((tmp_path / "sn" / "supernet.json").read_text())
    assert record["task"]["labels"] == ["billing", "login", "shipping"] and record["task"]["name"] == "tickets"
    assert record["metrics"]["largest"]["test"] is None and record["num_test_examples"] == 0
    assert main(["search", "--supernet", str(tmp_path / "sn"), "--output", str(tmp_path / "se"), "--max-trials", "3", "--n-workers", "1"]) == 0
    assert pd.read_csv(tmp_path / "se" / "trials.csv")["test_error"].isna().all()
    assert json.loads((tmp_path / "se" / "summary.json").read_text())["unpruned"]["test_error"] is None
    assert main(["export", "--search-dir", str(tmp_path / "se"), "--output", str(tmp_path / "ex"), "--max-params", "1.0"]) == 0
    assert main(["recover", "--model", str(tmp_path / "ex"), "--teacher", str(tmp_path / "sn"), "--epochs", "1",
                 "--output", str(tmp_path / "rec")]) == 0
    for directory in ("ex", "rec"):
        answers = pipeline("text-classification", model=str(tmp_path / directory))(["ticket 3 about login", "ticket 9 about billing"])
        assert {a["label"] for a in answers} <= {"billing", "login", "shipping"}, answers
    assert json.loads((tmp_path / "rec" / "syne_prune.json").read_text())["recovery"]["after"]["test"] is None


def _vocabulary(tmp_path: Path) -> Path:
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "ticket", "about", "billing", "login", "shipping", *map(str, range(30))]
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(words) + "\n")
    return path


@pytest.mark.slow
def test_auto_teacher_is_the_users_classifier_when_it_already_knows_the_classes(bert_dir, tmp_path, capsys):
    """A model whose id2label names exactly the data's classes is the teacher as it is (no fine-tune into
    OUTPUT/teacher); the super-network starts from its weights, head included."""
    from safetensors.torch import load_file
    from transformers import AutoConfig, BertTokenizerFast

    model = tmp_path / "classifier"
    shutil.copytree(bert_dir, model)
    BertTokenizerFast(vocab=str(_vocabulary(tmp_path))).save_pretrained(model)
    config = AutoConfig.from_pretrained(model)
    config.num_labels = 3
    config.id2label = {0: "billing", 1: "login", 2: "shipping"}
    config.label2id = {v: k for k, v in config.id2label.items()}
    config.architectures = ["BertForSequenceClassification"]
    __import__("transformers").BertForSequenceClassification(config).save_pretrained(model)
    rows = [(f"ticket {i} about {topic}", topic) for i in range(20) for topic in ("shipping", "billing", "login")]
    train = _write(pd.DataFrame(rows, columns=["text", "label"]), tmp_path / "train.csv")
    out = tmp_path / "sn"
    assert main(["train-supernet", "--model", str(model), "--train-file", str(train), "--epochs", "1", "--max-length", "16",
                 "--strategy", "sandwich", "--importance", "none", "--lr", "1e-12", "--output", str(out)]) == 0
    assert "already classifies exactly these labels; it is the teacher as it is" in capsys.readouterr().out
    assert not (out / "teacher").exists()
    record = json.loads((out / "supernet.json").read_text())
    assert record["teacher"]["path"] == str(model) and record["teacher"]["source"] == "auto"
    start, trained = load_file(model / "model.safetensors"), load_file(out / "model.safetensors")
    # lr 1e-12: the super-network is the classifier it started from, its trained head included
    assert torch.allclose(start["classifier.weight"], trained["classifier.weight"], atol=1e-6)
