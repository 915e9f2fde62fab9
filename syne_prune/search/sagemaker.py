"""SageMaker trial backend (Syne Tune 0.16 has none since 0.14): one training job per trial, on boto3.

- **Settings** (``SageMakerSettings``): role, region, instance type/count, S3 prefix, image, spot with
  ``max_wait``, tags, VPC, warm pools (keep-alive), FastFile input. ``check()`` refuses bad input
  before any job is created (role ARN, region, instance type, an S3 prefix that cannot be written).
- **Uploads, once**: the source (this package + an entry script + requirements) as
  ``sourcedir.tar.gz`` and every input channel (the super-network, GLUE files, a local pre-trained
  model) go to ``S3_PREFIX/content/NAME-SHA``: the key holds the sha256 of the content, so an upload
  already there (marked complete) is skipped, across searches too.
- **A trial** is a training job named ``{search}-{trial}-{attempt}``; its hyperparameters are the mask
  plus the search's constants; a constant that names an uploaded local directory is replaced by
  ``sm-channel:NAME``, which the entry script resolves to ``SM_CHANNEL_NAME``. Trials that train
  (standard NAS) get a per-trial ``checkpoint_s3_uri`` synced with ``/opt/ml/checkpoints``.
- **Status** from ``describe_training_job`` (one call per trial), **metrics** from the job's
  CloudWatch log lines (``[tune-metric]: {...}``, Syne Tune's report format), **stop** and **pause**
  with ``stop_training_job``, **resume** as a new job of the same trial on the same checkpoint URI
  (created once the previous job has stopped, so two jobs never share the checkpoint).
- **Logs arrive late**: CloudWatch may receive a job's last lines after ``describe_training_job``
  says it ended. A completed or failed job is reported as running until its entry script's last line
  (``JOB_END_MARKER``) has been read, or ``SYNE_PRUNE_SAGEMAKER_LOG_GRACE_S`` (default 120) seconds
  after it ended, so no final report is lost. Lines are read incrementally with CloudWatch's forward
  tokens; an expired token re-reads the stream and skips what was read. AWS calls retry with
  botocore's adaptive mode on throttling.
- **Many hyperparameters**: a configuration with more values than a job may have (the ``large``
  space) travels as JSON split over ``syne_prune_config_K`` hyperparameters of at most 2500 characters.

Credentials are whatever boto3 finds (profile, environment, instance role); none is ever printed or
written to results.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from syne_tune.backend.trial_backend import TrialBackend
from syne_tune.backend.trial_status import Status, TrialResult
from syne_tune.report import retrieve

from syne_prune.errors import SynePruneError

CHANNEL_PREFIX = "sm-channel:"
CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"
ENTRY_SCRIPT = "syne_prune_sm_entry.py"
MAX_HYPERPARAMETERS = 100  # per training job (SageMaker's limit)
MAX_HYPERPARAMETER_CHARS = 2500  # per value (SageMaker's limit)
PACKED_CONFIG = "syne_prune_config_"  # + K: the K-th piece of a configuration sent as JSON
JOB_END_MARKER = "[syne-prune] job finished"  # the entry script's last line, in every job's log
MAX_WAIT_FOR_STOP_S = 900  # a resumed trial's new job waits at most this long for its previous job to stop
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
S3_URI = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/.*)?$")
DEFAULT_FRAMEWORK_VERSION = "2.5"  # the PyTorch training image (AWS Deep Learning Container) when --image-uri is not given
REQUIREMENTS = ["syne-tune==0.16.0", "transformers>=5.0,<6", "safetensors>=0.4", "pandas>=2.0", "scikit-learn>=1.3",
                "scipy>=1.10", "datasets>=3.0", "tqdm>=4.60", "psutil>=5.9", "matplotlib>=3.7", "pymoo>=0.6", "botorch>=0.12"]
_STATUS = {"InProgress": Status.in_progress, "Completed": Status.completed, "Failed": Status.failed,
           "Stopping": Status.stopping, "Stopped": Status.stopped}


@dataclass(frozen=True)
class SageMakerSettings:
    """Where and how trial jobs run. ``max_wait_s`` (spot) must be at least ``max_run_s``."""

    role: str
    region: str
    s3_prefix: str
    instance_type: str = "ml.m5.xlarge"
    instance_count: int = 1
    image_uri: str | None = None
    framework_version: str = DEFAULT_FRAMEWORK_VERSION
    spot: bool = False
    max_run_s: int = 24 * 3600
    max_wait_s: int | None = None
    volume_size_gb: int = 30
    keep_alive_s: int = 0
    fast_file: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    subnets: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()

    def check(self) -> None:
        """Everything that can be checked offline, as one-line errors."""
        import boto3

        if not self.role:
            raise SynePruneError("--role is required: the ARN of an IAM role SageMaker may assume (arn:aws:iam::ACCOUNT:role/NAME)")
        if not ROLE_ARN.match(self.role):
            raise SynePruneError(f"--role '{self.role}' is not an IAM role ARN; expected arn:aws:iam::<12-digit account>:role/<name>")
        if not self.region:
            raise SynePruneError("--region is required (e.g. us-east-1)")
        regions = boto3.session.Session().get_available_regions("sagemaker")
        regions += boto3.session.Session().get_available_regions("sagemaker", partition_name="aws-cn")
        if self.region not in regions:
            raise SynePruneError(f"--region '{self.region}' has no SageMaker; choose one of {', '.join(sorted(regions)[:6])}, ...")
        if not S3_URI.match(self.s3_prefix or ""):
            raise SynePruneError(f"--s3-prefix '{self.s3_prefix}' is not an S3 location; expected s3://bucket/prefix")
        known = training_instance_types()
        if self.instance_type not in known:
            close = [t for t in known if t.split(".")[1] == (self.instance_type.split(".") + ["", ""])[1]][:4]
            hint = f" (e.g. {', '.join(close)})" if close else " (e.g. ml.m5.xlarge, ml.g5.xlarge)"
            raise SynePruneError(f"--instance-type '{self.instance_type}' is not a SageMaker training instance type{hint}")
        if self.instance_count < 1:
            raise SynePruneError(f"--instance-count must be at least 1, got {self.instance_count}")
        if self.max_run_s < 1 or self.volume_size_gb < 1 or self.keep_alive_s < 0:
            raise SynePruneError("--max-run and --volume-size must be positive, --keep-alive non-negative")
        if self.spot and self.max_wait_s is not None and self.max_wait_s < self.max_run_s:
            raise SynePruneError(f"--max-wait ({self.max_wait_s} s) must be at least --max-run ({self.max_run_s} s) for spot jobs")
        if not self.spot and self.max_wait_s is not None:
            raise SynePruneError("--max-wait applies to spot jobs only; add --spot or drop --max-wait")
        if self.spot and self.keep_alive_s:
            raise SynePruneError("SageMaker warm pools (--keep-alive) cannot be used with spot instances; drop one of --spot, --keep-alive")
        if bool(self.subnets) != bool(self.security_group_ids):
            raise SynePruneError("a VPC needs both --subnets and --security-group-ids")

    @property
    def bucket_and_key(self) -> tuple[str, str]:
        match = S3_URI.match(self.s3_prefix)
        return match.group(1), (match.group(2) or "").strip("/")

    def image(self) -> str:
        if self.image_uri:
            return self.image_uri
        try:
            from sagemaker.core import image_uris
        except ImportError:
            raise SynePruneError("give --image-uri, or pip install 'syne-prune[sagemaker]' to look up the PyTorch training image") from None
        return image_uris.retrieve("pytorch", region=self.region, version=self.framework_version, py_version="py311",
                                   instance_type=self.instance_type, image_scope="training")


def training_instance_types() -> list[str]:
    """Every training instance type SageMaker's API knows (from botocore's service model, offline)."""
    import boto3

    client = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return list(client.meta.service_model.shape_for("TrainingInstanceType").enum)


def aws_error(error: Exception, doing: str) -> SynePruneError:
    """A boto3/botocore failure as one line (never with credentials)."""
    from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError

    if isinstance(error, NoCredentialsError):
        return SynePruneError(f"{doing}: no AWS credentials found; configure them (aws configure, AWS_PROFILE or an instance role)")
    if isinstance(error, NoRegionError):
        return SynePruneError(f"{doing}: no region; pass --region")
    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        return SynePruneError(f"{doing}: {info.get('Code', 'error')}: {info.get('Message', '')}".rstrip(": "))
    return SynePruneError(f"{doing}: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}")


def s3_join(bucket: str, *parts: str) -> str:
    return "s3://" + "/".join([bucket] + [p.strip("/") for p in parts if p and p.strip("/")])


# ---- uploads: content-addressed, once ----

def directory_digest(directory: Path) -> str:
    """sha256 over every file's relative path and content (order-independent of the file system)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


class Uploader:
    """Puts directories and files under ``S3_PREFIX/content/NAME-SHA256[:16]/`` unless already complete there."""

    COMPLETE = "_SYNE_PRUNE_COMPLETE"

    def __init__(self, s3, settings: SageMakerSettings) -> None:
        self.s3, self.settings = s3, settings
        self.bucket, self.root = settings.bucket_and_key
        self.uploaded: list[str] = []  # keys written by this process (tests and logs read it)

    def check_writable(self) -> None:
        key = f"{self.root}/.syne-prune-write-check".lstrip("/")
        try:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=b"ok")
            self.s3.delete_object(Bucket=self.bucket, Key=key)
        except Exception as error:  # noqa: BLE001
            raise aws_error(error, f"cannot write to {self.settings.s3_prefix} (needs s3:PutObject there)") from None

    def _prefix(self, name: str, digest: str) -> str:
        return f"{self.root}/content/{name}-{digest[:16]}".lstrip("/")

    def _complete(self, prefix: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.s3.head_object(Bucket=self.bucket, Key=f"{prefix}/{self.COMPLETE}")
            return True
        except ClientError:
            return False

    def directory(self, name: str, directory: Path) -> str:
        """Upload ``directory`` once; returns its S3 URI (a prefix: a channel)."""
        digest = directory_digest(directory)
        prefix = self._prefix(name, digest)
        if not self._complete(prefix):
            for path in sorted(p for p in directory.rglob("*") if p.is_file()):
                key = f"{prefix}/{path.relative_to(directory).as_posix()}"
                self.s3.upload_file(str(path), self.bucket, key)
                self.uploaded.append(key)
            self.s3.put_object(Bucket=self.bucket, Key=f"{prefix}/{self.COMPLETE}", Body=digest.encode())
        return f"s3://{self.bucket}/{prefix}/"

    def source(self) -> str:
        """This package, the entry script and requirements.txt as sourcedir.tar.gz; returns its S3 URI."""
        payload = source_tarball()
        digest = hashlib.sha256(payload).hexdigest()
        prefix = self._prefix("source", digest)
        key = f"{prefix}/sourcedir.tar.gz"
        if not self._complete(prefix):
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=payload)
            self.uploaded.append(key)
            self.s3.put_object(Bucket=self.bucket, Key=f"{prefix}/{self.COMPLETE}", Body=digest.encode())
        return f"s3://{self.bucket}/{key}"


def source_tarball() -> bytes:
    """Deterministic bytes (fixed mtimes, sorted), so the same code has the same sha256."""
    package = Path(__file__).resolve().parents[1]
    buffer = io.BytesIO()

    def add(name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        archive.addfile(info, io.BytesIO(data))

    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
        for path in sorted(package.rglob("*.py")):
            add(f"syne_prune/{path.relative_to(package).as_posix()}", path.read_bytes())
        add(ENTRY_SCRIPT, b"import sys\nfrom syne_prune.search.sagemaker_entry import main\nsys.exit(main())\n")
        add("requirements.txt", ("\n".join(REQUIREMENTS) + "\n").encode())
    return _gzip_without_timestamp(buffer.getvalue())


def _gzip_without_timestamp(data: bytes) -> bytes:
    return data[:4] + b"\0\0\0\0" + data[8:]  # bytes 4-7 of a gzip header are its mtime


# ---- the backend ----

@dataclass
class _Trial:
    config: dict[str, Any]
    jobs: list[str] = field(default_factory=list)
    logs: dict[str, list[str]] = field(default_factory=dict)  # job -> lines read so far
    tokens: dict[str, dict[str, str]] = field(default_factory=dict)  # job -> stream -> next token
    finished: dict[str, dict] = field(default_factory=dict)  # job -> last describe of a finished job
    paused: bool = False
    logs_complete: set[str] = field(default_factory=set)  # finished jobs whose every log line has been read
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # job -> stream -> events read


class SageMakerBackend(TrialBackend):
    """A Syne Tune trial backend that runs each trial as a SageMaker training job."""

    def __init__(self, settings: SageMakerSettings, entry: str, channels: dict[str, str], checkpointing: bool = False,
                 session=None, job_prefix: str = "syne-prune") -> None:
        """``entry``: ``trial`` (weight-sharing) or ``finetune`` (standard NAS); ``channels``: name -> local directory."""
        super().__init__(delete_checkpoints=False)
        import boto3
        from botocore.config import Config

        session = session or boto3.session.Session(region_name=settings.region)
        self.settings, self.entry, self.local_channels, self.checkpointing = settings, entry, channels, checkpointing
        retries = Config(retries={"max_attempts": 10, "mode": "adaptive"})  # throttled describe/log calls back off
        self.sm, self.s3, self.logs = (session.client(name, config=retries) for name in ("sagemaker", "s3", "logs"))
        self.uploader = Uploader(self.s3, settings)
        self.job_prefix = re.sub(r"[^a-zA-Z0-9-]", "-", job_prefix)[:48].strip("-") or "syne-prune"
        self.tuner_name = "search"
        self.channel_uris: dict[str, str] = {}
        self.source_uri: str | None = None
        self.trials: dict[int, _Trial] = {}
        self.created: list[dict] = []  # every create_training_job request (without credentials: there are none in it)

    # -- before the first job --
    def prepare(self) -> None:
        """Check the S3 prefix and upload source and channels (each once). Raises SynePruneError."""
        self.uploader.check_writable()
        try:
            self.source_uri = self.uploader.source()
            self.channel_uris = {name: self.uploader.directory(name, Path(path)) for name, path in self.local_channels.items()}
        except SynePruneError:
            raise
        except Exception as error:  # noqa: BLE001
            raise aws_error(error, f"uploading to {self.settings.s3_prefix} failed") from None
        try:
            self.image = self.settings.image()
        except SynePruneError:
            raise
        except Exception as error:  # noqa: BLE001 - e.g. no image for this version, region or instance family
            raise SynePruneError(f"no training image found for {self.settings.instance_type} in {self.settings.region} "
                                 f"({type(error).__name__}: {error}); pass --image-uri") from None

    def set_path(self, results_root: str | None = None, tuner_name: str | None = None):
        if tuner_name:
            self.tuner_name = tuner_name

    def entrypoint_path(self) -> Path:
        return Path(__file__).with_name("sagemaker_entry.py")

    def set_entrypoint(self, entry_point: str):
        raise SynePruneError("the SageMaker backend runs syne-prune's own entry point; it cannot be replaced")

    # -- naming --
    def job_name(self, trial_id: int, attempt: int) -> str:
        suffix = f"-{trial_id}-{attempt}"
        return f"{self.job_prefix}{suffix}"[:63]

    def checkpoint_uri(self, trial_id: int) -> str:
        """The trial's own checkpoint location (ends in '/', as SageMaker requires); every attempt of the trial uses it."""
        bucket, root = self.settings.bucket_and_key
        return s3_join(bucket, root, self.job_prefix, "checkpoints", self.tuner_name, str(trial_id)) + "/"

    def hyperparameters(self, config: dict[str, Any]) -> dict[str, str]:
        """The job's hyperparameters: the mask and constants, local channel directories as sm-channel:NAME."""
        by_path = {str(Path(p).resolve()): name for name, p in self.local_channels.items()}
        values = {}
        for key, value in config.items():
            text = str(value)
            values[key] = f"{CHANNEL_PREFIX}{by_path[text]}" if text in by_path else text
        if len(values) + 4 > MAX_HYPERPARAMETERS:
            values = pack_hyperparameters(values)
        values["syne_prune_entry"] = self.entry
        values["sagemaker_program"] = ENTRY_SCRIPT
        values["sagemaker_submit_directory"] = self.source_uri
        values["sagemaker_region"] = self.settings.region
        return values

    def job_request(self, trial_id: int, attempt: int, config: dict[str, Any]) -> dict[str, Any]:
        s = self.settings
        bucket, root = s.bucket_and_key
        mode = "FastFile" if s.fast_file else "File"
        request: dict[str, Any] = {
            "TrainingJobName": self.job_name(trial_id, attempt),
            "HyperParameters": self.hyperparameters(config),
            "AlgorithmSpecification": {"TrainingImage": self.image, "TrainingInputMode": "File", "EnableSageMakerMetricsTimeSeries": False},
            "RoleArn": s.role,
            "InputDataConfig": [
                {"ChannelName": name, "InputMode": mode,
                 "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}}}
                for name, uri in self.channel_uris.items()
            ],
            "OutputDataConfig": {"S3OutputPath": s3_join(bucket, root, self.job_prefix, "output") + "/"},
            "ResourceConfig": {"InstanceType": s.instance_type, "InstanceCount": s.instance_count, "VolumeSizeInGB": s.volume_size_gb},
            "StoppingCondition": {"MaxRuntimeInSeconds": s.max_run_s},
            "EnableManagedSpotTraining": s.spot,
            "Environment": {"SYNE_PRUNE_TRIAL_ID": str(trial_id)},
            "Tags": [{"Key": k, "Value": v} for k, v in sorted(s.tags.items())],
        }
        if s.spot:
            request["StoppingCondition"]["MaxWaitTimeInSeconds"] = s.max_wait_s or s.max_run_s
        if s.keep_alive_s:
            request["ResourceConfig"]["KeepAlivePeriodInSeconds"] = s.keep_alive_s
        if s.subnets:
            request["VpcConfig"] = {"Subnets": list(s.subnets), "SecurityGroupIds": list(s.security_group_ids)}
        if self.checkpointing or s.spot:
            request["CheckpointConfig"] = {"S3Uri": self.checkpoint_uri(trial_id), "LocalPath": CHECKPOINT_LOCAL_PATH}
        return request

    # -- Syne Tune's TrialBackend --
    def _schedule(self, trial_id: int, config: dict[str, Any]):
        if self.source_uri is None:
            self.prepare()
        trial = self.trials.get(trial_id) or _Trial(config=dict(config))
        trial.config = dict(config)  # a resumed trial may come with a new configuration
        request = self.job_request(trial_id, len(trial.jobs), config)
        if len(request["HyperParameters"]) > MAX_HYPERPARAMETERS:
            raise SynePruneError(f"a job of this search needs {len(request['HyperParameters'])} hyperparameters, SageMaker allows "
                                 f"{MAX_HYPERPARAMETERS}: use the small, medium or layer space, or launchers/sagemaker_search_in_one_job.py")
        if trial.jobs:
            self._wait_until_finished(trial.jobs[-1], trial)
        try:
            self.sm.create_training_job(**request)
        except Exception as error:  # noqa: BLE001
            raise aws_error(error, f"create_training_job {request['TrainingJobName']} failed") from None
        self.trials[trial_id] = trial  # only once its job exists
        trial.jobs.append(request["TrainingJobName"])
        trial.paused = False
        self.created.append(request)

    def _describe(self, job: str, trial: _Trial) -> dict:
        if job in trial.finished:
            return trial.finished[job]
        description = self.sm.describe_training_job(TrainingJobName=job)
        if description["TrainingJobStatus"] in ("Completed", "Failed", "Stopped"):
            trial.finished[job] = description
        return description

    def _wait_until_finished(self, job: str, trial: _Trial) -> None:
        """Block until ``job`` has ended: a paused trial's job must stop before its successor reads the checkpoint."""
        deadline = time.monotonic() + MAX_WAIT_FOR_STOP_S
        while self._describe(job, trial)["TrainingJobStatus"] not in ("Completed", "Failed", "Stopped"):
            if time.monotonic() > deadline:
                raise SynePruneError(f"training job {job} did not stop within {MAX_WAIT_FOR_STOP_S} s; stop it in the "
                                     "SageMaker console and resume the search")
            time.sleep(wait_between_polls())

    def _log_lines(self, job: str, trial: _Trial) -> list[str]:
        """The job's CloudWatch lines, read incrementally; a job whose lines are all read is not asked again."""
        lines = trial.logs.setdefault(job, [])
        if job in trial.logs_complete:
            return lines
        tokens = trial.tokens.setdefault(job, {})
        counts = trial.counts.setdefault(job, {})
        try:
            streams = self.logs.describe_log_streams(logGroupName=LOG_GROUP, logStreamNamePrefix=job + "/").get("logStreams", [])
        except self.logs.exceptions.ResourceNotFoundException:
            return lines
        for stream in sorted(s["logStreamName"] for s in streams):
            skip = 0  # events to drop after an expired token made us start again from the head
            while True:
                kwargs = {"logGroupName": LOG_GROUP, "logStreamName": stream, "startFromHead": True}
                if stream in tokens:
                    kwargs["nextToken"] = tokens[stream]
                try:
                    page = self.logs.get_log_events(**kwargs)
                except self.logs.exceptions.InvalidParameterException:
                    if stream not in tokens:
                        raise
                    del tokens[stream]  # CloudWatch tokens expire (after 24 h): read again, skip what we have
                    skip = counts.get(stream, 0)
                    continue
                events = page.get("events", [])
                dropped = min(skip, len(events))
                skip -= dropped
                lines.extend(event["message"] for event in events[dropped:])
                counts[stream] = counts.get(stream, 0) + len(events) - dropped
                if page.get("nextForwardToken") in (None, tokens.get(stream)):
                    break
                tokens[stream] = page["nextForwardToken"]
                if not events:
                    break
        return lines

    def _job_status(self, job: str, trial: _Trial) -> Status:
        """The job's status for the Tuner: an ended job counts as running until its last log line has been read."""
        description = self._describe(job, trial)
        status = _STATUS.get(description["TrainingJobStatus"], Status.in_progress)
        if status not in (Status.completed, Status.failed, Status.stopped) or job in trial.logs_complete:
            return status
        lines = self._log_lines(job, trial)
        ended = description.get("TrainingEndTime")
        waited = (datetime.now(ended.tzinfo) - ended).total_seconds() if isinstance(ended, datetime) else float("inf")
        if status == Status.stopped or any(line.startswith(JOB_END_MARKER) for line in lines) or waited > log_grace_s():
            trial.logs_complete.add(job)
            return status
        return Status.in_progress

    def _all_trial_results(self, trial_ids: list[int]) -> list[TrialResult]:
        results = []
        for trial_id in trial_ids:
            trial = self.trials.get(trial_id)
            if trial is None:  # its job was never created (the search is stopping on that error)
                continue
            for job in trial.jobs[:-1]:  # earlier jobs of a resumed trial: read their last lines, then never again
                self._job_status(job, trial)
            status = self._job_status(trial.jobs[-1], trial)
            description = self._describe(trial.jobs[-1], trial)
            if trial.paused and status in (Status.stopping, Status.stopped):
                status = Status.paused
            metrics = []
            for job in trial.jobs:  # a resumed trial's reports continue those of its earlier jobs
                metrics += retrieve(self._log_lines(job, trial))
            end = _naive(description.get("TrainingEndTime"))
            results.append(TrialResult(
                trial_id=trial_id, config=trial.config, creation_time=_naive(description.get("CreationTime")) or datetime.now(),
                status=status, metrics=metrics, training_end_time=end if status != Status.in_progress else None,
            ))
        return results

    def busy_trial_ids(self) -> list[tuple[int, str]]:
        busy = []
        for trial_id, trial in self.trials.items():
            status = self._job_status(trial.jobs[-1], trial)
            if status in (Status.in_progress, Status.stopping):
                busy.append((trial_id, status))
        return busy

    def _stop_job(self, trial_id: int) -> None:
        job = self.trials[trial_id].jobs[-1]
        try:
            self.sm.stop_training_job(TrainingJobName=job)
        except Exception as error:  # noqa: BLE001 - a job that already ended cannot be stopped
            from botocore.exceptions import ClientError

            if not isinstance(error, ClientError):
                raise

    def _stop_trial(self, trial_id: int, result: dict | None):
        self._stop_job(trial_id)

    def _pause_trial(self, trial_id: int, result: dict | None):
        self.trials[trial_id].paused = True
        self._stop_job(trial_id)

    def _resume_trial(self, trial_id: int):
        pass  # the next _schedule creates attempt k+1 with the same checkpoint_s3_uri

    def stdout(self, trial_id: int) -> list[str]:
        trial = self.trials[trial_id]
        return [line for job in trial.jobs for line in self._log_lines(job, trial)]

    def stderr(self, trial_id: int) -> list[str]:
        """CloudWatch mixes both streams; a failed job's FailureReason comes last."""
        trial = self.trials[trial_id]
        lines = self.stdout(trial_id)
        reason = self._describe(trial.jobs[-1], trial).get("FailureReason")
        return lines + ([f"SageMaker: {reason}"] if reason else [])

    def _s3_prefix_of(self, trial_id: int) -> tuple[str, str]:
        match = S3_URI.match(self.checkpoint_uri(trial_id))
        return match.group(1), match.group(2).strip("/") + "/"

    def copy_checkpoint(self, src_trial_id: int, tgt_trial_id: int):
        bucket, source = self._s3_prefix_of(src_trial_id)
        _, target = self._s3_prefix_of(tgt_trial_id)
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=source):
            for item in page.get("Contents", []):
                self.s3.copy_object(Bucket=bucket, Key=target + item["Key"][len(source):], CopySource={"Bucket": bucket, "Key": item["Key"]})

    def delete_checkpoint(self, trial_id: int):
        bucket, prefix = self._s3_prefix_of(trial_id)
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                self.s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})


def _naive(moment: datetime | None) -> datetime | None:
    """boto3's times are time-zone aware; Syne Tune's are naive local times."""
    return moment.astimezone().replace(tzinfo=None) if isinstance(moment, datetime) and moment.tzinfo else moment


def _seconds_from_environment(name: str, default: str, minimum: float) -> float:
    value = os.environ.get(name, default)
    try:
        return max(minimum, float(value))
    except ValueError:
        raise SynePruneError(f"{name} must be seconds, got '{value}'") from None


def wait_between_polls() -> float:
    """Seconds between the Tuner's status queries: jobs take minutes, describe calls are rate-limited."""
    return _seconds_from_environment("SYNE_PRUNE_SAGEMAKER_POLL_S", "10", 0.05)


def log_grace_s() -> float:
    """How long after a job ended its log lines may still be arriving in CloudWatch."""
    return _seconds_from_environment("SYNE_PRUNE_SAGEMAKER_LOG_GRACE_S", "120", 0.0)


def pack_hyperparameters(values: dict[str, str]) -> dict[str, str]:
    """All values as one JSON text, cut into pieces a SageMaker hyperparameter can hold (``unpack_hyperparameters``)."""
    text = json.dumps(values, separators=(",", ":"))
    step = MAX_HYPERPARAMETER_CHARS
    return {f"{PACKED_CONFIG}{index}": text[start:start + step] for index, start in enumerate(range(0, len(text), step))}


def unpack_hyperparameters(values: dict[str, str]) -> dict[str, str]:
    """The inverse of ``pack_hyperparameters``; other keys are kept as they are."""
    pieces = sorted((int(k[len(PACKED_CONFIG):]), v) for k, v in values.items() if k.startswith(PACKED_CONFIG))
    if not pieces:
        return values
    kept = {k: v for k, v in values.items() if not k.startswith(PACKED_CONFIG)}
    return {**json.loads("".join(v for _, v in pieces)), **kept}


CHANNEL_FLAGS = {"--model": "model", "--supernet": "supernet", "--data-dir": "data"}
MODEL_DIR = "/opt/ml/model"  # SageMaker uploads it as the job's model.tar.gz


def launch_cli_job(settings: SageMakerSettings, argv: list[str], job_name: str, session=None) -> dict[str, Any]:
    """One SageMaker job that runs ``syne-prune ARGV``: super-network training, or a whole search inside one job.

    The local directories after ``--model``, ``--supernet`` and ``--data-dir`` become input channels
    (uploaded once); ``--output X`` becomes ``/opt/ml/model/X``, which SageMaker uploads to
    ``S3_PREFIX/JOB/output/JOB/output/model.tar.gz`` when the job ends. Returns the job request."""
    import boto3

    from syne_prune.models.local_weights import resolve_model

    settings.check()
    args, channels = list(argv), {}
    for index, flag in enumerate(args[:-1]):
        value = args[index + 1]
        if flag in CHANNEL_FLAGS:
            local = Path(value) if Path(value).is_dir() else Path(str(resolve_model(value))) if flag == "--model" else None
            if local is not None and local.is_dir():
                channels[CHANNEL_FLAGS[flag]] = str(local)
                args[index + 1] = CHANNEL_PREFIX + CHANNEL_FLAGS[flag]
        elif flag == "--output":
            args[index + 1] = f"{MODEL_DIR}/{Path(value).name}"
    name = re.sub(r"[^a-zA-Z0-9-]", "-", f"{job_name}-{time.strftime('%Y%m%d-%H%M%S')}")[:63].strip("-")
    backend = SageMakerBackend(settings, "command", channels, session=session or boto3.session.Session(region_name=settings.region),
                               job_prefix=name)
    backend.prepare()
    request = backend.job_request(0, 0, {"syne_prune_argv": json.dumps(args)})
    request["TrainingJobName"] = name
    try:
        backend.sm.create_training_job(**request)
    except Exception as error:  # noqa: BLE001
        raise aws_error(error, f"create_training_job {name} failed") from None
    return request


def launcher_main(command: str, description: str, argv: list[str] | None = None) -> int:
    """The launchers' shared command line: SageMaker options, then the ``syne-prune COMMAND`` arguments."""
    import argparse
    import sys

    from syne_prune.cli import HelpFormatter, add_sagemaker_arguments, _sagemaker_settings

    class Formatter(argparse.RawDescriptionHelpFormatter, HelpFormatter):  # the launcher's docstring as written
        pass

    parser = argparse.ArgumentParser(description=description, formatter_class=Formatter)
    parser.add_argument("--job-name", default=f"syne-prune-{command}", help="prefix of the SageMaker job name")
    add_sagemaker_arguments(parser)
    known, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    known.backend = "sagemaker"
    try:
        request = launch_cli_job(_sagemaker_settings(known), [command, *rest], known.job_name)
    except SynePruneError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"started SageMaker job {request['TrainingJobName']} ({known.instance_type}); results: "
          f"{request['OutputDataConfig']['S3OutputPath']}{request['TrainingJobName']}/output/model.tar.gz")
    return 0
