"""Inputs that cannot be read are one line (exit 2) naming the cause and the file, before any output exists: a
tokenizer without its files, one that needs a package this environment lacks, one with a broken file; weights
with a missing shard, a truncated file or invalid JSON; a label on a named line; a trial id held twice."""
from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path

import pytest
from helpers import every_command, export_argv, fails
from transformers import DebertaV2Config, DebertaV2ForSequenceClassification

from syne_prune import SynePruneError
from syne_prune.cli import main
from syne_prune.data import load_task
from syne_prune.models import loading
from syne_prune.models.loading import check_model_files, load_tokenizer


@pytest.fixture(scope="module")
def deberta_v3_dir(tmp_path_factory) -> Path:
    """A DeBERTa-v3 checkpoint as distributed: weights, config, ``spm.model`` and ``tokenizer_config.json``, no
    ``tokenizer.json`` (the SentencePiece file is not a real model: without sentencepiece it is never parsed)."""
    path = tmp_path_factory.mktemp("deberta") / "deberta-v3"
    config = DebertaV2Config(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                             num_labels=2, position_biased_input=False, relative_attention=True, pos_att_type=["p2c", "c2p"],
                             type_vocab_size=0, max_position_embeddings=512)
    DebertaV2ForSequenceClassification(config).save_pretrained(path)
    (path / "spm.model").write_bytes(b"\x0a\x0bnot a real sentencepiece model")
    (path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "DebertaV2Tokenizer", "do_lower_case": False}))
    return path


# ---- tokenizers ----


def test_a_tokenizer_needing_sentencepiece_names_the_package_in_every_command(deberta_v3_dir, glue_dir, tmp_path, capsys, monkeypatch):
    if importlib.util.find_spec("sentencepiece") is not None:  # simulate the environment without it
        real = importlib.util.find_spec
        monkeypatch.setattr(loading.importlib.util, "find_spec", lambda name, *a: None if name == "sentencepiece" else real(name, *a))
    want = (f"the tokenizer of model '{deberta_v3_dir}' ({deberta_v3_dir / 'spm.model'}) needs the sentencepiece package, which is not "
            "installed; pip install sentencepiece")
    with pytest.raises(SynePruneError) as raised:
        load_tokenizer(str(deberta_v3_dir))
    assert str(raised.value) == want
    for name, (argv, output) in every_command(deberta_v3_dir, glue_dir, tmp_path).items():
        line = fails(capsys, argv, "needs the sentencepiece package")
        assert "pip install sentencepiece" in line and "has no tokenizer" not in line, (name, line)
        assert not output.exists(), name  # export wrote nothing without a tokenizer


def test_a_missing_package_reported_by_transformers_is_named(bert_dir, monkeypatch):
    def needs_tiktoken(*args, **kwargs):
        raise ValueError("`tiktoken` is required to read a `tiktoken` file. Install it with `pip install tiktoken`.")

    monkeypatch.setattr(loading.AutoTokenizer, "from_pretrained", needs_tiktoken)
    with pytest.raises(SynePruneError, match=r"needs the tiktoken package, which is not installed; pip install tiktoken$"):
        load_tokenizer(str(bert_dir))


def test_a_model_without_tokenizer_files_is_refused_by_every_command(bert_dir, glue_dir, tmp_path, capsys):
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(bert_dir / name, bare / name)
    assert load_tokenizer(str(bare), required=False) is None
    for name, (argv, output) in every_command(bare, glue_dir, tmp_path).items():
        line = fails(capsys, argv, "has no tokenizer;")
        assert "save" in line, (name, line)
        assert not output.exists(), name
    assert "an export carries its tokenizer" in fails(capsys, export_argv(bare, tmp_path / "e"), "has no tokenizer")


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "tokenizer.json").write_text((d / "tokenizer.json").read_text()[:40]), "tokenizer.json is not valid JSON"),
    (lambda d: (d / "tokenizer_config.json").write_text("{broken"), "tokenizer_config.json is not valid JSON"),
    (lambda d: [(d / n).unlink() for n in ("tokenizer.json", "vocab.txt")], "its vocabulary file is missing or empty (only 5 special tokens)"),
], ids=["truncated tokenizer.json", "invalid tokenizer_config.json", "vocabulary file missing"])
def test_a_broken_tokenizer_file_is_named(bert_dir, glue_dir, tmp_path, capsys, damage, message):
    broken = tmp_path / "broken"
    shutil.copytree(bert_dir, broken)
    damage(broken)
    with pytest.raises(SynePruneError, match="the tokenizer of model .* is broken: "):
        load_tokenizer(str(broken))
    for name, (argv, output) in every_command(broken, glue_dir, tmp_path).items():
        assert "has no tokenizer" not in fails(capsys, argv, message), name
        assert not output.exists(), name


# ---- weights ----


def _sharded(bert_dir: Path, target: Path) -> Path:
    from transformers import AutoModelForSequenceClassification

    AutoModelForSequenceClassification.from_pretrained(bert_dir).save_pretrained(target, max_shard_size="20KB")
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        shutil.copy(bert_dir / name, target / name)
    return target


def test_a_missing_shard_is_named_by_every_command_before_any_output(bert_dir, glue_dir, tmp_path, capsys):
    model = _sharded(bert_dir, tmp_path / "sharded")
    shards = sorted(model.glob("model-*.safetensors"))
    assert len(shards) >= 3
    check_model_files(model, "model")  # complete: passes
    shards[1].unlink()
    want = f"{shards[1]}, a shard named in model.safetensors.index.json, is missing (1 of {len(shards)} shards)"
    for name, (argv, output) in every_command(model, glue_dir, tmp_path).items():
        fails(capsys, argv, want)
        assert not output.exists(), name  # train-supernet leaves no an empty --output; standard NAS starts no trial


def test_a_truncated_weight_file_is_named_by_every_command(bert_dir, glue_dir, tmp_path, capsys):
    broken = tmp_path / "truncated"
    shutil.copytree(bert_dir, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    for name, (argv, output) in every_command(broken, glue_dir, tmp_path).items():
        line = fails(capsys, argv, f"cannot load the weights of model '{broken}': {weights} is truncated or damaged")
        assert "SafetensorError" not in line, name
        assert not output.exists(), name


@pytest.mark.parametrize("file", ["model.safetensors.index.json", "config.json"])
def test_invalid_json_beside_the_weights_is_one_line(bert_dir, glue_dir, tmp_path, capsys, file):
    model = _sharded(bert_dir, tmp_path / "sharded")
    (model / file).write_text('{"weight_map": ')
    for name, (argv, output) in every_command(model, glue_dir, tmp_path).items():
        line = fails(capsys, argv, "")
        assert file in line or "config" in line, (name, line)  # config.json: AutoConfig's own message names it
        assert not output.exists(), name


# ---- labels and trial ids ----


LABEL_CASES = {  # task: (folder, header, row i of 6, what the error says about train.tsv)
    "rte": ("RTE", "index\tsentence1\tsentence2\tlabel", lambda i: f"{i}\ta man plays\ta man is playing\t{'maybe' if i == 2 else 'entailment'}",
            r"has unknown label\(s\) \['maybe'\] .*, the first on line 4;"),
    "stsb": ("STS-B", "sentence1\tsentence2\tscore", lambda i: f"a\tb\t{'high' if i == 4 else '2.5'}", r"line 6 has a non-numeric score 'high'"),
}


@pytest.mark.parametrize("task", list(LABEL_CASES))
def test_label_errors_name_the_file_and_the_line(tmp_path, task):
    """Line numbers count the header: row 2 of RTE's rows is line 4 (header, rows 0, 1, 2); row 4 of STS-B's is line 6."""
    name, header, row, message = LABEL_CASES[task]
    folder = tmp_path / name
    folder.mkdir()
    for split in ("train.tsv", "dev.tsv"):
        (folder / split).write_text(header + "\n" + "".join(row(i) + "\n" for i in range(6)))
    with pytest.raises(SynePruneError, match=re.escape(str(folder / "train.tsv")) + " " + message):
        load_task(task, tmp_path)


def test_export_refuses_a_trial_id_that_trials_csv_holds_twice(tmp_path, capsys):
    search = tmp_path / "search"
    search.mkdir()
    (search / "search.json").write_text(json.dumps({"settings": {}, "mode": "weight-sharing", "supernet": None}))
    header = "trial_id,status,num_layers,num_heads,num_units,error,params\n"
    rows = ["6,completed,1,2,10,0.3,0.5\n", "7,completed,1,2,10,0.3,0.5\n", "7,completed,2,4,37,0.2,1.0\n"]
    (search / "trials.csv").write_text(header + "".join(rows))
    (search / "pareto.csv").write_text(header + rows[1])
    out = tmp_path / "export"
    want = f"trial 7 appears 2 times in {search / 'trials.csv'}"
    fails(capsys, ["export", "--search-dir", str(search), "--trial", "7", "--output", str(out)], want)
    fails(capsys, ["export", "--search-dir", str(search), "--max-params", "0.6", "--output", str(out)], want)
    assert not out.exists()
    assert main(["export", "--search-dir", str(search), "--trial", "9", "--output", str(out)]) == 2  # unchanged: no such trial
