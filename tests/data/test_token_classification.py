"""Token classification from the user's files: JSON Lines and CoNLL give the same sentences, tags are aligned to the
first sub-word of each word, predictions, seqeval's entity F1 and the distillation loss read only labelled tokens,
bad data is one line (exit 2, nothing written), and a generated tagging task goes through train-supernet (every
strategy, the teacher), search, export, the transformers pipeline and recovery."""
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
from transformers import BertTokenizerFast

from syne_prune.data import TASK_TYPES, TaskSpec, encode, load_task, resolve_task
from syne_prune.data.metrics import entity_f1

PEOPLE = ["alice", "bob", "carol", "dave", "erin", "frank"]
CITIES = ["paris", "london", "berlin", "rome", "madrid"]
FILLER = ["met", "in", "visited", "the", "and", "today", "with", "from", "works", "at", "a", "friend"]
TAGS = ["B-LOC", "B-ORG", "B-PER", "I-LOC", "I-ORG", "O"]  # sorted, as read from files without a model


def tagged_sentences(count: int, seed: int) -> list[tuple[list[str], list[str]]]:
    """A generated tagging task whose tags follow from the words: people are B-PER, cities B-LOC, "new york" B-LOC
    I-LOC, "acme corp" B-ORG I-ORG, every other word O; 3 to 8 pieces per sentence."""
    rng = np.random.RandomState(seed)
    pieces = [([w], ["B-PER"]) for w in PEOPLE] + [([w], ["B-LOC"]) for w in CITIES] + [([w], ["O"]) for w in FILLER] * 2 + [
        (["new", "york"], ["B-LOC", "I-LOC"]), (["acme", "corp"], ["B-ORG", "I-ORG"])]
    sentences = []
    for _ in range(count):
        words, tags = [], []
        for index in rng.randint(len(pieces), size=rng.randint(3, 9)):
            words += pieces[index][0]
            tags += pieces[index][1]
        sentences.append((words, tags))
    return sentences


def write_jsonl(path: Path, sentences, words: str = "tokens", tags: str = "ner_tags") -> Path:
    pd.DataFrame([{words: w, tags: t} for w, t in sentences]).to_json(path, orient="records", lines=True)
    return path


def write_conll(path: Path, sentences) -> Path:
    lines = ["-DOCSTART- -X- O", ""]
    for words, tags in sentences:
        lines += [f"{w} NN {t}" for w, t in zip(words, tags)] + [""]
    path.write_text("\n".join(lines) + "\n")
    return path


def tagger_dir(path: Path, sentences, seed: int = 0) -> Path:
    """A tiny random BERT base model with a WordPiece tokenizer over the sentences' words."""
    path.mkdir(parents=True)
    (path / "vocab.txt").write_text("\n".join(wordpiece_vocabulary([" ".join(w) for w, _ in sentences])) + "\n")
    BertTokenizerFast(vocab=str(path / "vocab.txt")).save_pretrained(path)
    tiny_model("bert", "base", seed=seed).save_pretrained(path)
    return path


def test_jsonl_and_conll_give_the_same_sentences_and_tags_inferred_as_token_classification(tmp_path):
    sentences = tagged_sentences(40, seed=0)
    by_format = {}
    for name, path in (("jsonl", write_jsonl(tmp_path / "t.jsonl", sentences)), ("conll", write_conll(tmp_path / "t.conll", sentences))):
        task = resolve_task(TaskSpec(train_file=str(path), label_column="ner_tags" if name == "jsonl" else "label"))
        assert (task.task_type, task.metric_name, task.label_values) == ("token-classification", "entity-f1", tuple(TAGS))
        by_format[name] = load_task(task, validation_fraction=0.25, seed=3)
    for split in ("train", "validation"):
        first, second = getattr(by_format["jsonl"], split), getattr(by_format["conll"], split)
        assert first.texts == second.texts
        assert all(np.array_equal(a, b) for a, b in zip(first.labels, second.labels))
    tags_of = {" ".join(words): tags for words, tags in sentences}
    train = by_format["jsonl"].train
    assert len(train) == 30 and all([TAGS[i] for i in ids] == tags_of[" ".join(words)] for words, ids in zip(train.texts[0], train.labels))


def test_tags_go_to_the_first_sub_word_and_the_rest_is_ignored(tmp_path):
    """With a vocabulary that splits "london" into sub-words, only its first sub-word carries B-LOC; [CLS], [SEP]
    and the other sub-words get -100."""
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "alice", "met", "lon", "##don", "##d", "##o", "##n"]
    (tmp_path / "vocab.txt").write_text("\n".join(words) + "\n")
    tokenizer = BertTokenizerFast(vocab=str(tmp_path / "vocab.txt"))
    path = write_jsonl(tmp_path / "t.jsonl", [(["alice", "met", "london"], ["B-PER", "O", "B-LOC"]), (["london"], ["B-LOC"])])
    task = resolve_task(TaskSpec(train_file=str(path), label_column="ner_tags"))
    split = load_task(task, validation_fraction=0.5).train
    for example, words_, tags in zip(encode(split, tokenizer, 32, task.type), split.texts[0], split.labels):
        pieces = tokenizer.convert_ids_to_tokens(example["input_ids"])
        expected = [-100]  # [CLS]
        for word, tag in zip(words_, tags):
            count = len(tokenizer.tokenize(word))
            expected += [int(tag)] + [-100] * (count - 1)
        assert example["labels"] == expected + [-100], (pieces, example["labels"])
    assert "##don" in tokenizer.tokenize("london") and len(tokenizer.tokenize("london")) == 2


def test_byte_level_bpe_words_carry_their_space_mark_as_in_running_text(tmp_path):
    """RoBERTa's and ModernBERT's byte-level BPE adds no space before a text: pre-split words read as they are would
    lose every word boundary ("alice" + "met" as "alicemet"). Each word is read as it is inside running text
    ("Ġmet"), its first piece tagged; the model's own tokenizer is left as it was."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import AutoTokenizer, RobertaTokenizer

    pieces = ["<s>", "<pad>", "</s>", "<unk>", "<mask>", *sorted(ByteLevel.alphabet()), "Ġa", "Ġm", "Ġme", "Ġmet"]
    RobertaTokenizer(vocab={p: i for i, p in enumerate(pieces)}, merges=[("Ġ", "a"), ("Ġ", "m"), ("Ġm", "e"), ("Ġme", "t")]
                     ).save_pretrained(tmp_path / "bpe")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "bpe")
    assert tokenizer.tokenize("alice met") == ["a", "l", "i", "c", "e", "Ġmet"]  # inside running text: "Ġmet"
    path = write_jsonl(tmp_path / "t.jsonl", [(["alice", "met", "alice"], ["B-PER", "O", "B-PER"]), (["met"], ["O"])])
    task = resolve_task(TaskSpec(train_file=str(path), test_file=str(path), label_column="ner_tags"))
    example = encode(load_task(task, validation_fraction=0.5).test, tokenizer, 32, task.type)[0]
    assert tokenizer.convert_ids_to_tokens(example["input_ids"]) == ["<s>", "Ġa", "l", "i", "c", "e", "Ġmet", "Ġa", "l", "i", "c", "e", "</s>"]
    per, other = task.label_values.index("B-PER"), task.label_values.index("O")
    assert example["labels"] == [-100, per, -100, -100, -100, -100, other, per, -100, -100, -100, -100, -100]
    assert tokenizer.backend_tokenizer.pre_tokenizer.add_prefix_space is False  # unchanged


def test_predictions_entity_f1_and_distillation_read_only_labelled_tokens():
    kind = TASK_TYPES["token-classification"]
    torch.manual_seed(0)
    logits, teacher = torch.randn(2, 5, 3), torch.randn(2, 5, 3)
    labels = torch.tensor([[-100, 0, 2, -100, -100], [-100, 1, -100, 0, 2]])
    predictions, gold = kind.batch_outputs(logits, labels)
    keep = labels != -100
    assert [list(p) for p in predictions] == [logits[i].argmax(-1)[keep[i]].tolist() for i in range(2)]
    assert [list(g) for g in gold] == [[0, 2], [1, 0, 2]]
    names = ("B-PER", "I-PER", "O")
    from seqeval.metrics import f1_score

    want = f1_score([[names[i] for i in g] for g in gold], [[names[i] for i in p] for p in predictions])
    assert entity_f1(gold, predictions, names) == pytest.approx(want)
    assert entity_f1(gold, gold, names) == 1.0
    T = 2.0
    s, t, y = logits[keep], teacher[keep], labels[keep]
    expected = T**2 * F.cross_entropy(s / T, F.softmax(t / T, -1)) + F.cross_entropy(s, y)
    assert kind.distillation_loss(logits, teacher, labels, T).item() == pytest.approx(expected.item(), rel=1e-6)


BAD_TOKENS = {  # file name, content, extra options, expected words of the one error line
    "words and tags differ in length": (
        "t.jsonl", '{"tokens": ["a", "b"], "tags": ["O", "O"]}\n{"tokens": ["a", "b"], "tags": ["O"]}\n', ["--label-column", "tags"],
        "t.jsonl line 2 has 2 words in column 'tokens' but 1 tags in column 'tags'; give one tag per word"),
    "CoNLL file with no sentence": ("t.conll", "-DOCSTART- -X- O\n\n\n", [], "t.conll holds no sentence"),
    "CoNLL line without a tag": ("t.conll", "alice B-PER\nmet\n", [], "t.conll line 2 has one field ('met')"),
}


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory) -> Path:
    return tagger_dir(tmp_path_factory.mktemp("tagger") / "model", tagged_sentences(20, seed=0))


@pytest.mark.parametrize("case", list(BAD_TOKENS))
def test_bad_token_data_is_one_line_and_writes_nothing(base_dir, tmp_path, capsys, case):
    name, content, extra, message = BAD_TOKENS[case]
    (tmp_path / name).write_text(content)
    out = tmp_path / "out"
    fails(capsys, ["train-supernet", "--model", str(base_dir), "--train-file", str(tmp_path / name), *extra, "--output", str(out)], message)
    assert not out.exists()


def test_a_tag_the_model_does_not_know_names_the_tag_file_and_line(base_dir, tmp_path, capsys):
    """A fine-tuned tagger's id2label names the tags; a CoNLL tag outside them is one line naming the sentence's line."""
    from transformers import AutoConfig

    model = tmp_path / "tagger"
    shutil.copytree(base_dir, model)
    config = AutoConfig.from_pretrained(model)
    config.architectures = ["BertForTokenClassification"]
    config.id2label, config.label2id = {0: "O", 1: "B-PER"}, {"O": 0, "B-PER": 1}
    config.save_pretrained(model)
    (tmp_path / "t.conll").write_text("alice B-PER\nmet O\n\nparis B-LOC\n")
    out = tmp_path / "out"
    fails(capsys, ["train-supernet", "--model", str(model), "--train-file", str(tmp_path / "t.conll"), "--output", str(out)],
          "t.conll sentence at line 4 has the tag 'B-LOC' in column 'label', which is not one of ['O', 'B-PER']")
    assert not out.exists()


def write_tagging_files(folder: Path, seed: int = 0) -> dict[str, Path]:
    """The generated tagging task as CoNLL files: 300 train, 100 validation and 100 test sentences."""
    folder.mkdir(parents=True, exist_ok=True)
    return {split: write_conll(folder / f"{split}.conll", tagged_sentences(count, seed=seed + offset))
            for offset, (split, count) in enumerate((("train", 300), ("validation", 100), ("test", 100)))}


def train_tagger(model: Path, files: dict[str, Path], output: Path, *extra: str) -> dict:
    from syne_prune.cli import main

    assert main(["train-supernet", "--model", str(model), "--train-file", str(files["train"]), "--validation-file", str(files["validation"]),
                 "--test-file", str(files["test"]), "--search-space", "small", "--lr", "1e-2", "--batch-size", "16", "--max-length", "24",
                 "--output", str(output), *extra]) == 0
    return json.loads((output / "supernet.json").read_text())


@pytest.mark.slow
def test_the_unpruned_tiny_model_learns_the_generated_tagging_task(base_dir, tmp_path):
    """Trained with the sandwich rule, the unpruned network tags the test sentences to entity F1 >= 0.95; the
    smallest sub-network of the small space, no encoder layer at all (embeddings and the tag classifier), keeps entity
    F1 >= 0.9: every tag here is a lookup of its word, which the embeddings alone can hold."""
    files = write_tagging_files(tmp_path / "files")
    record = train_tagger(base_dir, files, tmp_path / "sn", "--strategy", "sandwich", "--epochs", "10", "--teacher", "none")
    assert record["task"]["task_type"] == "token-classification" and record["task"]["labels"] == TAGS
    largest, smallest = record["metrics"]["largest"], record["metrics"]["smallest"]
    print({name: (m["validation"]["entity-f1"], m["test"]["entity-f1"]) for name, m in (("largest", largest), ("smallest", smallest))})
    assert largest["test"]["entity-f1"] >= 0.95 and largest["validation"]["entity-f1"] >= 0.95
    assert smallest["test"]["entity-f1"] >= 0.9


@pytest.mark.parametrize("strategy", ["standard", "random", "random_linear", "sandwich", "kd", "full"])
def test_every_strategy_trains_a_token_classifier_from_a_fixed_teacher(base_dir, strategy):
    """One step of each strategy on a tagged batch, with a fixed teacher: a finite loss, and the weights move; the
    teacher's tag logits ([batch, length, tags]) differ from the labels, so distillation and labels both count."""
    from syne_prune import get_family, get_search_space
    from syne_prune.data import data_loader
    from syne_prune.supernet import Teacher, get_strategy
    from syne_prune.surgery import InPlaceMask

    tokenizer = BertTokenizerFast.from_pretrained(base_dir)
    task = resolve_task(TaskSpec(train_file=str(write_conll(Path(base_dir).parent / f"{strategy}.conll", tagged_sentences(8, seed=1)))))
    batch = next(iter(data_loader(encode(load_task(task, validation_fraction=0.25).train, tokenizer, 24, task.type), tokenizer, 6)))
    model, teacher = tiny_model("bert", "token", seed=0).train(), Teacher(tiny_model("bert", "token", seed=1), "teacher")
    model.config.num_labels = 3
    space = get_search_space("small", get_family(model.config).shape(model.config))
    step = get_strategy(strategy)(space, InPlaceMask(model), np.random.RandomState(0), task.type, total_steps=2, temperature=2.0,
                                  teacher=teacher)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    batch["labels"] = batch["labels"].clamp(max=2).where(batch["labels"] != -100, batch["labels"])  # the tiny heads have 3 tags
    loss = step(model, batch, 1)
    assert np.isfinite(loss) and loss > 0
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    assert (model.classifier.weight - before["classifier.weight"]).abs().max() > 0


@pytest.mark.slow
def test_a_tagger_goes_through_search_export_the_pipeline_and_recovery(base_dir, tmp_path, capsys):
    """A kd super-network with a fine-tuned teacher (--teacher auto) and importance ordering, searched on the pool
    backend, exported (AutoModelForTokenClassification loads it with the user's tags, its outputs equal the masked
    super-network's to 1e-5), tagging with transformers' pipeline, and recovered."""
    from transformers import AutoModelForTokenClassification, pipeline

    import syne_prune  # noqa: F401  # registers the pruned classes with transformers' Auto classes
    from syne_prune import SubnetMask, masked
    from syne_prune.artifacts import SearchDir
    from syne_prune.cli import main

    files = write_tagging_files(tmp_path / "files")
    record = train_tagger(base_dir, files, tmp_path / "sn", "--strategy", "kd", "--epochs", "3", "--teacher", "auto",
                          "--importance", "magnitude", "--max-train-examples", "200", "--max-eval-examples", "60")
    assert record["teacher"]["source"] == "auto" and record["task"]["labels"] == TAGS
    assert main(["search", "--supernet", str(tmp_path / "sn"), "--output", str(tmp_path / "se"), "--max-trials", "4", "--n-workers", "2",
                 "--backend", "pool"]) == 0
    trials = SearchDir(tmp_path / "se").trials()  # with the Pareto set's test errors
    assert trials["error"].between(0, 1).all() and trials["test_error"].notna().any()
    assert main(["export", "--search-dir", str(tmp_path / "se"), "--output", str(tmp_path / "ex"), "--max-params", "0.9"]) == 0
    exported = AutoModelForTokenClassification.from_pretrained(tmp_path / "ex").eval()
    assert exported.config.id2label == dict(enumerate(TAGS))
    supernet = AutoModelForTokenClassification.from_pretrained(tmp_path / "sn").eval()
    shape = json.loads((tmp_path / "ex" / "syne_prune.json").read_text())  # prefix counts: the importance-ordered super-network's units
    mask = SubnetMask.from_counts(shape["heads_per_layer"], shape["neurons_per_layer"], supernet.config.num_attention_heads,
                                  supernet.config.intermediate_size)
    tokenizer = BertTokenizerFast.from_pretrained(tmp_path / "ex")
    batch = tokenizer([" ".join(w) for w, _ in tagged_sentences(4, seed=9)], padding=True, return_tensors="pt")
    with torch.inference_mode(), masked(supernet, mask):
        want = supernet(**batch).logits
    with torch.inference_mode():
        assert (exported(**batch).logits - want).abs().max() <= 1e-5
    assert main(["recover", "--model", str(tmp_path / "ex"), "--teacher", str(tmp_path / "sn"), "--epochs", "1",
                 "--output", str(tmp_path / "rec")]) == 0
    for directory in ("ex", "rec"):
        tagged = pipeline("token-classification", model=str(tmp_path / directory))("alice met bob in paris")
        assert tagged and {t["entity"] for t in tagged} <= set(TAGS), tagged


@pytest.mark.slow
def test_a_tagger_is_pruned_by_the_baselines_recorded_as_a_blackbox_and_exported_to_onnx(base_dir, tmp_path):
    """Every baseline prunes a tagging super-network (it is a fine-tuned token classifier), blackbox record scores
    its sub-networks, and its export writes an ONNX model checked against PyTorch."""
    from syne_prune.cli import main

    files = write_tagging_files(tmp_path / "files")
    train_tagger(base_dir, files, tmp_path / "sn", "--strategy", "standard", "--epochs", "2", "--teacher", "none",
                 "--max-train-examples", "100", "--max-eval-examples", "40")
    for method in ("layer-drop", "head-prune", "rfp"):
        assert main(["prune", "--method", method, "--model", str(tmp_path / "sn"), "--train-file", str(files["train"]), "--test-file",
                     str(files["test"]), "--max-params", "0.9", "--max-length", "24", "--output", str(tmp_path / method)]) == 0
        assert (tmp_path / method / "results.csv").is_file(), method
    assert main(["blackbox", "record", "--supernet", str(tmp_path / "sn"), "--samples", "3", "--output", str(tmp_path / "bb")]) == 0
    assert len(pd.read_csv(tmp_path / "bb" / "evaluations.csv")) == 3
    assert main(["export", "--model", str(tmp_path / "sn"), "--search-space", "small", "--config",
                 '{"num_layers": 1, "num_heads": 2, "num_units": 10}', "--output", str(tmp_path / "ex"), "--onnx"]) == 0
    assert (tmp_path / "ex" / "model.onnx").is_file()


def test_integer_tags_are_ids_named_by_the_models_id2label(tmp_path):
    from types import SimpleNamespace

    path = write_jsonl(tmp_path / "t.jsonl", [(["alice", "met", "bob"], [1, 0, 1]), (["paris"], [2])], tags="tags")
    spec = TaskSpec(train_file=str(path), label_column="tags")
    assert resolve_task(spec).label_values == ("0", "1", "2")
    named = resolve_task(spec, SimpleNamespace(id2label={0: "O", 1: "B-PER", 2: "B-LOC"}))
    assert named.label_values == ("O", "B-PER", "B-LOC")
    labels = load_task(named, validation_fraction=0.5, seed=0)
    assert sorted(list(map(list, [*labels.train.labels, *labels.validation.labels]))) == [[1, 0, 1], [2]]


@pytest.mark.slow
def test_a_tagger_is_searched_alike_on_the_pool_local_and_sagemaker_backends(base_dir, sagemaker, tmp_path):
    """The same 2 trials (random search, seed 5) on every backend: a process per trial (local) and jobs run by AWS's
    training toolkit with the CoNLL files read from the jobs' channel (SageMaker) score what the pool's workers do."""
    files = write_tagging_files(tmp_path / "files")
    train_tagger(base_dir, files, tmp_path / "sn", "--strategy", "sandwich", "--epochs", "1", "--teacher", "none", "--importance", "none",
                 "--max-train-examples", "60", "--max-eval-examples", "30")
    searched_alike_on_every_backend(tmp_path / "sn", tmp_path)
