"""XLM-RoBERTa: RoBERTa's structure (base prefix ``roberta``, position ids after the padding index) under the
model type ``xlm-roberta``, with a large multilingual vocabulary. Torch and transformers only: this module
travels with exports."""
from __future__ import annotations

from dataclasses import replace

from .bert import shape_bert_layers
from .pruned import pruned_classes
from .roberta import FAMILY as ROBERTA

PRUNED = pruned_classes(__name__, "XLMRoberta", "syne_prune_xlm_roberta", "roberta", shape_bert_layers)
PrunedXLMRobertaConfig, PrunedXLMRobertaModel, PrunedXLMRobertaForSequenceClassification, PrunedXLMRobertaForMultipleChoice, \
    PrunedXLMRobertaForTokenClassification = PRUNED

FAMILY = replace(ROBERTA, name="xlm-roberta", model_type="xlm-roberta", **PRUNED.family_fields())
