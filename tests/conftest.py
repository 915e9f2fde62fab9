"""Tiny random models built from configs in code (2 layers, 4 heads): no network, no downloads."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER") and "OMP_NUM_THREADS" not in os.environ:
    # Under ``pytest -n N`` each of the N test processes runs torch (and the processes its tests start) on one
    # thread: two processes of two threads each on 2 cores made the fast tier 1.5x slower than one process.
    os.environ["OMP_NUM_THREADS"] = "1"
import torch
import transformers

if os.environ.get("PYTEST_XDIST_WORKER") and os.environ.get("OMP_NUM_THREADS") == "1":
    torch.set_num_threads(1)  # also where torch was imported before this file
from torch.utils.flop_counter import FlopCounterMode
from transformers import (
    BertConfig,
    BertForMultipleChoice,
    BertForSequenceClassification,
    BertModel,
    DistilBertConfig,
    DistilBertForMultipleChoice,
    DistilBertForSequenceClassification,
    DistilBertModel,
    ElectraConfig,
    ElectraForMultipleChoice,
    ElectraForSequenceClassification,
    ElectraModel,
    RobertaConfig,
    RobertaForMultipleChoice,
    RobertaForSequenceClassification,
    RobertaModel,
    XLMRobertaConfig,
    XLMRobertaForMultipleChoice,
    XLMRobertaForSequenceClassification,
    XLMRobertaModel,
)

pytest_plugins = ["helpers", "sagemaker_fixtures", "embedding_fixtures"]  # fixtures several test folders share (tests/ is on sys.path)


def pytest_configure(config):
    """Every run lists its 15 slowest tests (CI has a time budget), unless ``--durations`` was given."""
    if config.option.durations is None:
        config.option.durations = 15


ARCHS = ("bert", "roberta", "distilbert")
# Families held to the contract (tests/models/test_family_contract.py) but not run by every test that takes ``arch``.
NEW_ARCHS = ("xlm-roberta", "electra")
# ELECTRA's embeddings are narrower than the hidden size (an ``embeddings_project`` Linear) unless told otherwise.
ELECTRA_EMBEDDING = 24
SPACES = ("small", "medium", "layer", "large")
VOCAB = 101
# 37 FFN neurons: not a multiple of 32, so the large space packs them into two words (32 + 5 bits).
HIDDEN, LAYERS, HEADS, NEURONS = 32, 2, 4, 37


def tiny_config(arch: str, num_labels: int = 3, attn_implementation: str = "sdpa", **extra):
    """``extra``: further config fields (e.g. ``embedding_size`` of ELECTRA)."""
    common = dict(vocab_size=VOCAB, num_labels=num_labels, initializer_range=0.2, attn_implementation=attn_implementation, **extra)
    if arch == "bert":
        return BertConfig(hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS, intermediate_size=NEURONS, **common)
    if arch == "roberta":
        return RobertaConfig(
            hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS, intermediate_size=NEURONS, pad_token_id=1, **common
        )
    if arch == "distilbert":
        return DistilBertConfig(dim=HIDDEN, n_layers=LAYERS, n_heads=HEADS, hidden_dim=NEURONS, **common)
    if arch == "xlm-roberta":
        return XLMRobertaConfig(
            hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS, intermediate_size=NEURONS, pad_token_id=1, **common
        )
    if arch == "electra":
        common.setdefault("embedding_size", ELECTRA_EMBEDDING)
        return ElectraConfig(hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS, intermediate_size=NEURONS, **common)
    raise ValueError(arch)


CLASSES = {
    "bert": (BertModel, BertForSequenceClassification),
    "roberta": (RobertaModel, RobertaForSequenceClassification),
    "distilbert": (DistilBertModel, DistilBertForSequenceClassification),
    "xlm-roberta": (XLMRobertaModel, XLMRobertaForSequenceClassification),
    "electra": (ElectraModel, ElectraForSequenceClassification),
}
MULTIPLE_CHOICE = {"bert": BertForMultipleChoice, "roberta": RobertaForMultipleChoice, "distilbert": DistilBertForMultipleChoice,
                   "xlm-roberta": XLMRobertaForMultipleChoice, "electra": ElectraForMultipleChoice}


def tiny_model(arch: str, head: str = "classifier", seed: int = 0, **config_kwargs):
    """head: 'classifier' (3 labels), 'regression' (1 output), 'multiple_choice', 'token' (a token classifier, 3 tags)
    or 'base' (no task head)."""
    torch.manual_seed(seed)
    num_labels = 1 if head == "regression" else 3
    base_class, task_class = CLASSES[arch]
    task_class = MULTIPLE_CHOICE[arch] if head == "multiple_choice" else task_class
    task_class = getattr(transformers, base_class.__name__.replace("Model", "ForTokenClassification")) if head == "token" else task_class
    config = tiny_config(arch, num_labels=num_labels, **config_kwargs)
    model = base_class(config) if head == "base" else task_class(config)
    _randomize_norms_and_biases(model)
    return model.eval()


@torch.no_grad()
def _randomize_norms_and_biases(model: torch.nn.Module) -> None:
    """Fresh LayerNorms (weight 1, bias 0) are idempotent on post-LN inputs and fresh biases are 0:
    both would hide a skipped or doubled LayerNorm or bias. Random values make every such bug visible."""
    for module in model.modules():
        if isinstance(module, torch.nn.LayerNorm):
            module.weight.normal_(1.0, 0.3)
            module.bias.normal_(0.0, 0.3)
        elif isinstance(module, torch.nn.Linear) and module.bias is not None:
            module.bias.normal_(0.0, 0.3)


def tiny_batch(seed: int = 0, batch: int = 3, length: int = 11, choices: int = 0) -> dict[str, torch.Tensor]:
    """Token ids with padding in the first row, so masks and padding both matter (``choices``: B x C x L)."""
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(5, VOCAB, (batch * max(1, choices), length), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[0, length // 2 :] = 0
    if choices:
        input_ids, attention_mask = input_ids.view(batch, choices, length), attention_mask.view(batch, choices, length)
    return {"input_ids": input_ids, "attention_mask": attention_mask}


# ---- DeBERTa-v2/v3 and ModernBERT: tiny variants built in code ----

# DeBERTa (2 layers, 4 heads, 37 FFN neurons, hidden size 32), each variant a different path of the disentangled attention:
# ``v3``: DeBERTa-v3's defaults: ``share_att_key`` (relative embeddings projected by the query and key projections),
#   "p2c|c2p", 8 position buckets (R = 16), layer-normed relative embeddings, no absolute positions, no token types;
# ``v2``: own ``pos_key_proj`` / ``pos_query_proj``, "c2p" and "p2c", max_relative_positions 12 (R = 24), absolute
#   positions, 2 token types, ``embedding_size`` 24 (an ``embed_proj`` on every token);
# ``head_size``: ``attention_head_size`` 12 (4 x 12 = 48 != hidden size 32; attention output projection 48 -> 32),
#   "c2p" only (only ``pos_key_proj``), 4 position buckets;
# ``conv``: DeBERTa-v2-xlarge's convolution after layer 0 (kernel 3), "p2c" only (only ``pos_query_proj``).
DEBERTA_VARIANTS = {
    "v3": dict(share_att_key=True, pos_att_type="p2c|c2p", position_buckets=8, norm_rel_ebd="layer_norm",
               position_biased_input=False, type_vocab_size=0),
    "v2": dict(share_att_key=False, pos_att_type=["c2p", "p2c"], max_relative_positions=12, type_vocab_size=2, embedding_size=24),
    "head_size": dict(share_att_key=False, pos_att_type=["c2p"], position_buckets=4, attention_head_size=12),
    "conv": dict(share_att_key=False, pos_att_type=["p2c"], position_buckets=8, conv_kernel_size=3, conv_act="gelu",
                 norm_rel_ebd="layer_norm"),
}


def deberta_config(variant: str, num_labels: int = 3, **overrides):
    """The config of a tiny DeBERTa ``variant`` (``DEBERTA_VARIANTS``); ``overrides`` replace fields."""
    from transformers import DebertaV2Config

    values = dict(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                  num_labels=num_labels, initializer_range=0.2, relative_attention=True, max_position_embeddings=64,
                  **DEBERTA_VARIANTS[variant])
    return DebertaV2Config(**{**values, **overrides})


def deberta_model(variant: str, head: str = "classifier", seed: int = 0):
    """A random tiny DeBERTa (``head`` as in ``tiny_model``). For ``head_size`` the attention output projections are
    rebuilt heads x attention_head_size wide (stock transformers builds them hidden_size wide)."""
    from transformers import DebertaV2ForMultipleChoice, DebertaV2ForSequenceClassification, DebertaV2ForTokenClassification, DebertaV2Model

    torch.manual_seed(seed)
    config = deberta_config(variant, num_labels=1 if head == "regression" else 3)
    cls = {"base": DebertaV2Model, "multiple_choice": DebertaV2ForMultipleChoice, "token": DebertaV2ForTokenClassification}.get(
        head, DebertaV2ForSequenceClassification)
    model = cls(config)
    for layer in model.base_model.encoder.layer:
        attention = layer.attention
        if attention.output.dense.in_features != attention.self.all_head_size:
            attention.output.dense = torch.nn.Linear(attention.self.all_head_size, config.hidden_size)
    _randomize_norms_and_biases(model)
    return model.eval()


def deberta_batch(variant: str, head: str, batch: int = 3) -> dict[str, torch.Tensor]:
    """``tiny_batch`` (2 choices for multiple choice), with token types on the second half where ``variant`` has them."""
    inputs = tiny_batch(batch=batch, choices=2 if head == "multiple_choice" else 0)
    if variant == "v2":  # token types matter in this variant
        inputs["token_type_ids"] = (torch.arange(inputs["input_ids"].shape[-1]) >= 6).long().expand_as(inputs["input_ids"])
    return inputs


def save_deberta_dir(path: Path, texts: list[str]) -> Path:
    """A tiny DeBERTa-v3-style base model ("v3") with a WordPiece tokenizer over ``texts``, as from_pretrained expects."""
    from transformers import BertTokenizerFast, DebertaV2Model

    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.txt").write_text("\n".join(wordpiece_vocabulary(texts, size=200)) + "\n")
    tokenizer = BertTokenizerFast(vocab=str(path / "vocab.txt"))
    torch.manual_seed(0)
    model = DebertaV2Model(deberta_config("v3", vocab_size=len(tokenizer)))
    _randomize_norms_and_biases(model)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


# ModernBERT: 4 layers alternating global/local attention (``global_attn_every_n_layers`` 2) with a 4-token local window
# on 11-token inputs, so a layer that changed its kind would change the outputs; "plain" (ModernBERT's defaults: no
# biases anywhere) or "biased" (attention, MLP, norm and classifier biases on).
MODERNBERT_LAYERS = 4
MODERNBERT_KINDS = ["full_attention", "sliding_attention", "full_attention", "sliding_attention"]
MODERNBERT_BIASES = {"plain": {}, "biased": {"attention_bias": True, "mlp_bias": True, "norm_bias": True, "classifier_bias": True}}


def modernbert(head: str = "classifier", variant: str = "plain", seed: int = 0, attn_implementation: str = "sdpa"):
    """A tiny random ModernBERT; head: 'classifier' (3 labels), 'regression', 'multiple_choice' or 'base'. Norm weights
    and biases are random so a skipped or doubled norm is visible."""
    from transformers import (
        ModernBertConfig,
        ModernBertForMultipleChoice,
        ModernBertForSequenceClassification,
        ModernBertForTokenClassification,
        ModernBertModel,
    )

    torch.manual_seed(seed)
    config = ModernBertConfig(
        vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=MODERNBERT_LAYERS, num_attention_heads=HEADS,
        intermediate_size=NEURONS, global_attn_every_n_layers=2, local_attention=4, max_position_embeddings=64,
        pad_token_id=0, bos_token_id=1, eos_token_id=2, cls_token_id=1, sep_token_id=2, initializer_range=0.2,
        num_labels=1 if head == "regression" else 3, attn_implementation=attn_implementation, **MODERNBERT_BIASES[variant])
    cls = {"base": ModernBertModel, "multiple_choice": ModernBertForMultipleChoice, "token": ModernBertForTokenClassification}.get(
        head, ModernBertForSequenceClassification)
    model = cls(config)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.LayerNorm, torch.nn.Linear)) and module.bias is not None:
                module.bias.normal_(0.0, 0.3)
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.normal_(1.0, 0.3)
    return model.eval()


def modernbert_batch(head: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """``tiny_batch``, with 3 choices for multiple choice."""
    return tiny_batch(seed=seed, choices=3 if head == "multiple_choice" else 0)


def save_modernbert_dir(path: Path, texts: list[str]) -> Path:
    """A tiny random ModernBERT base model plus a WordPiece tokenizer that returns no token_type_ids (as
    ModernBERT's own tokenizer), saved as from_pretrained expects."""
    from transformers import BertTokenizerFast

    path.mkdir(parents=True)
    (path / "vocab.txt").write_text("\n".join(wordpiece_vocabulary(texts)) + "\n")
    tokenizer = BertTokenizerFast(vocab=str(path / "vocab.txt"), model_input_names=["input_ids", "attention_mask"])
    model = modernbert("base")
    model.config.vocab_size = len(tokenizer)
    model.resize_token_embeddings(len(tokenizer))
    model.config.update({"pad_token_id": 0, "cls_token_id": 2, "bos_token_id": 2, "sep_token_id": 3, "eos_token_id": 3})
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(params=ARCHS)
def arch(request) -> str:
    return request.param


@pytest.fixture(params=SPACES)
def space_name(request) -> str:
    return request.param


# ---- real GLUE slices and tiny trainable model directories (tokenizer included) ----

# Real GLUE slices committed with the tests (header + first 100 train / 40 dev rows, byte for byte; README there).
GLUE_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "glue"
GLUE_FOLDERS = ("RTE", "MRPC", "STS-B", "CoLA", "SST-2")


@pytest.fixture(scope="session")
def glue_dir(tmp_path_factory) -> Path:
    """A copy of the committed GLUE slices (tests may write beside them without touching the repository)."""
    root = tmp_path_factory.mktemp("glue")
    for folder in GLUE_FOLDERS:
        shutil.copytree(GLUE_FIXTURES / folder, root / folder)
    return root


def model_outputs(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """``logits`` of a model with a task head, ``last_hidden_state`` of a base model (``labels`` left out)."""
    out = model(**{k: v for k, v in batch.items() if k != "labels"})
    return out.logits if hasattr(out, "logits") else out.last_hidden_state


def check_extraction(model, mask, batch: dict[str, torch.Tensor], tolerance: float = 1e-5,
                     macs_batch: dict[str, torch.Tensor] | None = None):
    """Surgery's key invariant for one mask; returns the extracted sub-network. Its outputs on ``batch`` equal the
    masked super-network's (max abs difference <= ``tolerance``, finite), its ``numel()`` equals the parameter
    count and its layers' ``numel()`` the encoder count (``subnet_size``), and with ``macs_batch`` (eager attention,
    so that torch's FLOP counter sees the attention matmuls) FLOPs / 2 of one forward pass on it equal the MAC
    count per sequence x its sequences."""
    from syne_prune import extract_subnetwork, get_family, masked  # conftest imports syne_prune only where used
    from syne_prune.objectives import subnet_size

    with torch.inference_mode(), masked(model, mask):
        want = model_outputs(model, batch)
    sub = extract_subnetwork(model, mask)
    with torch.inference_mode():
        got = model_outputs(sub, batch)
    where = (mask.heads_per_layer, mask.neurons_per_layer)
    assert got.shape == want.shape and torch.isfinite(want).all(), where
    assert (got - want).abs().max().item() <= tolerance, (*where, (got - want).abs().max().item())
    seq_len = (macs_batch or batch)["input_ids"].shape[-1]
    size = subnet_size(model, mask, seq_len=seq_len)
    assert size.params == sum(p.numel() for p in sub.parameters()), where
    assert size.encoder_params == sum(p.numel() for p in get_family(model.config).layers(sub).parameters()), where
    if macs_batch is not None:
        sub.requires_grad_(False)  # torch's module tracker fails on parameters passed as module inputs (DeBERTa)
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            sub(**{k: v for k, v in macs_batch.items() if k != "labels"})
        assert size.macs * (macs_batch["input_ids"].numel() // seq_len) == counter.get_total_flops() // 2, where
    return sub


def wordpiece_vocabulary(texts: list[str], size: int = 300) -> list[str]:
    """A WordPiece vocabulary built deterministically (the tokenizers trainer breaks ties differently in every
    process, which changed the masks and errors from run to run): the special tokens, every character alone and
    as a continuation, then the most frequent lowercase words (ties by spelling)."""
    words = Counter(w for text in texts for w in re.findall(r"\w+|[^\w\s]", text.lower()))
    chars = sorted({c for w in words for c in w})
    frequent = [w for w, _ in sorted(words.items(), key=lambda item: (-item[1], item[0])) if len(w) > 1][:size]
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *(f"##{c}" for c in chars), *frequent]


def save_tiny_model_dir(arch: str, path: Path, texts: list[str], seed: int = 0) -> Path:
    """A tiny random base model plus a WordPiece tokenizer over ``texts`` (``wordpiece_vocabulary``: the same in
    every process), as from_pretrained expects."""
    from transformers import BertTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.txt").write_text("\n".join(wordpiece_vocabulary(texts)) + "\n")
    tokenizer = BertTokenizerFast(vocab=str(path / "vocab.txt"))  # transformers 5: `vocab`; `vocab_file` is silently ignored
    assert len(tokenizer) > 100, f"the tiny tokenizer has {len(tokenizer)} tokens: its vocabulary was not read"
    extra = {"pad_token_id": 0} if arch in ("roberta", "xlm-roberta") else {}  # the tokenizer pads with id 0
    torch.manual_seed(seed)
    base_class, _ = CLASSES[arch]
    config = tiny_config(arch)
    for key, value in {"vocab_size": len(tokenizer), "max_position_embeddings": 160, **extra}.items():
        setattr(config, key, value)
    model = base_class(config)
    _randomize_norms_and_biases(model)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory, glue_dir) -> dict[str, Path]:
    from syne_prune.data import load_task

    texts = []
    for task in ("rte", "mrpc", "stsb"):
        data = load_task(task, glue_dir)
        texts += [t for column in data.train.texts for t in column]
    root = tmp_path_factory.mktemp("models")
    return {arch: save_tiny_model_dir(arch, root / arch, texts) for arch in ARCHS}


@pytest.fixture(scope="session")
def supernets(tiny_model_dirs, glue_dir, tmp_path_factory) -> dict:
    """Tiny BERT and RoBERTa super-networks (medium space, sandwich) trained on the RTE slice."""
    from syne_prune.supernet import TrainingConfig, train_supernet

    root = tmp_path_factory.mktemp("supernets")
    out = {}
    for arch in ("bert", "roberta"):
        config = TrainingConfig(teacher=None, model=str(tiny_model_dirs[arch]), task="rte", output=str(root / arch), data_dir=str(glue_dir),
                                search_space="medium", strategy="sandwich", epochs=2, batch_size=16, lr=1e-3, max_length=48)
        train_supernet(config, progress=False)
        out[arch] = root / arch
    return out


def reload_without_syne_prune(expected_file: Path, cwd: Path) -> tuple[float, int]:
    """Loads every export listed in ``expected_file`` (a torch file {"records": [(dir, head, want)] or [(dir, head,
    batch, want, parameters)], "auto": {head: Auto class name}, "batches": {head: batch} for records without their own
    batch}) in a fresh interpreter where ``import syne_prune`` fails, with plain transformers and ``trust_remote_code``,
    checking the parameter count where a record gives it; returns (worst max-abs difference to ``want``, exports)."""
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["syne_prune"] = None  # any import of syne_prune now raises ImportError
        import torch
        import transformers
        data = torch.load({str(expected_file)!r})
        worst = 0.0
        for record in data["records"]:
            out, head, batch, want, params = record if len(record) == 5 else (*record[:2], data["batches"][record[1]], record[2], None)
            model = getattr(transformers, data["auto"][head]).from_pretrained(out, trust_remote_code=True).eval()
            assert params is None or sum(p.numel() for p in model.parameters()) == params, out
            with torch.inference_mode():
                result = model(**batch)
            got = result.last_hidden_state if head == "base" else result.logits
            worst = max(worst, (got - want).abs().max().item())
        print("WORST", worst, len(data["records"]))
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    run = subprocess.run([sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    worst, count = run.stdout.split("WORST")[1].split()
    return float(worst), int(count)
