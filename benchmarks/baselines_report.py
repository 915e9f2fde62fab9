"""The report of ``baselines_vs_search.py``: the size plot (ours beside the paper's BERT-base), the hypervolume plot
and ``results.md`` (quality kept, test errors, final hypervolumes)."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
from paper_anchors import prunable_rows

COLUMNS = ["runtime", "threshold", "test_error", "valid_error", "method", "model", "dataset", "seed"]
TABLE_THRESHOLDS = (0.75, 0.5, 0.33)  # shares of the prunable parameters the tables report (always in the grid)
COLORS = {"nas": "C0", "standard_nas": "C1", "rfp": "C2", "ld": "C3", "hp": "C4"}  # one colour per method in every panel


@functools.lru_cache(maxsize=None)
def constant_error(task: str, data_dir: str) -> float | None:
    """Test error of answering the positive class everywhere, for tasks scored by F1 (MRPC: 1 - 0.812), else None:
    there the share of the reference's gain over it is the informative yardstick (as ``benchmarks/quality.py``)."""
    from sklearn.metrics import f1_score

    from syne_prune.data import get_task, load_task

    if get_task(task).metric_name != "f1":
        return None
    labels = np.asarray(load_task(task, data_dir).test.labels)
    return 1.0 - float(f1_score(labels, np.ones_like(labels)))


def kept_shares(sizes: pd.DataFrame, references: pd.DataFrame) -> pd.DataFrame:
    """``sizes`` with ``kept``: the test metric over the same seed's unpruned reference's, (1 - error) / (1 - error)."""
    merged = sizes.merge(references[["dataset", "model", "seed", "test_error"]].rename(columns={"test_error": "reference_error"}),
                         on=["dataset", "model", "seed"], how="left")
    merged = merged.assign(kept=(1 - merged["test_error"]) / (1 - merged["reference_error"]))
    if "constant_error" in references:  # the share of the reference's gain over the constant answer
        constant = merged["dataset"].map(references.drop_duplicates("dataset").set_index("dataset")["constant_error"])
        merged["gain_kept"] = (constant - merged["test_error"]) / (constant - merged["reference_error"])
    return merged


def plot_sizes(ours: pd.DataFrame, path: Path, anchors: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paper = prunable_rows(anchors) if (anchors / "data_relative_to_model_size.csv").is_file() else pd.DataFrame(columns=COLUMNS)
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


def markdown(sizes: pd.DataFrame, finals: pd.DataFrame, references: pd.DataFrame, paper: pd.DataFrame, args) -> str:
    """results.md: per dataset, the quality kept at the TABLE_THRESHOLDS beside the paper's BERT-base, the test error
    over the whole grid, and the final hypervolume per method (means ± std over seeds, seed counts in brackets)."""
    kept = kept_shares(sizes, references)
    lines = [f"# Baselines against the search ({args.scale} scale)", "",
             "Thresholds are shares of the prunable (encoder) parameters; the paper's all-parameter thresholds are converted "
             "(benchmarks/paper_anchors.py). Kept: test metric of the best-on-validation sub-network below the threshold over "
             "the same seed's unpruned fine-tuned reference; mean ± std (seeds).", ""]
    for (model, dataset), group in kept.groupby(["model", "dataset"]):
        ref = references[(references["model"] == model) & (references["dataset"] == dataset)]
        gain = "gain_kept" in group and bool(group["gain_kept"].notna().any())
        columns = ["kept", "gain", "paper"] if gain else ["kept", "paper"]
        lines += [f"## {model} / {dataset}", "", f"Unpruned reference test metric: {_mean_std(1 - ref['test_error'], '.3f')}."]
        if gain:
            lines += [f"Answering the positive class everywhere scores {1 - ref['constant_error'].iloc[0]:.3f}; `gain` is the share "
                      "of the reference's gain over that constant answer that is kept (the yardstick of benchmarks/quality.py)."]
        lines += ["", "| method | " + " | ".join(f"{c} <= {t:g}" for t in TABLE_THRESHOLDS for c in columns) + " |",
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
        table = group.groupby(["method", "threshold"])["test_error"].agg(["mean", "std", "count"]).reset_index()
        grid = sorted(table["threshold"].unique())
        lines += ["", "Test error (1 - metric) below each threshold:", "", "| method | " + " | ".join(f"<= {t:g}" for t in grid) + " |",
                  "|---|" + "---|" * len(grid)]
        for method, rows in table.groupby("method"):
            cells = {r.threshold: f"{r.mean:.3f}" + (f" ± {r.std:.3f}" if r.count > 1 else "") for r in rows.itertuples()}
            lines.append(f"| {method} | " + " | ".join(cells.get(t, "–") for t in grid) + " |")
        lines.append("")
    if len(finals):
        floor = min(TABLE_THRESHOLDS)
        lines += ["## Final hypervolume and wall-clock", "",
                  "Hypervolume of (validation error, prunable share), reference point (1, 1): of the whole front, and of the "
                  f"range a baseline sweeps (shares below {floor:g} counted as {floor:g}); wall-clock from the start of the "
                  "reference fine-tune (see the script's text).", "",
                  "| model | dataset | method | hypervolume | swept range | wall-clock (s) |", "|---|---|---|---|---|---|"]
        for (model, dataset, method), rows in finals.groupby(["model", "dataset", "method"]):
            lines.append(f"| {model} | {dataset} | {method} | {_mean_std(rows['hv'], '.4f')} | {_mean_std(rows['hv_swept'], '.4f')} | "
                         f"{_mean_std(rows['runtime'], '.0f')} |")
    return "\n".join(lines) + "\n"
