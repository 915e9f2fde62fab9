"""Outputs that cannot be written, and output directories used by two processes at once.

A path through a file, a read-only file system and a full disk (small tmpfs mounts, where this process may mount:
root) are one line naming the path and the cause, exit 2, with no temporary file left and earlier results kept
(``--resume`` continues). A search, a super-network training and a blackbox recording hold a lock on their output:
a second process is refused in one line while the first runs, and a ``kill -9`` leaves no stale lock: the lock file it
leaves is no content to any command's output (no --overwrite needed)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
import quality  # benchmarks/ is on sys.path (pytest.ini)
import torch
from helpers import every_command, export_argv, fails, standard_argv, train_argv

from syne_prune import SynePruneError, artifacts
from syne_prune.cli import main
from syne_prune.files import LOCK_FILE, append_line, output_lock, refuse_existing


@pytest.fixture
def mount_tmpfs(tmp_path):
    """``mount(size, read_only=False)``: a fresh tmpfs of ``size`` (e.g. "600k") under tmp_path, unmounted after the
    test; skipped where this process may not mount (not root, or no mount permission)."""
    mounted: list[Path] = []
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (chmod does not stop root from writing)")

    def mount(size: str, read_only: bool = False, name: str = "fs") -> Path:
        path = tmp_path / name
        path.mkdir()
        run = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True)
        if run.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({run.stderr.strip()})")
        mounted.append(path)
        if read_only:
            (path / "existing").mkdir()
            subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)
        return path

    yield mount
    for path in mounted:
        subprocess.run(["umount", str(path)], check=False)


def _remount(path: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True)


def test_an_output_through_a_file_is_one_line_in_every_command(bert_dir, glue_dir, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    for name, (argv, _) in every_command(bert_dir, glue_dir, blocker).items():
        line = fails(capsys, argv, f"('{blocker}' is a file, not a directory); choose another --output")
        assert line.startswith(f"error: cannot write '{blocker}/out-{name}"), line
    assert blocker.read_text() == "not a directory"


def test_a_read_only_file_system_is_one_line_in_every_command(bert_dir, glue_dir, mount_tmpfs, capsys):
    root = mount_tmpfs("1m", read_only=True)
    for name, (argv, output) in every_command(bert_dir, glue_dir, root).items():
        fails(capsys, argv, f"cannot write '{output}")
        assert not output.exists(), name
    fails(capsys, train_argv(bert_dir, glue_dir, root / "existing"), "(the file system is read-only); choose an --output on a writable file system")
    assert sorted(os.listdir(root)) == ["existing"]


def _state_size(bert_dir: Path, glue_dir: Path, tmp_path: Path, monkeypatch) -> int:
    """Bytes of the resume state one epoch of ``train_argv`` writes (read off the file before it is renamed into place)."""
    import syne_prune.files as files

    sizes: list[int] = []
    replace = os.replace
    monkeypatch.setattr(files.os, "replace", lambda a, b: (sizes.append(Path(a).stat().st_size), replace(a, b))[1])
    assert main(_small(train_argv(bert_dir, glue_dir, tmp_path / "measure"))) == 0
    monkeypatch.undo()
    return max(sizes)


def _small(argv: list[str]) -> list[str]:
    return argv + ["--strategy", "standard", "--importance", "none", "--max-train-examples", "16", "--max-eval-examples", "8",
                   "--batch-size", "8", "--max-length", "32"]


def test_a_full_disk_mid_training_keeps_the_last_epoch_and_resume_finishes(bert_dir, glue_dir, tmp_path, mount_tmpfs, capsys,
                                                                         monkeypatch):
    state = _state_size(bert_dir, glue_dir, tmp_path, monkeypatch)
    pages = -(-state // 4096)
    root = mount_tmpfs(f"{(pages * 3 // 2 + 4) * 4}k")  # room for one resume state, not for the next one beside it
    output = root / "supernet"
    argv = _small(train_argv(bert_dir, glue_dir, output))
    argv[argv.index("--epochs") + 1] = "2"
    line = fails(capsys, argv, f"cannot write '{output / '.resume' / 'state.pt'}' (no space left on the device)")
    assert "unexpected pos" not in line
    assert sorted(os.listdir(output / ".resume")) == ["settings.json", "state.pt"]  # no .state.pt.tmp left
    assert torch.load(output / ".resume" / "state.pt", weights_only=False)["epochs_done"] == 1  # epoch 1 kept
    assert not (output / LOCK_FILE).exists()
    _remount(root, "size=64m")
    assert main(argv + ["--resume"]) == 0
    metadata = json.loads((output / "supernet.json").read_text())
    assert [h["epoch"] for h in metadata["history"]] == [1, 2] and not (output / ".resume").exists()


def test_a_full_disk_leaves_the_ledger_as_it_was(mount_tmpfs):
    root = mount_tmpfs("64k")
    ledger = artifacts.TrialLedger(root / "trials.csv", ["trial_id", "status", "failure_reason"])
    ledger.append({"trial_id": 0, "status": "completed", "failure_reason": ""})
    before = (root / "trials.csv").read_bytes()
    filler = os.open(root / "filler", os.O_WRONLY | os.O_CREAT)
    with pytest.raises(OSError, match="No space left"):
        while True:
            os.write(filler, b"x" * 4096)
    os.close(filler)
    with pytest.raises(SynePruneError, match=rf"cannot write '{root / 'trials.csv'}' \(no space left on the device\)"):
        ledger.append({"trial_id": 1, "status": "failed", "failure_reason": "r" * 20000})
    assert (root / "trials.csv").read_bytes() == before  # no half row: a --resume reads it as before
    with pytest.raises(SynePruneError, match="no space left"):
        append_line(root / "other.csv", "y" * 20000 + "\n")
    assert (root / "other.csv").read_bytes() == b""


# ---- locks ----

HOLDER = textwrap.dedent("""
    import sys, time
    from syne_prune.files import output_lock
    with output_lock(sys.argv[1], sys.argv[2]):
        print("held", flush=True)
        time.sleep(600)
""")


def _hold(directory: Path, what: str) -> subprocess.Popen:
    """Another process holding ``output_lock(directory, what)`` until killed."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(directory), what], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def _kill_9(holder: subprocess.Popen) -> None:
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=30)


def test_a_lock_is_refused_while_held_and_free_after_kill_9(tmp_path):
    directory = tmp_path / "out"
    holder = _hold(directory, "search")
    try:
        with pytest.raises(SynePruneError, match=rf"^'{directory}' is in use by another running search \(process {holder.pid}\); "
                                                 "wait for it to end, or choose another --output$"):
            with output_lock(directory, "search"):
                pass
    finally:
        _kill_9(holder)
    assert (directory / LOCK_FILE).exists()  # the file a kill -9 leaves behind is no lock
    with output_lock(directory, "search"):
        assert (directory / LOCK_FILE).read_text().strip() == str(os.getpid())
    assert not (directory / LOCK_FILE).exists() and directory.exists()
    with output_lock(tmp_path / "new", "search"):
        pass
    assert not (tmp_path / "new").exists()  # created by the lock and left empty (a run refused before writing): removed
    with output_lock(directory, "search"), pytest.raises(SynePruneError, match="is in use by another running search"):
        with output_lock(directory, "search"):  # a second open file in the same process is refused too
            pass


@pytest.mark.slow
def test_train_supernet_refuses_a_running_output_and_resumes_after_kill_9(bert_dir, glue_dir, tmp_path, capsys):
    output = tmp_path / "supernet"
    argv = _small(train_argv(bert_dir, glue_dir, output))
    assert main(argv) == 0
    finished = (output / "supernet.json").read_text()
    holder = _hold(output, "super-network training")
    try:
        for flag in ("--resume", "--overwrite"):
            fails(capsys, argv + [flag], f"'{output}' is in use by another running super-network training (process {holder.pid})")
        assert (output / "supernet.json").read_text() == finished  # --overwrite deleted nothing
    finally:
        _kill_9(holder)
    assert main(argv + ["--resume"]) == 0  # finished: returns it, no stale lock


@pytest.mark.slow
def test_a_second_search_on_a_running_one_is_refused_and_trial_ids_stay_unique(bert_dir, glue_dir, tmp_path, capsys):
    output = tmp_path / "search"
    argv = standard_argv(bert_dir, glue_dir, output) + ["--epochs", "1", "--max-train-examples", "16", "--max-eval-examples", "8",
                                                    "--max-length", "32", "--search-space", "layer"]
    argv[argv.index("--max-trials") + 1] = "1"
    assert main(argv) == 0
    ledger = (output / "trials.csv").read_text()
    holder = _hold(output, "search")
    try:
        fails(capsys, argv + ["--resume"], f"'{output}' is in use by another running search (process {holder.pid})")
        assert (output / "trials.csv").read_text() == ledger
    finally:
        _kill_9(holder)
    resumed = list(argv)
    resumed[resumed.index("--max-trials") + 1] = "2"
    assert main(resumed + ["--resume"]) == 0
    trials = artifacts.read_trials(output / "trials.csv")
    assert sorted(trials["trial_id"]) == [0, 1]


@pytest.mark.slow
def test_a_second_blackbox_recording_is_refused(supernets, tmp_path, capsys):
    output = tmp_path / "blackbox"
    holder = _hold(output, "blackbox recording")
    try:
        fails(capsys, ["blackbox", "record", "--supernet", str(supernets["bert"]), "--samples", "2", "--max-eval-examples", "8",
                        "--output", str(output), "--quiet"], f"'{output}' is in use by another running blackbox recording")
    finally:
        _kill_9(holder)
    assert main(["blackbox", "record", "--supernet", str(supernets["bert"]), "--samples", "2", "--max-eval-examples", "8",
                 "--output", str(output), "--quiet"]) == 0
    assert len((output / "evaluations.csv").read_text().splitlines()) == 3


def test_the_lock_file_a_kill_9_leaves_is_no_content_to_any_output(bert_dir, tmp_path, capsys, monkeypatch):
    stale = tmp_path / "stale"
    stale.mkdir()
    (stale / LOCK_FILE).write_text("12345\n")  # what a run killed before its first result leaves
    refuse_existing(stale, overwrite=False)  # no error: a fresh output
    refuse_existing(tmp_path / "missing", overwrite=False)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "config.json").write_text("{}")
    with pytest.raises(SynePruneError, match=rf"^output '{tmp_path / 'taken'}' already exists; choose a new --output or pass --overwrite$"):
        refuse_existing(tmp_path / "taken", overwrite=False)
    refuse_existing(tmp_path / "taken", overwrite=True)
    assert (tmp_path / "taken" / "config.json").read_text() == "{}"  # a check only: nothing removed

    assert main(export_argv(bert_dir, stale)) == 0  # the CLI writes its export into the stale output
    assert (stale / "config.json").is_file() and (stale / "syne_prune.json").is_file()
    fails(capsys, export_argv(bert_dir, stale), f"output '{stale}' already exists; choose a new --output or pass --overwrite")

    # benchmarks/quality.py's stages resume only an output that holds a run
    resumed = []
    monkeypatch.setattr(quality, "train_supernet", lambda config, resume, progress: resumed.append(resume) or {})
    args = SimpleNamespace(warmup_ratio=0.0, model=str(bert_dir), data_dir=None, search_space="small", epochs=1, batch_size=8,
                           max_length=32, validation_fraction=0.1, max_train_examples=None, max_eval_examples=None, quiet=True)
    killed = tmp_path / "killed-stage"
    killed.mkdir()
    (killed / LOCK_FILE).write_text("12345\n")
    quality.train(args, "rte", 0, killed, strategy="standard", lr=1e-4)
    quality.train(args, "rte", 0, tmp_path / "taken", strategy="standard", lr=1e-4)
    assert resumed == [False, True]
