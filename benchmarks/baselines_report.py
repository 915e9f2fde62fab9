"""The report of ``baselines_vs_search.py``: the size plot (ours beside the paper's BERT-base), the hypervolume plot
and ``results.md`` (quality kept, test errors, final hypervolumes)."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
from paper_anchors import SIZES_TABLE, prunable_rows

COLUMNS = ["runtime", "threshold", "test_error", "valid_error", "method", "model", "dataset", "seed"]
TABLE_THRESHOLDS = (0.75, 0.5, 0.33)  # shares of the prunable parameters the tables report (always in the grid)
COLORS = {"nas": "C0", "standard_nas": "C1", "rfp": "C2", "ld": "C3", "hp": "C4",  # one colour per method in every panel
          "random_search": "C5", "local_search": "C6", "nsga2": "C7", "ehvi": "C8", "moasha": "C9", "morea": "black"}


@functools.lru_cache(maxsize=None)
def constant_error(task: str, data_dir: str) -> float | None:
    """Test error of the best constant answer (``evaluation.constant_answer``) where it scores above 0: the majority
    class for accuracy (RTE: 0.473), "paraphrase" everywhere for MRPC's F1 (1 - 0.812). None where a constant scores 0
    (Spearman, Matthews): there the plain ratio already is the share of the gain over it. The share of the
    reference's gain over that answer is the informative yardstick where a constant already scores high (as
    ``benchmarks/quality.py``)."""
    from syne_prune.data import get_task, load_task
    from syne_prune.evaluation import constant_answer

    error = constant_answer(get_task(task), load_task(task, data_dir).test.labels)["error"]
    return error if error < 1.0 - 1e-12 else None


def not_learned(references: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``references`` (with ``constant_error``) whose test error is not below it by more than
    ``evaluation.LEARNED_MARGIN``: the reference did not learn the task, so its shares say nothing about pruning."""
    from syne_prune.evaluation import LEARNED_MARGIN

    constant = references["constant_error"].astype(float)
    return references[constant.notna() & (references["test_error"] >= constant - LEARNED_MARGIN)]


def kept_shares(sizes: pd.DataFrame, references: pd.DataFrame) -> pd.DataFrame:
    """``sizes`` with ``kept``: the test metric over the same seed's unpruned reference's, (1 - error) / (1 - error)."""
    merged = sizes.merge(references[["dataset", "model", "seed", "test_error"]].rename(columns={"test_error": "reference_error"}),
                         on=["dataset", "model", "seed"], how="left")
    merged = merged.assign(kept=(1 - merged["test_error"]) / (1 - merged["reference_error"]))
    if "constant_error" in references:  # the share of the reference's gain over the constant answer
        constant = merged["dataset"].map(references.drop_duplicates("dataset").set_index("dataset")["constant_error"])
        merged["gain_kept"] = (constant - merged["test_error"]) / (constant - merged["reference_error"])
    return merged


def plot_sizes(ours: pd.DataFrame, path: Path, anchors: Path, table: str = SIZES_TABLE) -> None:
    """Per dataset, test error over the threshold (mean ± std over seeds) per method: ours (left) beside the paper's
    BERT-base rows of ``table`` in ``anchors`` (right, thresholds converted to prunable shares)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paper = prunable_rows(anchors, table=table) if (anchors / table).is_file() else pd.DataFrame(columns=COLUMNS)
    datasets = sorted(ours["dataset"].unique())
    fig, axes = plt.subplots(len(datasets), 2, figsize=(10, 3.4 * len(datasets)), squeeze=False)
    for row, dataset in enumerate(datasets):
        for column, (frame, label) in enumerate(((ours, "ours: " + ", ".join(ours["model"].unique())), (paper, "paper: bert-base-cased"))):
            ax = axes[row][column]
            for method, group in frame[frame["dataset"] == dataset].groupby("method"):
                mean = group.groupby("threshold")["test_error"].agg(["mean", "std", "count"]).reset_index()
                ax.errorbar(mean["threshold"], mean["mean"], yerr=mean["std"].fillna(0), marker="o", ms=3, capsize=2, label=f"{method}",
                            color=COLORS.get(method))
            ax.set_title(f"{dataset} ({label})", fontsize=9)
            ax.set_xlabel("threshold: share of the prunable (encoder) parameters")
            ax.set_ylabel("test error (best on validation)")
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_hypervolume(hv: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted(hv.groupby(["model", "dataset", "seed"]).groups)
    fig, axes = plt.subplots(len(keys), 1, figsize=(6, 3.2 * len(keys)), squeeze=False)
    for ax, (model, dataset, seed) in zip(axes[:, 0], keys):
        for method, group in hv[(hv["model"] == model) & (hv["dataset"] == dataset) & (hv["seed"] == seed)].groupby("method"):
            ax.step(group["runtime"], group["hv"], where="post", marker=".", label=method, color=COLORS.get(method))
        ax.set_title(f"{model} / {dataset} / seed {seed}", fontsize=9)
        ax.set_xlabel("wall-clock (s)")
        ax.set_ylabel("hypervolume (valid error, prunable share)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _mean_std(values: pd.Series, fmt: str) -> str:
    return format(values.mean(), fmt) + (f" ± {format(values.std(), fmt)}" if len(values) > 1 else "") + f" ({len(values)})"


def _kept_table(group: pd.DataFrame, paper: pd.DataFrame, dataset: str, gain: bool) -> list[str]:
    """Markdown rows: per method, kept (and gain) at the TABLE_THRESHOLDS (mean ± std (seeds)) beside the paper's."""
    columns = ["kept", "gain", "paper"] if gain else ["kept", "paper"]
    lines = ["| method | " + " | ".join(f"{c} <= {t:g}" for t in TABLE_THRESHOLDS for c in columns) + " |",
             "|---|" + "---|" * len(columns) * len(TABLE_THRESHOLDS)]
    for method, rows in group.groupby("method"):
        cells = []
        for t in TABLE_THRESHOLDS:
            mine = rows[np.isclose(rows["threshold"], t)]
            theirs = paper[(paper["dataset"] == dataset) & (paper["method"] == method) & np.isclose(paper["threshold"], t)]
            cells.append(_mean_std(mine["kept"].dropna(), ".1%") if len(mine) else "–")
            if gain:
                cells.append(_mean_std(mine["gain_kept"].dropna(), ".1%") if len(mine) else "–")
            cells.append(f"{theirs['kept_mean'].iloc[0]:.1%}" if len(theirs) else "–")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def _error_grid(group: pd.DataFrame) -> list[str]:
    """Markdown rows: per method, the test error below every threshold of the grid (mean ± std over seeds)."""
    table = group.groupby(["method", "threshold"])["test_error"].agg(["mean", "std", "count"]).reset_index()
    grid = sorted(table["threshold"].unique())
    lines = ["| method | " + " | ".join(f"<= {t:g}" for t in grid) + " |", "|---|" + "---|" * len(grid)]
    for method, rows in table.groupby("method"):
        cells = {r.threshold: f"{r.mean:.3f}" + (f" ± {r.std:.3f}" if r.count > 1 else "") for r in rows.itertuples()}
        lines.append(f"| {method} | " + " | ".join(cells.get(t, "–") for t in grid) + " |")
    return lines


def _warnings(references: pd.DataFrame) -> list[str]:
    """One line per reference that did not learn its task (``not_learned``)."""
    lines = [f"**Warning: the {r.model} reference of {r.dataset} seed {r.seed} did not learn the task** (test metric "
             f"{1 - r.test_error:.3f}; the best constant answer scores {1 - r.constant_error:.3f}): its rows say nothing about pruning."
             for r in not_learned(references).itertuples()]
    return lines + [""] if lines else []


def markdown(found, paper: pd.DataFrame, paper_by_scheduler: pd.DataFrame, args) -> str:
    """results.md from ``baselines_collect.collect``'s ``found``: per dataset, the quality kept at the TABLE_THRESHOLDS
    beside the paper's BERT-base (``paper_anchors.paper_kept`` of its size table), the test error over the whole grid;
    the same for WS-NAS per scheduler (beside the paper's scheduler table); the final hypervolume per method (means ±
    std over seeds, seed counts in brackets). A reference that did not learn its task gets a warning line."""
    references = found.references
    lines = [f"# Baselines against the search ({args.scale} scale)", "",
             "Thresholds are shares of the prunable (encoder) parameters; the paper's all-parameter thresholds are converted "
             "(benchmarks/paper_anchors.py). Kept: test metric of the best-on-validation sub-network below the threshold over "
             "the same seed's unpruned fine-tuned reference; mean ± std (seeds).", "", *_warnings(references)]
    for title, sizes, theirs in (("", found.sizes, paper), ("WS-NAS by scheduler: ", found.by_scheduler, paper_by_scheduler)):
        kept = kept_shares(sizes, references) if len(sizes) else sizes
        for (model, dataset), group in (kept.groupby(["model", "dataset"]) if len(kept) else ()):
            ref = references[(references["model"] == model) & (references["dataset"] == dataset)]
            gain = "gain_kept" in group and bool(group["gain_kept"].notna().any())
            lines += [f"## {title}{model} / {dataset}", "", f"Unpruned reference test metric: {_mean_std(1 - ref['test_error'], '.3f')}."]
            if gain:
                lines += [f"The best constant answer scores {1 - ref['constant_error'].iloc[0]:.3f}; `gain` is the share of the "
                          "reference's gain over that constant answer that is kept (the yardstick of benchmarks/quality.py)."]
            lines += ["", *_kept_table(group, theirs, dataset, gain), "", "Test error (1 - metric) below each threshold:", "",
                      *_error_grid(group), ""]
    finals = found.finals
    if len(finals):
        floor = min(TABLE_THRESHOLDS)
        lines += ["## Final hypervolume and wall-clock", "",
                  "Hypervolume of (validation error, prunable share), reference point (1, 1): of the whole front, and of the "
                  f"range a baseline sweeps (shares below {floor:g} counted as {floor:g}); wall-clock from the start of the "
                  "reference fine-tune (see the script's text); over the constant answer: validation errors as shares of the best "
                  "constant answer's, so only what a sub-network gains over answering one value everywhere counts (runs "
                  "collected before it was kept: –).", "",
                  "| model | dataset | method | hypervolume | swept range | over the constant answer | wall-clock (s) |",
                  "|---|---|---|---|---|---|---|"]
        for (model, dataset, method), rows in finals.groupby(["model", "dataset", "method"]):
            gain = rows["hv_gain"].dropna() if "hv_gain" in rows else rows["hv"].iloc[:0]
            lines.append(f"| {model} | {dataset} | {method} | {_mean_std(rows['hv'], '.4f')} | {_mean_std(rows['hv_swept'], '.4f')} | "
                         f"{_mean_std(gain, '.4f') if len(gain) else '–'} | {_mean_std(rows['runtime'], '.0f')} |")
    return "\n".join(lines) + "\n"
