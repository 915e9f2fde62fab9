"""The search's registries (backends, trial kinds): one-line errors listing what is registered, defaults taken
from the registry entries, and the module limits of syne_prune/search (no module over 400 lines, no function
over 80, no import of the CLI from the search)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from syne_prune.cli import main
from syne_prune.errors import SynePruneError
from syne_prune.search import (
    BACKENDS,
    TRIAL_KINDS,
    FineTuneSettings,
    PoolSettings,
    SearchConfig,
    WeightSharingSettings,
    get_backend,
    get_trial_kind,
)

SEARCH = Path(__file__).resolve().parents[2] / "syne_prune" / "search"


def test_the_registries_hold_the_backends_and_trial_kinds_in_their_cli_order():
    assert list(BACKENDS) == ["pool", "local", "sagemaker"]
    assert list(TRIAL_KINDS) == ["weight-sharing", "standard"]
    assert [BACKENDS[name].name for name in BACKENDS] == list(BACKENDS)
    assert [TRIAL_KINDS[name].name for name in TRIAL_KINDS] == list(TRIAL_KINDS)


def test_an_unknown_backend_or_trial_kind_is_one_line_listing_the_registered_ones(monkeypatch):
    with pytest.raises(SynePruneError) as error:
        get_backend("cloud")
    assert str(error.value) == "unknown backend 'cloud'; choose one of pool, local, sagemaker"
    with pytest.raises(SynePruneError) as error:
        get_trial_kind("baseline")
    assert str(error.value) == "unknown trial kind 'baseline'; choose one of weight-sharing, standard"
    with pytest.raises(SynePruneError) as error:
        SearchConfig(trial_settings=WeightSharingSettings("unused"), output="unused", backend="cloud", max_trials=1).check()
    assert str(error.value) == "unknown backend 'cloud'; choose one of pool, local, sagemaker"
    monkeypatch.setitem(TRIAL_KINDS, "recovery", TRIAL_KINDS["standard"])  # the list is the registry's, not a text
    with pytest.raises(SynePruneError) as error:
        get_trial_kind("baseline")
    assert str(error.value) == "unknown trial kind 'baseline'; choose one of weight-sharing, standard, recovery"


@pytest.mark.parametrize("argv, message", [
    (["--trial-kind", "baseline"], "error: argument --trial-kind: unknown trial kind 'baseline'; choose one of weight-sharing, "
                                   "standard (see: syne-prune search --help)"),
    (["--backend", "cloud"], "error: argument --backend: unknown backend 'cloud'; choose one of pool, local, sagemaker "
                             "(see: syne-prune search --help)"),
])
def test_the_cli_refuses_an_unknown_backend_or_trial_kind_with_exit_2(argv, message, tmp_path, capsys):
    assert main(["search", *argv, "--supernet", str(tmp_path), "--output", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [message]
    assert not (tmp_path / "out").exists()


def test_defaults_come_from_the_trial_kind_and_the_backend():
    weight_sharing = SearchConfig(trial_settings=WeightSharingSettings("unused"), output="unused", max_trials=1)
    assert (weight_sharing.scheduler, weight_sharing.backend, weight_sharing.test_split) == ("ehvi", "pool", "pareto")
    assert weight_sharing.max_fidelity == 1  # EHVI is single-fidelity
    assert SearchConfig(trial_settings=WeightSharingSettings("unused"), output="unused", scheduler="moasha", max_trials=1).max_fidelity == 9
    on_sagemaker = SearchConfig(trial_settings=WeightSharingSettings("unused"), output="unused", backend="sagemaker", max_trials=1)
    assert on_sagemaker.test_split == "every-trial"
    standard = SearchConfig(output="unused", trial_kind="standard", trial_settings=FineTuneSettings("m", "rte", epochs=4), max_trials=1)
    assert (standard.scheduler, standard.backend, standard.test_split, standard.max_fidelity) == ("moasha", "local", "every-trial", 4)
    assert standard.kind is TRIAL_KINDS["standard"] and weight_sharing.kind is TRIAL_KINDS["weight-sharing"]


def test_the_pool_refuses_trials_that_train_their_own_network():
    config = SearchConfig(output="unused", trial_kind="standard", trial_settings=FineTuneSettings("m", "rte"), backend="pool", max_trials=1)
    with pytest.raises(SynePruneError, match="--backend pool shares one super-network between trials"):
        config.check()


def test_each_plugin_reads_and_checks_its_own_settings():
    """The trial kind's and the backend's settings are theirs: the wrong type is one line naming the right one."""
    with pytest.raises(SynePruneError, match="trial kind 'standard' needs trial_settings=FineTuneSettings"):
        SearchConfig(output="unused", trial_kind="standard", trial_settings=WeightSharingSettings("unused"), max_trials=1).check()
    with pytest.raises(SynePruneError, match="--backend local takes backend_settings=None, got PoolSettings"):
        SearchConfig(output="unused", trial_settings=WeightSharingSettings("unused"), backend="local", backend_settings=PoolSettings(),
                     max_trials=1).check()
    with pytest.raises(SynePruneError, match="--trial-timeout must be positive seconds"):
        SearchConfig(output="unused", trial_settings=WeightSharingSettings("unused"), backend_settings=PoolSettings(0.0), max_trials=1).check()
    assert [TRIAL_KINDS[n].settings_type for n in TRIAL_KINDS] == [WeightSharingSettings, FineTuneSettings]
    assert [BACKENDS[n].settings_type.__name__ if BACKENDS[n].settings_type else None for n in BACKENDS] == \
        ["PoolSettings", None, "SageMakerSettings"]


def test_the_deprecated_mode_option_still_picks_the_trial_kind_with_a_note(tmp_path, capsys):
    argv = ["search", "--mode", "standard", "--supernet", str(tmp_path), "--output", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["note: --mode is deprecated; use --trial-kind",
                   "error: --trial-kind standard fine-tunes from --model; drop --supernet (or drop --trial-kind standard)"]


def _modules() -> list[Path]:
    return sorted(SEARCH.rglob("*.py"))


def test_search_modules_stay_small_and_never_import_the_cli():
    too_long, long_functions, cli_imports = [], [], []
    for path in _modules():
        text = path.read_text()
        name = path.relative_to(SEARCH).as_posix()
        if len(text.splitlines()) > 400:
            too_long.append(name)
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 80:
                long_functions.append(f"{name}:{node.name}")
        for node in tree.body:  # module level: what importing the module imports
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("syne_prune.cli"):
                cli_imports.append(name)
    assert len(_modules()) >= 25  # the sub-packages are searched too
    assert (too_long, long_functions, cli_imports) == ([], [], [])
