"""ELECTRA's own behaviour beyond the family contract (``test_family_contract.py``): its embedding projection."""
from __future__ import annotations

from conftest import HIDDEN, tiny_model

from syne_prune.objectives import subnet_size


def test_electra_embedding_projection_is_counted_on_every_token():
    """embeddings_project (24 -> 32 on each of n tokens) adds 24·32 + 32 parameters and n·24·32 MACs."""
    projected, square = tiny_model("electra", "base"), tiny_model("electra", "base", embedding_size=HIDDEN)
    embeddings = (101 + 512 + 2) * (24 - HIDDEN) + 2 * (24 - HIDDEN)  # word, position, token type; LayerNorm
    assert subnet_size(projected).params - subnet_size(square).params == embeddings + 24 * HIDDEN + HIDDEN
    assert subnet_size(projected, seq_len=10).macs - subnet_size(square, seq_len=10).macs == 10 * 24 * HIDDEN
