"""Uploads of the SageMaker backend, content-addressed and once: the source (``sourcedir.tar.gz``) and every
input channel (a local directory, or named files such as a user's data files) go to ``S3_PREFIX/content/NAME-SHA``.
Every call goes through ``call_aws`` (checked against S3's model, failures as one line)."""
from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

from syne_prune.aws.calls import AwsError, aws_error, call_aws
from syne_prune.aws.environment import job_requirements
from syne_prune.aws.jobs import ENTRY_SCRIPT
from syne_prune.aws.settings import SageMakerSettings


def directory_files(directory: Path) -> dict[str, Path]:
    """``{relative path: file}`` of every file under ``directory`` (POSIX separators)."""
    return {path.relative_to(directory).as_posix(): path for path in sorted(p for p in directory.rglob("*") if p.is_file())}


def directory_digest(directory: Path) -> str:
    """sha256 over every file's relative path and content (order-independent of the file system)."""
    return files_digest(directory_files(directory))


def files_digest(files: dict[str, Path]) -> str:
    """sha256 over every ``name`` and its file's content, in order of name."""
    digest = hashlib.sha256()
    for name, path in sorted(files.items()):
        digest.update(name.encode() + b"\0")
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
        """Write and delete one small object under the prefix (nothing stays). Raises AwsError, one line."""
        key = f"{self.root}/.syne-prune-write-check".lstrip("/")
        doing = f"cannot write to {self.settings.s3_prefix} (needs s3:PutObject and s3:DeleteObject there)"
        call_aws(self.s3, "put_object", doing, Bucket=self.bucket, Key=key, Body=b"ok")
        call_aws(self.s3, "delete_object", doing, Bucket=self.bucket, Key=key)

    def _prefix(self, name: str, digest: str) -> str:
        return f"{self.root}/content/{name}-{digest[:16]}".lstrip("/")

    def _complete(self, prefix: str) -> bool:
        try:
            call_aws(self.s3, "head_object", f"reading s3://{self.bucket}/{prefix}", Bucket=self.bucket, Key=f"{prefix}/{self.COMPLETE}")
            return True
        except AwsError as error:
            if error.code in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def directory(self, name: str, directory: Path) -> str:
        """Upload ``directory`` once; returns its S3 URI (a prefix: a channel)."""
        return self.files(name, directory_files(directory))

    def files(self, name: str, files: dict[str, Path]) -> str:
        """Upload ``files`` (``{key under the channel: local file}``) once, as one channel; returns its S3 URI (a prefix)."""
        digest = files_digest(files)
        prefix = self._prefix(name, digest)
        if not self._complete(prefix):
            for relative, path in sorted(files.items()):
                self._upload_file(path, f"{prefix}/{relative}")
            call_aws(self.s3, "put_object", f"uploading to s3://{self.bucket}/{prefix}", Bucket=self.bucket, Key=f"{prefix}/{self.COMPLETE}",
                     Body=digest.encode())
        return f"s3://{self.bucket}/{prefix}/"

    def _upload_file(self, path: Path, key: str) -> None:
        """One file (multipart above 8 MB, by boto3's transfer manager, whose calls botocore checks)."""
        try:
            self.s3.upload_file(str(path), self.bucket, key)
        except Exception as error:  # noqa: BLE001 - every failure of the upload, as one line
            raise aws_error(error, f"uploading {path} to s3://{self.bucket}/{key}") from None
        self.uploaded.append(key)

    def source(self, pinned: bool = True) -> str:
        """This package and the entry script (``pinned``: also requirements.txt, ``job_requirements``, which the
        image's training toolkit installs) as sourcedir.tar.gz; returns its S3 URI."""
        payload = source_tarball(pinned)
        digest = hashlib.sha256(payload).hexdigest()
        prefix = self._prefix("source", digest)
        key = f"{prefix}/sourcedir.tar.gz"
        if not self._complete(prefix):
            doing = f"uploading to s3://{self.bucket}/{prefix}"
            call_aws(self.s3, "put_object", doing, Bucket=self.bucket, Key=key, Body=payload)
            self.uploaded.append(key)
            call_aws(self.s3, "put_object", doing, Bucket=self.bucket, Key=f"{prefix}/{self.COMPLETE}", Body=digest.encode())
        return f"s3://{self.bucket}/{key}"


def list_keys(s3, bucket: str, prefix: str) -> list[str]:
    """Every key under ``prefix`` of ``bucket``. Raises AwsError."""
    keys, token = [], None
    while True:
        page = call_aws(s3, "list_objects_v2", f"listing s3://{bucket}/{prefix}", Bucket=bucket, Prefix=prefix,
                        **({"ContinuationToken": token} if token else {}))
        keys += [item["Key"] for item in page.get("Contents", [])]
        token = page.get("NextContinuationToken")
        if not token:
            return keys


def copy_prefix(s3, bucket: str, source: str, target: str) -> None:
    """Copy every object under ``source`` to the same relative key under ``target`` (same bucket). Raises AwsError."""
    for key in list_keys(s3, bucket, source):
        call_aws(s3, "copy_object", f"copying s3://{bucket}/{key}", Bucket=bucket, Key=target + key[len(source):],
                 CopySource={"Bucket": bucket, "Key": key})


def delete_prefix(s3, bucket: str, prefix: str) -> None:
    """Delete every object under ``prefix`` (none there: nothing happens). Raises AwsError."""
    keys = list_keys(s3, bucket, prefix)
    for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
        call_aws(s3, "delete_objects", f"deleting s3://{bucket}/{prefix}", Bucket=bucket,
                 Delete={"Objects": [{"Key": key} for key in keys[start:start + 1000]]})


def source_tarball(pinned: bool = True) -> bytes:
    """The job's source: ``syne_prune/``, the entry script and (``pinned``) requirements.txt pinning this machine's
    versions of syne-prune's dependencies (``job_requirements``; without it the image runs as it is). Deterministic
    bytes (fixed mtimes, sorted), so the same code has the same sha256. Raises SynePruneError when a version
    cannot be pinned."""
    requirements = job_requirements() if pinned else None
    package = Path(__file__).resolve().parents[1]
    buffer = io.BytesIO()

    def add(name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        archive.addfile(info, io.BytesIO(data))

    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
        for path in sorted(package.rglob("*.py")):
            add(f"syne_prune/{path.relative_to(package).as_posix()}", path.read_bytes())
        add(ENTRY_SCRIPT, b"import sys\nfrom syne_prune.cli.sagemaker_job import main\nsys.exit(main())\n")
        if requirements is not None:
            add("requirements.txt", ("\n".join(requirements) + "\n").encode())
    return _gzip_without_timestamp(buffer.getvalue())


def _gzip_without_timestamp(data: bytes) -> bytes:
    return data[:4] + b"\0\0\0\0" + data[8:]  # bytes 4-7 of a gzip header are its mtime
