"""Model cards: every export, baseline budget and recovered model carries a README.md whose YAML parses, whose numbers
equal the records they come from (trials.csv, syne_prune.json, the recovery record), whose shape table equals the
exported config, and which has no test entry where the task has no test data."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from syne_prune.artifacts import SearchDir
from syne_prune.cli import main
from syne_prune.errors import SynePruneError
from syne_prune.model_card import CARD_FILE, is_generated, model_card, write_model_card

# medium space, per layer: 2 and 3 of 4 heads, 20 and 10 of 37 neurons (a pruned config, with its modeling code)
CONFIG = '{"num_heads_0": 2, "num_units_0": 20, "num_heads_1": 3, "num_units_1": 10}'
# recovery keeping the last epoch's weights (keep best could write the export as it came: after = before)
FAST = ["--lr", "1e-3", "--batch-size", "8", "--max-train-examples", "24", "--max-eval-examples", "16", "--keep", "last"]


def _card(directory: Path) -> tuple[dict, str]:
    """(the card's YAML metadata, its text below the metadata)."""
    text = (directory / CARD_FILE).read_text()
    _, front, body = text.split("---\n", 2)
    assert is_generated(text)
    return yaml.safe_load(front), body


def _results(metadata: dict) -> dict[str, dict]:
    """{split: model-index result} of a card."""
    [entry] = metadata["model-index"]
    results = {r["dataset"]["split"]: r for r in entry["results"]}
    assert len(results) == len(entry["results"])
    return results


def _value(result: dict) -> float:
    [metric] = result["metrics"]
    return metric["value"]


def _shape_table(body: str) -> list[tuple[int, int, int]]:
    """(source layer, heads, neurons) of every row of the card's shape table."""
    return [tuple(map(int, row)) for row in re.findall(r"^\| (\d+) \| (\d+) \| (\d+) \|$", body, flags=re.MULTILINE)]


def _config_shape(directory: Path) -> list[tuple[int, int]]:
    """(heads, neurons) per layer of an exported BERT's config.json (a pruned config's per-layer lists, else uniform)."""
    config = json.loads((directory / "config.json").read_text())
    if "num_heads_per_layer" in config:
        return list(zip(config["num_heads_per_layer"], config["intermediate_size_per_layer"]))
    return [(config["num_attention_heads"], config["intermediate_size"])] * config["num_hidden_layers"]


@pytest.fixture(scope="module")
def searched(tiny_model_dirs, glue_dir, tmp_path_factory) -> dict[str, Path]:
    """A tiny BERT super-network (RTE slice), a 4-trial search of it and the best Pareto trial exported with the CLI."""
    root = tmp_path_factory.mktemp("cards")
    assert main(["train-supernet", "--model", str(tiny_model_dirs["bert"]), "--task", "stsb", "--data-dir", str(glue_dir),
                 "--search-space", "medium", "--strategy", "sandwich", "--epochs", "2", "--batch-size", "8", "--lr", "1e-3",
                 "--max-length", "48", "--max-train-examples", "32", "--max-eval-examples", "16", "--teacher", "none",
                 "--output", str(root / "supernet")]) == 0
    assert main(["search", "--supernet", str(root / "supernet"), "--output", str(root / "search"), "--scheduler", "random",
                 "--max-trials", "4", "--n-workers", "1", "--seed", "1"]) == 0
    assert main(["export", "--search-dir", str(root / "search"), "--max-params", "1.0", "--output", str(root / "export")]) == 0
    trials = SearchDir(root / "search").trials()
    uneven = int(trials[trials["num_heads_0"] != trials["num_heads_1"]]["trial_id"].iloc[0])  # layers of different shapes
    assert main(["export", "--search-dir", str(root / "search"), "--trial", str(uneven), "--output", str(root / "uneven")]) == 0
    return {"root": root, "supernet": root / "supernet", "search": root / "search", "export": root / "export", "uneven": root / "uneven"}


@pytest.mark.slow
def test_export_cards_carry_the_search_trials_numbers_and_the_exported_shape(searched):
    """The best Pareto trial (scored on test too) and a trial off the front (validation only), each exported from the
    search: the card's numbers are trials.csv's (metric = 1 - error) and its shape table is the exported config's."""
    trials = SearchDir(searched["search"]).trials()
    for name in ("export", "uneven"):
        export = searched[name]
        record = json.loads((export / "syne_prune.json").read_text())
        row = trials[trials["trial_id"] == record["trial_id"]].iloc[0]
        metadata, body = _card(export)
        assert metadata["library_name"] == "transformers" and metadata["pipeline_tag"] == "text-classification"
        assert {"syne-prune", "pruned", "structured-pruning"} <= set(metadata["tags"])
        assert metadata["datasets"] == ["nyu-mll/glue"] and metadata["metrics"] == ["spearmanr"]
        assert "base_model" not in metadata  # the tiny model is a local directory, not a hub id
        results = _results(metadata)
        assert _value(results["validation"]) == 1.0 - row["error"] == 1.0 - record["search_metrics"]["error"]
        if pd.notna(row["test_error"]):  # on the Pareto front: scored on the test split after the search
            assert _value(results["test"]) == 1.0 - row["test_error"] == 1.0 - record["search_metrics"]["test_error"]
            assert _value(results["test"]) != _value(results["validation"])
        else:  # off the front: no test score, and none made up
            assert set(results) == {"validation"} and "test_error" not in record["search_metrics"]
        assert all(r["dataset"]["type"] == "nyu-mll/glue" and r["dataset"]["config"] == "stsb" for r in results.values())
        assert [(heads, neurons) for _, heads, neurons in _shape_table(body)] == _config_shape(export)
        assert [layer for layer, _, _ in _shape_table(body)] == record["kept_layers"]
        assert f"{record['params']:,} ({record['params_ratio']:.1%}" in body and f"({record['macs_ratio']:.1%} of the unpruned model)" in body
        assert (f"syne-prune export --search-dir {record['search_dir']} --trial {record['trial_id']} --output {export}" in body
                and f"syne-prune search --supernet {searched['supernet'].resolve()} --output {record['search_dir']}" in body)
        remote = "auto_map" in json.loads((export / "config.json").read_text())
        assert ("trust_remote_code=True" in body) == remote
    assert "auto_map" in json.loads((searched["uneven"] / "config.json").read_text())  # layers of different shapes: remote code
    assert len(_shape_table(_card(searched["uneven"])[1])) == 2
    assert pd.notna(trials.loc[trials["trial_id"] == json.loads((searched["export"] / "syne_prune.json").read_text())["trial_id"], "test_error"]).all()


@pytest.mark.slow
def test_recovered_card_carries_the_recovery_record(searched):
    out = searched["root"] / "recovered"
    assert main(["recover", "--model", str(searched["export"]), "--teacher", str(searched["supernet"]), "--epochs", "1",
                 *FAST, "--output", str(out)]) == 0
    record = json.loads((out / "syne_prune.json").read_text())
    after, metric = record["recovery"]["after"], record["metric"]
    assert after != record["recovery"]["before"]
    metadata, body = _card(out)
    results = _results(metadata)
    assert _value(results["validation"]) == after["validation"][metric] and _value(results["test"]) == after["test"][metric]
    assert [(h, n) for _, h, n in _shape_table(body)] == _config_shape(out)
    assert f"syne-prune recover --model {searched['export']} --teacher {searched['supernet'].resolve()} --epochs 1" in body
    assert "--keep last" in body and f"--output {out}" in body


@pytest.mark.slow
def test_export_with_recover_epochs_card_carries_the_recovery_and_its_one_command(searched):
    out = searched["root"] / "exported-recovered"
    trial = json.loads((searched["uneven"] / "syne_prune.json").read_text())["trial_id"]
    assert main(["export", "--search-dir", str(searched["search"]), "--trial", str(trial), "--recover-epochs", "1", "--output", str(out)]) == 0
    record = json.loads((out / "syne_prune.json").read_text())
    metadata, body = _card(out)
    scores = {split: _value(result) for split, result in _results(metadata).items()}
    assert scores == {split: record["recovery"]["after"][split][record["metric"]] for split in ("validation", "test")}
    assert (f"syne-prune export --search-dir {record['search_dir']} --trial {trial} --recover-epochs 1 --teacher "
            f"{searched['supernet'].resolve()} --output {out}") in body and "syne-prune recover" not in body
    assert [(h, n) for _, h, n in _shape_table(body)] == _config_shape(out)


def test_a_task_without_test_data_has_no_test_entry(tiny_model_dirs, tmp_path):
    """Own data, a training file only: the export from the super-network has no scores at all, the recovered model a
    validation entry and no test entry (no number made from validation)."""
    rows = [(f"the film was {word} number {i}", score + i / 100) for i in range(20) for word, score in (("good", 4.0), ("bad", 1.0))]
    train = tmp_path / "reviews" / "train.csv"
    train.parent.mkdir()
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(train, index=False)
    assert main(["train-supernet", "--model", str(tiny_model_dirs["bert"]), "--train-file", str(train), "--task-type", "regression", "--epochs", "1",
                 "--max-length", "16", "--batch-size", "8", "--teacher", "none", "--search-space", "medium", "--output", str(tmp_path / "sn")]) == 0
    assert main(["export", "--model", str(tmp_path / "sn"), "--search-space", "medium", "--config", CONFIG, "--output", str(tmp_path / "ex")]) == 0
    metadata, body = _card(tmp_path / "ex")
    assert "model-index" not in metadata and "datasets" not in metadata  # no scores; local files are no hub dataset
    assert "No scores recorded" in body and f"--config '{json.dumps(json.loads(CONFIG), separators=(',', ':'))}'" in body
    assert main(["recover", "--model", str(tmp_path / "ex"), "--teacher", str(tmp_path / "sn"), "--epochs", "2", *FAST, "--lr", "1e-2",
                 "--output", str(tmp_path / "rec")]) == 0
    record = json.loads((tmp_path / "rec" / "syne_prune.json").read_text())
    assert record["recovery"]["after"]["test"] is None and record["recovery"]["after"] != record["recovery"]["before"]
    metadata, body = _card(tmp_path / "rec")
    results = _results(metadata)
    assert set(results) == {"validation"}
    assert _value(results["validation"]) == record["recovery"]["after"]["validation"]["spearman"]
    assert results["validation"]["dataset"]["type"] == "reviews"
    assert "| test | no test data or not scored | |" in body and f"--train-file {train}" in body


@pytest.mark.slow
def test_baseline_budgets_carry_their_own_numbers_and_budget(searched, glue_dir, tmp_path):
    """prune: each budget's card holds its results.csv numbers; a budget that reuses the larger one's export (layer
    dropping, same sub-network) gets a card with its own budget."""
    assert main(["prune", "--method", "layer-drop", "--model", str(searched["supernet"]), "--task", "stsb", "--data-dir", str(glue_dir),
                 "--max-params", "0.99,0.98", "--finetune-epochs", "0", "--max-train-examples", "24", "--max-eval-examples", "16",
                 "--examples", "16", "--max-length", "48", "--output", str(tmp_path / "out")]) == 0
    results = pd.read_csv(tmp_path / "out" / "results.csv")
    for budget in ("0.99", "0.98"):
        metadata, body = _card(tmp_path / "out" / budget)
        row = results[results["budget"] == float(budget)].iloc[0]
        values = {split: _value(result) for split, result in _results(metadata).items()}
        assert values == {"validation": row["valid_metric"], "test": row["test_metric"]}
        assert f"--max-params {budget} " in body and f"--output {tmp_path / 'out'}" in body
        assert [(h, n) for _, h, n in _shape_table(body)] == _config_shape(tmp_path / "out" / budget)


def test_a_readme_syne_prune_did_not_write_is_never_replaced(tmp_path, capsys):
    """--overwrite of a directory holding the user's README.md (or an edited card) is one line, exit 2, nothing touched;
    a card as syne-prune wrote it is replaced."""
    output = tmp_path / "out"
    output.mkdir()
    readme = output / CARD_FILE
    readme.write_text("# my notes\n")
    argv = ["export", "--model", "unused", "--search-space", "medium", "--config", CONFIG, "--output", str(output), "--overwrite"]
    assert main(argv) == 2
    assert "is a README.md that syne-prune did not write" in capsys.readouterr().err
    assert readme.read_text() == "# my notes\n"
    for command in (["recover", "--model", "unused", "--teacher", "unused", "--epochs", "1"],
                    ["prune", "--method", "layer-drop", "--model", "unused", "--task", "rte", "--max-params", "0.5"]):
        assert main([*command, "--output", str(output), "--overwrite"]) == 2
        assert "is a README.md that syne-prune did not write" in capsys.readouterr().err
    card = model_card(_RECORD, {"model_type": "bert", "architectures": ["BertForSequenceClassification"]}, output)
    readme.write_text(card.replace("## Shape", "## Shape, as I see it"))
    assert main(argv) == 2 and readme.read_text().count("as I see it") == 1


_RECORD = {"source_model": "google-bert/bert-base-uncased", "heads_per_layer": [12, 12], "neurons_per_layer": [3072, 3072],
           "kept_layers": [0, 1], "params": 1000, "encoder_params": 500, "params_ratio": 0.5, "encoder_params_ratio": 0.25,
           "macs_per_sequence_128": 2000, "macs_ratio": 0.4, "versions": {"syne_prune": "0.2.0"}, "search_space": "layer",
           "config": {"num_layers": 2}, "task": "stsb", "metric": "spearman",
           "baseline": {"method": "layer-drop", "budget": {"kind": "macs", "ratio": 0.5}, "finetune_epochs": 0,
                        "validation": {"spearman": 0.25, "error": 0.75}, "test": None}}


def test_card_names_a_hub_base_model_and_hub_metric_ids(tmp_path):
    """A base model given as a hub id is the card's base_model; STS-B's metric is the hub's spearmanr; a uniform
    export needs no remote code; the card is what write_model_card writes."""
    config = {"model_type": "bert", "architectures": ["BertForSequenceClassification"]}
    (tmp_path / "syne_prune.json").write_text(json.dumps(_RECORD))
    (tmp_path / "config.json").write_text(json.dumps(config))
    write_model_card(tmp_path, tmp_path / "stsb-small")
    text = (tmp_path / CARD_FILE).read_text()
    assert text == model_card(_RECORD, config, tmp_path / "stsb-small")
    metadata, body = _card(tmp_path)
    assert metadata["base_model"] == "google-bert/bert-base-uncased" and metadata["metrics"] == ["spearmanr"]
    assert metadata["model-index"][0]["name"] == "stsb-small"
    assert {split: _value(r) for split, r in _results(metadata).items()} == {"validation": 0.25}
    assert "trust_remote_code" not in body and "--max-macs 0.5" in body
    assert not is_generated(text.replace("0.2500", "0.2501"))
    (tmp_path / CARD_FILE).write_text(text.replace("0.2500", "0.2501"))
    with pytest.raises(SynePruneError, match="did not write"):
        write_model_card(tmp_path)
    assert "0.2501" in (tmp_path / CARD_FILE).read_text()


def test_standard_nas_export_names_its_search_of_the_pretrained_model():
    """An export of a standard-NAS trial (no super-network): the search command fine-tunes the pre-trained model."""
    record = {**{k: v for k, v in _RECORD.items() if k != "baseline"}, "task": "mrpc", "metric": "f1", "search_dir": "/runs/search",
              "trial_id": 7, "data": {"data_dir": "/data/glue", "validation_fraction": 0.3, "seed": 0, "max_length": 128},
              "search_metrics": {"error": 0.125, "test_error": 0.25, "params": 0.5}}
    text = model_card(record, {"model_type": "bert", "architectures": ["BertForSequenceClassification"]}, Path("mrpc-small"))
    metadata, body = yaml.safe_load(text.split("---\n")[1]), text.split("---\n", 2)[2]
    assert {split: _value(r) for split, r in _results(metadata).items()} == {"validation": 0.875, "test": 0.75}
    assert ("syne-prune search --trial-kind standard --model google-bert/bert-base-uncased --task mrpc --data-dir /data/glue "
            "--output /runs/search") in body
    assert "syne-prune export --search-dir /runs/search --trial 7 --output mrpc-small" in body and "train-supernet" not in body
