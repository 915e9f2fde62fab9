"""The software a SageMaker job of syne-prune runs on: the training image and the Python packages installed in it.

- **The default image** is AWS's PyTorch training image (a Deep Learning Container) of version
  ``DEFAULT_FRAMEWORK_VERSION`` for ``FRAMEWORK_PY_VERSION``; its torch must meet syne-prune's own
  ``TORCH_REQUIREMENT`` (setup.py's) and the torch requirement of every pinned package (``check_framework``).
- **The packages** (``JOB_DEPENDENCIES``: setup.py's ``install_requires`` without torch, which the image brings)
  are pinned to the versions installed on the launching machine (``job_requirements``): every job of a search
  installs the same versions, the ones the search was checked with. The image's training toolkit installs them
  with pip when the job starts (which needs internet access, or a VPC with a NAT gateway or a PyPI mirror).
- With ``--image-uri`` the image runs as it is: nothing is installed, the image brings syne-prune's dependencies.
"""
from __future__ import annotations

import importlib.metadata

from syne_prune.errors import SynePruneError

DEFAULT_FRAMEWORK_VERSION = "2.8"  # torch of AWS's PyTorch training image used when --image-uri is not given
FRAMEWORK_PY_VERSION = "py312"  # the only Python of the 2.6, 2.7 and 2.8 PyTorch training images
TORCH_REQUIREMENT = "torch>=2.4,<3"  # setup.py's (tests/search/test_sagemaker_preflight.py compares them)
JOB_DEPENDENCIES = ("transformers", "syne-tune", "safetensors", "numpy", "pandas", "scikit-learn", "scipy", "seqeval", "datasets", "tqdm", "huggingface-hub",
                    "psutil", "matplotlib", "pymoo", "botorch")  # setup.py's install_requires without torch


def job_requirements() -> list[str]:
    """``requirements.txt`` lines of a job: ``NAME==VERSION`` for each of ``JOB_DEPENDENCIES``, VERSION the one
    installed here. Raises SynePruneError for a package not installed here or installed from a local build (a
    version with ``+``: pip could not find it for the job)."""
    pins = []
    for name in JOB_DEPENDENCIES:
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            raise SynePruneError(f"{name} is not installed here, so its version cannot be pinned for the SageMaker jobs; "
                                 "pip install syne-prune's dependencies first") from None
        if "+" in version:
            raise SynePruneError(f"{name} {version} is a local build that the SageMaker jobs cannot install; install a released "
                                 f"version here, or pass --image-uri with an image that has syne-prune's dependencies")
        pins.append(f"{name}=={version}")
    return pins


def torch_requirements() -> dict[str, str]:
    """What needs which torch: ``{"syne-prune": TORCH_REQUIREMENT's specifier, NAME: specifier}`` for every pinned
    package whose installed metadata requires torch (with its ``torch`` extra: transformers needs it to run models)."""
    from packaging.markers import default_environment  # installed with transformers; only needed here
    from packaging.requirements import Requirement

    needs = {"syne-prune": str(Requirement(TORCH_REQUIREMENT).specifier)}
    for name in JOB_DEPENDENCIES:
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for line in requires:
            requirement = Requirement(line)
            if requirement.name == "torch" and str(requirement.specifier) and (
                    requirement.marker is None or requirement.marker.evaluate({**default_environment(), "extra": "torch"})):
                needs[name] = str(requirement.specifier)
    return needs


def check_framework(version: str) -> None:
    """Refuse a PyTorch training image of torch ``version`` (e.g. ``"2.8"``) that syne-prune or a pinned package
    cannot use: a one-line SynePruneError naming who needs which torch."""
    from packaging.specifiers import SpecifierSet  # installed with transformers; only needed here

    release = version if version.count(".") >= 2 else f"{version}.0"
    short = {name: needed for name, needed in torch_requirements().items() if not SpecifierSet(needed).contains(release)}
    if short:
        needs = ", ".join(f"{name} needs torch{needed}" for name, needed in short.items())
        raise SynePruneError(f"the PyTorch training image {version} is too old here ({needs}); pass --image-uri with an image "
                             "whose torch meets them")
