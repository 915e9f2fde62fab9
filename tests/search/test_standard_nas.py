"""Standard NAS: each trial fine-tunes its own sub-network; MO-ASHA stops weak ones by epoch."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch
from syne_tune.experiments import load_experiment

from syne_prune import SynePruneError, get_search_space
from syne_prune.search import SearchConfig, export_from_search, run_search
from syne_prune.search.finetune import STATE_FILE, WEIGHTS_FILE, FineTuneSettings, fine_tune, load_pretrained
from syne_prune.surgery import extract_subnetwork

EPOCHS = 3


def _settings(tiny_model_dirs, glue_dir, arch: str = "bert", **kwargs) -> FineTuneSettings:
    values = dict(model=str(tiny_model_dirs[arch]), task="rte", search_space="small", epochs=EPOCHS, lr=1e-3, batch_size=16,
                  max_length=48, data_dir=str(glue_dir), eval_batch_size=16)
    return FineTuneSettings(**(values | kwargs))


_RUNS: dict = {}


def _moasha_search(tiny_model_dirs, glue_dir, tmp_path_factory):
    if "moasha" not in _RUNS:
        out = tmp_path_factory.mktemp("standard") / "moasha"
        config = SearchConfig( trial_kind="standard", trial_settings=_settings(tiny_model_dirs, glue_dir), output=str(out),
                              n_workers=2, max_trials=12, seed=0)
        _RUNS["moasha"] = (out, run_search(config, progress=False), config)
    return _RUNS["moasha"]


@pytest.mark.slow
def test_moasha_stops_some_trials_before_the_last_epoch(tiny_model_dirs, glue_dir, tmp_path_factory):
    out, summary, config = _moasha_search(tiny_model_dirs, glue_dir, tmp_path_factory)
    assert config.scheduler == "moasha" and config.backend == "local" and summary["trial_kind"] == "standard"
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 12 and sorted(trials["trial_id"]) == list(range(12))
    assert (trials["status"] != "failed").all(), trials["failure_reason"].tolist()
    assert (trials["epoch"] == trials["fidelity"]).all()
    assert trials["epoch"].nunique() > 1, "every trial ran the same number of epochs"
    assert (trials["epoch"] < EPOCHS).any() and (trials["epoch"] == EPOCHS).any()
    stopped = trials[trials["status"] == "stopped"]
    assert len(stopped) and (stopped["epoch"] < EPOCHS).all()
    # the Pareto set holds only networks trained for every epoch, and nothing dominates its members
    pareto = pd.read_csv(out / "pareto.csv")
    done = trials[(trials["status"] == "completed") & (trials["epoch"] == EPOCHS)]
    assert len(pareto) and set(pareto["trial_id"]) <= set(done["trial_id"])
    points = done[["error", "params"]].to_numpy()
    for _, row in pareto.iterrows():
        assert not ((points <= [row["error"], row["params"]]).all(1) & (points < [row["error"], row["params"]]).any(1)).any()
    # a trial's params ratio is that of its configuration; the largest configuration is the full model
    assert trials.loc[trials["trial_id"] == 0, "params"].item() == pytest.approx(1.0)
    largest = trials[trials["trial_id"] == 0].iloc[0]  # the unpruned model is known once its trial ran every epoch
    expected = largest["error"] if largest["status"] == "completed" and largest["epoch"] == EPOCHS else None
    assert summary["unpruned"]["error"] == (pytest.approx(expected) if expected is not None else None)
    curve = pd.read_csv(out / "hypervolume.csv")
    assert len(curve) == len(done) and curve["wallclock_s"].is_monotonic_increasing
    assert curve["hypervolume"].is_monotonic_increasing and curve["hypervolume"].iloc[-1] == pytest.approx(summary["hypervolume"])
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    experiment = load_experiment("part-0", local_path=str(out / "syne-tune"))
    reports = experiment.results.groupby("trial_id")["epoch"].max()
    assert sorted(reports.to_dict().items()) == sorted(zip(trials["trial_id"], trials["epoch"]))


@pytest.mark.slow
def test_export_from_a_standard_search_writes_the_trials_fine_tuned_weights(tiny_model_dirs, glue_dir, tmp_path_factory, tmp_path):
    from transformers import AutoModelForSequenceClassification

    from syne_prune.data import data_loader, encode, load_task
    from syne_prune.evaluation import evaluate

    out, _, config = _moasha_search(tiny_model_dirs, glue_dir, tmp_path_factory)
    pareto = pd.read_csv(out / "pareto.csv")
    row = pareto.sort_values("params").iloc[0]
    exported, _ = export_from_search(out, tmp_path / "export", trial_id=int(row["trial_id"]))
    model = AutoModelForSequenceClassification.from_pretrained(exported, trust_remote_code=True).eval()
    # the exported network is the fine-tuned one: it reproduces the validation error the trial reported
    settings = config.trial_settings
    data = load_task("rte", glue_dir, settings.validation_fraction, settings.seed)
    _, tokenizer, _ = load_pretrained(settings)
    batches = data_loader(encode(data.validation, tokenizer, settings.max_length, False), tokenizer, settings.eval_batch_size)
    assert evaluate(model, batches, data.task)["error"] == pytest.approx(row["error"], abs=1e-9)
    assert sum(p.numel() for p in model.parameters()) < sum(
        p.numel() for p in load_pretrained(settings)[0].parameters()) or row["params"] == pytest.approx(1.0)


def test_a_resumed_trial_continues_from_its_last_epoch(tiny_model_dirs, glue_dir, tmp_path):
    """Pause after epoch 1 (the process is killed), start again on the same checkpoint directory: the
    epoch counter continues, and the weights equal those of an uninterrupted run."""
    settings = _settings(tiny_model_dirs, glue_dir)
    space = get_search_space("small", load_pretrained(settings)[2].shape)
    config = space.midpoint()

    uninterrupted: list[dict] = []
    fine_tune(settings, config, tmp_path / "straight", uninterrupted.append)

    class Paused(Exception):
        pass

    first: list[dict] = []

    def pause_after_first_epoch(result):
        first.append(result)
        raise Paused

    with pytest.raises(Paused):
        fine_tune(settings, config, tmp_path / "paused", pause_after_first_epoch)
    assert (tmp_path / "paused" / STATE_FILE).is_file()
    resumed: list[dict] = []
    fine_tune(settings, config, tmp_path / "paused", resumed.append)
    # the report of epoch 1 never got through (a kill after the state was saved): the resumed trial reports it first,
    # with the values it had, then trains epochs 2 and 3
    assert [r["epoch"] for r in first] == [1] and [r["epoch"] for r in resumed] == [1, 2, 3]
    assert resumed[0] == first[0]
    for a, b in zip(uninterrupted, resumed, strict=True):
        assert a["error"] == pytest.approx(b["error"], abs=1e-12) and a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-6)
    straight = torch.load(tmp_path / "straight" / WEIGHTS_FILE)["model"]
    again = torch.load(tmp_path / "paused" / WEIGHTS_FILE)["model"]
    assert all(torch.allclose(straight[k], again[k], atol=1e-6) for k in straight)
    assert not (tmp_path / "paused" / STATE_FILE).exists()  # only the weights are kept after the last epoch
    # started once more on a finished trial (a search resumed after a crash): its last report again, no training
    weights_before = (tmp_path / "paused" / WEIGHTS_FILE).read_bytes()
    again_reports: list[dict] = []
    fine_tune(settings, config, tmp_path / "paused", again_reports.append)
    assert again_reports == [resumed[-1]] and (tmp_path / "paused" / WEIGHTS_FILE).read_bytes() == weights_before


@pytest.mark.slow
def test_the_local_backend_pauses_and_resumes_a_trial_from_its_checkpoint(tiny_model_dirs, glue_dir, tmp_path):
    """Syne Tune's pause kills the trial process; resume starts it again on the same st_checkpoint_dir.

    An epoch of the tiny model takes ~0.2 s, so the process may report epochs after the poll that saw epoch 1 and
    before the kill; Syne Tune hides those while the trial is paused and hands them over after the resume. The
    kill may also fall between an epoch's saved state and its report. The process's own log says what it reported
    before the kill and the checkpoint which epoch it saved last; the resumed process reports that epoch once more
    and trains on from it, so the expected sequence is exact either way, and no epoch is missing.
    """
    from syne_tune.backend.trial_status import Status
    from syne_tune.report import retrieve

    from syne_prune.search import finetune
    from syne_prune.search.syne_tune_fixes import FixedLocalBackend  # stock LocalBackend writes std.out into the cwd

    epochs = 8
    settings = _settings(tiny_model_dirs, glue_dir, epochs=epochs, lr=1e-4)
    space = get_search_space("small", load_pretrained(settings)[2].shape)
    backend = FixedLocalBackend(entry_point=finetune.__file__)
    backend.set_path(str(tmp_path), "pause-test")
    config = {**space.largest(), **settings.as_constants(("error", "params"))}
    trial = backend.start_trial(config)
    log = backend.trial_path(trial.trial_id) / "std.out"

    def epochs_reported():
        _, results = backend.fetch_status_results([trial.trial_id])
        return [r["epoch"] for _, r in results]

    seen: list[int] = []
    deadline = time.time() + 120
    while not seen and time.time() < deadline:
        seen += epochs_reported()
        time.sleep(0.2)
    assert seen[:1] == [1], seen
    seen_before_pause = list(seen)
    backend.pause_trial(trial.trial_id)
    assert backend.trial_subprocess[trial.trial_id].wait(timeout=30) is not None  # the process is gone
    reported_before_kill = [r["epoch"] for r in retrieve(log.read_text().splitlines())]
    assert reported_before_kill == list(range(1, len(reported_before_kill) + 1)), reported_before_kill
    saved_before_kill = _saved_epoch(backend.checkpoint_trial_path(trial.trial_id))
    assert saved_before_kill - reported_before_kill[-1] in (0, 1), (saved_before_kill, reported_before_kill)
    seen += epochs_reported()
    assert seen == seen_before_pause, f"a paused trial's reports are held back until it resumes: {seen}"
    backend.resume_trial(trial.trial_id)
    while time.time() < deadline:
        seen += epochs_reported()
        status, _ = backend.fetch_status_results([trial.trial_id])
        if status[trial.trial_id][1] in (Status.completed, Status.failed):
            break
        time.sleep(0.2)
    seen += epochs_reported()
    assert status[trial.trial_id][1] == Status.completed, (backend.trial_path(trial.trial_id) / "std.err").read_text()
    # resumed from the checkpoint: the saved epoch reported once more, then the epochs after it (a restart from
    # scratch would repeat epoch 1; a trial that had finished reports its stored last result and trains nothing)
    expected = reported_before_kill + list(range(saved_before_kill, epochs + 1))
    assert seen == expected, f"epochs reported: {seen}; before the kill: {reported_before_kill}, saved: {saved_before_kill}"
    assert sorted(set(seen)) == list(range(1, epochs + 1)), seen


def _saved_epoch(checkpoint_dir) -> int:
    """The last epoch a standard-NAS trial saved in ``checkpoint_dir``: its resume state's, else its weights'."""
    if (checkpoint_dir / STATE_FILE).is_file():
        return torch.load(checkpoint_dir / STATE_FILE, weights_only=False)["epochs_done"]
    return torch.load(checkpoint_dir / WEIGHTS_FILE, weights_only=True)["epoch"]


@pytest.mark.slow
def test_a_killed_standard_search_resumes_without_losing_finished_trials(tiny_model_dirs, glue_dir, tmp_path):
    out = tmp_path / "search"
    args = [sys.executable, "-m", "syne_prune", "search", "--trial-kind", "standard", "--model", str(tiny_model_dirs["roberta"]),
            "--task", "rte", "--data-dir", str(glue_dir), "--epochs", "2", "--lr", "1e-3", "--batch-size", "16",
            "--max-length", "48", "--scheduler", "random", "--n-workers", "2", "--max-trials", "6", "--output", str(out)]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline:
        if (out / "trials.csv").exists() and len(pd.read_csv(out / "trials.csv")) >= 2:
            break
        assert process.poll() is None, process.stderr.read().decode()
        time.sleep(0.3)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    before = pd.read_csv(out / "trials.csv")
    assert 2 <= len(before) < 6
    done = subprocess.run(args + ["--resume"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    after = pd.read_csv(out / "trials.csv")
    names = list(get_search_space("small", load_pretrained(_settings(tiny_model_dirs, glue_dir, "roberta"))[2].shape).config_space)
    assert len(after) == 6 and not after.duplicated(subset=names).any()
    kept = after[after["trial_id"].isin(before["trial_id"])]
    pd.testing.assert_frame_equal(kept.reset_index(drop=True), before.reset_index(drop=True))
    assert (after["status"] == "completed").all() and (after["epoch"] == 2).all()


@pytest.mark.parametrize("argv, message", [
    (["--trial-kind", "standard", "--task", "rte"], "--trial-kind standard needs --model"),
    (["--trial-kind", "standard", "--model", "{model}", "--task", "nope"], "unknown task"),
    (["--trial-kind", "standard", "--model", "{model}", "--task", "rte", "--epochs", "0"], "--epochs must be a positive integer"),
    (["--trial-kind", "standard", "--model", "{model}", "--task", "rte", "--lr", "0"], "--lr must be positive"),
    (["--trial-kind", "standard", "--model", "{model}", "--task", "rte", "--backend", "pool"], "use --backend local"),
    (["--trial-kind", "standard", "--model", "{model}", "--task", "rte", "--supernet", "x"], "drop --supernet"),
    (["--trial-kind", "standard", "--model", "{model}", "--task", "rte", "--test-split", "pareto"], "drop --test-split pareto"),
    (["--trial-kind", "standard", "--model", "/no/such/model", "--task", "rte"], "/no/such/model"),
    (["--model", "{model}", "--task", "rte"], "give --supernet DIR"),
])
def test_bad_standard_search_input_is_one_line_and_exit_2(tiny_model_dirs, glue_dir, tmp_path, capsys, argv, message):
    from syne_prune.cli import main

    out = tmp_path / "out"
    argv = [a.replace("{model}", str(tiny_model_dirs["bert"])) for a in argv]
    assert main(["search", *argv, "--data-dir", str(glue_dir), "--max-trials", "2", "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


@pytest.mark.slow
def test_python_m_syne_prune_runs_the_cli():
    done = subprocess.run([sys.executable, "-m", "syne_prune", "search", "--trial-kind", "standard", "--task", "rte", "--output", "x"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--trial-kind standard needs --model" in done.stderr and "Traceback" not in done.stderr


def test_export_of_a_sagemaker_trial_reads_its_weights_from_s3(tiny_model_dirs, glue_dir, tmp_path, monkeypatch):
    import boto3
    import moto

    from syne_prune.search.finetune import load_trained

    model, _, space = load_pretrained(_settings(tiny_model_dirs, glue_dir))
    config = space.midpoint()
    trained = extract_subnetwork(model, space.to_mask(config), share_weights=False)
    with torch.no_grad():
        for parameter in trained.parameters():
            parameter.add_(torch.randn_like(parameter))  # unlike the pre-trained weights
    (tmp_path / "7").mkdir()
    torch.save({"model": trained.state_dict(), "epoch": 3}, tmp_path / "7" / WEIGHTS_FILE)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with moto.mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="sp-bucket")
        s3.upload_file(str(tmp_path / "7" / WEIGHTS_FILE), "sp-bucket", f"p/checkpoints/7/{WEIGHTS_FILE}")
        from_s3 = load_trained(model, space, config, "s3://sp-bucket/p/checkpoints/7/")
        with pytest.raises(SynePruneError, match=r"s3://sp-bucket/p/checkpoints/8/weights.pt not found"):
            load_trained(model, space, config, "s3://sp-bucket/p/checkpoints/8/")
    from_disk = load_trained(model, space, config, tmp_path / "7")
    for (name, a), (_, b) in zip(from_s3.state_dict().items(), trained.state_dict().items()):
        assert torch.equal(a, b), name
    assert from_disk.state_dict().keys() == from_s3.state_dict().keys()
