"""Extending syne-prune with a model family: CamemBERT, which is RoBERTa's structure under the model type
``camembert``. In the package this is the module ``syne_prune/models/camembert.py`` (relative imports) plus one
name in the tuple of ``syne_prune/models/architectures.py``; here it is registered in-process and checked the way
``tests/models/test_family_contract.py`` checks every family: the extracted sub-network computes what the masked
super-network computes, and its parameter count is what ``subnet_size`` counts."""
from __future__ import annotations

# --8<-- [start:family]
from dataclasses import replace

import numpy as np
import torch
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, CamembertConfig, CamembertForSequenceClassification

import syne_prune as sp
from syne_prune.models import FAMILIES, PRUNED_CLASSES
from syne_prune.models.bert import shape_bert_layers
from syne_prune.models.pruned import pruned_classes
from syne_prune.models.roberta import FAMILY as ROBERTA
from syne_prune.objectives import subnet_size

# Pruned config and model classes for exports whose layers differ: PrunedCamembertConfig, PrunedCamembertModel, ...
PRUNED = pruned_classes(__name__, "Camembert", "syne_prune_camembert", "roberta", shape_bert_layers)
(PrunedCamembertConfig, PrunedCamembertModel, PrunedCamembertForSequenceClassification, PrunedCamembertForMultipleChoice,
 PrunedCamembertForTokenClassification) = PRUNED

# Everything else is RoBERTa's: the same module names, base prefix and positions after the padding index.
FAMILY = replace(ROBERTA, name="camembert", model_type="camembert", **PRUNED.family_fields())
# --8<-- [end:family]


def register() -> None:
    """What the registry line and ``import syne_prune`` do for a family in the package."""
    FAMILIES[FAMILY.name] = FAMILY
    PRUNED_CLASSES[FAMILY.pruned_model_type] = FAMILY.pruned_classes
    config_class, base_class, heads = FAMILY.pruned_classes
    AutoConfig.register(FAMILY.pruned_model_type, config_class, exist_ok=True)
    AutoModel.register(config_class, base_class, exist_ok=True)
    AutoModelForSequenceClassification.register(config_class, heads["AutoModelForSequenceClassification"], exist_ok=True)


def main() -> None:
    register()
    torch.manual_seed(0)
    config = CamembertConfig(vocab_size=101, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                             pad_token_id=1, num_labels=3)
    model = CamembertForSequenceClassification(config).eval()
    assert sp.get_family(model.config) is FAMILY
    space = sp.get_search_space("medium", FAMILY.shape(model.config))
    batch = {"input_ids": torch.randint(5, 101, (3, 11)), "attention_mask": torch.ones(3, 11, dtype=torch.long)}
    for seed in range(5):
        mask = space.to_mask(space.sample(np.random.RandomState(seed)))
        with torch.inference_mode(), sp.masked(model, mask):
            want = model(**batch).logits
        small = sp.extract_subnetwork(model, mask)
        with torch.inference_mode():
            got = small(**batch).logits
        assert (got - want).abs().max().item() <= 1e-5, mask
        assert subnet_size(model, mask, seq_len=11).params == sum(p.numel() for p in small.parameters())
    print("camembert: extraction equals masking on 5 random sub-networks")


if __name__ == "__main__":
    main()
