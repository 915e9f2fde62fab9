"""Every request the SageMaker backend and the launchers send (SageMaker, S3, CloudWatch Logs, STS), read against
botocore's own service model as AWS reads it, offline, in every mode of a search.

botocore checks a request's required members, types and minimum lengths before it leaves the machine — also under
moto, whose mock sits behind that check — but not maximum lengths and values, enums or patterns: AWS checks those,
and moto does not. ``aws_refusals`` checks all of them with botocore's ``ParamValidator`` and the model's own
limits (independently of syne-prune's ``request_problems``), for every call a test makes (``checked_calls``).

``moto_jobs`` (``sagemaker_fixtures``) gives moto's training jobs a life (``InProgress`` until stopped; moto has no
StopTrainingJob) and lets a test make AWS refuse creates, stops or describes with AWS's own error codes.
"""
from __future__ import annotations

import json
import time

import pytest
import regex
from botocore.client import BaseClient
from botocore.validate import ParamValidator
from sagemaker_fixtures import BUCKET, REGION, ROLE, SM_ARGS, launcher, put_lines, sagemaker_settings

from syne_prune.search.backends import sagemaker as sm


def aws_refusals(service_model, operation_name: str, params: dict) -> list[str]:
    """What AWS would refuse in ``params`` of ``operation_name``: botocore's ParamValidator (required members, types,
    minimums), then the model's maximum lengths, sizes and values, enums and patterns (whole-value matches, as AWS
    applies them), and any empty list (an optional member is left out rather than sent empty)."""
    shape = service_model.operation_model(operation_name).input_shape
    report = ParamValidator().validate(params, shape)
    problems = report.generate_report().splitlines() if report.has_errors() else []

    def walk(shape, value, path: str) -> None:
        limit = shape.metadata.get("max")
        if shape.type_name == "structure" and isinstance(value, dict):
            for name, item in value.items():
                if name in shape.members:
                    walk(shape.members[name], item, f"{path}.{name}")
        elif shape.type_name == "list" and isinstance(value, list):
            if not value or (limit is not None and len(value) > limit):
                problems.append(f"{path}: a list of {len(value)} (at most {limit}, never empty)")
            for index, item in enumerate(value):
                walk(shape.member, item, f"{path}[{index}]")
        elif shape.type_name == "map" and isinstance(value, dict):
            if limit is not None and len(value) > limit:
                problems.append(f"{path}: {len(value)} entries (at most {limit})")
            for key, item in value.items():
                walk(shape.key, key, f"{path} key")
                walk(shape.value, item, f"{path}.{key}")
        elif shape.type_name == "string" and isinstance(value, str):
            if limit is not None and len(value) > limit:
                problems.append(f"{path}: {len(value)} characters (at most {limit})")
            if shape.enum and value not in shape.enum:
                problems.append(f"{path}: {value!r} is none of the model's values")
            if shape.metadata.get("pattern") and not regex.fullmatch(shape.metadata["pattern"], value):
                problems.append(f"{path}: {value[:60]!r} does not match {shape.metadata['pattern']}")
        elif shape.type_name in ("integer", "long") and isinstance(value, int) and limit is not None and value > limit:
            problems.append(f"{path}: {value} (at most {limit})")

    walk(shape, params, operation_name)
    return problems


@pytest.fixture
def checked_calls(monkeypatch):
    """Every AWS call made while the test runs, as ``(service, operation, params, refusals)``: each is read against
    its service's model (``aws_refusals``) before it is sent."""
    calls = []
    send = BaseClient._make_api_call

    def checked(client, operation_name, api_params):
        model = client.meta.service_model
        calls.append((model.service_name, operation_name, api_params, aws_refusals(model, operation_name, api_params)))
        return send(client, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", checked)
    return calls


def refused(calls) -> list:
    return [(service, operation, refusals) for service, operation, _, refusals in calls if refusals]


def _metric(error: float) -> str:
    return "[tune-metric]: " + json.dumps({"error": error, "st_worker_timestamp": time.time(), "st_worker_time": 1.0, "st_worker_iter": 0})


def test_the_model_check_refuses_what_aws_refuses_and_passes_a_valid_request(aws):
    model = aws.client("sagemaker").meta.service_model
    valid = {"TrainingJobName": "sp-a-0-0", "RoleArn": ROLE, "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"},
             "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/o/"}, "StoppingCondition": {"MaxRuntimeInSeconds": 60},
             "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30}}
    assert aws_refusals(model, "CreateTrainingJob", valid) == []
    bad = {**valid, "TrainingJobName": "sp_" + "a" * 70, "InputDataConfig": [], "Tags": [{"Key": "team#1", "Value": "x" * 257}],
           "ResourceConfig": {**valid["ResourceConfig"], "KeepAlivePeriodInSeconds": 99999, "InstanceType": "ml.m5.hyperlarge"}}
    problems = aws_refusals(model, "CreateTrainingJob", bad)
    assert problems == [
        "Invalid length for parameter InputDataConfig, value: 0, valid min length: 1",  # botocore's own check
        "CreateTrainingJob.TrainingJobName: 73 characters (at most 63)",
        "CreateTrainingJob.TrainingJobName: 'sp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' does not match [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}",
        "CreateTrainingJob.ResourceConfig.InstanceType: 'ml.m5.hyperlarge' is none of the model's values",
        "CreateTrainingJob.ResourceConfig.KeepAlivePeriodInSeconds: 99999 (at most 21600)",
        "CreateTrainingJob.InputDataConfig: a list of 0 (at most 20, never empty)",
        "CreateTrainingJob.Tags[0].Key: 'team#1' does not match ([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)",
        "CreateTrainingJob.Tags[0].Value: 257 characters (at most 256)",
    ]


def test_moto_calls_pass_botocore_s_own_check_but_not_aws_s_limits(aws):
    """What a moto test proves: botocore refuses an empty channel list before moto sees it, but a request over AWS's
    maximums (here a keep-alive of 99999 s) is accepted by moto, so only the model check catches it."""
    from botocore.exceptions import ParamValidationError

    client = aws.client("sagemaker")
    request = {"TrainingJobName": "sp-b-0-0", "RoleArn": ROLE, "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"},
               "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/o/"}, "StoppingCondition": {"MaxRuntimeInSeconds": 60},
               "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30, "KeepAlivePeriodInSeconds": 99999}}
    with pytest.raises(ParamValidationError, match="valid min length: 1"):
        client.create_training_job(**request, InputDataConfig=[])
    client.create_training_job(**request)  # moto takes it; AWS would not
    assert aws_refusals(client.meta.service_model, "CreateTrainingJob", request) == [
        "CreateTrainingJob.ResourceConfig.KeepAlivePeriodInSeconds: 99999 (at most 21600)"]


MODES = {  # name -> (settings changes, entry, channels, checkpointing)
    "weight-sharing, one job per trial": ({}, "trial", ("supernet",), False),
    "standard NAS, hub model, no data dir": ({}, "finetune", (), True),
    "spot": (dict(spot=True, max_run_s=3600, max_wait_s=7200), "trial", ("supernet",), False),
    "warm pool": (dict(keep_alive_s=1800), "trial", ("supernet",), False),
    "VPC": (dict(subnets=("subnet-0abc1234", "subnet-0def5678"), security_group_ids=("sg-0abc1234",)), "finetune", ("supernet", "data"), True),
    "tags": (dict(tags={"team": "nlp", "cost-center": "research/pruning", "owner": "a.b@example.com"}), "trial", ("supernet",), False),
    "FastFile": (dict(fast_file=True), "trial", ("supernet", "data"), False),
}


@pytest.mark.parametrize("mode", list(MODES))
def test_every_request_of_a_search_passes_aws_s_model(mode, moto_jobs, aws, checked_calls, supernets, glue_dir):
    changes, entry, channel_names, checkpointing = MODES[mode]
    folders = {"supernet": str(supernets["bert"]), "data": str(glue_dir)}
    backend = sm.SageMakerBackend(sagemaker_settings(**changes), entry, {name: folders[name] for name in channel_names}, checkpointing=checkpointing,
                                  session=aws, job_prefix=f"sp-{mode.split(',')[0].replace(' ', '-')}")
    config = {"num_layers": 1, "num_heads_0": 2, **({"supernet": folders["supernet"]} if channel_names else {"model": "org/hub-model"})}
    for trial_id in range(3):
        backend.start_trial({**config, "num_layers": trial_id + 1})
    jobs = [request["TrainingJobName"] for request in backend.created]
    put_lines(aws, f"{jobs[0]}/algo-1-1", [_metric(0.25), sm.JOB_END_MARKER])
    backend.fetch_status_results([0, 1, 2])
    backend.stop_trial(0)
    backend.pause_trial(1)
    backend.resume_trial(1)  # its job has stopped: the next one is created at once
    backend.copy_checkpoint(1, 2)
    backend.delete_checkpoint(2)
    backend.stop_all()
    assert refused(checked_calls) == []
    operations = {(service, operation) for service, operation, _, _ in checked_calls}
    assert {("sts", "GetCallerIdentity"), ("s3", "GetBucketLocation"), ("s3", "PutObject"), ("s3", "DeleteObject"), ("s3", "HeadObject"),
            ("sagemaker", "CreateTrainingJob"), ("sagemaker", "DescribeTrainingJob"), ("sagemaker", "StopTrainingJob"),
            ("logs", "DescribeLogStreams"), ("logs", "GetLogEvents"), ("s3", "ListObjectsV2")} <= operations
    assert len(backend.created) == 4 and backend.unstopped == {}
    assert moto_jobs.stopped[:2] == jobs[:2]  # the stopped and the paused trial's jobs, then at the end every job still running
    assert sorted(moto_jobs.stopped[2:]) == sorted([jobs[2], backend.created[3]["TrainingJobName"]])
    request = backend.created[0]
    modes_of = {c["ChannelName"]: c["InputMode"] for c in request.get("InputDataConfig", [])}
    assert set(modes_of) == set(channel_names)  # no channel: no InputDataConfig at all (AWS refuses an empty list)
    assert modes_of == {name: "FastFile" if mode == "FastFile" and name == "supernet" else "File" for name in channel_names}
    assert request.get("Tags") == ([{"Key": k, "Value": v} for k, v in sorted(changes["tags"].items())] if "tags" in changes else None)


def test_the_launchers_send_valid_requests_also_without_any_channel(aws, checked_calls, supernets, capsys):
    """Super-network training from a hub model with GLUE from the hub: nothing to upload but the source, so the job
    has no input channel, and its request leaves InputDataConfig out."""
    argv = [*SM_ARGS, "--tags", "team=nlp", "--model", "org/some-hub-model", "--task", "rte", "--epochs", "1", "--output", "net"]
    assert launcher("sagemaker_train_supernet").launcher_main("train-supernet", "", argv) == 0, capsys.readouterr().err
    argv = [*SM_ARGS, "--fast-file", "--supernet", str(supernets["bert"]), "--max-trials", "5", "--output", "search"]
    assert launcher("sagemaker_search_in_one_job").launcher_main("search", "", argv) == 0, capsys.readouterr().err
    assert refused(checked_calls) == []
    creates = [params for service, operation, params, _ in checked_calls if operation == "CreateTrainingJob"]
    assert len(creates) == 2 and "InputDataConfig" not in creates[0] and creates[0]["Tags"] == [{"Key": "team", "Value": "nlp"}]
    assert creates[1]["InputDataConfig"][0]["ChannelName"] == "supernet" and creates[1]["InputDataConfig"][0]["InputMode"] == "FastFile"
    assert json.loads(json.loads(creates[0]["HyperParameters"]["syne_prune_argv"]))[:3] == ["train-supernet", "--model", "org/some-hub-model"]


def test_a_job_name_never_outgrows_sagemaker_s_limit(aws):
    backend = sm.SageMakerBackend(sagemaker_settings(), "trial", {}, session=aws, job_prefix="p" * 60)
    model = aws.client("sagemaker").meta.service_model
    for trial_id, attempt in ((0, 0), (123456, 7), (10**9, 12)):
        name = backend.job_name(trial_id, attempt)
        assert name.endswith(f"-{trial_id}-{attempt}") and len(name) <= 63
        assert aws_refusals(model, "StopTrainingJob", {"TrainingJobName": name}) == []
    assert REGION == backend.settings.region
