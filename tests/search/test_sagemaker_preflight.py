"""The SageMaker backend on real AWS's terms, against moto: pre-flight checks that refuse a search before anything is
uploaded, AWS errors while the search runs (one line; waited out where AWS asks to wait), every job stopped when
the search ends however it ends, and the software a job installs."""
from __future__ import annotations

import ast
import io
import re
import tarfile
import time
from importlib import metadata
from pathlib import Path

import boto3
import pytest
from sagemaker_fixtures import BUCKET, REGION, ROLE, SM_ARGS, keys, launcher, moto_status, sagemaker_settings

from syne_prune import SynePruneError
from syne_prune.aws import DEFAULT_FRAMEWORK_VERSION, JOB_DEPENDENCIES, TORCH_REQUIREMENT, aws_error, check_framework, source_tarball
from syne_prune.search import SearchConfig, WeightSharingSettings, run_search
from syne_prune.search.backends import sagemaker as sm

SETUP = Path(__file__).resolve().parents[2] / "setup.py"


def _install_requires() -> list[str]:
    """setup.py's install_requires, read from its source."""
    call = next(node for node in ast.walk(ast.parse(SETUP.read_text())) if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "setup")
    return ast.literal_eval(next(k.value for k in call.keywords if k.arg == "install_requires"))


def _search(supernets, tmp_path, **changes) -> SearchConfig:
    return SearchConfig(trial_settings=WeightSharingSettings(str(supernets["bert"])), output=str(tmp_path / "out"), backend="sagemaker",
                        backend_settings=sagemaker_settings(**changes), max_trials=2, n_workers=2, scheduler="random")


def _all_keys(session) -> list[str]:
    s3 = session.client("s3")
    return [key for bucket in s3.list_buckets()["Buckets"] for key in
            (o["Key"] for o in s3.list_objects_v2(Bucket=bucket["Name"]).get("Contents", []))]


def _no_credentials(monkeypatch, tmp_path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def _bucket_elsewhere(monkeypatch, tmp_path) -> None:
    boto3.client("s3", region_name="eu-west-1").create_bucket(Bucket="sp-eu-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})


def _no_image(monkeypatch, tmp_path) -> None:
    def lookup(settings):
        raise ValueError("Unsupported processor: trn1. You may need to upgrade your SDK version")
    monkeypatch.setattr(sm.SageMakerSettings, "image", lookup)


def _local_build(monkeypatch, tmp_path) -> None:
    version = metadata.version
    monkeypatch.setattr(metadata, "version", lambda name: "2.4.6+local" if name == "numpy" else version(name))


PREFLIGHT = [  # (name, settings changes, what sets the scene, the one line expected)
    ("no credentials", {}, _no_credentials, "no AWS credentials found; configure them"),
    ("bucket in another region", dict(s3_prefix="s3://sp-eu-bucket/x"), _bucket_elsewhere,
     "bucket 'sp-eu-bucket' of --s3-prefix is in eu-west-1, but --region is us-east-1: a training job reads S3 in its own region"),
    ("no such bucket", dict(s3_prefix="s3://sp-missing-bucket/x"), None, "cannot write to s3://sp-missing-bucket/x .*NoSuchBucket"),
    ("no image", dict(image_uri=None, instance_type="ml.trn1.2xlarge"), _no_image,
     "no training image found for ml.trn1.2xlarge in us-east-1 .ValueError: Unsupported processor: trn1.*; pass --image-uri"),
    ("image too old", dict(image_uri=None, framework_version="2.5"), None, "the PyTorch training image 2.5 is too old here .*transformers needs torch>="),
    ("a local build to pin", dict(image_uri=None), _local_build, "numpy 2.4.6\\+local is a local build that the SageMaker jobs cannot install"),
    ("unknown instance type", dict(instance_type="ml.m5.hyperlarge"), None, "is not a SageMaker training instance type"),
    ("keep-alive over the limit", dict(keep_alive_s=21601), None, "--keep-alive must be 0 to 21600 seconds"),
    ("negative keep-alive", dict(keep_alive_s=-1), None, "--keep-alive must be 0 to 21600 seconds"),
    ("tag key reserved", dict(tags={"aws:team": "nlp"}), None, "--tags: key 'aws:team' starts with 'aws:'"),
    ("tag key characters", dict(tags={"team#1": "nlp"}), None, "--tags: key 'team#1' is not a valid AWS tag key"),
    ("tag value too long", dict(tags={"team": "x" * 257}), None, "--tags: value 'x+' is not a valid AWS tag value: 0 to 256"),
    ("too many tags", dict(tags={f"k{i}": "v" for i in range(51)}), None, "--tags: a job takes at most 50 tags, got 51"),
    ("subnet id", dict(subnets=("subnet 1",), security_group_ids=("sg-1",)), None, "'subnet 1' is not a subnet or security group id"),
]


@pytest.mark.parametrize("name, changes, scene, message", PREFLIGHT, ids=[p[0] for p in PREFLIGHT])
def test_preflight_refuses_in_one_line_before_anything_is_uploaded(name, changes, scene, message, aws, supernets, tmp_path,
                                                                   monkeypatch):
    if scene:
        scene(monkeypatch, tmp_path)
    with pytest.raises(SynePruneError, match=message) as refusal:
        run_search(_search(supernets, tmp_path, **changes), progress=False)
    assert "\n" not in str(refusal.value)
    session = boto3.session.Session(region_name=REGION, aws_access_key_id="a", aws_secret_access_key="b")
    assert _all_keys(session) == [] and not (tmp_path / "out").exists()
    assert session.client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == []


def test_cli_preflight_errors_exit_2_with_one_line(aws, supernets, tmp_path, capsys):
    from syne_prune.cli import main

    _bucket_elsewhere(None, tmp_path)
    base = ["search", "--supernet", str(supernets["bert"]), "--backend", "sagemaker", "--region", REGION, "--role", ROLE,
            "--image-uri", "1.dkr.ecr.us-east-1.amazonaws.com/img:1", "--max-trials", "2", "--output", str(tmp_path / "out")]
    for extra, message in ((["--s3-prefix", "s3://sp-eu-bucket/x"], "is in eu-west-1, but --region is us-east-1"),
                           (["--s3-prefix", f"s3://{BUCKET}/x", "--tags", "aws:owner=me"], "starts with 'aws:'"),
                           (["--s3-prefix", f"s3://{BUCKET}/x", "--keep-alive", "100000"], "--keep-alive must be 0 to 21600")):
        assert main(base + extra) == 2
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if line.startswith("error:")]  # (the tiny super-network's warning aside)
        assert len(errors) == 1 and message in errors[0] and "Traceback" not in err
    assert keys(aws) == []


# ---- errors while the search runs ----

def test_an_aws_error_keeps_its_whole_cause_in_one_line():
    from botocore.exceptions import ClientError, ParamValidationError

    report = "Invalid length for parameter InputDataConfig, value: 0, valid min length: 1\nInvalid type for parameter Tags, value: 1"
    error = aws_error(ParamValidationError(report=report), "create_training_job sp-1-0 failed")
    assert str(error) == ("create_training_job sp-1-0 failed: ParamValidationError: Parameter validation failed:; Invalid length for "
                          "parameter InputDataConfig, value: 0, valid min length: 1; Invalid type for parameter Tags, value: 1")
    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "User: arn:aws:sts::1:assumed-role/x is not authorized\n"
                          "to perform: sagemaker:StopTrainingJob"}}, "StopTrainingJob")
    error = aws_error(denied, "stop_training_job sp-1-0 failed")
    assert error.code == "AccessDeniedException" and "\n" not in str(error) and str(error).endswith("to perform: sagemaker:StopTrainingJob")


def _backend(aws, supernets, prefix: str, **changes):
    return sm.SageMakerBackend(sagemaker_settings(**changes), "trial", {"supernet": str(supernets["bert"])}, session=aws, job_prefix=prefix)


def test_a_create_refused_for_now_is_tried_again_at_later_polls(moto_jobs, aws, supernets, monkeypatch, capsys):
    moto_jobs.refuse["create"] = ("ResourceLimitExceeded", "The account-level service limit 'ml.m5.xlarge for training job usage' is 2 "
                                  "Instances, with current utilization of 2 Instances", 2)
    backend = _backend(aws, supernets, "sp-limit")
    backend.start_trial({"num_layers": 1})  # refused: the Tuner goes on, the trial counts as running
    assert backend.created == [] and backend.busy_trial_ids() == [(0, "InProgress")]
    deadline = time.monotonic() + 10
    while not backend.created and time.monotonic() < deadline:
        assert backend.fetch_status_results([0])[0][0][1] == "InProgress"
        time.sleep(0.05)
    assert [r["TrainingJobName"] for r in backend.created] == ["sp-limit-0-0"] and moto_status(aws, "sp-limit-0-0") == "InProgress"
    notices = [line for line in capsys.readouterr().err.splitlines() if "ResourceLimitExceeded" in line]
    assert len(notices) == 2 and all("trying again in" in line for line in notices)
    # refused for good after the wait allowed with no other job of the search running
    monkeypatch.setenv("SYNE_PRUNE_SAGEMAKER_CAPACITY_WAIT_S", "0.2")
    backend.stop_all()
    moto_jobs.refuse["create"] = ("ResourceLimitExceeded", "The account-level service limit is 0 Instances", 5)
    backend.start_trial({"num_layers": 2})  # refused, within the wait allowed
    time.sleep(0.4)
    with pytest.raises(SynePruneError, match="ResourceLimitExceeded: The account-level service limit is 0 Instances .still refused after"):
        backend.fetch_status_results([1])


def test_throttled_status_reads_keep_the_last_answer(moto_jobs, aws, supernets, monkeypatch):
    from botocore.exceptions import ClientError

    backend = _backend(aws, supernets, "sp-throttle")
    backend.start_trial({"num_layers": 1})
    assert backend.fetch_status_results([0])[0][0][1] == "InProgress"
    real = backend.sm.describe_training_job

    def throttled(TrainingJobName):  # as botocore raises it once its own retries are spent
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "DescribeTrainingJob")

    monkeypatch.setattr(backend.sm, "describe_training_job", throttled)
    assert backend.fetch_status_results([0])[0][0][1] == "InProgress"  # the last answer
    monkeypatch.setattr(backend.sm, "describe_training_job", real)
    moto_jobs.refuse["describe"] = ("AccessDeniedException", "not authorized to perform: sagemaker:DescribeTrainingJob", 100)
    with pytest.raises(SynePruneError, match="describe_training_job sp-throttle-0-0 failed: AccessDeniedException: not authorized"):
        backend.fetch_status_results([0])


def test_resuming_a_paused_trial_never_sleeps_in_the_tuner_loop(moto_jobs, aws, supernets, monkeypatch):
    backend = sm.SageMakerBackend(sagemaker_settings(), "finetune", {}, checkpointing=True, session=aws, job_prefix="sp-nosleep")
    backend.start_trial({"num_layers": 1})
    real = backend.sm.describe_training_job
    monkeypatch.setattr(backend.sm, "describe_training_job", lambda TrainingJobName: {**real(TrainingJobName=TrainingJobName), "TrainingJobStatus": "Stopping"})
    backend.pause_trial(0)

    def no_sleep(seconds):
        raise AssertionError(f"the Tuner's loop would sleep {seconds} s")

    monkeypatch.setattr(time, "sleep", no_sleep)
    backend.resume_trial(0)
    assert [r["TrainingJobName"] for r in backend.created] == ["sp-nosleep-0-0"]
    assert backend.fetch_status_results([0])[0][0][1] == "InProgress"


def test_a_job_being_deleted_has_failed_and_says_why(moto_jobs, aws, supernets, monkeypatch):
    monkeypatch.setenv("SYNE_PRUNE_SAGEMAKER_LOG_GRACE_S", "0")
    backend = _backend(aws, supernets, "sp-deleting")
    backend.start_trial({"num_layers": 1})
    real = backend.sm.describe_training_job
    monkeypatch.setattr(backend.sm, "describe_training_job", lambda TrainingJobName: {**real(TrainingJobName=TrainingJobName), "TrainingJobStatus": "Deleting"})
    assert backend.fetch_status_results([0])[0][0][1] == "Failed"
    assert backend.stderr(0)[-1] == "SageMaker: training job sp-deleting-0-0 is being deleted (someone deleted it; its results are gone)"
    assert backend.busy_trial_ids() == []


# ---- every job stopped when the search ends ----

def _jobs(aws) -> list[str]:
    return sorted(j["TrainingJobName"] for j in aws.client("sagemaker").list_training_jobs()["TrainingJobSummaries"])


def test_an_expired_token_ends_the_search_in_one_line_and_stops_every_job(moto_jobs, aws, supernets, tmp_path):
    moto_jobs.refuse["describe"] = ("ExpiredTokenException", "The security token included in the request is expired", 10**6)
    with pytest.raises(SynePruneError, match="describe_training_job .* failed: ExpiredTokenException: The security token") as ended:
        run_search(_search(supernets, tmp_path), progress=False)
    assert "\n" not in str(ended.value)
    moto_jobs.refuse.clear()  # this test's own reads
    jobs = _jobs(aws)
    assert len(jobs) == 2 and sorted(moto_jobs.stopped) == jobs and {moto_status(aws, j) for j in jobs} == {"Stopped"}


def test_a_time_limit_stops_every_running_job(moto_jobs, aws, supernets, tmp_path):
    config = _search(supernets, tmp_path)
    config.max_wallclock_s, config.max_trials = 1.0, None
    run_search(config, progress=False)
    jobs = _jobs(aws)
    assert len(jobs) == 2 and sorted(moto_jobs.stopped) == jobs


def test_ctrl_c_stops_every_running_job(moto_jobs, aws, supernets, tmp_path, monkeypatch):
    from syne_tune.backend.trial_backend import TrialBackend

    polls = []
    fetch = TrialBackend.fetch_status_results

    def interrupted(self, trial_ids):
        polls.append(trial_ids)
        if len(polls) == 3:
            raise KeyboardInterrupt
        return fetch(self, trial_ids)

    monkeypatch.setattr(TrialBackend, "fetch_status_results", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_search(_search(supernets, tmp_path), progress=False)
    jobs = _jobs(aws)
    assert len(jobs) == 2 and sorted(moto_jobs.stopped) == jobs


def test_jobs_aws_will_not_stop_are_named_on_stderr(moto_jobs, aws, supernets, tmp_path, capsys):
    moto_jobs.refuse["stop"] = ("AccessDeniedException", "User is not authorized to perform: sagemaker:StopTrainingJob", 10**6)
    config = _search(supernets, tmp_path)
    config.max_wallclock_s, config.max_trials = 1.0, None
    run_search(config, progress=False)
    jobs = _jobs(aws)
    assert len(jobs) == 2 and moto_jobs.stopped == []
    lines = [line for line in capsys.readouterr().err.splitlines() if "could not be stopped" in line]
    assert len(lines) == 1 and all(job in lines[0] for job in jobs)
    assert lines[0].startswith("error: 2 SageMaker training job(s) could not be stopped and may still run (and bill): ")
    assert "AccessDeniedException: User is not authorized to perform: sagemaker:StopTrainingJob" in lines[0]


def test_a_stop_aws_refuses_during_the_search_ends_it_in_one_line(moto_jobs, aws, supernets):
    backend = _backend(aws, supernets, "sp-refused")
    backend.start_trial({"num_layers": 1})
    moto_jobs.refuse["stop"] = ("AccessDeniedException", "User is not authorized to perform: sagemaker:StopTrainingJob", 10**6)
    with pytest.raises(SynePruneError, match="AccessDeniedException: User is not authorized .*: the job keeps running; allow sagemaker:StopTrainingJob"):
        backend.stop_trial(0)
    assert backend.unstopped == {"sp-refused-0-0": "stop_training_job sp-refused-0-0 failed: AccessDeniedException: User is not authorized "
                                                   "to perform: sagemaker:StopTrainingJob"}


# ---- the job's software ----

def test_jobs_pin_this_machine_s_versions_of_every_dependency_but_torch():
    requirements = tarfile.open(fileobj=io.BytesIO(source_tarball())).extractfile("requirements.txt").read().decode().split()
    names = [re.split(r"[<>=!~; \[]", line, maxsplit=1)[0] for line in _install_requires()]
    assert [line.split("==")[0] for line in requirements] == [n for n in names if n != "torch"] == list(JOB_DEPENDENCIES)
    assert requirements == [f"{name}=={metadata.version(name)}" for name in JOB_DEPENDENCIES]
    assert "requirements.txt" not in tarfile.open(fileobj=io.BytesIO(source_tarball(pinned=False))).getnames()


def test_an_image_uri_runs_as_it_is(aws, supernets):
    backend = _backend(aws, supernets, "sp-image")
    backend.prepare()
    key = backend.source_uri.split(f"s3://{BUCKET}/")[1]
    names = tarfile.open(fileobj=io.BytesIO(aws.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read())).getnames()
    assert "requirements.txt" not in names and sm.ENTRY_SCRIPT in names


def test_the_default_image_s_torch_meets_setup_py_and_every_pinned_package():
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet

    torch_line = next(line for line in _install_requires() if Requirement(line).name == "torch")
    assert torch_line == TORCH_REQUIREMENT
    assert DEFAULT_FRAMEWORK_VERSION == "2.8" and SpecifierSet(Requirement(torch_line).specifier).contains("2.8.0")
    check_framework(DEFAULT_FRAMEWORK_VERSION)  # transformers, botorch and safetensors too
    with pytest.raises(SynePruneError, match=r"the PyTorch training image 2.3 is too old here \(syne-prune needs torch<3,>=2.4, "):
        check_framework("2.3")


@pytest.mark.slow
def test_a_job_on_the_default_image_installs_the_pinned_versions(sagemaker, tiny_model_dirs, glue_dir, monkeypatch, capsys):
    """The training toolkit installs the uploaded requirements.txt when the job starts (here from what is installed,
    ``PIP_NO_INDEX``: the pins must be exactly this machine's versions for that to succeed)."""
    monkeypatch.setattr(sm.SageMakerSettings, "image", lambda settings: "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.8.0-cpu-py312")
    argv = [*SM_ARGS[:-2], "--model", str(tiny_model_dirs["bert"]), "--task", "rte", "--data-dir", str(glue_dir), "--epochs", "1",
            "--batch-size", "16", "--max-length", "48", "--search-space", "small", "--teacher", "none", "--output", "net"]
    assert launcher("sagemaker_train_supernet").launcher_main("train-supernet", "", argv) == 0, capsys.readouterr().err
    request = sagemaker.requests[-1]
    assert request["AlgorithmSpecification"]["TrainingImage"].endswith("pytorch-training:2.8.0-cpu-py312")
    assert sagemaker.run_pending() == [request["TrainingJobName"]]
    log = sagemaker.finished[request["TrainingJobName"]].stdout
    for name in JOB_DEPENDENCIES:
        assert f"Requirement already satisfied: {name}=={metadata.version(name)}" in log, name
