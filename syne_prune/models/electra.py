"""ELECTRA (discriminator): BERT's layers under the base prefix ``electra``, no pooler.

Quirks: embeddings of width ``embedding_size``, projected to ``hidden_size`` by ``embeddings_project`` (a
Linear on every token, outside the layers, so not pruned) when the two differ; the sequence-classification
head is a two-layer MLP on the first token (``classifier.dense`` and ``classifier.out_proj``), the
multiple-choice head a sequence summary (``sequence_summary.summary``) and a classifier. Torch and
transformers only: this module travels with exports."""
from __future__ import annotations

from dataclasses import replace

from .bert import FAMILY as BERT
from .bert import shape_bert_layers
from .pruned import pruned_classes

PRUNED = pruned_classes(__name__, "Electra", "syne_prune_electra", "electra", shape_bert_layers)
PrunedElectraConfig, PrunedElectraModel, PrunedElectraForSequenceClassification, PrunedElectraForMultipleChoice, \
    PrunedElectraForTokenClassification = PRUNED

FAMILY = replace(BERT, name="electra", model_type="electra", **PRUNED.family_fields(), base_prefix="electra",
                 per_token_paths=("embeddings_project",))
