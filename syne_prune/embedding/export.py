"""Write an embedding sub-network as a directory that both ``transformers.AutoModel`` and
``sentence_transformers.SentenceTransformer`` load: the export of ``syne_prune.export`` (weights, config, tokenizer,
``syne_prune.json``, model card; with ``trust_remote_code=True`` where the sub-network is not uniform) plus the
sentence-transformers files of its pooling, and optionally ``model.onnx``: encoder and pooling in one ONNX graph
(inputs ``input_ids``, ``attention_mask`` and, for BERT, ``token_type_ids``; output the sentence embedding)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from syne_prune.artifacts import SupernetDir
from syne_prune.export import export_onnx, export_subnetwork
from syne_prune.masks import SubnetMask
from syne_prune.surgery import extract_subnetwork

from .pooling import EmbeddingModel, Pooling, write_sentence_transformers_files

ONNX_FILE = "model.onnx"


def embedding_export_record(supernet_metadata: dict[str, Any]) -> dict[str, Any]:
    """What an embedding export records of its super-network (``supernet.json``): the task as ``embedding_task``, the
    metric, the pooling and the sequence length; recovery reads the same sentences from it."""
    hp = supernet_metadata["hyperparameters"]
    return {"embedding_task": supernet_metadata["task"], "metric": supernet_metadata["metric"], "pooling": supernet_metadata["pooling"],
            "data": {"validation_fraction": hp["validation_fraction"], "seed": hp["seed"], "max_length": hp["max_length"]},
            "embedding_loss": hp.get("embedding_loss", "cosine")}


def export_embedding_subnetwork(model, mask: SubnetMask, output: str | Path, tokenizer, supernet_dir: str | Path,
                                metadata: dict[str, Any] | None = None, onnx: bool = False, overwrite: bool = False,
                                subnetwork=None) -> Path:
    """Extract ``mask`` from the encoder ``model`` (the embedding super-network in ``supernet_dir``) and write it to
    ``output`` with its sentence-transformers files (and ``model.onnx`` with ``onnx``, checked against PyTorch);
    ``metadata`` goes to ``syne_prune.json`` (its ``task`` key is replaced by the embedding record). Returns the
    directory. Raises ``SynePruneError`` as ``syne_prune.export.export_subnetwork`` (nothing written then)."""
    trained = SupernetDir(supernet_dir).read()
    pooling = Pooling.from_json(trained["pooling"])
    sub = (subnetwork if subnetwork is not None else extract_subnetwork(model, mask, share_weights=False)).eval()
    record = {k: v for k, v in (metadata or {}).items() if k not in ("task", "data")}
    record |= {**embedding_export_record(trained), "supernet": str(Path(supernet_dir).resolve())}
    max_length = trained["hyperparameters"]["max_length"]

    def extra_files(staging: Path) -> None:
        write_sentence_transformers_files(staging, pooling, sub.config.hidden_size, max_length)
        if onnx:
            export_onnx(EmbeddingModel(sub, pooling).eval(), staging / ONNX_FILE)

    return export_subnetwork(model, mask, output, tokenizer=tokenizer, overwrite=overwrite, metadata=record, subnetwork=sub,
                             extra_files=extra_files)
