"""Checkpoint logs (Data Mixing Laws' layout) and which checkpoints the fit uses."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from climb_bayes.data.checkpoint_log import TOKENS_PER_STEP, read_checkpoint_log
from climb_bayes.data.validation import validate_pilots
from climb_bayes.errors import INPUT_ERROR_STATUS, InputError
from climb_bayes.model.fitting import pilot_rows

ROOT = "/ckpts/RedPajama/"
VALID = "/data/pythia-pile.valid.{}.bin"
#: (run directory, weights) of a three-domain log; the second run's weights sum to 1.02.
RUNS = {"70M_RP_0-0.5-0.25-0.25": (0.5, 0.25, 0.25), "70M_RP_7-0.2-0.2-0.62": (0.2, 0.2, 0.62),
        "70M_RP_3-0.1-0.7-0.2": (0.1, 0.7, 0.2)}
STEPS = (10000, 12000, 30000)
DOMAINS = ("Github", "Pile-CC")


def loss_of(run: int, step: int, domain: int) -> float:
    return float(3.0 + run * 0.1 + domain * 0.5 - 0.2 * np.log(step / 1e4))


def log_lines() -> list[str]:
    """A log in the published layout: every (run, step, domain), one line repeated."""
    lines = [f"{ROOT}/{run}/{step}\t{VALID.format(domain)}\t{loss_of(r, step, d)!r}"
             for r, run in enumerate(RUNS) for step in STEPS
             for d, domain in enumerate(DOMAINS)]
    return [*lines, lines[3]]


def write_log(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "70M.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_log_becomes_a_pilot_table_with_tokens_shares_and_losses(tmp_path) -> None:
    frame = read_checkpoint_log(write_log(tmp_path, log_lines()), sources=["a", "b", "c"],
                                normalise=True)
    assert len(frame) == len(RUNS) * len(STEPS) * len(DOMAINS)  # the repeated line kept once
    assert list(frame.columns) == ["run_id", "tokens", "language", "loss", "share_a",
                                   "share_b", "share_c", "model"]
    row = frame[(frame["run_id"] == "70M_RP_7-0.2-0.2-0.62") & (frame["language"] == "Pile-CC")
                & (frame["tokens"] == 12000 * TOKENS_PER_STEP)].iloc[0]
    assert row["loss"] == pytest.approx(loss_of(1, 12000, 1), rel=1e-12)
    assert row[["share_a", "share_b", "share_c"]].tolist() == pytest.approx(
        [0.2 / 1.02, 0.2 / 1.02, 0.62 / 1.02])
    assert row["model"] == "70M"
    table = validate_pilots(frame)
    assert table.sources == ["a", "b", "c"] and set(table.targets) == set(DOMAINS)


def test_default_source_names_number_the_weights(tmp_path) -> None:
    frame = read_checkpoint_log(write_log(tmp_path, log_lines()), normalise=True)
    assert [c for c in frame if c.startswith("share_")] == ["share_domain1", "share_domain2",
                                                            "share_domain3"]


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda lines: [*lines, lines[0].rsplit("\t", 1)[0] + "\t2.5"], "2 different losses"),
    (lambda lines: [*lines, "not a log line"], "line 20: expected '<run>/<step>"),
    (lambda lines: [*lines, lines[0].replace("/10000\t", "/ten\t")], "line 20: the step"),
    (lambda lines: [*lines, f"{ROOT}/70M_RP_9-0.5-0.5/10000\t{VALID.format('Github')}\t3.1"],
     "Give one name per weight"),
])
def test_a_malformed_log_names_the_line_and_the_fix(tmp_path, edit, expected) -> None:
    with pytest.raises(InputError, match="70M.txt") as caught:
        read_checkpoint_log(write_log(tmp_path, edit(log_lines())), sources=["a", "b", "c"])
    assert expected in str(caught.value)


def test_convert_writes_a_log_as_a_pilot_table_and_refuses_a_sum_off_one(cli, tmp_path) -> None:
    log = write_log(tmp_path, log_lines())
    output = tmp_path / "pilots.csv"
    refused = cli("climb_bayes.convert", f"log={log}", f"output={output}")
    assert refused.returncode == INPUT_ERROR_STATUS and not output.exists()
    assert "sum to 1" in refused.stderr
    done = cli("climb_bayes.convert", f"log={log}", f"output={output}", "normalise=true",
               "sources=[web,code,books]")
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(output)
    assert len(table) == 18 and "share_books" in table


def test_the_fit_uses_final_checkpoints_unless_asked_for_all(tmp_path) -> None:
    frame = read_checkpoint_log(write_log(tmp_path, log_lines()), normalise=True)
    table = validate_pilots(frame)
    final = pilot_rows(table, "final")
    assert (final.frame["tokens"] == 30000 * TOKENS_PER_STEP).all()
    assert len(final.frame) == len(RUNS) * len(DOMAINS)
    assert pilot_rows(table, "all").frame.equals(table.frame)
