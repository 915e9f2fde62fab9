"""What is checked online before anything is uploaded or any job created: credentials, the bucket's region, the
training image and the job software (the offline checks are ``SageMakerSettings.check``). Each failure is one
SynePruneError line naming the fix (the command line exits with 2)."""
from __future__ import annotations

from syne_prune.aws import SageMakerSettings, call_aws, check_framework, job_requirements, one_line
from syne_prune.errors import SynePruneError

LOCATION_ALIASES = {"": "us-east-1", "EU": "eu-west-1"}  # GetBucketLocation's names of the oldest regions


def check_credentials(session, settings: SageMakerSettings) -> None:
    """AWS credentials found and accepted (``sts:GetCallerIdentity``, which every identity may call)."""
    if session.get_credentials() is None:
        raise SynePruneError("no AWS credentials found; configure them (aws configure, AWS_PROFILE or an instance role)")
    call_aws(session.client("sts", region_name=settings.region), "get_caller_identity", "checking the AWS credentials")


def check_bucket_region(s3, settings: SageMakerSettings) -> None:
    """The bucket of ``--s3-prefix`` exists, may be read by these credentials and is in ``--region``: a training job
    reads its S3 input in its own region, so a bucket elsewhere would fail every job."""
    bucket, _ = settings.bucket_and_key
    answer = call_aws(s3, "get_bucket_location", f"cannot write to {settings.s3_prefix} (reading the bucket's region needs "
                      "s3:GetBucketLocation)", Bucket=bucket)
    location = answer.get("LocationConstraint") or ""
    location = LOCATION_ALIASES.get(location, location)
    if location != settings.region:
        raise SynePruneError(f"bucket '{bucket}' of --s3-prefix is in {location}, but --region is {settings.region}: a training "
                             f"job reads S3 in its own region; pass --region {location} or a bucket in {settings.region}")


def resolve_image(settings: SageMakerSettings) -> str:
    """The job's training image: ``--image-uri`` as it is, or AWS's PyTorch training image of the region and
    instance type, whose torch syne-prune and the pinned packages can use (``check_framework``)."""
    if settings.image_uri:
        return settings.image_uri
    check_framework(settings.framework_version)
    try:
        return settings.image()
    except SynePruneError:
        raise
    except Exception as error:  # noqa: BLE001 - e.g. no image for this version, region or instance family
        raise SynePruneError(f"no training image found for {settings.instance_type} in {settings.region} "
                             f"({type(error).__name__}: {one_line(error)}); pass --image-uri") from None


def check_before_upload(session, s3, settings: SageMakerSettings) -> str:
    """Credentials, the bucket's region, (without ``--image-uri``) the versions to pin and the image, in this order;
    returns the image URI. Raises SynePruneError (one line) for the first that fails."""
    check_credentials(session, settings)
    check_bucket_region(s3, settings)
    if not settings.image_uri:
        job_requirements()  # a version that cannot be pinned fails here, not halfway through the uploads
    return resolve_image(settings)
