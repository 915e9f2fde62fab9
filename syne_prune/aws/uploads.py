"""Uploads of the SageMaker backend, content-addressed and once: the source (``sourcedir.tar.gz``) and every
input channel go to ``S3_PREFIX/content/NAME-SHA``."""
from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

from syne_prune.aws.calls import aws_error
from syne_prune.aws.jobs import ENTRY_SCRIPT
from syne_prune.aws.settings import SageMakerSettings

REQUIREMENTS = ["syne-tune==0.16.0", "transformers>=5.0,<6", "safetensors>=0.4", "pandas>=2.0", "scikit-learn>=1.3",
                "scipy>=1.10", "datasets>=3.0", "tqdm>=4.60", "psutil>=5.9", "matplotlib>=3.7", "pymoo>=0.6", "botorch>=0.12"]


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
        from botocore.exceptions import ClientError  # optional (syne-prune[sagemaker])

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
        add(ENTRY_SCRIPT, b"import sys\nfrom syne_prune.cli.sagemaker_job import main\nsys.exit(main())\n")
        add("requirements.txt", ("\n".join(REQUIREMENTS) + "\n").encode())
    return _gzip_without_timestamp(buffer.getvalue())


def _gzip_without_timestamp(data: bytes) -> bytes:
    return data[:4] + b"\0\0\0\0" + data[8:]  # bytes 4-7 of a gzip header are its mtime
