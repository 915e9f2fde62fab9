"""A fixed, fine-tuned teacher in super-network training (--teacher DIR|auto), and labels in every strategy.

The teacher's fine-tuning learns a generated task; every strategy, with or without a teacher, on classification,
regression and multiple choice, trains other weights when the labels are shuffled (the labels reach the loss)."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_batch, tiny_model
from safetensors.torch import load_file
from transformers import AutoModelForMultipleChoice, AutoModelForSequenceClassification, AutoTokenizer

from syne_prune import InPlaceMask, get_family, get_search_space
from syne_prune.artifacts import SupernetDir
from syne_prune.cli import main
from syne_prune.supernet import STRATEGIES, Teacher, TrainingConfig, distillation_loss, get_strategy, train_supernet
from syne_prune.supernet import train as train_module
from syne_prune.surgery import masked

KINDS = {"classification": "classifier", "regression": "regression", "multiple_choice": "multiple_choice"}


def _batch(kind: str) -> dict[str, torch.Tensor]:
    batch = tiny_batch(seed=0, batch=6, length=9, choices=4 if kind == "multiple_choice" else 0)
    labels = {"classification": torch.tensor([0, 1, 2, 0, 1, 2]), "multiple_choice": torch.tensor([0, 1, 2, 3, 0, 1]),
              "regression": torch.linspace(0.0, 5.0, 6)}[kind]
    return {**batch, "labels": labels}


def _shuffled(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    labels = batch["labels"].roll(1)  # a permutation that moves every label to a row with another label
    assert (labels != batch["labels"]).all()
    return {**batch, "labels": labels}


def _train_steps(strategy: str, kind: str, batch: dict, teacher: Teacher | None = None, steps: int = 2) -> dict[str, torch.Tensor]:
    """``steps`` SGD steps of one strategy on one batch; the model stays in eval mode (no dropout), so the
    weights depend only on the batch, the labels and the teacher."""
    model = tiny_model("bert", KINDS[kind], seed=0)
    space = get_search_space("medium", get_family(model.config).shape(model.config))
    step_fn = get_strategy(strategy)(space, InPlaceMask(model), np.random.RandomState(0), kind == "regression", total_steps=steps,
                                     temperature=2.0, teacher=teacher)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(steps):  # random_linear: the full network at step 0, a random sub-network at step 1
        step_fn(model, batch, step)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return {k: v.clone() for k, v in model.state_dict().items()}


def _max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


def _teacher(kind: str, seed: int) -> Teacher:
    return Teacher(tiny_model("bert", KINDS[kind], seed=seed), path=f"tiny-{seed}")


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_every_strategy_trains_other_weights_on_shuffled_labels_with_and_without_a_teacher(strategy, kind):
    batch = _batch(kind)
    # without a teacher: shuffled labels train other weights (max abs weight difference > 0)
    assert _max_difference(_train_steps(strategy, kind, batch), _train_steps(strategy, kind, _shuffled(batch))) > 0
    teacher = _teacher(kind, seed=1)
    frozen = {k: v.clone() for k, v in teacher.model.state_dict().items()}
    with_teacher = _train_steps(strategy, kind, batch, teacher)
    # with a fixed teacher: shuffled labels still train other weights
    assert _max_difference(with_teacher, _train_steps(strategy, kind, _shuffled(batch), teacher)) > 0
    # ... and another teacher (other outputs) trains other weights: every sub-network, the largest too, learns from it
    assert _max_difference(with_teacher, _train_steps(strategy, kind, batch, _teacher(kind, seed=2))) > 0
    # the teacher is never updated: bit-identical weights, no gradients
    assert all(torch.equal(frozen[k], v) for k, v in teacher.model.state_dict().items())
    assert all(p.grad is None and not p.requires_grad for p in teacher.model.parameters())


def test_distillation_loss_numbers():
    # regression: MSE(student, teacher) + MSE(student, labels), exactly
    student, teacher, labels = torch.tensor([1.0, 2.0, 3.5]), torch.tensor([1.5, 2.0, 2.5]), torch.tensor([1.0, 3.0, 3.0])
    loss = distillation_loss(student, teacher, labels, temperature=3.0, is_regression=True)
    assert loss.item() == (F.mse_loss(student, teacher) + F.mse_loss(student, labels)).item()
    assert loss.item() == pytest.approx(1.25 / 3 + 1.25 / 3, abs=1e-7)
    # multiple choice ([batch, num_choices]): T² · CE(s / T, softmax(t / T)) + CE(s, y), by hand, to 1e-6
    student = torch.tensor([[0.5, -1.0, 2.0, 0.1], [1.5, 0.2, -0.3, 0.0]])
    teacher = torch.tensor([[0.0, 1.0, 3.0, -2.0], [2.0, -1.0, 0.5, 0.5]])
    labels, T = torch.tensor([2, 1]), 2.0

    def log_softmax(row):
        top = math.log(sum(math.exp(v) for v in row))
        return [v - top for v in row]

    expected = 0.0
    for s, t, y in zip(student.tolist(), teacher.tolist(), labels.tolist()):
        soft = -sum(math.exp(lt) * ls for lt, ls in zip(log_softmax([v / T for v in t]), log_softmax([v / T for v in s])))
        expected += (T**2 * soft - log_softmax(s)[y]) / 2
    assert distillation_loss(student, teacher, labels, temperature=T).item() == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ValueError, match="needs the labels"):
        distillation_loss(student, teacher, None)


@pytest.mark.parametrize("kind", ["classification", "regression"])
def test_with_a_teacher_the_largest_and_smallest_losses_are_distillation_plus_labels(kind):
    batch, model = _batch(kind), tiny_model("bert", KINDS[kind], seed=0)
    teacher = _teacher(kind, seed=1)
    space = get_search_space("medium", get_family(model.config).shape(model.config))
    regression = kind == "regression"
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():
        target = teacher(batch)
        largest = model(**inputs).logits
        with masked(model, space.to_mask(space.smallest())):
            smallest = model(**inputs).logits

    def expected(logits):
        if regression:
            logits, t = logits.squeeze(-1), target.squeeze(-1)
            return (F.mse_loss(logits, t) + F.mse_loss(logits, batch["labels"])).item()
        return distillation_loss(logits, target, batch["labels"], temperature=2.0).item()

    def strategy(name):
        return get_strategy(name)(space, InPlaceMask(model), np.random.RandomState(0), regression, total_steps=1,
                                  temperature=2.0, num_random_subnets=0, teacher=teacher)

    # standard trains only the largest network: its whole loss is the teacher term plus the label term
    assert strategy("standard")(model, batch, 0) == pytest.approx(expected(largest), abs=1e-5)
    # full without random sub-networks: largest and smallest, both against the fixed teacher
    assert strategy("full")(model, batch, 0) == pytest.approx(expected(largest) + expected(smallest), abs=1e-5)


# ---- end to end: train_supernet and the CLI on tiny models and GLUE slices ----


def _config(model_dir, glue_dir, output, **kwargs) -> TrainingConfig:
    values = dict(teacher=None, model=str(model_dir), task="rte", output=str(output), data_dir=str(glue_dir), search_space="medium",
                  epochs=1, batch_size=8, max_train_examples=16, max_eval_examples=8, lr=1e-3, max_length=32)
    return TrainingConfig(**{**values, **kwargs})


@pytest.fixture(scope="module")
def teachers(tiny_model_dirs, glue_dir, tmp_path_factory) -> dict[str, object]:
    """Fine-tuned tiny BERT teachers (train-supernet --strategy standard checkpoints) for RTE and STS-B, and
    directories that do not fit an RTE run of the tiny BERT."""
    root = tmp_path_factory.mktemp("teachers")
    out = {}
    for task in ("rte", "stsb"):
        train_supernet(_config(tiny_model_dirs["bert"], glue_dir, root / task, task=task, strategy="standard", lr=2e-3), progress=False)
        out[task] = root / task
    bert, tokenizer = tiny_model_dirs["bert"], AutoTokenizer.from_pretrained(tiny_model_dirs["bert"])

    def save(name, model):
        model.save_pretrained(root / name)
        tokenizer.save_pretrained(root / name)
        return root / name

    out["roberta"] = save("roberta", AutoModelForSequenceClassification.from_pretrained(tiny_model_dirs["roberta"], num_labels=2))
    out["three_labels"] = save("three_labels", AutoModelForSequenceClassification.from_pretrained(bert, num_labels=3))
    out["multiple_choice"] = save("multiple_choice", AutoModelForMultipleChoice.from_pretrained(bert))
    config = AutoModelForSequenceClassification.from_pretrained(bert, num_labels=2).config
    config.vocab_size = 77
    out["vocab77"] = root / "vocab77"
    AutoModelForSequenceClassification.from_config(config).save_pretrained(out["vocab77"])
    # same vocabulary size, other token ids: the ids of two tokens swapped in tokenizer.json
    swapped = save("swapped", AutoModelForSequenceClassification.from_pretrained(out["rte"]))
    saved = json.loads((swapped / "tokenizer.json").read_text())
    vocab = saved["model"]["vocab"]
    first, second = sorted(vocab, key=vocab.get)[10:12]
    vocab[first], vocab[second] = vocab[second], vocab[first]
    (swapped / "tokenizer.json").write_text(json.dumps(saved))
    out["swapped"] = swapped
    return out


def _token_task(directory, seed: int = 0) -> list[str]:
    """DIR/SST-2/{train,dev}.tsv of a generated task: 5 to 11 words drawn from 20 neutral ones, and label 1 exactly when
    the word "wonderful" is inserted (every second sentence); returns the training sentences."""
    rng = np.random.RandomState(seed)
    words = "the a film story cast plot scene actor music ending was is and but of very quite rather it this".split()
    (directory / "SST-2").mkdir(parents=True)
    sentences = {}
    for split, count in (("train", 600), ("dev", 200)):
        rows = []
        for index in range(count):
            sentence = list(rng.choice(words, rng.randint(5, 12)))
            if index % 2:
                sentence.insert(rng.randint(len(sentence) + 1), "wonderful")
            rows.append((" ".join(sentence), index % 2))
        (directory / "SST-2" / f"{split}.tsv").write_text("sentence\tlabel\n" + "".join(f"{t}\t{label}\n" for t, label in rows))
        sentences[split] = [t for t, _ in rows]
    return sentences["train"]


@pytest.mark.slow
def test_the_teacher_fine_tune_learns_a_generated_task(glue_dir, tmp_path):
    """The teacher's fine-tuning (train-supernet --strategy standard, what --teacher auto runs) on a task a tiny BERT can
    learn (label: whether one word occurs): the untrained model is near chance on the validation split (within 0.15 of
    0.5; 0.46 with seed 0), the fine-tuned teacher reaches at least 0.95 there (1.0), and its recorded validation
    accuracy is its own."""
    from conftest import save_tiny_model_dir

    from syne_prune.data import encode, eval_batches, get_task, load_task
    from syne_prune.evaluation import evaluate
    from syne_prune.models import load_task_model

    texts = _token_task(tmp_path / "glue") + load_task("rte", glue_dir).train.texts[0]  # enough words for a 100+ token vocabulary
    base = save_tiny_model_dir("bert", tmp_path / "base", texts)
    config = _config(base, tmp_path / "glue", tmp_path / "teacher", task="sst2", strategy="standard", epochs=3, lr=5e-3, batch_size=32,
                     max_train_examples=None, max_eval_examples=None, max_length=24, importance="none")
    metadata = train_supernet(config, progress=False)
    task, tokenizer = get_task("sst2"), AutoTokenizer.from_pretrained(base)
    data = load_task("sst2", tmp_path / "glue", config.validation_fraction, config.seed)
    validation = eval_batches(encode(data.validation, tokenizer, 24, False), tokenizer)
    assert len(data.validation) == 180 and 0.4 < data.validation.labels.mean() < 0.6  # balanced: chance is 0.5
    torch.manual_seed(0)
    untrained = evaluate(load_task_model(str(base), task), validation, task)["accuracy"]
    assert abs(untrained - 0.5) <= 0.15, untrained
    teacher = AutoModelForSequenceClassification.from_pretrained(tmp_path / "teacher")
    learned = evaluate(teacher, validation, task)["accuracy"]
    assert learned >= 0.95, (untrained, learned)
    assert metadata["metrics"]["largest"]["validation"]["accuracy"] == pytest.approx(learned, abs=1e-9)


def _shuffling_load_task(monkeypatch):
    real = train_module.load_task

    def shuffled(*args, **kwargs):
        data = real(*args, **kwargs)
        labels = np.roll(data.train.labels, 1)
        assert (labels != data.train.labels).any()
        return dataclasses.replace(data, train=dataclasses.replace(data.train, labels=labels))

    monkeypatch.setattr(train_module, "load_task", shuffled)


def test_stsb_trains_on_its_scores_with_and_without_a_teacher(tiny_model_dirs, glue_dir, teachers, tmp_path, monkeypatch):
    bert = tiny_model_dirs["bert"]
    teacher_weights = hashlib.sha256((teachers["stsb"] / "model.safetensors").read_bytes()).hexdigest()
    runs = {"kd": dict(strategy="kd"), "full+teacher": dict(strategy="full", teacher=str(teachers["stsb"]))}
    for name, kwargs in runs.items():
        train_supernet(_config(bert, glue_dir, tmp_path / name, task="stsb", **kwargs), progress=False)
    train_supernet(_config(bert, glue_dir, tmp_path / "full", task="stsb", strategy="full"), progress=False)
    with monkeypatch.context() as patch:
        _shuffling_load_task(patch)
        for name, kwargs in runs.items():
            train_supernet(_config(bert, glue_dir, tmp_path / f"{name}-shuffled", task="stsb", **kwargs), progress=False)
    weights = {p.name: load_file(p / "model.safetensors") for p in tmp_path.iterdir()}
    for name in runs:  # shuffled STS-B scores: other weights (max abs difference > 0)
        assert _max_difference(weights[name], weights[f"{name}-shuffled"]) > 0, name
    assert _max_difference(weights["full"], weights["full+teacher"]) > 0  # the teacher changes what is learnt
    assert hashlib.sha256((teachers["stsb"] / "model.safetensors").read_bytes()).hexdigest() == teacher_weights
    metadata = json.loads((tmp_path / "full+teacher" / "supernet.json").read_text())
    assert metadata["teacher"]["source"] == str(teachers["stsb"]) and metadata["hyperparameters"]["teacher"] == str(teachers["stsb"])
    teacher_metadata = json.loads((teachers["stsb"] / "supernet.json").read_text())  # same validation split, same model
    assert metadata["teacher"]["validation"]["error"] == pytest.approx(teacher_metadata["metrics"]["largest"]["validation"]["error"], abs=1e-6)


@pytest.mark.parametrize("teacher, message", [
    ("roberta", r"has model_type roberta, --model has bert"),
    ("vocab77", r"has vocab_size 77, --model has \d+"),
    ("three_labels", r"predicts 3 labels, task 'rte' has 2"),
    ("stsb", r"has task head 'regression', task 'rte' needs 'classification'"),
    ("multiple_choice", r"has task head 'multiple choice', task 'rte' needs 'classification'"),
    ("swapped", r"tokenizer vocabulary of \d+ tokens, --model one of \d+ \(2 token ids differ\)"),
    ("base", r"has task head 'none \(a base model\)', task 'rte' needs 'classification'"),
    ("missing", r"--teacher '.*missing' is not a directory"),
])
def test_a_teacher_that_does_not_fit_is_refused_before_anything_is_written(tiny_model_dirs, glue_dir, teachers, tmp_path, capsys,
                                                                            teacher, message):
    directory = {"base": tiny_model_dirs["bert"], "missing": tmp_path / "missing"}.get(teacher) or teachers[teacher]
    args = ["train-supernet", "--model", str(tiny_model_dirs["bert"]), "--task", "rte", "--data-dir", str(glue_dir),
            "--epochs", "1", "--max-train-examples", "8", "--teacher", str(directory)]
    assert main([*args, "--output", str(tmp_path / "new")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("error: ") and re.search(message, error), error
    assert not (tmp_path / "new").exists()
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "keep.txt").write_text("x")
    assert main([*args, "--output", str(tmp_path / "old"), "--overwrite"]) == 2  # an existing output is not replaced
    assert (tmp_path / "old" / "keep.txt").read_text() == "x"


@pytest.mark.slow
def test_teacher_auto_fine_tunes_into_output_teacher_and_resume_reuses_it(tiny_model_dirs, glue_dir, teachers, tmp_path, monkeypatch):
    out = tmp_path / "out"
    config = _config(tiny_model_dirs["bert"], glue_dir, out, strategy="full", epochs=2, teacher="auto", teacher_learning_rates=None)
    real_save = train_module._save_resume_state

    def killed_after_first_supernet_epoch(state_dir, *args, **kwargs):
        real_save(state_dir, *args, **kwargs)
        if state_dir.parent == out and args[4] == 1:  # epochs_done of the super-network, not of the teacher
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(train_module, "_save_resume_state", killed_after_first_supernet_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_supernet(config, progress=False)
    monkeypatch.setattr(train_module, "_save_resume_state", real_save)
    teacher_dir = out / "teacher"
    teacher_metadata = json.loads((teacher_dir / "supernet.json").read_text())
    assert teacher_metadata["strategy"] == "standard" and teacher_metadata["teacher"] is None
    assert [h["epoch"] for h in teacher_metadata["history"]] == [1, 2]  # the config's epochs
    with pytest.raises(train_module.SynePruneError, match=r"--resume with other settings than the interrupted run \(teacher\)"):
        train_supernet(dataclasses.replace(config, teacher=str(teachers["rte"])), resume=True, progress=False)
    before = (teacher_dir / "supernet.json").read_bytes()
    metadata = train_supernet(config, resume=True, progress=False)
    assert (teacher_dir / "supernet.json").read_bytes() == before  # reused, not fine-tuned again
    assert [h["epoch"] for h in metadata["history"]] == [1, 2]
    assert metadata["teacher"]["source"] == "auto" and metadata["teacher"]["path"] == str(teacher_dir)
    assert metadata["hyperparameters"]["teacher"] == "auto"
    assert metadata["teacher"]["validation"]["error"] == pytest.approx(teacher_metadata["metrics"]["largest"]["validation"]["error"], abs=1e-6)
    teacher_weights, supernet_weights = load_file(teacher_dir / "model.safetensors"), load_file(out / "model.safetensors")
    assert _max_difference(teacher_weights, supernet_weights) > 0
    # a finished teacher fine-tuned with other settings is not silently reused
    shutil.copytree(teacher_dir, tmp_path / "other" / "teacher")
    with pytest.raises(train_module.SynePruneError, match=r"the teacher in '.*' was fine-tuned with other settings \(lr\)"):
        train_supernet(dataclasses.replace(config, output=str(tmp_path / "other"), lr=5e-4), resume=True, progress=False)


def test_teacher_auto_starts_the_supernetwork_from_the_fine_tuned_teacher(tiny_model_dirs, glue_dir, tmp_path, monkeypatch):
    """With --teacher auto the super-network is initialised from the teacher it just fine-tuned (DynaBERT's recipe),
    not from the pre-trained --model: the one load of the super-network reads OUTPUT/teacher, and supernet.json says so."""
    out = tmp_path / "out"
    sources = []
    real_load = train_module.load_task_model

    def recording_load(source, task, **kwargs):
        sources.append(str(source))
        return real_load(source, task, **kwargs)

    monkeypatch.setattr(train_module, "load_task_model", recording_load)
    metadata = train_supernet(_config(tiny_model_dirs["bert"], glue_dir, out, strategy="full", teacher="auto", importance="none",
                                      teacher_learning_rates=None), progress=False)
    # first load: the teacher's own fine-tuning starts from --model; second: the super-network starts from the teacher
    assert sources == [str(tiny_model_dirs["bert"]), str(out / "teacher")]
    assert metadata["initialised_from"] == str(out / "teacher")
    without = train_supernet(_config(tiny_model_dirs["bert"], glue_dir, tmp_path / "plain", strategy="full", importance="none"),
                             progress=False)
    assert without["initialised_from"] == str(tiny_model_dirs["bert"])


def test_the_default_recipe_distils_from_an_auto_teacher_except_for_standard(tiny_model_dirs, glue_dir, tmp_path):
    """The defaults are the measured recipe (BENCHMARKS.md, quality): --teacher auto, Fisher ordering, lr 8e-5;
    'auto' with --strategy standard (itself that fine-tune) and 'none' mean no fixed teacher."""
    defaults = TrainingConfig(model="m", task="rte", output="o")
    assert (defaults.teacher, defaults.importance, defaults.strategy, defaults.lr) == ("auto", "fisher", "full", 8e-5)
    assert defaults.fixed_teacher() == "auto"
    assert TrainingConfig(model="m", task="rte", output="o", strategy="standard").fixed_teacher() is None
    assert TrainingConfig(model="m", task="rte", output="o", teacher="none").fixed_teacher() is None
    assert TrainingConfig(model="m", task="rte", output="o", teacher=None).fixed_teacher() is None
    out = tmp_path / "standard"  # the default teacher with strategy standard: one fine-tune, no teacher directory
    metadata = train_supernet(_config(tiny_model_dirs["bert"], glue_dir, out, strategy="standard", teacher="auto"), progress=False)
    assert metadata["teacher"] is None and not (out / "teacher").exists()
    out = tmp_path / "none"
    assert main(["train-supernet", "--model", str(tiny_model_dirs["bert"]), "--task", "rte", "--data-dir", str(glue_dir),
                 "--epochs", "1", "--batch-size", "8", "--max-train-examples", "16", "--max-eval-examples", "8",
                 "--max-length", "32", "--teacher", "none", "--output", str(out)]) == 0
    assert SupernetDir(out).read()["teacher"] is None and not (out / "teacher").exists()
