"""Fixtures of the tests that talk to SageMaker: ``aws`` (moto in this process: S3, SageMaker and CloudWatch Logs
with a bucket and the log group), ``moto_jobs`` (moto's training jobs with a life: ``InProgress`` until stopped, and
AWS's refusals on demand), ``sagemaker`` (moto as a server whose training jobs run here in AWS's training toolkit,
see ``sagemaker_container``) and ``sagemaker_settings`` (a role, region, bucket and image that pass the backend's
checks)."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import boto3
import moto
import pytest
from sagemaker_container import SageMakerPlatform, moto_server

from syne_prune.search.backends import sagemaker as sm

REGION, BUCKET = "us-east-1", "syne-prune-test"
ROLE = "arn:aws:iam::123456789012:role/SyneprunesageMaker"
SECRET = "SECRETsecretSECRET0123456789abcdefSECRET"


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIATESTTESTTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("SYNE_PRUNE_SAGEMAKER_POLL_S", "0.1")
    with moto.mock_aws():
        session = boto3.session.Session(region_name=REGION)
        session.client("s3").create_bucket(Bucket=BUCKET)
        session.client("logs").create_log_group(logGroupName=sm.LOG_GROUP)
        yield session


class MotoJobs:
    """moto's training jobs as AWS runs them: ``InProgress`` once created, ``Stopped`` once a stop arrives (a stop of
    an ended or unknown job is refused with ``ValidationException``). ``refuse`` maps an operation (``create``,
    ``stop``, ``describe``) to ``(code, message, times)``: AWS answers it with that error, ``times`` times."""

    def __init__(self) -> None:
        self.refuse: dict[str, tuple[str, str, int]] = {}
        self.stopped: list[str] = []

    def answer(self, operation: str) -> None:
        from moto.core.exceptions import JsonRESTError

        if operation in self.refuse:
            code, message, times = self.refuse[operation]
            if times > 0:
                self.refuse[operation] = (code, message, times - 1)
                raise JsonRESTError(code, message)


@pytest.fixture
def moto_jobs(aws, monkeypatch):
    from moto.core.responses import ActionResult
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import FakeTrainingJob
    from moto.sagemaker.responses import SageMakerResponse

    jobs = MotoJobs()
    start, create, describe = FakeTrainingJob.__init__, SageMakerResponse.create_training_job, SageMakerResponse.describe_training_job

    def running(job, *args, **kwargs):
        start(job, *args, **kwargs)
        job.training_job_status, job.secondary_status, job.training_end_time = "InProgress", "Training", None

    def create_or_refuse(response):
        jobs.answer("create")
        return create(response)

    def describe_or_refuse(response):
        jobs.answer("describe")
        return describe(response)

    def stop(response):
        jobs.answer("stop")
        name = response._get_param("TrainingJobName")
        job = response.sagemaker_backend.training_jobs.get(name)
        if job is None or job.training_job_status != "InProgress":
            raise ValidationError(message=f"The training job {name} is not in progress")
        job.training_job_status, job.training_end_time = "Stopped", datetime.now(timezone.utc)
        jobs.stopped.append(name)
        return ActionResult({})

    monkeypatch.setattr(FakeTrainingJob, "__init__", running)
    monkeypatch.setattr(SageMakerResponse, "create_training_job", create_or_refuse)
    monkeypatch.setattr(SageMakerResponse, "describe_training_job", describe_or_refuse)
    monkeypatch.setattr(SageMakerResponse, "stop_training_job", stop, raising=False)
    return jobs


def moto_status(session, job: str) -> str:
    return session.client("sagemaker").describe_training_job(TrainingJobName=job)["TrainingJobStatus"]


def sagemaker_settings(**kwargs) -> sm.SageMakerSettings:
    values = dict(role=ROLE, region=REGION, s3_prefix=f"s3://{BUCKET}/searches", image_uri="1.dkr.ecr.us-east-1.amazonaws.com/img:1")
    return sm.SageMakerSettings(**(values | kwargs))


@pytest.fixture
def sagemaker(monkeypatch, tmp_path):
    """moto as a server (``AWS_ENDPOINT_URL``) and a SageMaker platform that runs each training job created there
    through ``sagemaker-training`` (``sagemaker_container``), synchronously, as soon as the backend created it."""
    with moto_server() as endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIATESTTESTTEST")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
        monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
        monkeypatch.setenv("SYNE_PRUNE_SAGEMAKER_POLL_S", "0.1")
        session = boto3.session.Session(region_name=REGION)
        session.client("s3").create_bucket(Bucket=BUCKET)
        session.client("logs").create_log_group(logGroupName=sm.LOG_GROUP)
        platform = SageMakerPlatform(endpoint, REGION, tmp_path / "jobs")
        platform.record(monkeypatch)
        schedule = sm.SageMakerBackend._schedule

        def schedule_and_run(self, trial_id, config):
            schedule(self, trial_id, config)
            platform.run_pending()

        monkeypatch.setattr(sm.SageMakerBackend, "_schedule", schedule_and_run)
        platform.session = session
        yield platform

def keys(session, prefix: str = "") -> list[str]:
    """The S3 keys under ``prefix`` in the test bucket."""
    s3 = session.client("s3")
    return [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix) for o in page.get("Contents", [])]


def launcher(name: str):
    """The script ``launchers/NAME.py`` as a module."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "launchers" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SM_ARGS = ["--role", ROLE, "--region", REGION, "--s3-prefix", f"s3://{BUCKET}/launch", "--image-uri", "1.dkr.ecr.us-east-1.amazonaws.com/img:1"]



def put_lines(session, stream: str, lines: list[str], create: bool = True) -> None:
    logs = session.client("logs")
    if create:
        logs.create_log_stream(logGroupName=sm.LOG_GROUP, logStreamName=stream)
    now = int(time.time() * 1000)
    logs.put_log_events(logGroupName=sm.LOG_GROUP, logStreamName=stream,
                        logEvents=[{"timestamp": now + i, "message": line} for i, line in enumerate(lines)])
