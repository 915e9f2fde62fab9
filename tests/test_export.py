"""Export -> reload gives the masked super-network's outputs, both with syne_prune and with plain transformers."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import transformers
from conftest import SPACES, reload_without_syne_prune, tiny_batch, tiny_model

from syne_prune import SubnetMask, SynePruneError, get_family, get_search_space, masked
from syne_prune.artifacts import EXPORT_FILE
from syne_prune.export import export_subnetwork
from syne_prune.objectives import subnet_size

TOLERANCE = 1e-5


def _outputs(model, batch):
    out = model(**batch)
    return out.logits if hasattr(out, "logits") else out.last_hidden_state


AUTO = {"classifier": "AutoModelForSequenceClassification", "regression": "AutoModelForSequenceClassification",
        "multiple_choice": "AutoModelForMultipleChoice", "base": "AutoModel"}


def _configs(space):
    return [space.midpoint(), space.sample(np.random.RandomState(7))]


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Every architecture x space x head, two configurations each, exported once for the module."""
    root = tmp_path_factory.mktemp("exports")
    batches = {head: tiny_batch(choices=4 if head == "multiple_choice" else 0) for head in AUTO}
    records = []
    for arch in ("bert", "roberta", "distilbert"):
        for head in AUTO:
            model, batch = tiny_model(arch, head), batches[head]
            space_of = get_family(model.config).shape(model.config)
            for space_name in SPACES:
                space = get_search_space(space_name, space_of)
                for i, config in enumerate(_configs(space)):
                    mask = space.to_mask(config)
                    with torch.inference_mode(), masked(model, mask):
                        want = _outputs(model, batch)
                    out = export_subnetwork(model, mask, root / f"{arch}-{head}-{space_name}-{i}")
                    records.append((out, head, want, subnet_size(model, mask).params))
    torch.save({"batches": batches, "auto": AUTO, "records": [(str(o), h, w) for o, h, w, _ in records]}, root / "expected.pt")
    return root, batches, records


@pytest.mark.slow
def test_reload_with_syne_prune_installed_gives_masked_outputs(exports):
    _, batches, records = exports
    for out, head, want, params in records:
        model = getattr(transformers, AUTO[head]).from_pretrained(out).eval()
        assert sum(p.numel() for p in model.parameters()) == params
        with torch.inference_mode():
            assert (_outputs(model, batches[head]) - want).abs().max() <= TOLERANCE, out


@pytest.mark.slow
def test_reload_without_syne_prune_via_trust_remote_code(exports, tmp_path):
    """A fresh interpreter in which `import syne_prune` fails loads every export with plain transformers."""
    root, _, _ = exports
    worst, count = reload_without_syne_prune(root / "expected.pt", tmp_path)
    assert worst <= TOLERANCE and count == 3 * len(AUTO) * len(SPACES) * 2


def test_uniform_subnetwork_gets_a_stock_config(tmp_path):
    model = tiny_model("bert", "classifier")
    mask = SubnetMask.from_counts([4, 0], [20, 0], 4, 37)
    out = export_subnetwork(model, mask, tmp_path / "stock")
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "bert" and "auto_map" not in config
    assert not (out / "modeling_syne_prune.py").exists()
    meta = json.loads((out / EXPORT_FILE).read_text())
    assert meta["kept_layers"] == [0] and meta["neurons_per_layer"] == [20, 0]


def test_nonuniform_export_carries_its_modeling_code(tmp_path):
    model = tiny_model("roberta", "classifier")
    mask = SubnetMask.from_counts([0, 3], [5, 0], 4, 37)
    out = export_subnetwork(model, mask, tmp_path / "custom")
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "syne_prune_roberta"
    assert config["num_heads_per_layer"] == [0, 3] and config["intermediate_size_per_layer"] == [5, 0]
    assert set(config["auto_map"]) == {"AutoConfig", "AutoModel", "AutoModelForSequenceClassification", "AutoModelForMultipleChoice"}
    source = (out / "modeling_syne_prune.py").read_text()
    assert "syne_prune" not in "".join(line for line in source.splitlines() if line.startswith(("import", "from")))
    assert (out / "model.safetensors").exists()


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["bert", "roberta", "distilbert"])
def test_onnx_matches_pytorch(arch, tmp_path):
    import onnxruntime

    model = tiny_model(arch, "classifier")
    mask = SubnetMask(torch.tensor([[True, False, True, False], [False, False, False, False]]), torch.arange(37).repeat(2, 1) % 3 == 0)
    out = export_subnetwork(model, mask, tmp_path / "onnx", onnx=True)
    session = onnxruntime.InferenceSession(str(out / "model.onnx"))
    batch = tiny_batch(seed=5, batch=4, length=13)  # another shape than the export example, with padding
    if arch != "distilbert":  # 2 token types (transformers' default): the ONNX file takes them (a pair: type 1 from token 6 on)
        batch["token_type_ids"] = (torch.arange(13) >= 6).long().expand(4, 13).contiguous()
    assert [i.name for i in session.get_inputs()] == list(batch)
    got = session.run(None, {k: v.numpy() for k, v in batch.items()})[0]
    with torch.inference_mode(), masked(model, mask):
        want = model(**batch).logits.numpy()
    assert np.abs(got - want).max() <= 1e-4


def test_existing_output_is_refused_and_untouched(tmp_path):
    model = tiny_model("bert", "classifier")
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    mask = SubnetMask.full(2, 4, 37)
    with pytest.raises(SynePruneError, match="already exists; choose a new --output or pass --overwrite"):
        export_subnetwork(model, mask, out)
    assert os.listdir(out) == ["keep.txt"]
    export_subnetwork(model, mask, out, overwrite=True)
    assert not (out / "keep.txt").exists() and (out / "model.safetensors").exists()


def test_failed_export_leaves_nothing_behind(tmp_path, monkeypatch):
    import syne_prune.export as export_module

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(export_module, "_write_metadata", broken)
    with pytest.raises(RuntimeError):
        export_subnetwork(tiny_model("bert", "classifier"), SubnetMask.full(2, 4, 37), tmp_path / "out")
    assert os.listdir(tmp_path) == []


_LOAD_WITHOUT_SYNE_PRUNE = textwrap.dedent(
    """
    import json, sys, time
    sys.modules["syne_prune"] = None  # any import of syne_prune now raises ImportError
    import transformers
    from transformers import AutoConfig, AutoModel, AutoTokenizer
    out, flag = sys.argv[1], {"trust": {"trust_remote_code": True}, "plain": {}}[sys.argv[2]]
    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(out, **flag)
    seconds = time.perf_counter() - started
    config = AutoConfig.from_pretrained(out, **flag)
    model = AutoModel.from_pretrained(out, **flag)
    named = getattr(transformers, json.load(open(out + "/tokenizer_config.json"))["tokenizer_class"]).from_pretrained(out)
    print("RESULT", json.dumps({"tokenizer": type(tokenizer).__name__, "seconds": seconds, "config": type(config).__name__,
                                "model": type(model).__name__, "ids": tokenizer("The cat sat on the mat.")["input_ids"],
                                "named_ids": named("The cat sat on the mat.")["input_ids"]}))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("uniform", [False, True], ids=["pruned-config", "stock-config"])
def test_tokenizer_config_and_model_load_without_syne_prune_and_without_a_prompt(tiny_model_dirs, tmp_path, uniform):
    """The README's recipe on a machine without syne-prune: trust_remote_code=True for a pruned config
    (AutoTokenizer reads config.json first, whose auto_map names custom code: without the flag transformers
    asks "Do you wish to run the custom code? [y/N]" and waits 15 s), nothing for a stock config."""
    from syne_prune.models import load_model, load_tokenizer

    source = str(tiny_model_dirs["bert"])
    model, tokenizer = load_model(source), load_tokenizer(source)
    mask = SubnetMask.from_counts([4, 0], [20, 0], 4, 37) if uniform else SubnetMask.from_counts([3, 1], [20, 7], 4, 37)
    out = export_subnetwork(model, mask, tmp_path / "export", tokenizer=tokenizer)
    config = json.loads((out / "config.json").read_text())
    assert ("auto_map" in config) is (not uniform)  # the pruned config is the case that needs custom code
    assert json.loads((out / "tokenizer_config.json").read_text())["tokenizer_class"] == "BertTokenizer"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    run = subprocess.run([sys.executable, "-c", _LOAD_WITHOUT_SYNE_PRUNE, str(out), "plain" if uniform else "trust"], cwd=tmp_path,
                         env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    console = run.stdout + run.stderr
    assert "custom code" not in console and "[y/N]" not in console, console[-2000:]  # no prompt
    loaded = json.loads(run.stdout.split("RESULT", 1)[1])
    want = tokenizer("The cat sat on the mat.")["input_ids"]
    assert loaded["tokenizer"] == type(tokenizer).__name__ == "BertTokenizer"  # the stock class, not custom code
    assert loaded["ids"] == loaded["named_ids"] == want and want[0] == tokenizer.cls_token_id and want[-1] == tokenizer.sep_token_id
    assert tokenizer.decode(loaded["ids"], skip_special_tokens=True) == "the cat sat on the mat."  # lower-cased, no [UNK]
    assert loaded["seconds"] < 5.0  # a prompt would wait 15 s
    assert (loaded["config"], loaded["model"]) == (("BertConfig", "BertModel") if uniform else ("PrunedBertConfig", "PrunedBertModel"))
