"""Fixtures of the tests that talk to SageMaker: ``aws`` (moto in this process: S3, SageMaker and CloudWatch Logs
with a bucket and the log group), ``sagemaker`` (moto as a server whose training jobs run here in AWS's training
toolkit, see ``sagemaker_container``) and ``sagemaker_settings`` (a role, region, bucket and image that pass the
backend's checks)."""
from __future__ import annotations

import time
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
