"""During a search, warnings and other libraries' log records go to the search's log file, not the console."""
from __future__ import annotations

import io
import logging
import warnings

from gpytorch.utils.warnings import NumericalWarning
from transformers.utils import logging as transformers_logging

from syne_prune.search.console import third_party_output_to


def test_third_party_warnings_and_records_go_to_the_log_and_ours_to_the_console(tmp_path):
    console = io.StringIO()
    handler = logging.StreamHandler(console)  # stands for the stderr handler Syne Tune's logging.basicConfig() installs
    library = logging.getLogger("syne_tune.test_console")
    ours = logging.getLogger("syne_prune.test_console")
    logging.getLogger().addHandler(handler)
    original_showwarning = warnings.showwarning
    transformers_logging.enable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            with third_party_output_to(tmp_path / "search.log"):
                warnings.warn("Very small noise values detected (test)", NumericalWarning)
                library.warning("a library's record (test)")
                ours.warning("our message (test)")
                bars_during = transformers_logging.is_progress_bar_enabled()
            library.warning("after the search (test)")
    finally:
        logging.getLogger().removeHandler(handler)
    log = (tmp_path / "search.log").read_text()
    shown = console.getvalue()
    assert "NumericalWarning: Very small noise values detected (test)" in log and "syne_tune.test_console: a library's record (test)" in log
    assert "our message (test)" not in log
    assert shown == "our message (test)\nafter the search (test)\n"  # ours during the search; everything again after it
    assert bars_during is False and transformers_logging.is_progress_bar_enabled() is True  # restored
    assert warnings.showwarning is original_showwarning


def test_the_log_file_is_appended_to(tmp_path):
    (tmp_path / "search.log").write_text("part 0\n")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        with third_party_output_to(tmp_path / "search.log"):
            warnings.warn("part 1 (test)", UserWarning)
    lines = (tmp_path / "search.log").read_text().splitlines()
    assert lines[0] == "part 0" and "UserWarning: part 1 (test)" in lines[1]
