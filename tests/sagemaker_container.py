"""SageMaker's side of a training job, run on this machine against moto in server mode.

``moto_server`` starts moto's threaded server on a free local port (no network beyond this machine).
``SageMakerPlatform`` records every CreateTrainingJob request the server receives, exactly as sent, and runs
each one as SageMaker runs a job in a framework container:

- the job's folder stands for the container's ``/opt/ml``: ``input/config/hyperparameters.json``,
  ``inputdataconfig.json`` and ``resourceconfig.json`` are written from the request (the formats SageMaker
  documents for containers: the request's HyperParameters map as it is, string values included; one entry
  per channel; ``algo-1`` on a one-host cluster), every object under a channel's S3 prefix is placed under
  ``input/data/<channel>``, and a CheckpointConfig's S3 location is synced with the job's checkpoint folder;
- AWS's training toolkit (``sagemaker-training``, the library inside SageMaker's framework images) runs
  as the image's ``train`` command with ``SAGEMAKER_BASE_DIR`` set to that folder: it reads the three files,
  downloads ``sagemaker_submit_directory`` from S3 (``AWS_ENDPOINT_URL``: the moto server), installs its
  ``requirements.txt`` (from what is installed here: ``PIP_NO_INDEX``) and starts ``sagemaker_program`` with
  the hyperparameters as its command-line arguments and ``SM_*`` environment;
- the container's output goes to CloudWatch Logs (stream ``JOB/algo-1-EPOCH``), ``model/`` and
  ``output/data/`` to ``S3OutputPath/JOB/output/model.tar.gz`` and ``output.tar.gz``.

A job has the request's ``Environment`` and credentials of its own (never the caller's); the toolkit's wait
for the cluster's host names to resolve is skipped (``SM_STUDIO_LOCAL_MODE``), as there is one host.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3

HOST = "algo-1"
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
# made-up keys (moto accepts any): a job runs with credentials of its own, so the tests can check the caller's never reach it
JOB_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "AKIAJOBROLEJOBROLE00", "AWS_SECRET_ACCESS_KEY": "jobROLEsecretJOBrole0123456789abcdefJOBR"}
TRAIN = str(Path(sys.executable).with_name("train"))  # the toolkit's console script: a framework image's entry point


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto in server mode on a free local port; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=30).close()  # moto's state is per process
    try:
        yield endpoint
    finally:
        server.stop()


def _bucket_and_key(uri: str) -> tuple[str, str]:
    assert uri.startswith("s3://"), uri
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def config_files(request: dict) -> dict[str, dict]:
    """The files SageMaker writes to ``/opt/ml/input/config`` for the job of a CreateTrainingJob ``request``."""
    resources = request["ResourceConfig"]
    hosts = [f"algo-{index + 1}" for index in range(resources["InstanceCount"])]
    mode = request["AlgorithmSpecification"].get("TrainingInputMode", "File")
    channels = {}
    for channel in request.get("InputDataConfig", []):
        source = channel["DataSource"]["S3DataSource"]
        channels[channel["ChannelName"]] = {
            "TrainingInputMode": channel.get("InputMode", mode),
            "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
            "RecordWrapperType": channel.get("RecordWrapperType", "None"),
            **({"ContentType": channel["ContentType"]} if "ContentType" in channel else {}),
        }
    group = "homogeneousCluster"
    return {
        "hyperparameters.json": dict(request.get("HyperParameters", {})),
        "inputdataconfig.json": channels,
        "resourceconfig.json": {
            "current_host": HOST, "hosts": hosts, "current_instance_type": resources["InstanceType"], "current_group_name": group,
            "instance_groups": [{"instance_group_name": group, "instance_type": resources["InstanceType"], "hosts": hosts}],
            "network_interface_name": "eth0",
        },
    }


def write_config(request: dict, base: Path) -> None:
    """``base/input/config/*.json`` and the empty folders of a job's ``/opt/ml``."""
    (base / "input" / "config").mkdir(parents=True, exist_ok=True)
    for name, content in config_files(request).items():
        (base / "input" / "config" / name).write_text(json.dumps(content))
    for folder in ("model", "output/data", "code", "checkpoints"):
        (base / folder).mkdir(parents=True, exist_ok=True)


def _job_environment(endpoint: str, region: str, base: Path, request: dict) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SM_", "SAGEMAKER_"))}  # none of the caller's
    env.update(JOB_CREDENTIALS)
    env.update({"AWS_ENDPOINT_URL": endpoint, "AWS_REGION": region, "AWS_DEFAULT_REGION": region, "SAGEMAKER_BASE_DIR": str(base),
                "TRAINING_JOB_NAME": request["TrainingJobName"], "SM_STUDIO_LOCAL_MODE": "true", "PIP_NO_INDEX": "1",
                "PYTHONUNBUFFERED": "1"})
    if request.get("CheckpointConfig"):  # SageMaker syncs CheckpointConfig.LocalPath; here it is the job's own folder
        env["SYNE_PRUNE_CHECKPOINT_DIR"] = str(base / "checkpoints")
    env.update(request.get("Environment", {}))
    return env


def toolkit_environment(request: dict, base: Path, endpoint: str, region: str) -> dict:
    """What the toolkit hands a job's entry script: ``{"argv": [...], "env": {SM_*: ...}}`` (computed by the toolkit)."""
    write_config(request, base)
    script = ("import json; from sagemaker_training import environment; e = environment.Environment(); "
              "print(json.dumps({'argv': e.to_cmd_args(), 'env': e.to_env_vars()}))")
    done = subprocess.run([sys.executable, "-c", script], env=_job_environment(endpoint, region, base, request),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


class SageMakerPlatform:
    """Runs the training jobs created on a moto server (``record`` first), one by one, when ``run_pending`` is called."""

    def __init__(self, endpoint: str, region: str, root: Path) -> None:
        self.endpoint, self.region, self.root = endpoint, region, root
        self.requests: list[dict] = []  # every CreateTrainingJob request moto received, as sent
        self.finished: dict[str, subprocess.CompletedProcess] = {}  # job name -> the container's run
        session = boto3.session.Session(region_name=region, aws_access_key_id="platform", aws_secret_access_key="platform")
        self.s3, self.logs = (session.client(name, endpoint_url=endpoint) for name in ("s3", "logs"))

    def record(self, monkeypatch) -> None:
        """Keep each CreateTrainingJob request the moto server accepts."""
        from moto.sagemaker.responses import SageMakerResponse

        create = SageMakerResponse.create_training_job
        requests = self.requests

        def create_and_keep(response):
            result = create(response)
            requests.append(json.loads(response.body))
            return result

        monkeypatch.setattr(SageMakerResponse, "create_training_job", create_and_keep)

    def run_pending(self) -> list[str]:
        """Run every recorded job that has not run yet; returns their names. A job that fails raises AssertionError."""
        ran = []
        for request in list(self.requests):
            if request["TrainingJobName"] not in self.finished:
                self.run(request)
                ran.append(request["TrainingJobName"])
        return ran

    def run(self, request: dict) -> subprocess.CompletedProcess:
        job = request["TrainingJobName"]
        base = self.root / job
        write_config(request, base)
        for channel in request.get("InputDataConfig", []):
            self._download(channel["DataSource"]["S3DataSource"]["S3Uri"], base / "input" / "data" / channel["ChannelName"])
        checkpoint = request.get("CheckpointConfig")
        if checkpoint:
            self._download(checkpoint["S3Uri"], base / "checkpoints")
        host_opt_ml = Path("/opt/ml").exists()
        done = subprocess.run([TRAIN], cwd=base, env=_job_environment(self.endpoint, self.region, base, request),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
        self.finished[job] = done
        self._put_log(job, done.stdout.splitlines())
        if checkpoint:
            self._upload_folder(base / "checkpoints", checkpoint["S3Uri"])
        output = request["OutputDataConfig"]["S3OutputPath"].rstrip("/") + f"/{job}/output/"
        self._upload_tarball(base / "model", output + "model.tar.gz")
        self._upload_tarball(base / "output" / "data", output + "output.tar.gz")
        assert done.returncode == 0, f"training job {job} failed:\n{done.stdout[-4000:]}"
        assert host_opt_ml or not Path("/opt/ml").exists(), f"training job {job} wrote to /opt/ml instead of SAGEMAKER_BASE_DIR"
        return done

    def _download(self, uri: str, target: Path) -> None:
        """Every object under the S3 prefix ``uri``, at its path relative to the prefix (as SageMaker copies a channel)."""
        bucket, prefix = _bucket_and_key(uri)
        target.mkdir(parents=True, exist_ok=True)
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                path = target / item["Key"][len(prefix):].lstrip("/")
                path.parent.mkdir(parents=True, exist_ok=True)
                self.s3.download_file(bucket, item["Key"], str(path))

    def _upload_folder(self, folder: Path, uri: str) -> None:
        bucket, prefix = _bucket_and_key(uri)
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                self.s3.upload_file(str(path), bucket, prefix + path.relative_to(folder).as_posix())

    def _upload_tarball(self, folder: Path, uri: str) -> None:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            for path in sorted(folder.iterdir()):
                archive.add(path, arcname=path.name)
        bucket, key = _bucket_and_key(uri)
        self.s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())

    def _put_log(self, job: str, lines: list[str]) -> None:
        stream = f"{job}/{HOST}-{int(time.time())}"
        self.logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
        now = int(time.time() * 1000)
        events = [{"timestamp": now + index, "message": line} for index, line in enumerate(lines) if line] or [
            {"timestamp": now, "message": "(no output)"}]
        for start in range(0, len(events), 5000):  # PutLogEvents takes at most 10,000 events a call
            self.logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=stream, logEvents=events[start:start + 5000])

    def model(self, request: dict) -> tarfile.TarFile:
        """The job's ``model.tar.gz``, from where SageMaker put it."""
        uri = request["OutputDataConfig"]["S3OutputPath"].rstrip("/") + f"/{request['TrainingJobName']}/output/model.tar.gz"
        bucket, key = _bucket_and_key(uri)
        return tarfile.open(fileobj=io.BytesIO(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
