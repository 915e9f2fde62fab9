"""The SageMaker options of ``syne-prune search`` (``--backend sagemaker``) and the launchers: the options and the
``SageMakerSettings`` read from them."""
from __future__ import annotations

import argparse

from syne_prune.errors import SynePruneError

SAGEMAKER_OPTIONS = ("role", "region", "s3_prefix", "image_uri", "spot", "max_wait", "keep_alive", "fast_file", "tags",
                     "subnets", "security_group_ids")


def _sagemaker_settings(args: argparse.Namespace):
    """SageMakerSettings from the command line, or None when no SageMaker option is given."""
    from syne_prune.search.sagemaker import SageMakerSettings

    if args.backend != "sagemaker" and not any(getattr(args, n) for n in SAGEMAKER_OPTIONS):
        return None
    tags = {}
    for item in filter(None, (args.tags or "").split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SynePruneError(f"--tags '{args.tags}' must be KEY=VALUE pairs separated by commas")
        tags[key.strip()] = value.strip()
    split = lambda text: tuple(filter(None, (text or "").split(",")))  # noqa: E731
    return SageMakerSettings(
        role=args.role or "", region=args.region or "", s3_prefix=args.s3_prefix or "", instance_type=args.instance_type,
        instance_count=args.instance_count, image_uri=args.image_uri, spot=args.spot, max_run_s=args.max_run,
        max_wait_s=args.max_wait, volume_size_gb=args.volume_size, keep_alive_s=args.keep_alive, fast_file=args.fast_file,
        tags=tags, subnets=split(args.subnets), security_group_ids=split(args.security_group_ids),
    )


def add_sagemaker_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("SageMaker (--backend sagemaker): one training job per trial")
    group.add_argument("--role", help="IAM role ARN the jobs run as (arn:aws:iam::ACCOUNT:role/NAME)")
    group.add_argument("--region", help="AWS region, e.g. us-east-1")
    group.add_argument("--s3-prefix", help="s3://bucket/prefix for source, super-network, checkpoints and outputs")
    group.add_argument("--instance-type", default="ml.m5.xlarge", help="training instance type")
    group.add_argument("--instance-count", type=int, default=1, help="instances per job (a trial runs on one)")
    group.add_argument("--image-uri", help="training image (default: the AWS PyTorch training image of the region)")
    group.add_argument("--spot", action="store_true", help="managed spot instances (cheaper, may be interrupted)")
    group.add_argument("--max-run", type=int, default=24 * 3600, help="seconds a job may run")
    group.add_argument("--max-wait", type=int, help="spot: seconds to wait for capacity plus run (>= --max-run)")
    group.add_argument("--volume-size", type=int, default=30, help="GB of disk per instance")
    group.add_argument("--keep-alive", type=int, default=0, help="warm pool: seconds an instance waits for the next job")
    group.add_argument("--fast-file", action="store_true", help="stream the super-network channel (FastFile mode)")
    group.add_argument("--tags", help="KEY=VALUE,... tags on every job")
    group.add_argument("--subnets", help="VPC subnet ids, comma-separated (with --security-group-ids)")
    group.add_argument("--security-group-ids", help="VPC security group ids, comma-separated")
