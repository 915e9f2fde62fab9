"""Where and how the SageMaker jobs run (``SageMakerSettings``), with their command-line options
(``add_sagemaker_arguments``, read back by ``sagemaker_settings``) and the offline checks."""
from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field

from syne_prune.aws.calls import S3_URI
from syne_prune.errors import SynePruneError

ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
DEFAULT_FRAMEWORK_VERSION = "2.5"  # the PyTorch training image (AWS Deep Learning Container) when --image-uri is not given


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
        import boto3  # optional (syne-prune[sagemaker])

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
            from sagemaker.core import image_uris  # optional (syne-prune[sagemaker])
        except ImportError:
            raise SynePruneError("give --image-uri, or pip install 'syne-prune[sagemaker]' to look up the PyTorch training image") from None
        return image_uris.retrieve("pytorch", region=self.region, version=self.framework_version, py_version="py311",
                                   instance_type=self.instance_type, image_scope="training")


def training_instance_types() -> list[str]:
    """Every training instance type SageMaker's API knows (from botocore's service model, offline)."""
    import boto3  # optional (syne-prune[sagemaker])

    client = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return list(client.meta.service_model.shape_for("TrainingInstanceType").enum)


# ---- on the command line (syne-prune search --backend sagemaker, launchers/) ----

SAGEMAKER_OPTIONS = ("role", "region", "s3_prefix", "image_uri", "spot", "max_wait", "keep_alive", "fast_file", "tags",
                     "subnets", "security_group_ids")


def sagemaker_settings(args: argparse.Namespace) -> SageMakerSettings | None:
    """SageMakerSettings from the command line (``add_sagemaker_arguments``), or None when no SageMaker
    option is given and ``args.backend`` is not ``sagemaker``. Raises SynePruneError for malformed --tags."""
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
    """The SageMaker options (an argument group of ``parser``), read back by ``sagemaker_settings``."""
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
