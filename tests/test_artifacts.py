"""The files the stages hand on (syne_prune.artifacts): files written before ``format_version`` existed still load
(``tests/fixtures/artifacts``: written by syne-prune 0.1.0 on a tiny BERT, paths replaced by /home/user), records
round-trip, damaged or newer files are one-line errors, a failed write leaves the old file, and no other module
names these files or parses them itself."""
from __future__ import annotations

import ast
import errno
import json
import shutil
from pathlib import Path

import pytest

from syne_prune import files
from syne_prune.artifacts import (
    EXPORT_FILE,
    FORMAT_VERSION,
    SEARCH_FILE,
    SUMMARY_FILE,
    SUPERNET_FILE,
    TEST_ERRORS_FILE,
    TRIALS_FILE,
    ExportDir,
    SearchDir,
    SearchRecord,
    SupernetDir,
    read_json,
    write_json,
)
from syne_prune.errors import SynePruneError

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "artifacts"
PACKAGE = Path(__file__).resolve().parents[1] / "syne_prune"


@pytest.fixture
def search_dir(tmp_path) -> Path:
    for name in (SEARCH_FILE, SUMMARY_FILE, TRIALS_FILE, TEST_ERRORS_FILE):
        shutil.copy(FIXTURES / name, tmp_path / name)
    return tmp_path


def test_a_search_written_without_format_version_loads_as_version_1(search_dir):
    assert "format_version" not in json.loads((search_dir / SEARCH_FILE).read_text())
    record = SearchDir(search_dir).read_settings(require_trials=True)
    assert record == SearchRecord(settings=record.settings, trial_kind="weight-sharing", supernet="/home/user/supernets0/bert",
                                  search_space="medium", task="rte")
    assert record.settings["scheduler"] == "morea" and record.settings["objectives"] == ["error", "params"]
    assert record.settings["trial_kind"] == "weight-sharing" and "supernet" not in record.settings
    assert record.settings["trial_settings"] == {"supernet": "/home/user/supernets0/bert", "fidelity_levels": 9}
    summary = SearchDir(search_dir).read_summary()
    assert summary["format_version"] == 1 and summary["hypervolume"] == pytest.approx(0.23760081858673407)
    assert summary["trials"] == {"completed": 8, "stopped": 0, "failed": 0}


def test_the_ledger_gets_the_test_errors_scored_after_the_search(search_dir):
    trials = SearchDir(search_dir).trials().set_index("trial_id")
    assert len(trials) == 8 and set(trials["status"]) == {"completed"}
    # test_errors.csv holds trials 1 and 3: their empty test_error cells are filled, the others stay empty
    assert trials.loc[1, "test_error"] == 0.5 and trials.loc[3, "test_error"] == 0.475
    assert trials.drop(index=[1, 3])["test_error"].isna().all()


def test_a_supernet_and_an_export_of_the_earlier_format_load(tmp_path):
    shutil.copy(FIXTURES / SUPERNET_FILE, tmp_path / SUPERNET_FILE)
    record = SupernetDir(tmp_path).read()
    assert record["task"] == "rte" and record["search_space"] == "medium" and record["teacher"] is None
    assert sorted(record["manifest"]) == ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]
    assert SupernetDir(tmp_path).teacher_path() is None and SupernetDir(tmp_path).task() == "rte"
    shutil.copy(FIXTURES / EXPORT_FILE, tmp_path / EXPORT_FILE)
    export = ExportDir(tmp_path).read()
    assert export["format_version"] == 1 and export["heads_per_layer"] == [2, 0] and export["neurons_per_layer"] == [10, 37]
    assert export["config"] == {"num_heads_0": 2, "num_units_0": 10, "num_heads_1": 0, "num_units_1": 37}


def test_records_round_trip_with_the_version_first(tmp_path):
    record = SearchRecord(settings={"seed": 3, "objectives": ["error", "params"]}, trial_kind="standard", task="mrpc")
    SearchDir(tmp_path).write_settings(record)
    on_disk = json.loads((tmp_path / SEARCH_FILE).read_text())
    assert next(iter(on_disk)) == "format_version" and on_disk["format_version"] == FORMAT_VERSION
    assert SearchDir(tmp_path).read_settings() == record
    written = ExportDir(tmp_path).write({"heads_per_layer": [1], "format_version": 99})  # the caller's version is replaced
    assert written["format_version"] == FORMAT_VERSION and ExportDir(tmp_path).read() == written


def test_a_supernet_record_lists_the_sha256_of_every_other_file(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"abc")
    (tmp_path / ".hidden").write_text("not listed")
    record = SupernetDir(tmp_path).write({"task": "rte"})
    # sha256("abc"), from FIPS 180-2's example
    assert record["manifest"] == {"a.bin": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}
    assert SupernetDir(tmp_path).read() == record


@pytest.mark.parametrize("content, message", [
    ("{broken", "is not valid JSON"),
    ("[1, 2]", "does not hold a JSON object"),
    (json.dumps({"format_version": FORMAT_VERSION + 1, "settings": {}}), f"format version {FORMAT_VERSION + 1}, this syne-prune reads up to"),
    (json.dumps({"format_version": "one", "settings": {}}), "has no valid format_version"),
    (json.dumps({"format_version": 1}), "has no settings"),
])
def test_a_damaged_or_newer_search_json_is_one_line(tmp_path, content, message):
    (tmp_path / SEARCH_FILE).write_text(content)
    with pytest.raises(SynePruneError, match=message) as error:
        SearchDir(tmp_path).read_settings()
    assert "\n" not in str(error.value)


def test_what_is_not_there_is_named_with_the_fix(tmp_path):
    with pytest.raises(SynePruneError, match=f"is not a search directory \\(no {SEARCH_FILE}\\); give the --output of a search"):
        SearchDir(tmp_path).read_settings()
    (tmp_path / SEARCH_FILE).write_text(json.dumps({"settings": {}}))
    with pytest.raises(SynePruneError, match=f"no {SEARCH_FILE} / {TRIALS_FILE}"):
        SearchDir(tmp_path).read_settings(require_trials=True)
    with pytest.raises(SynePruneError, match=f"no {SUPERNET_FILE}\\); finish it with train-supernet --resume"):
        SupernetDir(tmp_path).read()
    with pytest.raises(SynePruneError, match="not found; give the --output directory of train-supernet"):
        SupernetDir(tmp_path / "missing").read()
    with pytest.raises(SynePruneError, match=f"is not a syne-prune export \\(no {EXPORT_FILE}\\)"):
        ExportDir(tmp_path).read()
    (tmp_path / SUPERNET_FILE).write_text(json.dumps({"task": "rte", "manifest": {}}))  # the version was always written
    with pytest.raises(SynePruneError, match="has no valid format_version"):
        SupernetDir(tmp_path).read()


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / SUMMARY_FILE
    write_json(path, {"hypervolume": 0.25})

    def full_disk(source, target):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "replace", full_disk)
    with pytest.raises(SynePruneError, match=f"'{path}' \\(no space left on the device\\); free space there") as error:
        write_json(path, {"hypervolume": 0.5})
    assert "\n" not in str(error.value)
    monkeypatch.undo()
    assert read_json(path, "search", "")["hypervolume"] == 0.25 and sorted(p.name for p in tmp_path.iterdir()) == [SUMMARY_FILE]


HAND_ON_FILES = {SUPERNET_FILE, SEARCH_FILE, TRIALS_FILE, TEST_ERRORS_FILE, SUMMARY_FILE, EXPORT_FILE}
# Modules that parse JSON of their own, and what: none of them reads a file of HAND_ON_FILES.
OWN_JSON = {
    "blackbox/benchmark.py": "benchmark.json and each replay's seconds",
    "blackbox/format.py": "blackbox.json",
    "blackbox/record.py": "a JSON round-trip that makes the settings comparable",
    "export.py": "config.json of an export, to complete its auto_map",
    "aws/jobs.py": "hyperparameters split over several job fields",
    "search/backends/sagemaker/entry.py": "SM_HPS, the hyperparameters SageMaker hands a job",
    "search/outputs.py": "a JSON round-trip that makes the settings comparable",
    "search/results.py": "each part's wall-clock record",
    "training.py": "a resume directory's settings.json",
    "search/protocol.py": "a task specification travelling to a trial as one command-line word",
    "embedding/pooling.py": "sentence-transformers' pooling configuration of an embedding model",
    "embedding/train.py": "the importance record kept for a resumed embedding run",
    "baselines/run.py": "a JSON round-trip of a baseline's record",
    "cli/sagemaker_job.py": "the argument list a SageMaker job receives",
    "cli/export.py": "--config, inline JSON or a JSON file",
    "supernet/train.py": "the importance record kept for a resumed run",
    "models/loading.py": "a model's config.json, tokenizer files and weight index, checked before loading",
}


def _parsed(path: Path) -> tuple[ast.Module, set[int]]:
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return tree, docstrings


def test_only_the_artifacts_module_names_or_parses_the_files_the_stages_hand_on():
    named, parsing = [], set()
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE).as_posix()
        if module == "artifacts.py":
            continue
        tree, docstrings = _parsed(path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in HAND_ON_FILES and id(node) not in docstrings:
                named.append(f"{module}:{node.lineno} {node.value}")
            if isinstance(node, ast.Call) and ast.unparse(node.func) in ("json.load", "json.loads"):
                parsing.add(module)
    assert named == [], "use the constants and readers of syne_prune.artifacts"
    assert parsing <= set(OWN_JSON), f"{sorted(parsing - set(OWN_JSON))} parse JSON: read hand-on files through syne_prune.artifacts"
