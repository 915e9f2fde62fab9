"""The embedding pipeline through the command line: train-supernet --task-type embedding, a search on the pool
backend, an export that SentenceTransformer and AutoModel load in a fresh interpreter without syne-prune, with the
masked super-network's embeddings (<= 1e-5), and its ONNX graph of encoder and pooling."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from embedding_fixtures import sentences
from transformers import AutoTokenizer

from syne_prune.cli import main
from syne_prune.embedding import Pooling, embed, load_encoder
from syne_prune.search_spaces import get_search_space
from syne_prune.surgery import InPlaceMask

FRESH = """
import json, sys
import numpy as np
from sentence_transformers import SentenceTransformer
from transformers import AutoModel, AutoTokenizer
import torch
assert "syne_prune" not in sys.modules
directory, texts = sys.argv[1], json.loads(sys.argv[2])
st = SentenceTransformer(directory, device="cpu", trust_remote_code=True).encode(texts, convert_to_numpy=True)
model = AutoModel.from_pretrained(directory, trust_remote_code=True).eval()
tokenizer = AutoTokenizer.from_pretrained(directory, trust_remote_code=True)
batch = tokenizer(texts, padding=True, return_tensors="pt")
with torch.no_grad():
    hidden = model(**batch)[0]
mask = batch["attention_mask"].unsqueeze(-1).float()
auto = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
assert "syne_prune" not in sys.modules
print(json.dumps({"st": st.tolist(), "auto": auto.tolist()}))
"""


@pytest.mark.slow
def test_train_search_export_and_load_without_syne_prune(st_dir, embedding_data, tmp_path):
    torch.set_num_threads(1)
    sn, search, out = tmp_path / "sn", tmp_path / "search", tmp_path / "small"
    assert main(["train-supernet", "--model", str(st_dir), "--task-type", "embedding", "--train-file", str(embedding_data["sentences"]),
                 "--validation-file", str(embedding_data["pairs"]), "--epochs", "1", "--batch-size", "8", "--max-length", "32",
                 "--output", str(sn)]) == 0
    assert main(["search", "--supernet", str(sn), "--scheduler", "random", "--max-trials", "4", "--n-workers", "1",
                 "--output", str(search)]) == 0
    trials = pd.read_csv(search / "trials.csv")
    assert (trials["status"] == "completed").all() and trials["error"].between(0, 2).all()
    config = '{"num_layers": 2, "num_heads": 3, "num_units": 20}'
    assert main(["export", "--model", str(sn), "--search-space", "small", "--config", config, "--output", str(out), "--onnx"]) == 0
    record = json.loads((out / "syne_prune.json").read_text())
    assert record["pooling"] == {"mode": "mean", "normalize": True} and "task" not in record

    texts = sentences(5, seed=9)
    encoder = load_encoder(str(sn))
    space = get_search_space("small", _shape(encoder))
    masker = InPlaceMask(encoder)
    masker.set(space.to_mask(json.loads(config)))
    want = embed(encoder, Pooling("mean", True), texts, AutoTokenizer.from_pretrained(sn), max_length=32)
    done = subprocess.run([sys.executable, "-c", FRESH, str(out), json.dumps(texts)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert np.abs(np.asarray(got["st"]) - want).max() <= 1e-5
    assert np.abs(np.asarray(got["auto"]) - want).max() <= 1e-5

    import onnxruntime

    tokenizer = AutoTokenizer.from_pretrained(out)
    batch = tokenizer(texts, padding=True, return_tensors="np")
    session = onnxruntime.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    onnx_out = session.run(None, {n: batch[n].astype(np.int64) for n in names})[0]
    assert np.abs(onnx_out - want).max() <= 1e-4
    masker.remove()


def _shape(encoder):
    from syne_prune.models import get_family

    return get_family(encoder.config).shape(encoder.config)
