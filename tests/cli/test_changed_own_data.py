"""A data file of the user's task changed after the task was recorded: every command that reads the recorded task
again (train-supernet --resume, search and search --resume on the super-network, export --recover-epochs, recover,
blackbox record)
stops with one line naming the file and both sha256 prefixes, exit code 2, and writes nothing."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest
from helpers import fails

from syne_prune.cli import main

TOPICS = ("billing", "login")


def _write(path: Path, rows: int, shift: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"text": [f"the film is {('good', 'bad')[(i + shift) % 2]}" for i in range(rows)],
                  "label": [TOPICS[(i + shift) % 2] for i in range(rows)]}).to_csv(path, index=False)
    return path


def _train_argv(model: Path, train: Path, test: Path, output: Path, *extra: str) -> list[str]:
    return ["train-supernet", "--model", str(model), "--train-file", str(train), "--test-file", str(test), "--epochs", "1",
            "--max-length", "12", "--batch-size", "8", "--teacher", "none", "--importance", "none", "--strategy", "sandwich",
            "--output", str(output), *extra]


def _files(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def trained(bert_dir, tmp_path_factory):
    """A super-network trained on a generated CSV task, a search and an export of it."""
    root = tmp_path_factory.mktemp("changed")
    train, test = _write(root / "data" / "train.csv", 24), _write(root / "data" / "test.csv", 8)
    assert main(_train_argv(bert_dir, train, test, root / "sn")) == 0
    assert main(["search", "--supernet", str(root / "sn"), "--output", str(root / "se"), "--max-trials", "2", "--n-workers", "1"]) == 0
    assert main(["export", "--search-dir", str(root / "se"), "--max-params", "1.0", "--output", str(root / "ex")]) == 0
    return root, train, test


@pytest.fixture
def changed(trained):
    """The train file rewritten with other rows for one test (restored after it); yields the line's expected parts."""
    root, train, test = trained
    original = train.read_bytes()
    _write(train, 24, shift=1)
    yield root, train, (hashlib.sha256(original).hexdigest()[:12], hashlib.sha256(train.read_bytes()).hexdigest()[:12])
    train.write_bytes(original)


def _refused(capsys, argv: list[str], train: Path, digests: tuple[str, str]) -> None:
    line = fails(capsys, argv, f"data file {train} (train) changed since the task was recorded")
    assert all(digest in line for digest in digests), line


@pytest.mark.slow
def test_search_export_and_recover_refuse_a_changed_file(trained, changed, capsys, tmp_path):
    root, train, digests = changed
    before = _files(root)
    _refused(capsys, ["search", "--supernet", str(root / "sn"), "--output", str(tmp_path / "se"), "--max-trials", "1"], train, digests)
    _refused(capsys, ["search", "--supernet", str(root / "sn"), "--output", str(root / "se"), "--max-trials", "3", "--resume"], train, digests)
    _refused(capsys, ["export", "--search-dir", str(root / "se"), "--max-params", "1.0", "--recover-epochs", "1", "--output",
                      str(tmp_path / "ex")], train, digests)
    _refused(capsys, ["recover", "--model", str(root / "ex"), "--teacher", str(root / "sn"), "--epochs", "1", "--output",
                      str(tmp_path / "rec")], train, digests)
    _refused(capsys, ["blackbox", "record", "--supernet", str(root / "sn"), "--samples", "2", "--output", str(tmp_path / "bb")], train, digests)
    assert _files(root) == before and list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_resumed_supernet_training_refuses_a_changed_file(bert_dir, tmp_path, capsys, monkeypatch):
    """Killed after its first epoch (the checkpoint's write fails), resumed after the train file changed."""
    import syne_prune.supernet.train as training

    train, test = _write(tmp_path / "data" / "train.csv", 24), _write(tmp_path / "data" / "test.csv", 8)
    original = hashlib.sha256(train.read_bytes()).hexdigest()

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "_write_checkpoint", killed)
    with pytest.raises(KeyboardInterrupt):
        main(_train_argv(bert_dir, train, test, tmp_path / "sn"))
    monkeypatch.undo()
    assert (tmp_path / "sn" / ".resume" / "state.pt").is_file()
    before = _files(tmp_path / "sn")
    _write(train, 24, shift=1)
    _refused(capsys, _train_argv(bert_dir, train, test, tmp_path / "sn", "--resume"), train,
             (original[:12], hashlib.sha256(train.read_bytes()).hexdigest()[:12]))
    assert _files(tmp_path / "sn") == before
    train.write_bytes(_write(tmp_path / "again.csv", 24).read_bytes())  # the original rows again: the run continues
    assert main(_train_argv(bert_dir, train, test, tmp_path / "sn", "--resume")) == 0
    assert (tmp_path / "sn" / "supernet.json").is_file() and not (tmp_path / "sn" / ".resume").exists()
    _write(train, 24, shift=1)
    _refused(capsys, _train_argv(bert_dir, train, test, tmp_path / "sn", "--resume"), train,
             (original[:12], hashlib.sha256(train.read_bytes()).hexdigest()[:12]))  # finished: supernet.json's record
