"""The Syne Tune trial backend that runs each trial as a SageMaker training job (see the package's docstring)."""
from __future__ import annotations

import json
import re
import sys
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
    MAX_HYPERPARAMETER_CHARS,
    MAX_HYPERPARAMETERS,
    S3_URI,
    THROTTLING,
    WAIT_AND_RETRY,
    AwsError,
    SageMakerSettings,
    Uploader,
    call_aws,
    capacity_wait_s,
    copy_prefix,
    delete_prefix,
    job_compute_environment,
    log_grace_s,
    naive_time,
    pack_hyperparameters,
    request_problems,
    s3_join,
    wait_between_polls,
)
from syne_prune.errors import SynePruneError
from syne_prune.search.backends.sagemaker.cloudwatch import JobLogs
from syne_prune.search.backends.sagemaker.preflight import check_before_upload

MAX_WAIT_FOR_STOP_S = 900  # a resumed trial's new job waits at most this long for its previous job to stop
ENDED = ("Completed", "Failed", "Stopped", "Deleting")  # a job in Deleting has ended (only an ended job can be deleted)
STATUS = {"InProgress": Status.in_progress, "Completed": Status.completed, "Failed": Status.failed, "Stopping": Status.stopping,
          "Stopped": Status.stopped, "Deleting": Status.failed}  # SageMaker's TrainingJobStatus -> Syne Tune's
GONE = ("ValidationException", "ResourceNotFound")  # StopTrainingJob's answer for a job that has ended (or never was)


@dataclass
class _Pending:
    """A job to create once ``after`` (the trial's previous job, stopping) has ended and AWS takes it."""

    request: dict[str, Any]
    after: str | None
    since: float  # time.monotonic() when the trial asked for it (or when another job of the search last ran)
    next_try: float = 0.0
    tries: int = 0


@dataclass
class _Trial:
    config: dict[str, Any]
    jobs: list[str] = field(default_factory=list)
    finished: dict[str, dict] = field(default_factory=dict)  # job -> last describe of an ended job
    described: dict[str, dict] = field(default_factory=dict)  # job -> last describe (used while AWS throttles)
    paused: bool = False
    pending: _Pending | None = None  # its next job, not created yet
    scheduled: datetime = field(default_factory=datetime.now)


class SageMakerBackend(TrialBackend):
    """A Syne Tune trial backend that runs each trial as a SageMaker training job. Every AWS call goes through
    ``call_aws`` (the request checked against botocore's model of the service, a failure as one line); a job AWS
    refuses for now (throttling, instance quota in use) is created at a later poll, as is a resumed trial's job
    whose predecessor is still stopping, so the Tuner never waits on AWS; ``stop_all`` stops every job still running
    when the Tuner ends (error, Ctrl-C, time limit) and keeps those it could not stop in ``unstopped``."""

    def __init__(self, settings: SageMakerSettings, entry: str, channels: dict[str, str | dict[str, Path]], checkpointing: bool = False,
                 session=None, job_prefix: str = "syne-prune", constants: dict[str, str] | None = None) -> None:
        """``entry``: ``trial`` (weight-sharing) or ``finetune`` (standard NAS); ``channels``: name -> local directory, or
        ``{key under the channel: local file}`` (a user's data files); ``constants``: hyperparameters whose value a job
        gets instead of the search's (e.g. ``task_files``: ``sm-channel:task``, where the job finds the data files)."""
        super().__init__(delete_checkpoints=False)
        import boto3  # optional (syne-prune[sagemaker])
        from botocore.config import Config  # optional, as boto3

        self.session = session or boto3.session.Session(region_name=settings.region)
        self.settings, self.entry, self.local_channels, self.checkpointing = settings, entry, channels, checkpointing
        self.constants = dict(constants or {})
        retries = Config(retries={"max_attempts": 10, "mode": "adaptive"})  # throttled calls back off before we see them
        self.sm, self.s3, self.logs = (self.session.client(name, config=retries) for name in ("sagemaker", "s3", "logs"))
        self.log_reader = JobLogs(self.logs)
        self.uploader = Uploader(self.s3, settings)
        self.job_prefix = re.sub(r"[^a-zA-Z0-9-]", "-", job_prefix)[:48].strip("-") or "syne-prune"
        self.tuner_name = "search"
        self.channel_uris: dict[str, str] = {}
        self.source_uri: str | None = None
        self.image: str | None = None
        self.trials: dict[int, _Trial] = {}
        self.created: list[dict] = []  # every create_training_job request AWS accepted (no credentials: there are none in it)
        self.asked: list[str] = []  # every job name a create was sent for (a Ctrl-C during the call may leave it created)
        self.stop_asked: set[str] = set()  # jobs AWS took a stop request for
        self.unstopped: dict[str, str] = {}  # job -> why it could not be stopped (it may still run, and bill)

    # -- before the first job --
    def prepare(self) -> None:
        """Pre-flight (credentials, bucket region, image, the request's form, bucket writable), then the uploads of
        source and channels (each once). Raises SynePruneError, one line; a failed pre-flight uploads nothing."""
        self.settings.check()
        self.image = check_before_upload(self.session, self.s3, self.settings)
        self._check_request_form()
        self.uploader.check_writable()
        self.source_uri = self.uploader.source(pinned=not self.settings.image_uri)
        self.channel_uris = {name: self.uploader.files(name, path) if isinstance(path, dict) else self.uploader.directory(name, Path(path))
                             for name, path in self.local_channels.items()}

    def _check_request_form(self) -> None:
        """A job request as the uploads will make it, read against SageMaker's model before anything is uploaded."""
        bucket, root = self.settings.bucket_and_key
        somewhere = s3_join(bucket, root, "content", "upload") + "/"
        self.source_uri, self.channel_uris = somewhere + "sourcedir.tar.gz", {name: somewhere for name in self.local_channels}
        try:
            problems = request_problems(self.sm, "create_training_job", self.job_request(0, 0, {}))
        finally:
            self.source_uri, self.channel_uris = None, {}
        if problems:
            raise SynePruneError(f"SageMaker would refuse this search's training jobs: {'; '.join(problems)}")

    def set_path(self, results_root: str | None = None, tuner_name: str | None = None):
        if tuner_name:
            self.tuner_name = tuner_name

    def entrypoint_path(self) -> Path:
        return Path(__file__).with_name("entry.py")

    def set_entrypoint(self, entry_point: str):
        raise SynePruneError("the SageMaker backend runs syne-prune's own entry point; it cannot be replaced")

    # -- naming --
    def job_name(self, trial_id: int, attempt: int) -> str:
        """``PREFIX-TRIAL-ATTEMPT``, at most 63 characters (SageMaker's limit; the prefix gives way)."""
        suffix = f"-{trial_id}-{attempt}"
        return self.job_prefix[:63 - len(suffix)].rstrip("-") + suffix

    def checkpoint_uri(self, trial_id: int) -> str:
        """The trial's own checkpoint location (ends in '/', as SageMaker requires); every attempt of the trial uses it."""
        bucket, root = self.settings.bucket_and_key
        return s3_join(bucket, root, self.job_prefix, "checkpoints", self.tuner_name, str(trial_id)) + "/"

    def hyperparameters(self, config: dict[str, Any]) -> dict[str, str]:
        """The job's hyperparameters: the mask and constants, local channel directories as sm-channel:NAME; each value
        JSON-encoded, as SageMaker's training toolkit JSON-decodes them (so the entry script gets these strings)."""
        by_path = {str(Path(p).resolve()): name for name, p in self.local_channels.items() if not isinstance(p, dict)}
        values = {}
        for key, value in config.items():
            text = str(value)
            values[key] = self.constants.get(key, f"{CHANNEL_PREFIX}{by_path[text]}" if text in by_path else text)
        if len(values) + 4 > MAX_HYPERPARAMETERS or any(len(json.dumps(v)) > MAX_HYPERPARAMETER_CHARS for v in values.values()):
            values = pack_hyperparameters(values)  # too many values, or one too long (a user's task with many class names)
        values["syne_prune_entry"] = self.entry
        values["sagemaker_program"] = ENTRY_SCRIPT
        values["sagemaker_submit_directory"] = self.source_uri
        values["sagemaker_region"] = self.settings.region
        return {key: json.dumps(value) for key, value in values.items()}

    def job_request(self, trial_id: int, attempt: int, config: dict[str, Any]) -> dict[str, Any]:
        """The CreateTrainingJob request of the trial's ``attempt``-th job. Optional members appear only with a value:
        no InputDataConfig without a channel, no Tags without a tag (AWS refuses an empty channel list)."""
        s = self.settings
        bucket, root = s.bucket_and_key
        request: dict[str, Any] = {
            "TrainingJobName": self.job_name(trial_id, attempt),
            "HyperParameters": self.hyperparameters(config),
            "AlgorithmSpecification": {"TrainingImage": self.image, "TrainingInputMode": "File", "EnableSageMakerMetricsTimeSeries": False},
            "RoleArn": s.role,
            "OutputDataConfig": {"S3OutputPath": s3_join(bucket, root, self.job_prefix, "output") + "/"},
            "ResourceConfig": {"InstanceType": s.instance_type, "InstanceCount": s.instance_count, "VolumeSizeInGB": s.volume_size_gb},
            "StoppingCondition": {"MaxRuntimeInSeconds": s.max_run_s},
            "EnableManagedSpotTraining": s.spot,
            "Environment": {"SYNE_PRUNE_TRIAL_ID": str(trial_id), **job_compute_environment()},
        }
        if self.channel_uris:  # --fast-file streams the super-network; other channels are copied
            request["InputDataConfig"] = [
                {"ChannelName": name, "InputMode": "FastFile" if s.fast_file and name == "supernet" else "File",
                 "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}}}
                for name, uri in self.channel_uris.items()
            ]
        if s.tags:
            request["Tags"] = [{"Key": k, "Value": v} for k, v in sorted(s.tags.items())]
        if s.spot:
            request["StoppingCondition"]["MaxWaitTimeInSeconds"] = s.max_wait_s or s.max_run_s
        if s.keep_alive_s:
            request["ResourceConfig"]["KeepAlivePeriodInSeconds"] = s.keep_alive_s
        if s.subnets:
            request["VpcConfig"] = {"Subnets": list(s.subnets), "SecurityGroupIds": list(s.security_group_ids)}
        if self.checkpointing or s.spot:
            request["CheckpointConfig"] = {"S3Uri": self.checkpoint_uri(trial_id), "LocalPath": CHECKPOINT_LOCAL_PATH}
        return request

    # -- creating jobs --
    def _schedule(self, trial_id: int, config: dict[str, Any]):
        if self.source_uri is None:
            self.prepare()
        trial = self.trials.get(trial_id) or _Trial(config=dict(config))
        trial.config = dict(config)  # a resumed trial may come with a new configuration
        request = self.job_request(trial_id, len(trial.jobs), config)
        if len(request["HyperParameters"]) > MAX_HYPERPARAMETERS:
            raise SynePruneError(f"a job of this search needs {len(request['HyperParameters'])} hyperparameters, SageMaker allows "
                                 f"{MAX_HYPERPARAMETERS}: use the small, medium or layer space, or launchers/sagemaker_search_in_one_job.py")
        trial.paused = False
        trial.pending = _Pending(request, after=trial.jobs[-1] if trial.jobs else None, since=time.monotonic())
        self.trials[trial_id] = trial
        self._create_pending(trial)

    def _create_pending(self, trial: _Trial) -> None:
        """Create the trial's pending job if its predecessor has ended and AWS takes it; otherwise leave it for a
        later poll. Raises SynePruneError when the predecessor does not stop within MAX_WAIT_FOR_STOP_S, when AWS
        refuses it for good, or still refuses it for now after ``capacity_wait_s`` with no other job running."""
        pending, now = trial.pending, time.monotonic()
        if pending.after is not None:
            if self._describe(pending.after, trial)["TrainingJobStatus"] not in ENDED:
                if now - pending.since > MAX_WAIT_FOR_STOP_S:
                    trial.pending = None
                    raise SynePruneError(f"training job {pending.after} did not stop within {MAX_WAIT_FOR_STOP_S} s; stop it in the "
                                         "SageMaker console and resume the search")
                return
            pending.after, pending.since = None, now
        if now < pending.next_try:
            return
        name = pending.request["TrainingJobName"]
        self.asked.append(name)
        try:
            call_aws(self.sm, "create_training_job", f"create_training_job {name} failed", **pending.request)
        except AwsError as error:
            if error.code not in WAIT_AND_RETRY:
                trial.pending = None
                raise
            self._wait_for_capacity(trial, error, now)
            return
        trial.pending = None
        trial.jobs.append(name)
        self.created.append(pending.request)

    def _wait_for_capacity(self, trial: _Trial, error: AwsError, now: float) -> None:
        pending = trial.pending
        if any(t.jobs and t.jobs[-1] not in t.finished and t.jobs[-1] not in self.stop_asked for t in self.trials.values() if t is not trial):
            pending.since = now  # another job of the search runs: when it ends, its instance is free again
        if now - pending.since > capacity_wait_s():
            trial.pending = None
            raise SynePruneError(f"{error} (still refused after {now - pending.since:.3g} s with no other job of the search "
                                 "running; raise the account's SageMaker quota for this instance type or use fewer --n-workers)")
        pending.tries += 1
        delay = min(60.0, wait_between_polls() * 2 ** pending.tries)
        pending.next_try = now + delay
        print(f"[syne-prune] {error}; trying again in {delay:.3g} s", file=sys.stderr, flush=True)

    # -- what the jobs do --
    def _describe(self, job: str, trial: _Trial) -> dict:
        """The job's DescribeTrainingJob answer (an ended job's is kept and not asked again). While AWS throttles
        the calls: the last answer (a job never described counts as InProgress)."""
        if job in trial.finished:
            return trial.finished[job]
        try:
            description = call_aws(self.sm, "describe_training_job", f"describe_training_job {job} failed", TrainingJobName=job)
        except AwsError as error:
            if error.code not in THROTTLING:
                raise
            return trial.described.get(job, {"TrainingJobName": job, "TrainingJobStatus": "InProgress"})
        trial.described[job] = description
        if description["TrainingJobStatus"] in ENDED:
            trial.finished[job] = description
        return description

    def _job_status(self, job: str, trial: _Trial) -> Status:
        """The job's status for the Tuner: an ended job counts as running until its last log line has been read."""
        description = self._describe(job, trial)
        status = STATUS.get(description["TrainingJobStatus"], Status.in_progress)
        if status not in (Status.completed, Status.failed, Status.stopped) or job in self.log_reader.complete:
            return status
        lines = self.log_reader.read(job)
        ended = description.get("TrainingEndTime")
        waited = (datetime.now(ended.tzinfo) - ended).total_seconds() if isinstance(ended, datetime) else float("inf")
        if status == Status.stopped or any(line.startswith(JOB_END_MARKER) for line in lines) or waited > log_grace_s():
            self.log_reader.complete.add(job)
            return status
        return Status.in_progress

    def _trial_result(self, trial_id: int, trial: _Trial) -> TrialResult:
        if trial.pending is not None:
            self._create_pending(trial)
        for job in trial.jobs[:-1]:  # earlier jobs of a resumed trial: read their last lines, then never again
            self._job_status(job, trial)
        if trial.pending is not None or not trial.jobs:  # its next job is waiting to be created
            status, description = Status.in_progress, trial.described.get(trial.jobs[-1], {}) if trial.jobs else {}
        else:
            status = self._job_status(trial.jobs[-1], trial)
            description = self._describe(trial.jobs[-1], trial)
            if trial.paused and status in (Status.stopping, Status.stopped):
                status = Status.paused
        metrics = []
        for job in trial.jobs:  # a resumed trial's reports continue those of its earlier jobs
            metrics += retrieve(self.log_reader.read(job))
        end = naive_time(description.get("TrainingEndTime"))
        return TrialResult(trial_id=trial_id, config=trial.config, creation_time=naive_time(description.get("CreationTime")) or trial.scheduled,
                           status=status, metrics=metrics, training_end_time=end if status != Status.in_progress else None)

    def _all_trial_results(self, trial_ids: list[int]) -> list[TrialResult]:
        return [self._trial_result(trial_id, self.trials[trial_id]) for trial_id in trial_ids
                if trial_id in self.trials]  # a trial whose job was never created is not there (the search is stopping on that error)

    def busy_trial_ids(self) -> list[tuple[int, str]]:
        busy = []
        for trial_id, trial in self.trials.items():
            if trial.pending is not None:
                self._create_pending(trial)
            if trial.pending is not None:
                busy.append((trial_id, Status.in_progress))
                continue
            status = self._job_status(trial.jobs[-1], trial)
            if status in (Status.in_progress, Status.stopping):
                busy.append((trial_id, status))
        return busy

    # -- stopping --
    def _stop_job(self, job: str) -> str | None:
        """Ask AWS to stop ``job``; returns None when it took the request or the job has ended, else AWS's refusal."""
        if job in self.stop_asked:
            return None
        try:
            call_aws(self.sm, "stop_training_job", f"stop_training_job {job} failed", TrainingJobName=job)
        except AwsError as error:
            if error.code not in GONE:
                return str(error)
        self.stop_asked.add(job)
        self.unstopped.pop(job, None)
        return None

    def _stop_or_raise(self, trial_id: int) -> None:
        trial = self.trials[trial_id]
        trial.pending = None  # a job waiting to be created is not created
        if trial.jobs and (refusal := self._stop_job(trial.jobs[-1])):
            self.unstopped[trial.jobs[-1]] = refusal
            raise SynePruneError(f"{refusal}: the job keeps running; allow sagemaker:StopTrainingJob for these credentials")

    def _stop_trial(self, trial_id: int, result: dict | None):
        self._stop_or_raise(trial_id)

    def _pause_trial(self, trial_id: int, result: dict | None):
        self.trials[trial_id].paused = True
        self._stop_or_raise(trial_id)

    def _resume_trial(self, trial_id: int):
        pass  # the next _schedule asks for attempt k+1 with the same checkpoint_s3_uri, created once attempt k has stopped

    def stop_all(self) -> None:
        """Stop every job this backend sent a create for that may still run, and create no pending job. Syne Tune
        calls it when the Tuner ends, after an error, a Ctrl-C or the time limit too. Never raises: a job it could
        not stop is in ``unstopped`` (job -> AWS's answer)."""
        for trial in self.trials.values():
            trial.pending = None
        ended = {job for trial in self.trials.values() for job in trial.finished}
        for job in dict.fromkeys(self.asked):
            if job in ended or job in self.stop_asked:
                continue
            try:
                refusal = self._stop_job(job)
            except Exception as error:  # noqa: BLE001 - clean-up goes on to the next job whatever happens
                refusal = f"stop_training_job {job} failed: {type(error).__name__}: {error}"
            if refusal:
                self.unstopped[job] = refusal

    # -- what the Tuner and the search read --
    def stdout(self, trial_id: int) -> list[str]:
        return [line for job in self.trials[trial_id].jobs for line in self.log_reader.read(job)]

    def stderr(self, trial_id: int) -> list[str]:
        """CloudWatch mixes both streams; a failed job's FailureReason comes last."""
        trial = self.trials[trial_id]
        lines = self.stdout(trial_id)
        description = self._describe(trial.jobs[-1], trial) if trial.jobs else {}
        reason = description.get("FailureReason")
        if description.get("TrainingJobStatus") == "Deleting":
            reason = f"training job {trial.jobs[-1]} is being deleted (someone deleted it; its results are gone)"
        return lines + ([f"SageMaker: {reason}"] if reason else [])

    def _s3_prefix_of(self, trial_id: int) -> tuple[str, str]:
        match = S3_URI.match(self.checkpoint_uri(trial_id))
        return match.group(1), match.group(2).strip("/") + "/"

    def copy_checkpoint(self, src_trial_id: int, tgt_trial_id: int):
        bucket, source = self._s3_prefix_of(src_trial_id)
        copy_prefix(self.s3, bucket, source, self._s3_prefix_of(tgt_trial_id)[1])

    def delete_checkpoint(self, trial_id: int):
        delete_prefix(self.s3, *self._s3_prefix_of(trial_id))
