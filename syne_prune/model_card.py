"""The model card (``README.md``) of an export: Hugging Face's format, YAML metadata then a short text.

Written from what the export directory holds, ``syne_prune.json`` (``artifacts.ExportDir``) and ``config.json``, by
every writer of exports (``export.py``: ``export``, ``recover``, ``prune``). The metadata (``huggingface_hub``'s
``ModelCardData``) names the base model, the task, its dataset and metric, and a ``model-index`` with the numbers
recorded for this model: the recovery's ``after`` scores, else the baseline's, else the search trial's (metric =
1 - the trial's error); a split that was not scored (a task without test data, a trial not on the Pareto front) has
no entry. The text gives the shape, the sizes, the commands recorded, how to load the model and its limits.

A card ends with the sha256 of its text; a ``README.md`` without a matching one (the user's own, or a card edited
since) is never replaced: ``check_replaceable`` refuses before anything is written.
"""
from __future__ import annotations

import hashlib
import json
import re
import shlex
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from transformers import PretrainedConfig

from syne_prune.artifacts import ExportDir, SupernetDir
from syne_prune.data import get_metric, get_task, task_name
from syne_prune.errors import SynePruneError
from syne_prune.models import TASK_HEADS, family_of_any

CARD_FILE = "README.md"
TAGS = ["syne-prune", "pruned", "structured-pruning"]
PIPELINE_TAGS = {"AutoModelForSequenceClassification": "text-classification", "AutoModelForMultipleChoice": "multiple-choice",
                 "AutoModel": "feature-extraction"}
_DIGEST = re.compile(r"<!-- syne-prune model card; sha256 of the text above: ([0-9a-f]{64}) -->\n\Z")
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")


def write_model_card(directory: str | Path, output: str | Path | None = None) -> Path:
    """Write ``directory/README.md`` from its ``syne_prune.json`` and ``config.json``; returns its path. ``output``: the
    directory's final path, where it is written under a temporary name (the card's name and ``--output``). Raises
    SynePruneError, writing nothing, where ``directory`` holds a README.md that syne-prune did not write."""
    directory = Path(directory)
    _refuse_foreign(directory / CARD_FILE, "move it away to write the model card")
    record, config = ExportDir(directory).read(), PretrainedConfig.get_config_dict(str(directory))[0]
    text = model_card(record, config, Path(output or directory), onnx=(directory / "model.onnx").is_file())
    (directory / CARD_FILE).write_text(text, encoding="utf-8")
    return directory / CARD_FILE


def check_replaceable(directory: str | Path, flag: str = "--overwrite") -> None:
    """Raise SynePruneError when replacing ``directory`` would lose a ``README.md`` that syne-prune did not write as it
    is now (in ``directory`` or a folder right under it, as ``prune`` writes one export per budget)."""
    directory = Path(directory)
    if not directory.is_dir():
        return
    for path in [directory / CARD_FILE, *directory.glob(f"*/{CARD_FILE}")]:
        _refuse_foreign(path, f"{flag} would replace it: move it out of '{directory}' or choose a new --output")


def _refuse_foreign(path: Path, fix: str) -> None:
    if path.is_file() and not is_generated(path.read_text(encoding="utf-8", errors="replace")):
        raise SynePruneError(f"'{path}' is a README.md that syne-prune did not write (or one edited since); {fix}")


def is_generated(text: str) -> bool:
    """Whether ``text`` is a model card as ``model_card`` wrote it: its last line holds the sha256 of the text above."""
    match = _DIGEST.search(text)
    return bool(match) and hashlib.sha256(text[:match.start()].encode()).hexdigest() == match.group(1)


def model_card(record: dict[str, Any], config: dict[str, Any], output: Path, onnx: bool = False) -> str:
    """The card of the export whose ``syne_prune.json`` is ``record`` and ``config.json`` is ``config``, written to
    ``output``: YAML front matter (``ModelCardData``), the text, and the digest line ``is_generated`` checks."""
    task = get_task(record["task"]) if record.get("task") is not None else None
    head = next((auto for auto, suffix in TASK_HEADS.items() if any(a.endswith(suffix) for a in config.get("architectures") or [])),
                "AutoModel")
    base = base_model(record)
    metric = get_metric(task.metric_name, "regression" if task.is_regression else "classification") if task else None
    scores, source = _scores(record)
    family = family_of_any(SimpleNamespace(model_type=config.get("model_type")))
    data = ModelCardData(
        base_model=base if base and _HUB_ID.fullmatch(base) and not Path(base).exists() else None,
        library_name="transformers", pipeline_tag=PIPELINE_TAGS[head], tags=TAGS, model_name=output.name,
        datasets=[_dataset(task)[0]] if task and _dataset(task)[2] else None, metrics=[metric.hub_id] if metric else None,
        eval_results=[_result(task, metric, split, scores[split]) for split in ("validation", "test") if task and scores.get(split)] or None)
    body = [f"# {output.name}", "",
            f"A structurally pruned {family.name if family else config.get('model_type')} encoder"
            f"{f' for {task_name(task)}' if task else ''}, written by "
            f"syne-prune {record.get('versions', {}).get('syne_prune', '')} from `{base or record.get('source_model', '')}`.", "",
            *_shape(record), *_results(task, scores, source, record), "## How it was made", "", "```bash",
            *commands(record, output), "```", "", *_loading(head, config, output, onnx), *_limits(record, task, config)]
    text = f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body) + "\n"
    ModelCard(text)  # the front matter parses as a card's
    return text + f"<!-- syne-prune model card; sha256 of the text above: {hashlib.sha256(text.encode()).hexdigest()} -->\n"


def base_model(record: dict[str, Any]) -> str | None:
    """The pre-trained model the export comes from: the ``--model`` of the super-network (or of the fine-tuned model
    that ``train-supernet`` wrote) it was pruned from, read from that directory's ``supernet.json``; without one, the
    model it was extracted from; None for a super-network no longer there."""
    for path in (record.get("supernet"), record.get("source_model")):
        try:
            if path and SupernetDir(path).is_complete():
                return SupernetDir(path).read().get("model")
        except SynePruneError:  # damaged since: the card names no base model
            continue
    return None if record.get("supernet") else record.get("source_model") or None


def _scores(record: dict[str, Any]) -> tuple[dict[str, dict | None], str]:
    """``({"validation": {metric: v, "error": e} or None, "test": ...}, where they come from)``."""
    if record.get("recovery"):
        return record["recovery"]["after"], "recovery"
    if record.get("baseline"):
        return {split: record["baseline"].get(split) for split in ("validation", "test")}, "baseline"
    found = record.get("search_metrics") or {}
    metric = record.get("metric") or (get_task(record["task"]).metric_name if record.get("task") else "metric")
    scores = {split: {metric: 1.0 - found[key], "error": found[key]} if found.get(key) is not None else None
              for split, key in (("validation", "error"), ("test", "test_error"))}
    return scores, "search"


def _dataset(task) -> tuple[str, str | None, bool]:
    """(dataset id or name, its configuration, whether the id is a hub dataset)."""
    spec = task.spec
    if spec is None:
        return (task.hub[0], task.hub[1], True) if task.hub[0] else (task.name, None, False)
    on_hub = bool(spec.dataset) and _HUB_ID.fullmatch(spec.dataset) is not None and not Path(spec.dataset).exists()
    return (spec.dataset, None, True) if on_hub else (task_name(task), None, False)


def _result(task, metric, split: str, scores: dict[str, float]) -> EvalResult:
    dataset, config, _ = _dataset(task)
    return EvalResult(task_type="multiple-choice" if task.is_multiple_choice else "text-classification", dataset_type=dataset,
                      dataset_name=task_name(task), dataset_config=config, dataset_split=split, metric_type=metric.hub_id,
                      metric_name=f"{split} {task.metric_name}", metric_value=scores[task.metric_name])


def _shape(record: dict[str, Any]) -> list[str]:
    heads, neurons, kept = record["heads_per_layer"], record["neurons_per_layer"], set(record["kept_layers"])
    macs = next((k for k in record if k.startswith("macs_per_sequence_")), None)
    removed = [str(i) for i in range(len(heads)) if i not in kept]
    lines = ["## Shape", "", f"{len(kept)} of {len(heads)} layers kept" + (f" (removed: {', '.join(removed)})" if removed else "") + ".",
             "", "| layer | attention heads | FFN neurons |", "| --- | --- | --- |"]
    lines += [f"| {i} | {heads[i]} | {neurons[i]} |" for i in sorted(kept)]
    lines += ["", f"- parameters: {record['params']:,} ({record['params_ratio']:.1%} of the unpruned model; "
              f"{record['encoder_params_ratio']:.1%} of its prunable encoder layers)"]
    if macs:
        lines.append(f"- multiply-accumulates per {macs.rsplit('_', 1)[1]}-token sequence: {record[macs]:,} "
                     f"({record['macs_ratio']:.1%} of the unpruned model)")
    return lines + [""]


def _results(task, scores: dict, source: str, record: dict[str, Any]) -> list[str]:
    if task is None or not any(scores.values()):
        return ["## Results", "", "No scores recorded: the sub-network was exported from a configuration, not chosen by a search.", ""]
    data = record.get("data") or {}
    where = {"recovery": "after recovery (distillation fine-tuning)", "search": "as recorded by the search (trials.csv)",
             "baseline": f"after the {(record.get('baseline') or {}).get('method')} baseline"}[source]
    test = f"the `{task.hub_test_split}` split of {task.hub[0]}" if task.spec is None and task.hub[0] else "the task's test data"
    validation = ("the task's validation data" if task.spec is not None and any(split == "validation" for split, _ in task.spec.sha256)
                  else f"{data.get('validation_fraction', 0.3):.0%} of the training data held out (seed {data.get('seed', 0)})")
    lines = ["## Results", "", f"{task.metric_name} {where}; validation is {validation}, test is {test}.", "",
             f"| split | {task.metric_name} | error |", "| --- | --- | --- |"]
    for split in ("validation", "test"):
        value = scores.get(split)
        lines.append(f"| {split} | {value[task.metric_name]:.4f} | {value['error']:.4f} |" if value else f"| {split} | no test data or not scored | |")
    if source == "recovery":
        before = record["recovery"]["before"]
        lines += ["", "Before recovery: " + ", ".join(f"{split} {before[split][task.metric_name]:.4f}" for split in ("validation", "test")
                                                      if before.get(split)) + "."]
    return lines + [""]


def commands(record: dict[str, Any], output: Path) -> list[str]:
    """The ``syne-prune`` commands that made the export, as far as ``record`` tells (options it does not record were
    left out: each step's file, e.g. ``supernet.json`` or ``search.json``, holds all of them)."""
    task, data = record.get("task"), record.get("data") or {}
    task_flags = _task_flags(task, data)
    recovery = record.get("recovery")
    exported = Path(recovery["source_export"]) if recovery and recovery.get("source_export") else output
    lines = []
    if record.get("supernet"):
        lines.append(_line("train-supernet", "--model", base_model(record) or "MODEL", *task_flags, "--output", record["supernet"]))
    if record.get("search_dir"):
        source = ("--supernet", record["supernet"]) if record.get("supernet") else ("--trial-kind", "standard", "--model",
                                                                                   record.get("source_model", "MODEL"), *task_flags)
        lines.append(_line("search", *source, "--output", record["search_dir"]))
        export = ["--search-dir", record["search_dir"], "--trial", str(record["trial_id"])]
    else:
        export = ["--model", record.get("supernet") or record.get("source_model", "MODEL"), "--search-space", str(record.get("search_space")),
                  "--config", json.dumps(record.get("config"), separators=(",", ":"))]
    if record.get("baseline"):
        baseline = record["baseline"]
        kind, ratio = baseline["budget"]["kind"], baseline["budget"]["ratio"]
        lines.append(_line("prune", "--method", baseline["method"], "--model", record.get("source_model", "MODEL"), *task_flags,
                           f"--max-{kind.replace('_', '-')}", str(ratio), "--finetune-epochs", str(baseline["finetune_epochs"]),
                           "--output", str(exported.parent)))
    elif recovery and not recovery.get("source_export"):  # export --recover-epochs
        auto = [part for name in ("patience", "max_epochs") for part in (f"--recover-{name.replace('_', '-')}", str(recovery["settings"][name]))
                if recovery["settings"]["epochs"] == "auto"]
        lines.append(_line("export", *export, "--recover-epochs", str(recovery["settings"]["epochs"]), *auto, "--teacher", recovery["teacher"],
                           "--output", str(output)))
    else:
        lines.append(_line("export", *export, "--output", str(exported)))
    if recovery and recovery.get("source_export"):
        settings = {k: v for k, v in recovery["settings"].items() if v is not None and k != "epochs"}
        lines.append(_line("recover", "--model", str(exported), "--teacher", recovery["teacher"], "--epochs", str(recovery["settings"]["epochs"]),
                           *(part for k, v in settings.items() for part in (f"--{k.replace('_', '-')}", str(v))), "--output", str(output)))
    return lines


def _task_flags(task: Any, data: dict[str, Any]) -> list[str]:
    if task is None:
        return []
    if isinstance(task, str):
        return ["--task", task, *(["--data-dir", data["data_dir"]] if data.get("data_dir") else [])]
    flags = [(f"--{k.replace('_', '-')}", task.get(k)) for k in ("train_file", "validation_file", "test_file", "dataset", "label_column")]
    return [part for flag, value in flags if value for part in (flag, str(value))]


def _line(command: str, *arguments: str) -> str:
    return " ".join(["syne-prune", command, *(shlex.quote(str(a)) for a in arguments)])


def _loading(head: str, config: dict[str, Any], output: Path, onnx: bool) -> list[str]:
    remote = bool(config.get("auto_map"))
    flag = ", trust_remote_code=True" if remote else ""
    lines = ["## Loading", "", "With syne-prune installed (its import registers the pruned classes):", "", "```python",
             "import syne_prune  # noqa: F401", f"from transformers import AutoTokenizer, {head}", "",
             f'model = {head}.from_pretrained("{output}")', f'tokenizer = AutoTokenizer.from_pretrained("{output}")', "```", "",
             "Without syne-prune, with transformers only:", "", "```python", f"from transformers import AutoTokenizer, {head}", "",
             f'model = {head}.from_pretrained("{output}"{flag})', f'tokenizer = AutoTokenizer.from_pretrained("{output}"{flag})', "```", ""]
    if onnx:
        lines += ["`model.onnx` (opset 18, dynamic batch and sequence length) runs in onnxruntime; it was checked against PyTorch.", ""]
    return lines


def _limits(record: dict[str, Any], task, config: dict[str, Any]) -> list[str]:
    lines = ["## Limits", ""]
    if config.get("auto_map"):
        lines.append("- Its layers differ in heads or FFN width (or layers were removed), which no stock transformers config describes: "
                     "without syne-prune it loads only with `trust_remote_code=True`, which runs `modeling_syne_prune.py` and the "
                     "family module beside it (torch and transformers only); read them before you trust them.")
    else:
        lines.append("- Every kept layer has the same shape: a stock transformers config, no remote code.")
    if task is not None:
        lines.append(f"- Scored on {task_name(task)} only, with at most {(record.get('data') or {}).get('max_length', 128)} tokens per "
                     "example; the numbers say nothing of other data.")
    if record.get("supernet") and not record.get("recovery"):
        lines.append("- Its weights are the super-network's, shared with every other sub-network during training; "
                     "`syne-prune recover` fine-tunes it on its own.")
    return lines + [""]
