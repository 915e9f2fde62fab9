"""A training job's log lines from CloudWatch Logs (where SageMaker sends a job's stdout and stderr), read
incrementally: each call returns every line so far and asks only for the new ones."""
from __future__ import annotations

from syne_prune.aws import THROTTLING, AwsError, call_aws

LOG_GROUP = "/aws/sagemaker/TrainingJobs"


class JobLogs:
    """The lines of each job (streams ``JOB/algo-N-...`` of ``LOG_GROUP``), read through ``client`` (boto3's ``logs``)."""

    def __init__(self, client) -> None:
        self.client = client
        self.lines: dict[str, list[str]] = {}  # job -> lines read so far
        self.tokens: dict[str, dict[str, str]] = {}  # job -> stream -> next token
        self.counts: dict[str, dict[str, int]] = {}  # job -> stream -> events read
        self.complete: set[str] = set()  # ended jobs whose every line has been read: never asked again

    def read(self, job: str) -> list[str]:
        """Every line of ``job`` so far (the list is kept and grows). No stream yet, or CloudWatch throttling the
        reads: the lines read so far (the next call goes on). Raises AwsError for any other failure."""
        lines = self.lines.setdefault(job, [])
        if job in self.complete:
            return lines
        try:
            streams = call_aws(self.client, "describe_log_streams", f"reading the log of training job {job}",
                               logGroupName=LOG_GROUP, logStreamNamePrefix=job + "/").get("logStreams", [])
            for stream in sorted(s["logStreamName"] for s in streams):
                self._read_stream(job, stream, lines)
        except AwsError as error:
            if error.code not in THROTTLING and error.code != "ResourceNotFoundException":
                raise
        return lines

    def _read_stream(self, job: str, stream: str, lines: list[str]) -> None:
        tokens, counts = self.tokens.setdefault(job, {}), self.counts.setdefault(job, {})
        skip = 0  # events to drop after an expired token made us start again from the head
        while True:
            kwargs = {"logGroupName": LOG_GROUP, "logStreamName": stream, "startFromHead": True}
            if stream in tokens:
                kwargs["nextToken"] = tokens[stream]
            try:
                page = call_aws(self.client, "get_log_events", f"reading the log of training job {job}", **kwargs)
            except AwsError as error:
                if error.code != "InvalidParameterException" or stream not in tokens:
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
