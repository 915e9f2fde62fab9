"""The CLI: thin over the API; every foreseeable error is one line on stderr with exit code 2."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import tiny_model
from helpers import fails, train_args

from syne_prune.cli import main


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny BERT with its tokenizer (an export carries the tokenizer, so export refuses a model without one)."""
    from transformers import BertTokenizerFast

    path = tmp_path_factory.mktemp("model") / "bert"
    tiny_model("bert", "classifier").save_pretrained(path)
    (path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "good", "film"]) + "\n")
    BertTokenizerFast(vocab=str(path / "vocab.txt")).save_pretrained(path)
    return path


def _set_option(argv: list[str], flag: str, value: str) -> list[str]:
    """argv with ``flag`` set to ``value`` (replaced when present, appended otherwise)."""
    if flag in argv:
        return argv[: argv.index(flag) + 1] + [value] + argv[argv.index(flag) + 2 :]
    return argv + [flag, value]


def test_export_writes_a_loadable_model(model_dir, tmp_path, capsys, monkeypatch):
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    out = tmp_path / "out"
    config = json.dumps({"num_heads_0": 2, "num_units_0": 10, "num_heads_1": 0, "num_units_1": 37})
    assert main(["export", "--model", str(model_dir), "--search-space", "medium", "--config", config, "--output", str(out)]) == 0
    assert f"exported to {out}" in capsys.readouterr().out
    meta = json.loads((out / "syne_prune.json").read_text())
    assert meta["search_space"] == "medium" and meta["heads_per_layer"] == [2, 0]
    assert os.listdir(tmp_path / "cwd") == []  # nothing written outside --output


def test_config_from_a_file(model_dir, tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"layer_0": 1, "layer_1": 0}))
    out = tmp_path / "out"
    assert main(["export", "--model", str(model_dir), "--search-space", "layer", "--config", str(path), "--output", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["num_hidden_layers"] == 1


def test_bad_inputs_are_one_line_errors(model_dir, tmp_path, capsys):
    out = str(tmp_path / "out")
    base = ["export", "--model", str(model_dir), "--search-space", "small", "--output", out]
    fails(capsys, base + ["--config", '{"num_layers": 9, "num_heads": 1, "num_units": 1}'], "'num_layers' must be an integer in [0, 2], got 9")
    fails(capsys, base + ["--config", '{"num_layers": 1}'], "lacks hyperparameter 'num_heads'")
    fails(capsys, base + ["--config", "{not json"], "--config is not valid JSON")
    fails(capsys, base + ["--config", "missing.json"], "neither inline JSON nor an existing JSON file")
    fails(capsys, base + ["--config", "[1, 2]"], "neither inline JSON")
    missing_model = ["export", "--model", str(tmp_path / "nope"), "--search-space", "small", "--config", "{}", "--output", out]
    fails(capsys, missing_model, "cannot load model")
    assert not (tmp_path / "out").exists()


def test_unsupported_model_is_named(tmp_path, capsys):
    from transformers import GPT2Config, GPT2Model

    GPT2Model(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50)).save_pretrained(tmp_path / "gpt2")
    argv = ["export", "--model", str(tmp_path / "gpt2"), "--search-space", "small", "--config", "{}", "--output", str(tmp_path / "o")]
    fails(capsys, argv, "unsupported architecture 'gpt2'; syne-prune supports bert, roberta, distilbert, xlm-roberta, electra")


def test_existing_output_is_not_overwritten(model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.csv").write_text("keep me")
    argv = ["export", "--model", str(model_dir), "--search-space", "layer", "--config", '{"layer_0": 1, "layer_1": 1}', "--output", str(out)]
    fails(capsys, argv, "already exists; choose a new --output or pass --overwrite")
    assert (out / "results.csv").read_text() == "keep me"


def test_truncated_weights_are_a_one_line_error(model_dir, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    argv = ["export", "--model", str(broken), "--search-space", "layer", "--config", '{"layer_0": 1, "layer_1": 1}', "--output", str(tmp_path / "o")]
    fails(capsys, argv, "cannot load the weights")


def test_space_lists_the_hyperparameters(model_dir, capsys):
    assert main(["space", "--model", str(model_dir), "--search-space", "large", "--samples", "2"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert set(listing["hyperparameters"]) == {"head_mask_0_0", "unit_mask_0_0", "unit_mask_0_1", "head_mask_1_0", "unit_mask_1_0", "unit_mask_1_1"}
    assert len(listing["samples"]) == 2 and listing["smallest"]["unit_mask_1_1"] == 0


@pytest.mark.slow
def test_console_script_is_installed():
    """The installed ``syne-prune`` script (one process: starting one costs seconds of imports) exits 2 with one line."""
    script = Path(sys.executable).with_name("syne-prune")
    run = subprocess.run([str(script), "export"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "Traceback" not in run.stderr and run.stdout == ""
    assert run.stderr.startswith("error: ") and run.stderr.count("\n") == 1 and "--output" in run.stderr


@pytest.mark.parametrize("module", ["syne_prune", "syne_prune.cli"])
def test_python_dash_m_runs_the_command(module, monkeypatch, capsys):
    """``python -m syne_prune`` and ``python -m syne_prune.cli`` run ``main`` and exit with its code."""
    import runpy

    monkeypatch.setattr(sys, "argv", [module, "export"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    assert exit_.value.code == 2 and capsys.readouterr().err.startswith("error: ")


# ---- train-supernet ----


def test_train_supernet_writes_a_checkpoint(tiny_model_dirs, glue_dir, tmp_path, capsys, monkeypatch):
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    out = tmp_path / "supernet"
    assert main(train_args(tiny_model_dirs["bert"], glue_dir, out)) == 0
    printed = capsys.readouterr().out
    assert "largest  sub-network: validation accuracy" in printed and f"super-network written to {out}" in printed
    meta = json.loads((out / "supernet.json").read_text())
    assert meta["strategy"] == "sandwich" and meta["hyperparameters"]["batch_size"] == 8
    assert set(meta["versions"]) == {"syne_prune", "torch", "transformers", "syne_tune", "python"}
    assert os.listdir(tmp_path / "cwd") == []  # nothing written outside --output


@pytest.mark.parametrize(
    "change, message",
    [
        (("--task", "glue"), "unknown task 'glue'; choose one of rte"),
        (("--strategy", "greedy"), "unknown strategy 'greedy'; choose one of standard, random, random_linear, sandwich, kd, full"),
        (("--epochs", "0"), "--epochs must be a positive integer, got 0"),
        (("--batch-size", "-4"), "--batch-size must be a positive integer, got -4"),
        (("--lr", "0"), "--lr must be positive, got 0.0"),
        (("--warmup-ratio", "1"), "--warmup-ratio must be in [0, 1), got 1.0"),
        (("--model", "/nonexistent/model"), "cannot load model '/nonexistent/model'"),
        (("--data-dir", "/nonexistent/glue"), "/nonexistent/glue/RTE/train.tsv not found"),
    ],
)
def test_train_supernet_bad_input(tiny_model_dirs, glue_dir, tmp_path, capsys, change, message):
    argv = train_args(tiny_model_dirs["bert"], glue_dir, tmp_path / "out")
    argv = _set_option(argv, *change)
    fails(capsys, argv, message)
    assert not (tmp_path / "out").exists()


def test_train_supernet_malformed_rows(tiny_model_dirs, glue_dir, tmp_path, capsys):
    bad = tmp_path / "glue"
    shutil.copytree(glue_dir, bad)
    with open(bad / "RTE" / "train.tsv", "a") as handle:
        handle.write("999\tonly two\tfields\tentailment\textra\n")
    fails(capsys, train_args(tiny_model_dirs["bert"], bad, tmp_path / "out"), "is malformed: line 102 has 5 fields, expected 4")


def test_train_supernet_never_overwrites_without_asking(tiny_model_dirs, glue_dir, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    fails(capsys, train_args(tiny_model_dirs["bert"], glue_dir, out), "already exists; pass --resume to continue it, --overwrite to replace it")
    assert (out / "notes.txt").read_text() == "mine"
    fails(capsys, train_args(tiny_model_dirs["bert"], glue_dir, out, "--resume"), "nothing to resume")
    assert (out / "notes.txt").read_text() == "mine"
    assert main(train_args(tiny_model_dirs["bert"], glue_dir, out, "--overwrite")) == 0
    assert not (out / "notes.txt").exists() and (out / "supernet.json").exists()
    assert main(train_args(tiny_model_dirs["bert"], glue_dir, out, "--resume")) == 0  # finished: nothing to do


# ---- search: every foreseeable mistake fails before any trial starts ----


@pytest.mark.parametrize(
    "change, message",
    [
        (("--scheduler", "bayes"), "unknown scheduler 'bayes'; choose one of random, morea, ehvi, moasha, nsga2, local_search"),
        (("--objectives", "error,flops"), "unknown objective(s) flops; choose from error, params, macs, latency"),
        (("--objectives", "params"), "--objectives must list error and at least one size objective"),
        (("--n-workers", "0"), "--n-workers must be at least 1, got 0"),
        (("--max-trials", "0"), "--max-trials must be at least 1, got 0"),
        (("--max-wallclock", "-5"), "--max-wallclock must be positive seconds, got -5.0"),
        (("--backend", "cloud"), "unknown backend 'cloud'; choose one of pool, local"),
        (("--trial-timeout", "0"), "--trial-timeout must be positive seconds, got 0.0"),
        (("--data-dir", "/nonexistent-glue"), "/nonexistent-glue/RTE/train.tsv not found; --data-dir must hold RTE/train.tsv"),
    ],
)
def test_search_bad_settings(supernets, tmp_path, capsys, change, message):
    argv = ["search", "--supernet", str(supernets["bert"]), "--max-trials", "3", "--output", str(tmp_path / "out")]
    argv = _set_option(argv, *change)
    fails(capsys, argv, message)
    assert not (tmp_path / "out").exists()


def test_search_refuses_missing_truncated_or_tampered_supernets(supernets, tmp_path, capsys):
    def search(supernet):
        return ["search", "--supernet", str(supernet), "--max-trials", "3", "--output", str(tmp_path / "out")]

    fails(capsys, search(tmp_path / "nowhere"), "not found; give the --output directory of train-supernet")
    truncated = tmp_path / "truncated"
    shutil.copytree(supernets["bert"], truncated)
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])
    fails(capsys, search(truncated), "model.safetensors does not match its sha256")
    tampered = tmp_path / "tampered"
    shutil.copytree(supernets["bert"], tampered)
    config = json.loads((tampered / "config.json").read_text())
    config["hidden_dropout_prob"] = 0.5
    (tampered / "config.json").write_text(json.dumps(config))
    fails(capsys, search(tampered), "config.json does not match its sha256")
    incomplete = tmp_path / "incomplete"
    shutil.copytree(supernets["bert"], incomplete)
    (incomplete / "supernet.json").unlink()
    fails(capsys, search(incomplete), "not a complete super-network checkpoint")
    assert not (tmp_path / "out").exists()


def test_search_never_overwrites_an_existing_output(supernets, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "trials.csv").write_text("precious results")
    argv = ["search", "--supernet", str(supernets["bert"]), "--max-trials", "3", "--output", str(out)]
    fails(capsys, argv, "already exists; pass --resume to continue it, --overwrite to replace it")
    fails(capsys, argv + ["--resume"], "nothing to resume")
    assert (out / "trials.csv").read_text() == "precious results"


def test_export_from_search_bad_input(tmp_path, capsys):
    fails(capsys, ["export", "--search-dir", str(tmp_path), "--max-params", "0.5", "--output", str(tmp_path / "o")], "is not a search directory")
    fails(capsys, ["export", "--model", "x", "--search-dir", str(tmp_path), "--output", str(tmp_path / "o")], "--search-dir replaces")
    fails(capsys, ["export", "--model", "x", "--search-space", "small", "--config", "{}", "--trial", "3", "--output", str(tmp_path / "o")],
           "need --search-dir")


# ---- --help: every option has help text and shows its default ----


def _subcommands(parser) -> dict:
    import argparse

    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


def _help_problems(parser) -> list[str]:
    """Options of any subcommand whose --help lacks help text or "(default: ...)" (flags and required
    options show no default); read from the parser's actions, so a new option is checked too."""
    import argparse

    problems = []
    for name, sub in _subcommands(parser).items():
        formatter = sub._get_formatter()  # the subcommand's own formatter class: what its --help prints
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            option = f"{name} {'/'.join(action.option_strings)}"
            if not action.help:
                problems.append(f"{option}: no help")
                continue
            shown = " ".join(formatter._expand_help(action).split())
            if not (action.required or action.nargs == 0) and "(default: " not in shown:
                problems.append(f"{option}: no (default: ...) in '{shown}'")
    return problems


def test_every_option_has_help_and_shows_its_default():
    from syne_prune.cli import build_parser

    parser = build_parser()
    assert set(_subcommands(parser)) >= {"export", "train-supernet", "search", "quickstart", "space"}
    assert _help_problems(parser) == []
    broken = build_parser()
    _subcommands(broken)["search"].add_argument("--new-option", type=int)
    _subcommands(broken)["export"].add_argument("--hand-stated", type=int, default=3, help="a number (default 3)")
    assert _help_problems(broken) == ["export --hand-stated: no (default: ...) in 'a number (default 3)'",
                                      "search --new-option: no help"]


@pytest.mark.parametrize("command, shown", [
    ("search", ["--n-workers N_WORKERS trials evaluated in parallel (default: 2)", "(default: error,params)",
                "--max-trials MAX_TRIALS stop after this many trials (default: none)",
                "(default: ehvi with --trial-kind weight-sharing, moasha with --trial-kind standard)",
                "--instance-type INSTANCE_TYPE training instance type (default: ml.m5.xlarge)"]),
    ("train-supernet", ["how the sub-networks are trained together (default: full)", "training epochs (default: 3)"]),
    ("export", ["--trial TRIAL with --search-dir: export this trial (default: none)"]),
    ("quickstart", ["(default: syne-prune-quickstart)", "(default: 0.75)"]),
    ("space", ["--samples SAMPLES random configurations to print (default: 0)"]),
])
def test_help_prints_the_defaults(capsys, monkeypatch, command, shown):
    monkeypatch.setenv("COLUMNS", "400")  # no line breaks inside the expected texts
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    printed = " ".join(capsys.readouterr().out.split())
    for text in shown:
        assert text in printed


def test_choices_come_from_the_registries():
    from syne_prune.cli import build_parser
    from syne_prune.data import TASKS
    from syne_prune.search import BACKENDS, SCHEDULERS, TEST_SPLITS, TRIAL_KINDS
    from syne_prune.search_spaces import SEARCH_SPACES
    from syne_prune.supernet.strategies import STRATEGIES

    subcommands = _subcommands(build_parser())
    choices = {(name, option): action.choices for name, sub in subcommands.items() for action in sub._actions
               for option in action.option_strings}
    registries = {("train-supernet", "--task"): TASKS, ("train-supernet", "--strategy"): STRATEGIES,
                  ("train-supernet", "--search-space"): SEARCH_SPACES, ("search", "--scheduler"): SCHEDULERS,
                  ("search", "--backend"): BACKENDS, ("search", "--trial-kind"): TRIAL_KINDS, ("search", "--test-split"): TEST_SPLITS,
                  ("search", "--task"): TASKS, ("search", "--search-space"): SEARCH_SPACES, ("export", "--search-space"): SEARCH_SPACES,
                  ("quickstart", "--task"): TASKS, ("quickstart", "--scheduler"): SCHEDULERS, ("space", "--search-space"): SEARCH_SPACES}
    for key, registry in registries.items():
        assert choices[key] == list(registry), key


def test_parser_errors_are_one_line(capsys):
    fails(capsys, ["export"], "the following arguments are required: --output (see: syne-prune export --help)")
    fails(capsys, ["search", "--scheduler", "bayes", "--output", "x"], "argument --scheduler: unknown scheduler 'bayes'; choose one of random")
    fails(capsys, ["space", "--model", "m", "--search-space", "small", "--bogus"], "unrecognized arguments: --bogus")


def test_every_command_that_trains_or_evaluates_takes_device_precision_and_batch_grouping():
    from syne_prune.cli import COMPUTE_COMMANDS, TRAINING_COMMANDS, _commands, build_parser

    commands = dict(_commands(build_parser()))
    assert set(COMPUTE_COMMANDS) <= set(commands) and set(TRAINING_COMMANDS) <= set(COMPUTE_COMMANDS)  # every name is a command
    for name in COMPUTE_COMMANDS:
        flags = {flag for action in commands[name]._actions for flag in action.option_strings}
        assert {"--device", "--precision"} <= flags, name
        assert ("--group-by-length" in flags) == (name in TRAINING_COMMANDS), name  # only where something trains
    parsed = build_parser().parse_args(["evaluate-retrieval", "--model", "m", "--queries", "q.csv", "--precision", "bf16", "--device", "cpu"])
    assert (parsed.precision, parsed.device) == ("bf16", "cpu")
    parsed = build_parser().parse_args(["recover", "--model", "m", "--teacher", "t", "--epochs", "auto", "--output", "o", "--group-by-length"])
    assert parsed.group_by_length is True
