"""Pilot table: format, validation messages, arrays, design warnings, wide conversion, CLI."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from climb_bayes.data.designs import design_warnings
from climb_bayes.data.pilot_table import PilotTable
from climb_bayes.data.table_files import read_pilots, write_pilots
from climb_bayes.data.validation import validate_pilots
from climb_bayes.data.wide_layout import from_wide
from climb_bayes.errors import INPUT_ERROR_STATUS, InputError

REPO = Path(__file__).resolve().parents[1]

#: Training languages en, de, sw (sw is source-only); fr is evaluated but never trained on.
MIXES = {
    "r1": (0.6, 0.3, 0.1),
    "r2": (0.2, 0.5, 0.3),
    "r3": (0.1, 0.1, 0.8),
    "r4": (0.34, 0.33, 0.33),
}
BUDGETS = (1e8, 5e8)
TARGETS = ("en", "de", "fr")


def pilot_frame(mixes: dict[str, tuple[float, ...]] = MIXES) -> pd.DataFrame:
    """A valid pilot frame: 4 runs x 2 budgets x 3 targets = 24 rows."""
    rows = []
    for run, (en, de, sw) in mixes.items():
        for tokens in BUDGETS:
            for number, language in enumerate(TARGETS):
                loss = 3.0 + number * 0.2 + 2.0 * (tokens / 1e8) ** -0.3 - 0.5 * en
                rows.append({"run_id": run, "tokens": tokens, "language": language,
                             "loss": loss, "share_en": en, "share_de": de, "share_sw": sw,
                             "seed": 0})
    return pd.DataFrame(rows)


def write_csv(tmp_path: Path, frame: pd.DataFrame, name: str = "pilots.csv") -> Path:
    """Write ``frame`` as a CSV file and return its path."""
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def error_of(tmp_path: Path, frame: pd.DataFrame) -> str:
    """The message of the InputError that reading ``frame`` from a CSV file raises."""
    path = write_csv(tmp_path, frame)
    with pytest.raises(InputError) as caught:
        read_pilots(path)
    message = str(caught.value)
    assert str(path) in message
    return message


# ----------------------------------------------------------------------------- valid tables


def test_valid_table_languages_and_types(tmp_path: Path) -> None:
    table = read_pilots(write_csv(tmp_path, pilot_frame()))
    assert table.sources == ["en", "de", "sw"]
    assert table.targets == ["en", "de", "fr"]
    assert table.frame["tokens"].dtype == np.float64
    assert table.frame["loss"].dtype == np.float64
    assert table.frame["run_id"].map(type).eq(str).all()
    assert design_warnings(table) == []


@pytest.mark.parametrize("name", ["pilots.csv", "pilots.parquet", "pilots.pq"])
def test_round_trip(tmp_path: Path, name: str) -> None:
    table = validate_pilots(pilot_frame())
    path = tmp_path / "sub" / name
    write_pilots(table.frame, path)
    again = read_pilots(path)
    assert again.path == str(path)
    assert (again.sources, again.targets) == (table.sources, table.targets)
    numeric = ["tokens", "loss", *table.share_columns]
    np.testing.assert_array_equal(again.frame[numeric].to_numpy(), table.frame[numeric].to_numpy())
    assert list(again.frame["run_id"]) == list(table.frame["run_id"])
    assert list(again.frame["language"]) == list(table.frame["language"])
    assert [p.name for p in path.parent.iterdir()] == [name]  # no temporary file left


def test_arrays_index_the_frame() -> None:
    table = validate_pilots(pilot_frame())
    arrays = table.arrays()
    frame = table.frame
    assert arrays.run_ids.tolist() == list(MIXES)
    assert arrays.run_shares.shape == (4, 3)
    assert arrays.point_run.shape == arrays.point_tokens.shape == (8,)
    assert arrays.obs_point.shape == arrays.obs_target.shape == arrays.loss.shape == (24,)
    run_of_row = arrays.point_run[arrays.obs_point]
    assert (arrays.run_ids[run_of_row] == frame["run_id"].to_numpy()).all()
    assert (arrays.point_tokens[arrays.obs_point] == frame["tokens"].to_numpy()).all()
    assert (np.array(table.targets)[arrays.obs_target] == frame["language"].to_numpy()).all()
    np.testing.assert_array_equal(arrays.loss, frame["loss"].to_numpy())
    np.testing.assert_array_equal(arrays.run_shares[run_of_row],
                                  frame[table.share_columns].to_numpy())
    assert np.issubdtype(arrays.obs_point.dtype, np.integer)


def test_runs() -> None:
    runs = validate_pilots(pilot_frame()).runs()
    assert list(runs.columns) == ["run_id", "max_tokens", "share_en", "share_de", "share_sw"]
    assert list(runs["run_id"]) == list(MIXES)
    assert (runs["max_tokens"] == 5e8).all()
    assert runs.loc[1, "share_de"] == 0.5


# ----------------------------------------------------------------------------- bad columns


def test_missing_column(tmp_path: Path) -> None:
    message = error_of(tmp_path, pilot_frame().drop(columns="loss"))
    assert "required column(s) loss missing" in message


def test_misspelled_columns_get_suggestions(tmp_path: Path) -> None:
    frame = pilot_frame().rename(columns={"tokens": "token", "share_de": "shares_de"})
    frame["notes"] = "x"
    message = error_of(tmp_path, frame)
    assert "'token' (did you mean 'tokens'?)" in message
    assert "'shares_de' (did you mean 'share_de'?)" in message
    assert "'notes'" in message and "share_notes" in message
    assert "allowed columns are run_id, tokens, language, loss" in message


def test_no_share_columns(tmp_path: Path) -> None:
    frame = pilot_frame().drop(columns=["share_en", "share_de", "share_sw"])
    assert "no 'share_<language>' column" in error_of(tmp_path, frame)


def test_repeated_header(tmp_path: Path) -> None:
    path = write_csv(tmp_path, pilot_frame())
    lines = path.read_text().splitlines()
    lines[0] = lines[0].replace("seed", "loss")
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"loss appear more than once") as caught:
        read_pilots(path)
    assert str(path) in str(caught.value)


# ----------------------------------------------------------------------------- bad values


def test_share_outside_unit_interval_or_missing(tmp_path: Path) -> None:
    frame = pilot_frame().astype({"share_en": object, "share_de": object})
    frame.loc[2, "share_en"] = 1.2
    frame.loc[6, "share_de"] = None
    message = error_of(tmp_path, frame)
    assert "'share_en' in row 3: 1.2; 'share_de' in row 7: empty" in message


def test_shares_not_summing_to_one(tmp_path: Path) -> None:
    frame = pilot_frame({**MIXES, "r2": (0.2, 0.5, 0.2)})
    message = error_of(tmp_path, frame)
    assert "'r2' (sum 0.9, rows 7, 8, 9, 10, 11 and 1 more)" in message
    assert "normalise=true" in message


def test_bad_loss_values(tmp_path: Path) -> None:
    frame = pilot_frame().astype({"loss": object})
    frame.loc[1, "loss"] = -1.0
    frame.loc[4, "loss"] = "abc"
    frame.loc[6, "loss"] = "inf"
    message = error_of(tmp_path, frame)
    assert "column 'loss'" in message
    assert "rows 2, 5, 7 hold -1.0, 'abc', inf" in message


def test_bad_tokens(tmp_path: Path) -> None:
    frame = pilot_frame()
    frame.loc[9, "tokens"] = 0.0
    message = error_of(tmp_path, frame)
    assert "column 'tokens'" in message and "row 10 hold 0.0" in message


def test_several_problems_are_reported_together(tmp_path: Path) -> None:
    frame = pilot_frame()
    frame.loc[0, "tokens"] = -5.0
    frame.loc[3, "loss"] = np.nan
    message = error_of(tmp_path, frame)
    paragraphs = message.split("\n\n")
    assert len(paragraphs) == 2
    assert "column 'loss'" in paragraphs[0] and "row 4" in paragraphs[0]
    assert "column 'tokens'" in paragraphs[1] and "row 1" in paragraphs[1]


def test_identical_rows(tmp_path: Path) -> None:
    frame = pilot_frame()
    frame = pd.concat([frame, frame.iloc[[0, 1]]], ignore_index=True)
    assert "identical rows: rows 1, 25; rows 2, 26." in error_of(tmp_path, frame)


def test_two_losses_for_one_key(tmp_path: Path) -> None:
    frame = pilot_frame()
    repeated = frame.iloc[[3]].assign(loss=frame.loc[3, "loss"] + 0.1)
    message = error_of(tmp_path, pd.concat([frame, repeated], ignore_index=True))
    assert "run 'r1' at 5e+08 tokens on 'en' (rows 4, 25" in message
    assert "different run_id values" in message


def test_run_with_two_mixes(tmp_path: Path) -> None:
    frame = pilot_frame()
    frame.loc[13, ["share_en", "share_de"]] = [0.15, 0.05]
    message = error_of(tmp_path, frame)
    assert "'r3' (share_en, share_de differ; rows 13, 14, 15, 16, 17 and 1 more)" in message


def test_empty_language(tmp_path: Path) -> None:
    frame = pilot_frame()
    frame.loc[3, "language"] = ""
    assert "column 'language' is empty in row 4" in error_of(tmp_path, frame)


def test_target_without_any_loss(tmp_path: Path) -> None:
    frame = pilot_frame()
    frame.loc[frame["language"] == "fr", "loss"] = np.nan
    message = error_of(tmp_path, frame)
    assert "language 'fr' has no loss in any of its rows (rows 3, 6, 9, 12, 15 and 3 more)" \
        in message
    assert "column 'loss'" not in message


def test_empty_table(tmp_path: Path) -> None:
    assert "no data rows" in error_of(tmp_path, pilot_frame().iloc[:0])


def test_fewer_runs_than_training_languages(tmp_path: Path) -> None:
    frame = pilot_frame()
    message = error_of(tmp_path, frame[frame["run_id"].isin(["r1", "r2"])])
    assert "2 run(s) for 3 training languages (en, de, sw)" in message
    assert "at least 3 pilot runs" in message
    assert "python -m climb_bayes.design" in message


def test_in_memory_frame_is_named() -> None:
    with pytest.raises(InputError, match=r"^<memory>: "):
        validate_pilots(pilot_frame().drop(columns="run_id"))


# ----------------------------------------------------------------------------- bad files


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no such file"):
        read_pilots(tmp_path / "absent.csv")


def test_unknown_suffix(tmp_path: Path) -> None:
    path = tmp_path / "pilots.txt"
    path.write_text("run_id\n")
    with pytest.raises(InputError, match=r"pilots\.txt: unknown table type '\.txt'"):
        read_pilots(path)
    with pytest.raises(InputError, match=r"unknown table type"):
        write_pilots(pilot_frame(), path)


@pytest.mark.parametrize("name", ["pilots.parquet", "pilots.csv"])
def test_unreadable_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"" if name.endswith(".csv") else b"not parquet at all")
    with pytest.raises(InputError, match=r"cannot be read") as caught:
        read_pilots(path)
    assert str(path) in str(caught.value)


# ----------------------------------------------------------------------------- design warnings


def test_single_budget_warning() -> None:
    frame = pilot_frame()
    warnings = design_warnings(validate_pilots(frame[frame["tokens"] == 1e8]))
    assert len(warnings) == 1
    assert "`k`" in warnings[0] and "`beta`" in warnings[0] and "second budget" in warnings[0]


def test_constant_share_warning() -> None:
    mixes = {run: (en, de + sw - 0.1, 0.1) for run, (en, de, sw) in MIXES.items()}
    warnings = design_warnings(validate_pilots(pilot_frame(mixes)))
    assert len(warnings) == 1
    assert "'sw' has the same share (0.1)" in warnings[0] and "vary its share" in warnings[0]


def test_target_at_one_budget_warning() -> None:
    frame = pilot_frame()
    frame = frame[~((frame["language"] == "fr") & (frame["tokens"] == 5e8))]
    warnings = design_warnings(validate_pilots(frame))
    assert len(warnings) == 1 and "language 'fr' is evaluated at one budget" in warnings[0]


# ----------------------------------------------------------------------------- wide layout


def regmix_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Wide tables laid out like RegMix's data/train_mixture_1m.csv and train_pile_loss_1m.csv."""
    mixtures = pd.DataFrame({
        "index": [1, 2, 3, 4],
        "train_the_pile_arxiv": [0.2, 0.5, 0.1, 0.3],
        "train_the_pile_github": [0.3, 0.1, 0.1, 0.3],
        "train_the_pile_pile_cc": [0.499, 0.4, 0.7, 0.3],
        "train_the_pile_europarl": [0.0, 0.0, 0.1, 0.1],
    })
    losses = pd.DataFrame({
        "index": [4, 3, 2, 1],
        "metric/the_pile_arxiv_val_loss": [4.4, 4.9, 4.1, 4.5],
        "metric/the_pile_pile_cc_val_loss": [5.0, 4.8, 5.3, 5.1],
        "metric/the_pile_hackernews_val_loss": [5.3, 5.2, np.nan, 5.5],
    })
    return mixtures, losses


def test_from_wide_regmix_layout() -> None:
    mixtures, losses = regmix_frames()
    frame = from_wide(mixtures, losses, tokens=1e9, run_id_column="index", normalise=True)
    table = validate_pilots(frame)
    assert table.sources == ["the_pile_arxiv", "the_pile_github", "the_pile_pile_cc",
                             "the_pile_europarl"]
    assert table.targets == ["the_pile_arxiv", "the_pile_pile_cc", "the_pile_hackernews"]
    assert len(frame) == 11  # the empty loss cell gives no row
    assert list(frame["run_id"][:3]) == ["4", "4", "4"]
    assert (frame["tokens"] == 1e9).all()
    np.testing.assert_allclose(frame[table.share_columns].sum(axis=1), 1.0)
    run1 = frame[(frame["run_id"] == "1") & (frame["language"] == "the_pile_pile_cc")]
    assert run1["loss"].item() == 5.1
    assert run1["share_the_pile_pile_cc"].item() == pytest.approx(0.499 / 0.999)


def test_from_wide_without_normalising_keeps_rounded_weights() -> None:
    mixtures, losses = regmix_frames()
    frame = from_wide(mixtures, losses, tokens=1e9, run_id_column="index")
    with pytest.raises(InputError, match=r"'1' \(sum 0\.999"):
        validate_pilots(frame)


def test_from_wide_tokens_column_and_plain_names() -> None:
    mixtures = pd.DataFrame({"run_id": ["a", "b"], "tokens": [1e8, 4e8],
                             "share_en": [0.5, 1.0], "de": [0.5, 0.0]})
    losses = pd.DataFrame({"run_id": ["a", "b"], "en": [3.1, 3.0], "de": [3.5, 4.0]})
    table = validate_pilots(from_wide(mixtures, losses))
    assert table.sources == ["en", "de"]
    assert table.frame.groupby("run_id")["tokens"].first().to_dict() == {"a": 1e8, "b": 4e8}


def test_from_wide_by_row_order() -> None:
    mixtures, losses = regmix_frames()
    frame = from_wide(mixtures.drop(columns="index"), losses.drop(columns="index"), tokens=1e9,
                      run_id_column=None, normalise=True)
    assert list(pd.unique(frame["run_id"])) == ["1", "2", "3", "4"]
    first = frame[(frame["run_id"] == "1") & (frame["language"] == "the_pile_arxiv")]
    assert first["loss"].item() == 4.4
    assert first["share_the_pile_arxiv"].item() == pytest.approx(0.2 / 0.999)


def test_from_wide_errors() -> None:
    mixtures, losses = regmix_frames()
    names = ("mix.csv", "loss.csv")
    with pytest.raises(InputError, match=r"^mix\.csv: no 'tokens' column"):
        from_wide(mixtures, losses, run_id_column="index", paths=names)
    with pytest.raises(InputError, match=r"^mix\.csv: no run id column 'run_id'.*"
                                         r"pass run_id_column=index"):
        from_wide(mixtures, losses, tokens=1e9, paths=names)
    with pytest.raises(InputError, match=r"^loss\.csv: run\(s\) 9 have losses but no row"):
        from_wide(mixtures, losses.assign(index=[4, 3, 2, 9]), tokens=1e9,
                  run_id_column="index", paths=names)
    with pytest.raises(InputError, match=r"^mix\.csv: run id\(s\) 1 appear on more than one"):
        from_wide(mixtures.assign(index=[1, 2, 1, 4]), losses, tokens=1e9,
                  run_id_column="index", paths=names)


# ----------------------------------------------------------------------------- command line


def convert(*overrides: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m climb_bayes.convert`` with Hydra overrides."""
    return subprocess.run([sys.executable, "-m", "climb_bayes.convert", *overrides], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)


def test_convert_cli(tmp_path: Path) -> None:
    mixtures, losses = regmix_frames()
    mixtures_path, losses_path = tmp_path / "mix.csv", tmp_path / "loss.csv"
    mixtures.to_csv(mixtures_path, index=False)
    losses.to_csv(losses_path, index=False)
    output = tmp_path / "pilots.csv"
    common = [f"mixtures={mixtures_path}", f"losses={losses_path}", f"output={output}",
              "run_id_column=index"]
    hydra_files = [REPO / name for name in ("outputs", "multirun", ".hydra", "convert.log")]
    before = [path.exists() for path in hydra_files]

    bad = convert(*common)  # no budget given
    assert bad.returncode == INPUT_ERROR_STATUS, bad.stderr
    assert "error:" in bad.stderr and "no 'tokens' column" in bad.stderr
    assert not output.exists()

    rounded = convert(*common, "tokens=1e9")  # weights rounded, not normalised
    assert rounded.returncode == INPUT_ERROR_STATUS, rounded.stderr
    assert "normalise=true" in rounded.stderr and not output.exists()

    good = convert(*common, "tokens=1e9", "normalise=true")
    assert good.returncode == 0, good.stderr
    assert "one budget" in good.stderr  # the design warning
    table = read_pilots(output)
    assert isinstance(table, PilotTable) and len(table.frame) == 11
    assert [path.exists() for path in hydra_files] == before  # Hydra wrote nothing of its own
