"""A SageMaker search on a super-network trained on the user's own files: the files are uploaded once, beside the
super-network, as the channel ``task``; each job reads them there, checked against the sha256 the task recorded (a
copy that differs fails the trial with one line naming the file), and the trials equal a pool search's."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from sagemaker_fixtures import BUCKET, sagemaker_settings

from syne_prune.data import TaskSpec, spec_files
from syne_prune.search import SearchConfig, WeightSharingSettings, run_search
from syne_prune.search.backends import get_backend
from syne_prune.search.backends import sagemaker as sm
from syne_prune.search.protocol import FAILURE_PREFIX
from syne_prune.search.trial import TrialSettings

WORDS = ("good", "great", "bad", "dull")


def _write(path: Path, rows: int, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    words = [WORDS[(i * 7 + seed) % 4] for i in range(rows)]
    pd.DataFrame({"text": [f"the film was {w}" for w in words],
                  "label": ["yes" if w in ("good", "great") else "no" for w in words]}).to_csv(path, index=False)
    return path


def _hidden_while_jobs_run(monkeypatch, data: Path) -> None:
    """``data`` moved away once the SageMaker backend has uploaded it and back when the search closes: the uploads read
    the files, the jobs (run here by AWS's training toolkit) can only read their channel."""
    backend_class = get_backend("sagemaker")
    prepare, close = backend_class.prepare, backend_class.close

    def prepare_then_hide(self):
        prepare(self)
        data.rename(data.with_name("hidden"))

    def close_then_restore(self):
        close(self)
        data.with_name("hidden").rename(data)

    monkeypatch.setattr(backend_class, "prepare", prepare_then_hide)
    monkeypatch.setattr(backend_class, "close", close_then_restore)


@pytest.fixture(scope="module")
def own_supernet(tiny_model_dirs, tmp_path_factory):
    """A tiny BERT super-network trained on generated CSV files (train, validation, test)."""
    from syne_prune.supernet import TrainingConfig, train_supernet

    root = tmp_path_factory.mktemp("own")
    spec = TaskSpec(train_file=str(_write(root / "data" / "train.csv", 32, 0)), validation_file=str(_write(root / "data" / "dev.csv", 12, 1)),
                    test_file=str(_write(root / "data" / "test.csv", 12, 2)))
    train_supernet(TrainingConfig(teacher=None, importance="none", model=str(tiny_model_dirs["bert"]), task=spec, output=str(root / "sn"),
                                  search_space="small", strategy="sandwich", epochs=1, batch_size=8, lr=1e-3, max_length=16), progress=False)
    return root / "sn"


def _prepared_backend(supernet: Path, output: Path, data_dir: Path | None = None):
    config = SearchConfig(output=str(output), trial_settings=WeightSharingSettings(str(supernet)), backend="sagemaker",
                          backend_settings=sagemaker_settings(), scheduler="random", max_trials=2,
                          data_dir=str(data_dir) if data_dir else None)
    config.check()
    backend = get_backend("sagemaker")(config.kind.prepare(config), output, None)
    backend.prepare()
    return backend


@pytest.mark.slow
def test_the_data_files_are_uploaded_once_as_the_task_channel(aws, own_supernet, tmp_path):
    record = json.loads((own_supernet / "supernet.json").read_text())["task"]
    first = _prepared_backend(own_supernet, tmp_path / "one").trial_backend
    uploaded = sorted(k.split("/", 3)[-1].split("/", 1)[-1] for k in first.uploader.uploaded if "/content/task-" in k)
    assert uploaded == ["test.csv", "train.csv", "validation.csv"] == sorted(spec_files(record))
    assert first.channel_uris["task"].startswith(f"s3://{BUCKET}/searches/content/task-")
    s3 = aws.client("s3")
    prefix = first.channel_uris["task"][len(f"s3://{BUCKET}/"):]
    for name, path in spec_files(record).items():  # the bytes the task's sha256 were taken of
        assert s3.get_object(Bucket=BUCKET, Key=prefix + name)["Body"].read() == path.read_bytes()
    second = _prepared_backend(own_supernet, tmp_path / "two").trial_backend  # another search on the same super-network
    assert second.uploader.uploaded == [] and second.channel_uris == first.channel_uris
    constants = TrialSettings(supernet=str(own_supernet.resolve())).as_constants()
    second.set_path(tuner_name="part-0")
    second.start_trial({**constants, "num_layers": 1, "num_heads": 2, "num_units": 8})
    request = second.created[-1]
    hps = {k: json.loads(v) for k, v in request["HyperParameters"].items()}
    assert hps["task_files"] == "sm-channel:task" and hps["supernet"] == "sm-channel:supernet"
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in request["InputDataConfig"]}
    assert channels == {"supernet": first.channel_uris["supernet"], "task": first.channel_uris["task"]}


def test_a_job_whose_copy_of_a_data_file_differs_fails_in_one_line(own_supernet, tmp_path, monkeypatch, capsys):
    record = json.loads((own_supernet / "supernet.json").read_text())["task"]
    channel = tmp_path / "channel"
    for name, path in spec_files(record).items():
        (channel / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, channel / name)
    (channel / "test.csv").write_text((channel / "test.csv").read_text() + "the film was good,yes\n")
    monkeypatch.setenv("SM_CHANNEL_TASK", str(channel))
    constants = {**TrialSettings(supernet=str(own_supernet)).as_constants(), "task_files": "sm-channel:task"}
    argv = [item for key, value in {**constants, "num_layers": 1, "num_heads": 2, "num_units": 8}.items() for item in (f"--{key}", str(value))]
    assert sm.run_job(argv) == 1
    recorded = dict(record["sha256"])["test"]
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith(FAILURE_PREFIX)]
    assert len(lines) == 1 and f"data file {channel / 'test.csv'} (test) changed since the task was recorded (sha256 {recorded[:12]}" in lines[0]


@pytest.mark.slow
def test_a_sagemaker_search_on_own_data_gives_the_trials_of_a_pool_search(sagemaker, own_supernet, tmp_path, monkeypatch):
    """The jobs run in AWS's training toolkit with the user's folder moved away: they can only read the channel."""
    common = dict(trial_settings=WeightSharingSettings(str(own_supernet)), scheduler="random", n_workers=2, max_trials=4, seed=3,
                  eval_batch_size=8, test_split="every-trial")
    pool = run_search(SearchConfig(output=str(tmp_path / "pool"), backend="pool", **common), progress=False)
    data = Path(json.loads((own_supernet / "supernet.json").read_text())["task"]["train_file"]).parent
    _hidden_while_jobs_run(monkeypatch, data)
    remote = run_search(SearchConfig(output=str(tmp_path / "sagemaker"), backend="sagemaker", backend_settings=sagemaker_settings(), **common),
                        progress=False)
    a = pd.read_csv(tmp_path / "pool" / "trials.csv").sort_values("trial_id").reset_index(drop=True)
    b = pd.read_csv(tmp_path / "sagemaker" / "trials.csv").sort_values("trial_id").reset_index(drop=True)
    assert len(b) == 4 and (b["status"] == "completed").all(), b["failure_reason"].tolist()
    columns = [c for c in a.columns if c not in ("setup_s", "eval_s", "wall_time_s", "failure_reason", "finished_s")]
    assert {"error", "params", "test_error"} <= set(columns) and b["test_error"].notna().all()
    pd.testing.assert_frame_equal(a[columns], b[columns])
    assert remote["hypervolume"] == pytest.approx(pool["hypervolume"])
    assert data.is_dir()


@pytest.mark.slow
def test_a_standard_search_on_sagemaker_sends_the_resolved_task_and_its_files(aws, tiny_model_dirs, own_supernet, tmp_path):
    from syne_prune.aws import unpack_hyperparameters
    from syne_prune.search.finetune import FineTuneSettings
    from syne_prune.search.protocol import task_of_word

    recorded = json.loads((own_supernet / "supernet.json").read_text())["task"]
    spec = TaskSpec(train_file=recorded["train_file"], validation_file=recorded["validation_file"], test_file=recorded["test_file"])
    config = SearchConfig(output=str(tmp_path / "nas"), trial_kind="standard", backend="sagemaker", backend_settings=sagemaker_settings(),
                          trial_settings=FineTuneSettings(model=str(tiny_model_dirs["bert"]), task=spec, epochs=1), max_trials=2)
    config.check()
    prepared = config.kind.prepare(config)
    backend = get_backend("sagemaker")(prepared, tmp_path / "nas", None)
    backend.prepare()
    trials = backend.trial_backend
    trials.set_path(tuner_name="part-0")
    trials.start_trial({**prepared.constants, "num_layers": 1, "num_heads": 2, "num_units": 8})
    hps = unpack_hyperparameters({k: json.loads(v) for k, v in trials.created[-1]["HyperParameters"].items()})
    task = task_of_word(hps["task"])
    assert task == json.loads(json.dumps(prepared.task)) and task["sha256"] == recorded["sha256"] and task["labels"] == recorded["labels"]
    assert hps["task_files"] == "sm-channel:task" and hps["syne_prune_entry"] == "finetune"
    channels = {c["ChannelName"] for c in trials.created[-1]["InputDataConfig"]}
    assert channels == {"model", "task"} and trials.channel_uris["task"].startswith(f"s3://{BUCKET}/searches/content/task-")


# ---- the launchers carry the user's own files ----


def test_the_launchers_send_local_files_and_folders_as_channels(own_supernet, tiny_model_dirs, tmp_path):
    from syne_prune.search.backends.sagemaker.launcher import job_arguments

    train, test = _write(tmp_path / "a" / "tickets.csv", 8, 0), _write(tmp_path / "b" / "tickets.csv", 8, 1)
    argv = ["train-supernet", "--model", str(tiny_model_dirs["bert"]), f"--train-file={train}", "--test-file", str(test),
            "--teacher", str(tiny_model_dirs["bert"]), "--output", "runs/net"]
    args, channels = job_arguments(argv)
    assert args == ["train-supernet", "--model", "sm-channel:model", "--train-file", "sm-channel:train_file/tickets.csv",
                    "--test-file", "sm-channel:test_file/tickets.csv", "--teacher", "sm-channel:teacher", "--output", "/opt/ml/model/net"]
    assert channels == {"model": str(tiny_model_dirs["bert"]), "train_file": {"tickets.csv": train}, "test_file": {"tickets.csv": test},
                        "teacher": str(tiny_model_dirs["bert"])}
    args, channels = job_arguments(["search", "--supernet", str(own_supernet), "--output", "s"])
    record = json.loads((own_supernet / "supernet.json").read_text())["task"]
    assert args == ["search", "--supernet", "sm-channel:supernet", "--output", "/opt/ml/model/s", "--data-dir", "sm-channel:task"]
    assert channels == {"supernet": str(own_supernet), "task": spec_files(record)}
    assert job_arguments(["search", "--supernet", str(tiny_model_dirs["bert"]), "--output", "s"])[0][-2:] == ["--output", "/opt/ml/model/s"]
    assert job_arguments(["train-supernet", "--teacher", "auto", "--model", "org/hub-model"])[0] == [
        "train-supernet", "--teacher", "auto", "--model", "org/hub-model"]  # not local: as given, the job resolves them


def test_a_launcher_given_a_data_file_that_is_not_here_stops_before_any_job(tmp_path, capsys):
    """One line and exit 2 before anything is uploaded or started: the job could never read the file."""
    from sagemaker_fixtures import SM_ARGS, launcher

    argv = [*SM_ARGS, "--model", "org/hub-model", "--train-file", str(tmp_path / "tickets.csv"), "--output", "net"]
    assert launcher("sagemaker_train_supernet").launcher_main("train-supernet", "", argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: --train-file {tmp_path / 'tickets.csv'}: no such file on this machine; the launcher uploads it for the job, " \
                  "give the path of a local file"


def test_resolve_channel_reads_a_file_in_a_channel(monkeypatch, tmp_path):
    from syne_prune.aws import resolve_channel

    monkeypatch.setenv("SM_CHANNEL_TRAIN_FILE", str(tmp_path))
    assert resolve_channel("sm-channel:train_file/tickets.csv") == str(tmp_path / "tickets.csv")
    assert resolve_channel("sm-channel:train_file") == str(tmp_path) and resolve_channel("plain.csv") == "plain.csv"
    with pytest.raises(RuntimeError, match=r"input channel 'test_file' is not mounted \(SM_CHANNEL_TEST_FILE is not set\)"):
        resolve_channel("sm-channel:test_file/tickets.csv")


def test_a_search_reads_the_data_files_from_a_folder_of_copies_given_as_data_dir(own_supernet, tmp_path, monkeypatch):
    """What the search-in-one-job launcher runs (``--data-dir sm-channel:task``): with the original folder moved away,
    a search given the copies scores the trials as one given the originals."""
    record = json.loads((own_supernet / "supernet.json").read_text())["task"]
    copies = tmp_path / "copies"
    for name, path in spec_files(record).items():
        (copies / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, copies / name)
    common = dict(trial_settings=WeightSharingSettings(str(own_supernet)), scheduler="random", n_workers=1, max_trials=3, seed=1,
                  eval_batch_size=8, test_split="every-trial", backend="pool")
    run_search(SearchConfig(output=str(tmp_path / "here"), **common), progress=False)
    data = Path(record["train_file"]).parent
    data.rename(data.with_name("moved"))
    try:
        run_search(SearchConfig(output=str(tmp_path / "copied"), data_dir=str(copies), **common), progress=False)
    finally:
        data.with_name("moved").rename(data)
    a, b = (pd.read_csv(tmp_path / name / "trials.csv").sort_values("trial_id").reset_index(drop=True) for name in ("here", "copied"))
    assert len(b) == 3 and (b["status"] == "completed").all(), b.get("failure_reason")
    assert b["error"].tolist() == a["error"].tolist() and b["test_error"].tolist() == a["test_error"].tolist()


@pytest.mark.slow
def test_the_train_supernet_launcher_trains_on_the_users_files_in_a_job(sagemaker, tiny_model_dirs, tmp_path, capsys):
    """The job runs in AWS's training toolkit with the user's folder moved away: it reads the files from its channels,
    and the super-network it returns records the task (columns, class names, the files' sha256)."""
    from sagemaker_fixtures import SM_ARGS, launcher

    from syne_prune.supernet import verify_checkpoint

    data = tmp_path / "tickets"
    train, test = _write(data / "train.csv", 24, 0), _write(data / "test.csv", 8, 1)
    argv = [*SM_ARGS, "--model", str(tiny_model_dirs["bert"]), "--train-file", str(train), "--test-file", str(test), "--epochs", "1",
            "--batch-size", "8", "--max-length", "16", "--search-space", "small", "--teacher", "none", "--importance", "none",
            "--output", "own-net"]
    assert launcher("sagemaker_train_supernet").launcher_main("train-supernet", "", argv) == 0
    request = sagemaker.requests[-1]
    assert {c["ChannelName"] for c in request["InputDataConfig"]} == {"model", "train_file", "test_file"}
    data.rename(data.with_name("hidden"))
    try:
        assert sagemaker.run_pending() == [request["TrainingJobName"]]
    finally:
        data.with_name("hidden").rename(data)
    sagemaker.model(request).extractall(tmp_path / "model", filter="data")
    metadata = verify_checkpoint(tmp_path / "model" / "own-net")
    task = TaskSpec.from_json(metadata["task"])
    assert task.labels == ("no", "yes") and task.text_columns == ("text",) and metadata["num_test_examples"] == 8
    assert dict(task.sha256) == {"train": hashlib.sha256(train.read_bytes()).hexdigest(), "test": hashlib.sha256(test.read_bytes()).hexdigest()}


@pytest.mark.slow
def test_a_standard_search_on_sagemaker_trains_on_the_users_files_in_its_jobs(sagemaker, tiny_model_dirs, own_supernet, tmp_path, monkeypatch):
    """Standard NAS: each job fine-tunes its sub-network on the files of the channel ``task`` (the user's folder moved
    away while the jobs run) and scores it on their test file."""
    from syne_prune.search.finetune import FineTuneSettings

    recorded = json.loads((own_supernet / "supernet.json").read_text())["task"]
    spec = TaskSpec(train_file=recorded["train_file"], validation_file=recorded["validation_file"], test_file=recorded["test_file"])
    data = Path(recorded["train_file"]).parent
    _hidden_while_jobs_run(monkeypatch, data)
    settings = FineTuneSettings(model=str(tiny_model_dirs["bert"]), task=spec, epochs=1, batch_size=8, lr=1e-3, max_length=16)
    run_search(SearchConfig(output=str(tmp_path / "nas"), trial_kind="standard", backend="sagemaker", backend_settings=sagemaker_settings(),
                            trial_settings=settings, scheduler="random", n_workers=1, max_trials=2, seed=0), progress=False)
    trials = pd.read_csv(tmp_path / "nas" / "trials.csv")
    assert data.is_dir() and len(trials) == 2 and (trials["status"] == "completed").all(), trials.get("failure_reason")
    assert trials["error"].between(0, 1).all() and trials["test_error"].between(0, 1).all()


def test_a_sagemaker_search_given_copies_of_the_data_uploads_the_copies(aws, own_supernet, tmp_path):
    """``search --data-dir COPIES --backend sagemaker`` with the original folder moved away: the channel ``task`` holds
    the copies' bytes."""
    record = json.loads((own_supernet / "supernet.json").read_text())["task"]
    copies = tmp_path / "copies"
    for name, path in spec_files(record).items():
        (copies / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, copies / name)
    data = Path(record["train_file"]).parent
    data.rename(data.with_name("moved"))
    try:
        backend = _prepared_backend(own_supernet, tmp_path / "search", copies).trial_backend
    finally:
        data.with_name("moved").rename(data)
    prefix = backend.channel_uris["task"][len(f"s3://{BUCKET}/"):]
    s3 = aws.client("s3")
    for name in spec_files(record):
        assert s3.get_object(Bucket=BUCKET, Key=prefix + name)["Body"].read() == (copies / name).read_bytes()
