"""The SageMaker trial backend against moto (offline AWS): uploads, job requests, status, stop, and full searches
and launcher jobs whose training jobs run here in AWS's training toolkit (``sagemaker_container``)."""
from __future__ import annotations

import io
import json
import os
import tarfile
import time

import pandas as pd
import pytest
from sagemaker_container import toolkit_environment
from sagemaker_fixtures import BUCKET, REGION, ROLE, SECRET, SM_ARGS, keys, launcher, put_lines, sagemaker_settings
from syne_tune.backend.trial_status import Status

from syne_prune import SynePruneError
from syne_prune.devices import use_device
from syne_prune.precision import use_precision
from syne_prune.search import SearchConfig, WeightSharingSettings, run_search
from syne_prune.search.backends import sagemaker as sm


def test_the_supernet_is_uploaded_once_and_deduplicated_by_its_sha256(aws, supernets, tmp_path):
    first = sm.SageMakerBackend(sagemaker_settings(), "trial", {"supernet": str(supernets["bert"])}, session=aws)
    first.prepare()
    files = sorted(p.relative_to(supernets["bert"]).as_posix() for p in supernets["bert"].rglob("*") if p.is_file())
    uploaded = sorted(k.split("/", 4)[-1] for k in first.uploader.uploaded if "/supernet-" in k)
    assert uploaded == files
    assert first.channel_uris["supernet"].startswith(f"s3://{BUCKET}/searches/content/supernet-")
    second = sm.SageMakerBackend(sagemaker_settings(), "trial", {"supernet": str(supernets["bert"])}, session=aws)
    second.prepare()  # another search on the same super-network
    assert second.uploader.uploaded == [] and second.channel_uris == first.channel_uris and second.source_uri == first.source_uri
    # different bytes: a new upload under a new digest
    import shutil

    changed = tmp_path / "changed"
    shutil.copytree(supernets["bert"], changed)
    (changed / "supernet.json").write_text((changed / "supernet.json").read_text() + " ")
    third = sm.SageMakerBackend(sagemaker_settings(), "trial", {"supernet": str(changed)}, session=aws)
    third.prepare()
    assert third.channel_uris["supernet"] != first.channel_uris["supernet"] and len(third.uploader.uploaded) == len(files)


def test_the_source_tarball_is_deterministic_and_runs_from_its_own_copy():
    one, two = sm.source_tarball(), sm.source_tarball()
    assert one == two
    names = tarfile.open(fileobj=io.BytesIO(one)).getnames()
    assert sm.ENTRY_SCRIPT in names and "requirements.txt" in names and "syne_prune/search/trial.py" in names


def test_create_training_job_gets_image_instance_channels_mask_and_locations(aws, supernets, glue_dir):
    settings = sagemaker_settings(instance_type="ml.g5.xlarge", spot=True, max_run_s=3600, max_wait_s=7200,
                         tags={"team": "nlp"}, subnets=("subnet-1",), security_group_ids=("sg-1",), fast_file=True)
    backend = sm.SageMakerBackend(settings, "finetune", {"supernet": str(supernets["bert"]), "data": str(glue_dir)},
                                  checkpointing=True, session=aws, job_prefix="sp-test")
    backend.set_path(tuner_name="part-0")
    mask = {"num_layers": 1, "num_heads_0": 2, "num_units_0": 5}
    backend.start_trial({**mask, "supernet": str(supernets["bert"].resolve()), "data_dir": str(glue_dir.resolve()), "objectives": "error,params"})
    request = backend.created[0]
    job = aws.client("sagemaker").describe_training_job(TrainingJobName=request["TrainingJobName"])
    assert job["TrainingJobName"] == "sp-test-0-0"
    assert job["AlgorithmSpecification"]["TrainingImage"] == settings.image_uri
    assert job["ResourceConfig"]["InstanceType"] == "ml.g5.xlarge" and job["ResourceConfig"]["InstanceCount"] == 1
    assert job["RoleArn"] == ROLE
    hps = {k: json.loads(v) for k, v in job["HyperParameters"].items()}  # each value JSON-encoded, as the toolkit decodes them
    assert {k: hps[k] for k in mask} == {k: str(v) for k, v in mask.items()}  # the mask is the job's hyperparameters
    assert hps["supernet"] == "sm-channel:supernet" and hps["data_dir"] == "sm-channel:data" and hps["objectives"] == "error,params"
    assert hps["sagemaker_program"] == sm.ENTRY_SCRIPT and hps["sagemaker_submit_directory"] == backend.source_uri
    channels = {c["ChannelName"]: c for c in job["InputDataConfig"]}
    assert set(channels) == {"supernet", "data"}
    assert channels["supernet"]["DataSource"]["S3DataSource"]["S3Uri"] == backend.channel_uris["supernet"]
    assert channels["supernet"]["InputMode"] == "FastFile"
    assert job["CheckpointConfig"] == {"S3Uri": f"s3://{BUCKET}/searches/sp-test/checkpoints/part-0/0/", "LocalPath": "/opt/ml/checkpoints"}
    assert job["OutputDataConfig"]["S3OutputPath"] == f"s3://{BUCKET}/searches/sp-test/output/"
    assert request["EnableManagedSpotTraining"] is True and request["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    warm = sm.SageMakerBackend(sagemaker_settings(keep_alive_s=600), "trial", {}, session=aws)
    warm.source_uri, warm.image = "s3://b/s.tar.gz", "img"
    assert warm.job_request(0, 0, mask)["ResourceConfig"]["KeepAlivePeriodInSeconds"] == 600
    assert request["Environment"] == {"SYNE_PRUNE_TRIAL_ID": "0"}  # auto: each job resolves device and precision on its instance
    with use_device("cpu"), use_precision("fp16"):
        assert warm.job_request(0, 0, mask)["Environment"] == {"SYNE_PRUNE_TRIAL_ID": "0", "SYNE_PRUNE_PRECISION": "fp16",
                                                                "SYNE_PRUNE_DEVICE": "cpu"}
    assert request["VpcConfig"] == {"Subnets": ["subnet-1"], "SecurityGroupIds": ["sg-1"]}
    assert request["Tags"] == [{"Key": "team", "Value": "nlp"}]
    # a second trial: its own checkpoint location; the source and channels were not uploaded again
    uploads = len(backend.uploader.uploaded)
    backend.start_trial({**mask, "num_layers": 2})
    assert backend.created[1]["CheckpointConfig"]["S3Uri"].endswith("/checkpoints/part-0/1/")
    assert len(backend.uploader.uploaded) == uploads


def test_status_mapping_stop_pause_and_resume(aws, supernets, monkeypatch):
    backend = sm.SageMakerBackend(sagemaker_settings(), "finetune", {"supernet": str(supernets["bert"])}, checkpointing=True, session=aws,
                                  job_prefix="sp-status")
    monkeypatch.setenv("SYNE_PRUNE_SAGEMAKER_LOG_GRACE_S", "0")  # the mapping alone; late log lines: see below
    trial = backend.start_trial({"num_layers": 1})
    states = {}
    real = backend.sm.describe_training_job
    monkeypatch.setattr(backend.sm, "describe_training_job",
                        lambda TrainingJobName: {**real(TrainingJobName=TrainingJobName), "TrainingJobStatus": states[TrainingJobName],
                                                 "FailureReason": "AlgorithmError: boom" if states[TrainingJobName] == "Failed" else None})
    stopped = []
    monkeypatch.setattr(backend.sm, "stop_training_job", lambda TrainingJobName: stopped.append(TrainingJobName))
    for aws_status, status in [("InProgress", Status.in_progress), ("Stopping", Status.stopping), ("Completed", Status.completed)]:
        states["sp-status-0-0"] = aws_status
        backend.trials[0].finished.clear()
        assert backend.fetch_status_results([0])[0][0][1] == status
    states["sp-status-0-0"] = "Failed"
    backend.trials[0].finished.clear()
    assert backend.fetch_status_results([0])[0][0][1] == Status.failed
    assert backend.stderr(0)[-1] == "SageMaker: AlgorithmError: boom"
    # stop a running trial; pause, then resume as a new job of the same trial and checkpoint location
    states["sp-status-0-0"] = "InProgress"
    backend.trials[0].finished.clear()
    backend.fetch_status_results([0])
    backend.stop_trial(trial.trial_id)
    assert stopped == ["sp-status-0-0"]
    second = backend.start_trial({"num_layers": 2})
    states["sp-status-1-0"] = "InProgress"
    backend.fetch_status_results([1])
    backend.pause_trial(second.trial_id)
    states["sp-status-1-0"] = "Stopped"
    assert backend.fetch_status_results([1])[0][1][1] == Status.paused and stopped[-1] == "sp-status-1-0"
    backend.resume_trial(second.trial_id)
    states["sp-status-1-1"] = "InProgress"
    assert [r["TrainingJobName"] for r in backend.created] == ["sp-status-0-0", "sp-status-1-0", "sp-status-1-1"]
    assert backend.created[1]["CheckpointConfig"] == backend.created[2]["CheckpointConfig"]
    assert backend.fetch_status_results([1])[0][1][1] == Status.in_progress


# ---- a full search whose jobs run here, in AWS's training toolkit, against moto in server mode ----

@pytest.mark.slow
def test_a_search_on_sagemaker_gives_the_same_results_as_a_local_run(sagemaker, supernets, tmp_path, capfd):
    common = dict(trial_settings=WeightSharingSettings(str(supernets["bert"])), scheduler="random", n_workers=2, max_trials=4, seed=3,
                  eval_batch_size=8)  # 8 processes
    local = run_search(SearchConfig(output=str(tmp_path / "local"), backend="local", test_split="every-trial", **common), progress=False)
    remote_config = SearchConfig(output=str(tmp_path / "sagemaker"), backend="sagemaker", backend_settings=sagemaker_settings(), **common)
    assert remote_config.test_split == "every-trial"  # the default on SageMaker: the jobs score the test split
    remote = run_search(remote_config, progress=False)
    a = pd.read_csv(tmp_path / "local" / "trials.csv").sort_values("trial_id").reset_index(drop=True)
    b = pd.read_csv(tmp_path / "sagemaker" / "trials.csv").sort_values("trial_id").reset_index(drop=True)
    columns = [c for c in a.columns if c not in ("setup_s", "eval_s", "wall_time_s", "failure_reason", "finished_s")]  # all but timings
    assert {"error", "params", "macs", "test_error"} <= set(columns) and len(columns) > 8
    assert len(b) == 4 and (b["status"] == "completed").all(), b["failure_reason"].tolist()
    pd.testing.assert_frame_equal(a[columns], b[columns])
    assert remote["hypervolume"] == pytest.approx(local["hypervolume"])
    jobs = sagemaker.session.client("sagemaker").list_training_jobs()["TrainingJobSummaries"]
    assert len(jobs) == 4 and sorted(sagemaker.finished) == sorted(job["TrainingJobName"] for job in jobs)
    # no credential anywhere in the results or the output
    out, err = capfd.readouterr()
    for path in (tmp_path / "sagemaker").rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes() and b"AKIATESTTESTTEST" not in path.read_bytes(), path
    assert SECRET not in out + err


@pytest.mark.parametrize("change, message", [
    (dict(role=""), "--role is required"),
    (dict(role="my-role"), "is not an IAM role ARN"),
    (dict(region=""), "--region is required"),
    (dict(region="mars-north-1"), "has no SageMaker"),
    (dict(instance_type="ml.m5.hyperlarge"), "is not a SageMaker training instance type"),
    (dict(s3_prefix="bucket/prefix"), "is not an S3 location"),
    (dict(s3_prefix="s3://no-such-bucket-here/x"), "cannot write to s3://no-such-bucket-here/x"),
    (dict(spot=True, max_run_s=100, max_wait_s=50), "--max-wait (50 s) must be at least --max-run"),
    (dict(spot=True, keep_alive_s=60), "warm pools (--keep-alive) cannot be used with spot"),
    (dict(instance_count=2), "--instance-count above 1"),
])
def test_bad_sagemaker_input_fails_before_any_job(aws, supernets, tmp_path, change, message):
    config = SearchConfig(trial_settings=WeightSharingSettings(str(supernets["bert"])), output=str(tmp_path / "out"), backend="sagemaker",
                          backend_settings=sagemaker_settings(**change), max_trials=2)
    with pytest.raises(SynePruneError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run_search(config, progress=False)
    assert aws.client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == []
    assert not (tmp_path / "out").exists()


def test_a_supernet_without_manifest_is_refused_before_any_job(aws, supernets, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(supernets["bert"], broken)
    (broken / "supernet.json").unlink()
    config = SearchConfig(trial_settings=WeightSharingSettings(str(broken)), output=str(tmp_path / "out"), backend="sagemaker",
                          backend_settings=sagemaker_settings(), max_trials=2)
    with pytest.raises(SynePruneError):
        run_search(config, progress=False)
    assert aws.client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == []
    assert keys(aws) == []


def test_cli_sagemaker_errors_are_one_line_and_exit_2(aws, supernets, tmp_path, capsys):
    from syne_prune.cli import main

    argv = ["search", "--supernet", str(supernets["bert"]), "--backend", "sagemaker", "--region", REGION, "--role", "nope",
            "--s3-prefix", f"s3://{BUCKET}/x", "--max-trials", "2", "--output", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "is not an IAM role ARN" in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert main(argv[:-4] + ["--tags", "novalue", "--role", ROLE, "--max-trials", "2", "--output", str(tmp_path / "out")]) == 2
    assert "--tags 'novalue' must be KEY=VALUE" in capsys.readouterr().err


# ---- launchers ----

@pytest.mark.slow
def test_the_train_supernet_launcher_runs_train_supernet_in_a_job(sagemaker, tiny_model_dirs, glue_dir, tmp_path, capsys):
    from syne_prune.supernet import verify_checkpoint

    argv = [*SM_ARGS, "--model", str(tiny_model_dirs["bert"]), "--task", "rte", "--data-dir", str(glue_dir), "--epochs", "1",
            "--batch-size", "16", "--max-length", "48", "--search-space", "small", "--strategy", "sandwich", "--teacher", "none", "--output", "rte-net"]
    assert launcher("sagemaker_train_supernet").launcher_main("train-supernet", "", argv) == 0
    out = capsys.readouterr().out
    assert "started SageMaker job syne-prune-train-supernet-" in out
    request = sagemaker.requests[-1]
    command = json.loads(json.loads(request["HyperParameters"]["syne_prune_argv"]))
    assert command[0] == "train-supernet" and command[command.index("--output") + 1] == "/opt/ml/model/rte-net"
    assert command[command.index("--model") + 1] == "sm-channel:model" and command[command.index("--data-dir") + 1] == "sm-channel:data"
    assert {c["ChannelName"] for c in request["InputDataConfig"]} == {"model", "data"}
    assert sagemaker.run_pending() == [request["TrainingJobName"]]
    # the results are where the launcher said: the job's model.tar.gz holds the trained super-network
    assert out.split("results: ")[1].split()[0] == f"{request['OutputDataConfig']['S3OutputPath']}{request['TrainingJobName']}/output/model.tar.gz"
    sagemaker.model(request).extractall(tmp_path / "model", filter="data")
    metadata = verify_checkpoint(tmp_path / "model" / "rte-net")
    assert metadata["task"] == "rte" and metadata["strategy"] == "sandwich"


def _with_session(init, session):
    def wrapped(self, *args, **kwargs):
        kwargs["session"] = session
        init(self, *args, **kwargs)
    return wrapped


def test_the_search_in_one_job_launcher_mounts_the_supernet(aws, supernets, monkeypatch, capsys):
    monkeypatch.setattr(sm.SageMakerBackend, "__init__", _with_session(sm.SageMakerBackend.__init__, aws))
    argv = [*SM_ARGS, "--instance-type", "ml.g5.2xlarge", "--supernet", str(supernets["bert"]), "--scheduler", "ehvi",
            "--max-trials", "50", "--output", "search"]
    assert launcher("sagemaker_search_in_one_job").launcher_main("search", "", argv) == 0
    job_name = capsys.readouterr().out.split("started SageMaker job ")[1].split()[0]
    job = aws.client("sagemaker").describe_training_job(TrainingJobName=job_name)
    command = json.loads(json.loads(job["HyperParameters"]["syne_prune_argv"]))
    assert command == ["search", "--supernet", "sm-channel:supernet", "--scheduler", "ehvi", "--max-trials", "50", "--output", "/opt/ml/model/search"]
    assert job["ResourceConfig"]["InstanceType"] == "ml.g5.2xlarge" and job["InputDataConfig"][0]["ChannelName"] == "supernet"
    assert launcher("sagemaker_search_in_one_job").launcher_main("search", "", [*SM_ARGS[:1], "bad-role", *SM_ARGS[2:], "--output", "x"]) == 2
    assert "is not an IAM role ARN" in capsys.readouterr().err


# ---- hardening for real AWS: late log lines, expired tokens, resumes, many hyperparameters ----

def _metric(error: float, fidelity: int) -> str:
    """A report line as Syne Tune's Reporter prints it."""
    return "[tune-metric]: " + json.dumps({"error": error, "fidelity": fidelity, "st_worker_timestamp": time.time() + fidelity,
                                           "st_worker_time": float(fidelity), "st_worker_iter": fidelity - 1})


def _ended(backend, monkeypatch, status: str = "Completed", ended_s_ago: float = 1.0):
    from datetime import datetime, timedelta, timezone

    real = backend.sm.describe_training_job
    end = datetime.now(timezone.utc) - timedelta(seconds=ended_s_ago)
    monkeypatch.setattr(backend.sm, "describe_training_job", lambda TrainingJobName: {
        **real(TrainingJobName=TrainingJobName), "TrainingJobStatus": status, "TrainingEndTime": end})


def test_a_job_whose_last_log_lines_arrive_late_stays_running_until_they_are_read(aws, supernets, monkeypatch):
    backend = sm.SageMakerBackend(sagemaker_settings(), "trial", {"supernet": str(supernets["bert"])}, session=aws, job_prefix="sp-late")
    backend.start_trial({"num_layers": 1})
    _ended(backend, monkeypatch)  # describe says Completed, CloudWatch has nothing yet
    reported = []

    def fetch() -> str:
        statuses, results = backend.fetch_status_results([0])
        reported.extend(result["error"] for _, result in results)
        return statuses[0][1]

    assert fetch() == Status.in_progress
    assert backend.busy_trial_ids() == [(0, Status.in_progress)]
    put_lines(aws, "sp-late-0-0/algo-1", [_metric(0.25, 1)])
    assert fetch() == Status.in_progress  # the end marker is not there yet
    put_lines(aws, "sp-late-0-0/algo-1", [_metric(0.2, 2), sm.JOB_END_MARKER], create=False)
    assert fetch() == Status.completed and reported == [0.25, 0.2]
    assert backend.busy_trial_ids() == []
    # a job that ended without the marker (killed) counts as ended once the grace period is over
    backend.start_trial({"num_layers": 2})
    monkeypatch.setenv("SYNE_PRUNE_SAGEMAKER_LOG_GRACE_S", "30")
    _ended(backend, monkeypatch, status="Failed", ended_s_ago=10)
    assert backend.fetch_status_results([1])[0][1][1] == Status.in_progress
    monkeypatch.setenv("SYNE_PRUNE_SAGEMAKER_LOG_GRACE_S", "9")  # as if 20 more seconds had passed
    assert backend.fetch_status_results([1])[0][1][1] == Status.failed


def test_an_expired_log_token_rereads_the_stream_without_repeating_lines(aws, supernets, monkeypatch):
    backend = sm.SageMakerBackend(sagemaker_settings(), "trial", {"supernet": str(supernets["bert"])}, session=aws, job_prefix="sp-token")
    backend.start_trial({"num_layers": 1})
    put_lines(aws, "sp-token-0-0/algo-1", ["a", "b"])
    assert backend.stdout(0) == ["a", "b"]
    put_lines(aws, "sp-token-0-0/algo-1", ["c"], create=False)
    real, calls = backend.logs.get_log_events, []

    def expiring(**kwargs):
        calls.append("nextToken" in kwargs)
        if "nextToken" in kwargs and calls.count(True) == 1:
            raise backend.logs.exceptions.InvalidParameterException(
                {"Error": {"Code": "InvalidParameterException", "Message": "The specified nextToken has expired."}}, "GetLogEvents")
        return real(**kwargs)

    monkeypatch.setattr(backend.logs, "get_log_events", expiring)
    assert backend.stdout(0) == ["a", "b", "c"]
    assert calls[:2] == [True, False]  # the expired token, then the stream again from its head


def test_a_resumed_trial_waits_for_its_stopping_job_and_takes_the_new_configuration(aws, supernets, monkeypatch):
    backend = sm.SageMakerBackend(sagemaker_settings(), "finetune", {"supernet": str(supernets["bert"])}, checkpointing=True, session=aws,
                                  job_prefix="sp-wait")
    backend.start_trial({"num_layers": 1})
    real = backend.sm.describe_training_job
    answers = iter(["Stopping", "Stopping", "Stopped"])
    seen = []

    def describe(TrainingJobName):
        status = next(answers, "InProgress") if TrainingJobName == "sp-wait-0-0" else "InProgress"
        seen.append((TrainingJobName, status))
        return {**real(TrainingJobName=TrainingJobName), "TrainingJobStatus": status}

    monkeypatch.setattr(backend.sm, "describe_training_job", describe)
    monkeypatch.setattr(backend.sm, "stop_training_job", lambda TrainingJobName: None)
    backend.pause_trial(0)
    backend.resume_trial(0, new_config={"num_layers": 2})  # returns at once: the Tuner's loop never waits on AWS
    assert backend.created[-1]["TrainingJobName"] == "sp-wait-0-0"
    for _ in range(3):  # the polls that follow create the new job once the stopping one has stopped
        assert backend.fetch_status_results([0])[0][0][1] == Status.in_progress
    assert [s for job, s in seen if job == "sp-wait-0-0"] == ["Stopping", "Stopping", "Stopped"]
    assert backend.created[-1]["TrainingJobName"] == "sp-wait-0-1" and backend.created[-1]["HyperParameters"]["num_layers"] == '"2"'
    assert backend.trials[0].config == {"num_layers": 2}


def _entry_hyperparameters(request: dict, tmp_path, monkeypatch) -> dict[str, str]:
    """The hyperparameters the entry script reads in the job of ``request``, from the ``SM_*`` environment and the
    arguments AWS's training toolkit gives it; both must agree."""
    from syne_prune.search.backends.sagemaker import entry as sagemaker_entry

    given = toolkit_environment(request, tmp_path / request["TrainingJobName"], "http://127.0.0.1:1", REGION)
    with monkeypatch.context() as scope:
        for name, value in given["env"].items():
            scope.setenv(name, value)
        from_environment = sagemaker_entry.hyperparameters(given["argv"])
    assert "SM_HPS" not in os.environ
    assert sagemaker_entry.hyperparameters(given["argv"]) == from_environment
    return from_environment


def test_the_entry_script_gets_each_hyperparameter_as_the_backend_sent_it(aws, supernets, tmp_path, monkeypatch):
    backend = sm.SageMakerBackend(sagemaker_settings(), "trial", {"supernet": str(supernets["bert"])}, session=aws, job_prefix="sp-values")
    # values the toolkit's JSON decoding would change if they were sent as they are
    config = {"num_layers": 2, "ratio": "1.10", "lr": "1e-5", "label": '"quoted"', "flag": "true", "list": "[1, 2]", "map": '{"a": 1}',
              "supernet": str(supernets["bert"])}
    backend.start_trial(config)
    values = _entry_hyperparameters(backend.created[-1], tmp_path, monkeypatch)
    assert values == {**{k: str(v) for k, v in config.items()}, "supernet": "sm-channel:supernet", "syne_prune_entry": "trial"}


def test_a_configuration_with_more_values_than_a_job_allows_is_packed_and_unpacked(aws, supernets, tmp_path, monkeypatch):
    import numpy as np
    from transformers import BertConfig

    from syne_prune import get_family, get_search_space

    base = BertConfig()  # BERT-base: the large space has hundreds of values
    space = get_search_space("large", get_family(base).shape(base))
    config = space.sample(np.random.RandomState(0))
    assert len(config) > sm.MAX_HYPERPARAMETERS
    backend = sm.SageMakerBackend(sagemaker_settings(), "trial", {"supernet": str(supernets["bert"])}, session=aws, job_prefix="sp-pack")
    backend.start_trial({**config, "supernet": str(supernets["bert"])})
    hps = backend.created[-1]["HyperParameters"]
    assert len(hps) <= sm.MAX_HYPERPARAMETERS and all(len(v) <= sm.MAX_HYPERPARAMETER_CHARS for v in hps.values())
    unpacked = _entry_hyperparameters(backend.created[-1], tmp_path, monkeypatch)
    assert {k: int(unpacked[k]) for k in config} == config
    assert unpacked["supernet"] == "sm-channel:supernet" and unpacked["syne_prune_entry"] == "trial"
