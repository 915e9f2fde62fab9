"""The Syne Tune trial backend that runs each trial as a SageMaker training job (see the package's docstring)."""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from syne_tune.backend.trial_backend import TrialBackend
from syne_tune.backend.trial_status import Status, TrialResult
from syne_tune.report import retrieve

from syne_prune.aws import (
    CHANNEL_PREFIX,
    CHECKPOINT_LOCAL_PATH,
    ENTRY_SCRIPT,
    JOB_END_MARKER,
    MAX_HYPERPARAMETERS,
    S3_URI,
    SageMakerSettings,
    Uploader,
    aws_error,
    log_grace_s,
    naive_time,
    pack_hyperparameters,
    s3_join,
    wait_between_polls,
)
from syne_prune.errors import SynePruneError

MAX_WAIT_FOR_STOP_S = 900  # a resumed trial's new job waits at most this long for its previous job to stop
LOG_GROUP = "/aws/sagemaker/TrainingJobs"

_STATUS = {"InProgress": Status.in_progress, "Completed": Status.completed, "Failed": Status.failed,
           "Stopping": Status.stopping, "Stopped": Status.stopped}


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
        import boto3  # optional (syne-prune[sagemaker])
        from botocore.config import Config  # optional, as boto3

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
        return Path(__file__).with_name("entry.py")

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
        """The job's hyperparameters: the mask and constants, local channel directories as sm-channel:NAME; each value
        JSON-encoded, as SageMaker's training toolkit JSON-decodes them (so the entry script gets these strings)."""
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
        return {key: json.dumps(value) for key, value in values.items()}

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
            end = naive_time(description.get("TrainingEndTime"))
            results.append(TrialResult(
                trial_id=trial_id, config=trial.config, creation_time=naive_time(description.get("CreationTime")) or datetime.now(),
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
            from botocore.exceptions import ClientError  # optional (syne-prune[sagemaker])

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
