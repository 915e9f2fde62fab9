"""RoBERTa: BERT's layers under the base prefix ``roberta``; position ids start after the padding index
(the stock embeddings handle it). Torch and transformers only: this module travels with exports."""
from __future__ import annotations

from dataclasses import replace

from .bert import FAMILY as BERT
from .bert import shape_bert_layers
from .pruned import pruned_classes

PRUNED = pruned_classes(__name__, "Roberta", "syne_prune_roberta", "roberta", shape_bert_layers)
PrunedRobertaConfig, PrunedRobertaModel, PrunedRobertaForSequenceClassification, PrunedRobertaForMultipleChoice, \
    PrunedRobertaForTokenClassification = PRUNED

FAMILY = replace(BERT, name="roberta", model_type="roberta", **PRUNED.family_fields(), base_prefix="roberta",
                 positions_after_padding=True)
