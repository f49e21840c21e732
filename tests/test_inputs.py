"""Every command checks its input before it works: an unknown override key, a bad option value,
an output path of the wrong kind or a table in another CSV dialect exits with status 2, names
the key or file and the fix, and writes nothing (climb_bayes/cli.py)."""

import re
import runpy
import warnings
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from climb_bayes.cli import output_directory, output_file
from climb_bayes.data.designs import climb_design
from climb_bayes.data.table_files import read_csv, read_pilots
from climb_bayes.decide.inputs import Options, available_tokens, solve_options
from climb_bayes.decide.inputs import language_weights as solve_language_weights
from climb_bayes.errors import INPUT_ERROR_STATUS, InputError
from climb_bayes.inspect.assemble import ReportSettings
from climb_bayes.model.priors import Priors
from climb_bayes.overrides import check_command_line, check_overrides
from climb_bayes.predict import mix_budgets, read_mixes

REPO = Path(__file__).resolve().parents[1]

# ----------------------------------------------------------------------------- override keys


@pytest.fixture
def groups(tmp_path: Path) -> Path:
    """A config directory whose group ``part`` has options with different keys."""
    (tmp_path / "part").mkdir()
    (tmp_path / "main.yaml").write_text("defaults:\n  - part: a\n  - _self_\nsize: 1\n")
    (tmp_path / "part" / "a.yaml").write_text("alpha: 1\n")
    (tmp_path / "part" / "b.yaml").write_text("beta: 2\n")
    return tmp_path


def refused(config_name: str, overrides: list[str], config_dir: Path | None = None) -> str:
    """The message of the InputError that ``check_overrides`` raises."""
    with pytest.raises(InputError) as error:
        check_overrides(config_name, overrides, *([config_dir] if config_dir else []))
    return str(error.value)


def test_a_typo_names_the_key_and_the_closest_valid_one() -> None:
    message = refused("fit", ["sampler.chains=2", "sampler.chain=2"])
    assert message.startswith("sampler.chain=2: there is no key 'sampler.chain'")
    assert "did you mean sampler.chains?" in message
    assert "+sampler" not in message  # not Hydra's advice to add the key
    assert "did you mean budgets?" in refused("design", ["budget=[1e7,3e7]"])
    assert "did you mean vocab_size?" in refused("corpus", ["vocab=512"])
    # several typos at once, one line each, and a nested key without its parent
    message = refused("config", ["trainer.devics=2", "experiment.seed=1", "model.lr=1e-3"])
    lines = message.splitlines()
    assert len(lines) == 2 and lines[0].startswith("trainer.devics=2")
    assert "did you mean trainer.devices?" in lines[0]
    assert "did you mean model.optimizer.lr" in lines[1]
    assert "did you mean sampler.chains?" in refused("fit", ["chains=2"])


def test_a_key_below_a_null_mapping_gets_the_mapping_syntax() -> None:
    assert "set the whole mapping, e.g. weights={en: 1}" in refused("solve", ["weights.en=1"])


def test_group_selections_and_sweeps_are_composed(groups: Path) -> None:
    check_overrides("main", ["part=b", "part.beta=3", "size=2"], groups)
    check_overrides("main", ["part=a,b", "part.beta=3"], groups)  # one of the options has it
    check_overrides("main", ["size=1,2,3"], groups)  # a sweep over a plain key
    message = refused("main", ["part.beta=3"], groups)  # the default option a has no beta
    assert "no key 'part.beta'" in message and "did you mean part.alpha?" in message
    assert "no key 'sise'" in refused("main", ["sise=1,2"], groups)
    check_overrides("fit", ["law=self_saturating", "law.form=self_saturating"])
    check_overrides("config", ["experiment=pilots", "experiment.design=d.csv"])


def test_added_deleted_and_hydra_keys_are_left_to_hydra(tmp_path: Path) -> None:
    check_overrides("fit", ["+new=1", "++other=2", "~strict", "hydra.run.dir=x",
                            "hydra/job_logging=stdout"])
    check_overrides("design", ["budgets.0=5"])  # an item of a list
    check_overrides("fit", ["law=nonexistent", "sampler.chain=2"])  # Hydra refuses first
    check_overrides("fit", ["sampler.chain=="])  # a syntax error: Hydra explains it
    # a config group of the user's own, added with + from hydra.searchpath
    (tmp_path / "mix").mkdir()
    (tmp_path / "mix" / "posterior_mean.yaml").write_text("shares: {en: 1.0}\n")
    searchpath = f"hydra.searchpath=[file://{tmp_path}]"
    check_overrides("config", [searchpath, "+mix=posterior_mean", "mix.shares.en=1.0"])
    assert "did you mean mix.shares.en?" in refused(
        "config", [searchpath, "+mix=posterior_mean", "mix.share.en=1.0"])


def test_the_command_line_exits_2_but_leaves_help_to_hydra(capsys) -> None:
    check_command_line("fit", ["--help", "sampler.chain=2"])
    check_command_line("fit", ["-m", "sampler.chains=1,2"])
    with pytest.raises(SystemExit) as exit_:
        check_command_line("fit", ["-m", "--cfg", "job", "sampler.chain=1,2"])
    assert exit_.value.code == INPUT_ERROR_STATUS
    assert "error: sampler.chain=1,2: there is no key" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        check_command_line("fit", ["--config-name", "design", "budget=1"])
    assert "did you mean budgets?" in capsys.readouterr().err


ENTRY_POINTS = [("climb_bayes.design", "seed"), ("climb_bayes.fit", "strict"),
                ("climb_bayes.report", "tokens"), ("climb_bayes.predict", "tokens"),
                ("climb_bayes.solve", "max_epochs"), ("climb_bayes.convert", "tokens"),
                ("climb_bayes.simulate", "noise"), ("trainers.corpus", "seed"),
                ("trainers.sweep", "design"), ("train.py", "experiment.seed")]


@pytest.mark.parametrize(("entry", "key"), ENTRY_POINTS)
def test_every_entry_point_checks_its_overrides(entry: str, key: str, monkeypatch,
                                                capsys) -> None:
    """Each ``__main__`` block checks before Hydra starts (in this process: no Hydra run)."""
    monkeypatch.setattr("sys.argv", [entry, f"{key}x=1"])
    with warnings.catch_warnings(), pytest.raises(SystemExit) as exit_:
        warnings.simplefilter("ignore", RuntimeWarning)  # runpy: the module is imported
        if entry.endswith(".py"):
            runpy.run_path(str(REPO / entry), run_name="__main__")
        else:
            runpy.run_module(entry, run_name="__main__")
    assert exit_.value.code == INPUT_ERROR_STATUS
    assert f"did you mean {key}?" in capsys.readouterr().err


def test_fit_refuses_a_typo_before_it_starts(cli, tmp_path) -> None:
    output = tmp_path / "out"
    result = cli("climb_bayes.fit", "sampler.chain=2", f"output={output}")
    assert result.returncode == INPUT_ERROR_STATUS, result.stderr[-3000:]
    assert "sampler.chain=2" in result.stderr and "did you mean sampler.chains?" in result.stderr
    assert "Traceback" not in result.stderr and not output.exists()


def test_an_unknown_prior_names_the_key(capsys) -> None:
    """``law.priors`` is typed by the Priors dataclass: a key it lacks is refused with the
    closest ones, before Hydra starts; one added with ``+`` is refused by Priors.from_mapping,
    listing the allowed keys; the law's keys moved from ``model`` to ``law``."""
    message = refused("fit", ["law.priors.nonsense=1"])
    assert message.startswith("law.priors.nonsense=1: there is no key 'law.priors.nonsense'")
    assert "did you mean law.priors." in message
    assert "did you mean law.priors.nu?" in refused("fit", ["model.priors.nu=3"])
    assert "did you mean law.extrapolation_sd?" in refused("fit", ["model.extrapolation_sd=0.1"])
    check_overrides("fit", ["law.priors.discrepancy_scale=0", "law.centred=[]",
                            "law=self_saturating"])
    with pytest.raises(InputError, match=re.escape("['nonsense'] in law.priors; the allowed "
                                                   "keys are ['B_fraction'")):
        Priors.from_mapping({"nonsense": 1.0})


def test_fit_refuses_a_bad_law_or_sampler_value_and_writes_nothing(cli, tmp_path) -> None:
    """Our range checks exit 2 with our message; a value of the wrong type for a typed key
    (``sampler.chains=2.5``: an int) is refused by Hydra itself, exit 1, naming the key."""
    output = tmp_path / "out"
    for override, status, named in [
            ("+law.priors.nonsense=1", INPUT_ERROR_STATUS, "['nonsense'] in law.priors"),
            ("law.form=linear", INPUT_ERROR_STATUS, "law.form=linear: choose one of"),
            ("untrained=some", INPUT_ERROR_STATUS, "untrained=some: choose one of drop, keep"),
            ("law.centred=[log_beta,foo]", INPUT_ERROR_STATUS, "law.centred names unknown "
                                                               "sites ['foo']"),
            ("sampler.chains=0", INPUT_ERROR_STATUS, "sampler.chains=0: the number of chains "
                                                     "must be a whole number >= 1"),
            ("sampler.chains=2.5", 1, "sampler.chains=2.5"),
            ("law.priors.nu=many", 1, "law.priors.nu=many")]:
        result = cli("climb_bayes.fit", override, f"output={output}")
        assert result.returncode == status, (override, result.stderr[-3000:])
        assert named in result.stderr, (override, result.stderr[-3000:])
        assert "Traceback" not in result.stderr and not output.exists()


def test_a_sweep_still_runs(cli, tmp_path) -> None:
    output = tmp_path / "design.csv"
    result = cli("climb_bayes.design", "-m", "seed=1,2", "languages=[en,de]",
                 f"output={output}", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("wrote 24 runs") == 2 and output.is_file()  # 8 mixes x 3 budgets


# ----------------------------------------------------------------------------- option values


@pytest.mark.parametrize(("override", "named"), [
    ("budgets=[-6e3,1.2e4]", "budgets[0]=-6000.0: the pilot budget in tokens must be a finite "
                             "number > 0"),
    ("focal_shares=[0.5,1.5]", "focal_shares[1]=1.5"),
])
def test_design_refuses_impossible_designs(cli, tmp_path, override: str, named: str) -> None:
    output = tmp_path / "design.csv"
    result = cli("climb_bayes.design", override, f"output={output}")
    assert result.returncode == INPUT_ERROR_STATUS, result.stderr[-3000:]
    assert named in result.stderr and "give e.g." in result.stderr
    assert "Traceback" not in result.stderr and not output.exists()


@pytest.mark.parametrize(("arguments", "named"), [
    ({"languages": ["en", "en", "de"]}, "languages=[en, en, de]: repeats en"),
    ({"languages": ["en"]}, "languages=[en]: give at least 2 training languages"),
    ({"budgets": []}, "budgets=[]: give at least 1 pilot budget"),
    ({"budgets": [1e7, float("inf")]}, "budgets[1]=inf"),
    ({"focal_shares": [0.0]}, "focal_shares[0]=0.0: the share of a mix's focal language must "
                              "be a number in (0, 1)"),
    ({"concentration": 0}, "concentration=0: the Dirichlet concentration must be a finite "
                           "number > 0"),
    ({"floor": 1.5}, "floor=1.5: the floor (fraction of an even split) must be a number in "
                     "[0, 1]"),
    ({"seed": -1}, "seed=-1: the seed must be a whole number >= 0"),
])
def test_design_checks_every_argument(arguments: dict, named: str) -> None:
    given = {"languages": ["en", "de"], "budgets": [1e7, 3e7], **arguments}
    with pytest.raises(InputError) as error:
        climb_design(**given)
    assert named in str(error.value)


@pytest.mark.parametrize("command, option", [
    ("climb_bayes.report", "tokens"), ("climb_bayes.predict", "tokens"),
    ("climb_bayes.solve", "target_tokens"), ("climb_bayes.convert", "tokens"),
])
def test_every_command_checks_a_budget_alike_before_reading_anything(cli, tmp_path, command,
                                                                      option) -> None:
    """One check of a budget (``climb_bayes.cli.budget``): the same message from every command,
    before any input is read, and nothing written."""
    output = tmp_path / "out"
    inputs = {"climb_bayes.report": [f"posterior={tmp_path / 'none.nc'}", f"output={output}"],
              "climb_bayes.predict": [f"posterior={tmp_path / 'none.nc'}",
                                      f"mixes={tmp_path / 'none.csv'}", f"output={output}"],
              "climb_bayes.solve": [f"posterior={tmp_path / 'none.nc'}", f"output={output}"],
              "climb_bayes.convert": [f"mixtures={tmp_path / 'none.csv'}",
                                      f"losses={tmp_path / 'none.csv'}",
                                      f"output={output}/pilots.csv"]}[command]
    result = cli(command, f"{option}=-5.0", *inputs)
    assert result.returncode == INPUT_ERROR_STATUS, result.stderr[-3000:]
    assert (f"{option}=-5.0: the budget in training tokens (the total tokens of one run) must be "
            f"a finite number > 0") in result.stderr
    assert "none." not in result.stderr  # checked before any input is read
    assert not output.exists()


def config(name: str, *overrides: str) -> DictConfig:
    """``conf/<name>.yaml`` composed with ``overrides`` (its structured config's defaults
    included), as the command sees it."""
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(name, list(overrides))


@pytest.mark.parametrize(("overrides", "named"), [
    (["tokens=0"], "tokens=0.0: the budget in training tokens"),  # typed float: 0.0
    (["tokens=nan"], "tokens=nan"),
    (["forest_pairs=0"], "forest_pairs=0: the number of coefficients in the forest plot must "
                         "be a whole number >= 1"),
    (["ppc_draws=0"], "ppc_draws=0"),
    (["seed=-1"], "seed=-1"),
    (["+colour=red"], "there is no key colour"),
])
def test_report_checks_every_setting(overrides: list[str], named: str) -> None:
    with pytest.raises(InputError, match=re.escape(named)):
        ReportSettings.from_config(config("report", *overrides))
    assert ReportSettings.from_config(config("report", "tokens=2e9")).tokens == 2e9
    assert ReportSettings.from_config(config("report")) == ReportSettings()


@pytest.mark.parametrize(("overrides", "named"), [
    (["target_tokens=-5"], "target_tokens=-5.0: the budget in training tokens"),
    ([], "target_tokens is not set"),
    (["max_epochs=0"], "max_epochs=0.0: the repetition cap in epochs"),
    (["temperature=-1"], "temperature=-1"),
    (["robust.kind=worst"], "robust.kind=worst: choose one of cvar_regret, mean_sd, quantile"),
    (["robust.k=inf"], "robust.k=inf"),
    (["robust.level=1.0"], "robust.level=1.0: the tail or quantile level must be a number in "
                           "(0, 1)"),
    (["decision.delta=-0.1"], "decision.delta=-0.1"),
    (["decision.threshold=1.0"], "decision.threshold=1.0"),
    (["solver.tol=0"], "solver.tol=0"),
    (["solver.max_iter=0"], "solver.max_iter=0"),
    (["guard.budget_factor=-10"], "guard.budget_factor=-10"),
    (["+robust.width=2"], "there is no key robust.width"),
])
def test_solve_checks_every_setting_before_the_posterior(overrides: list[str],
                                                         named: str) -> None:
    given = overrides if not overrides or overrides[0].startswith("target_tokens") \
        else ["target_tokens=1e9", *overrides]
    with pytest.raises(InputError, match=re.escape(named)):
        solve_options(config("solve", *given))


def test_solve_defaults_are_the_options_defaults() -> None:
    """The structured config is the one source of the defaults: Options built from it equals
    Options built from its own defaults, and a budget given as text is read as a number."""
    options = solve_options(config("solve", "target_tokens='2e9'"))
    assert options == Options(2e9, None)


@pytest.mark.parametrize(("command", "override"), [
    ("climb_bayes.solve", "max_epochs=lots"), ("climb_bayes.solve", "solver.max_iter=2.5"),
    ("climb_bayes.solve", "target_tokens=null"), ("climb_bayes.report", "ppc_draws=2.5"),
    ("climb_bayes.report", "allow_broken=perhaps"),
])
def test_a_value_of_the_wrong_type_is_refused_naming_its_key(cli, tmp_path, command: str,
                                                             override: str) -> None:
    """solve's and report's keys are typed by their structured configs: OmegaConf refuses a
    value of the wrong type when Hydra merges the override (exit 1), naming the key, before
    anything is read or written."""
    output = tmp_path / "out"
    budget = ["target_tokens=1e9"] if command.endswith("solve") else []
    result = cli(command, f"posterior={tmp_path / 'none.nc'}", *budget, override,
                 f"output={output}")
    assert result.returncode == 1, result.stderr[-3000:]
    assert f"Error merging override {override}" in result.stderr
    assert f"full_key: {override.split('=')[0]}" in result.stderr
    assert "none.nc" not in result.stderr and not output.exists()


def test_solve_checks_the_values_of_its_mappings() -> None:
    with pytest.raises(InputError, match=re.escape("weights.de=-1: the language weight")):
        solve_language_weights({"en": 1, "de": -1}, ["en", "de"])
    with pytest.raises(InputError, match=re.escape("available.de=lots")):
        available_tokens({"en": 1e9, "de": "lots"}, ["en", "de"])


def test_predict_messages_name_rows_and_values_as_plain_numbers(tmp_path) -> None:
    path = tmp_path / "mixes.csv"
    path.write_text("mix,tokens,share_en,share_de\n1,1e9,0.5,0.5\n2,-3,0.5,0.5\n3,,0.7,0.7\n")
    with pytest.raises(InputError) as error:
        read_mixes(path, ["en", "de"])
    assert "the shares of mixes 3 (row 3) are not in [0, 1]" in str(error.value)
    assert "np." not in str(error.value)
    path.write_text("mix,tokens,share_en,share_de\n1,1e9,0.5,0.5\n2,-3,0.5,0.5\n3,,0.4,0.6\n")
    mixes = read_mixes(path, ["en", "de"])
    with pytest.raises(InputError) as error:
        mix_budgets(mixes, None, path)
    assert "rows 2, 3 hold -3.0, empty" in str(error.value)
    np.testing.assert_array_equal(mix_budgets(mixes.drop(1), 5e8, path), [1e9, 5e8])


# ----------------------------------------------------------------------------- outputs


@pytest.mark.parametrize(("module", "overrides", "named"), [
    ("climb_bayes.design", ["output={dir}"], "is a directory, but the command writes one file "
                                             "there; give a file path, e.g. output={dir}/"
                                             "design.csv"),
    ("climb_bayes.fit", ["output={file}"], "is a file, but the command writes a directory"),
    ("climb_bayes.simulate", ["output={file}"], "output={file}: {file} is a file"),
])
def test_outputs_of_the_wrong_kind_are_refused(cli, tmp_path, module: str,
                                               overrides: list[str], named: str) -> None:
    paths = {"dir": tmp_path / "existing", "file": tmp_path / "existing.csv"}
    paths["dir"].mkdir()
    paths["file"].write_text("keep me\n")
    result = cli(module, *(o.format(**paths) for o in overrides))
    assert result.returncode == INPUT_ERROR_STATUS, result.stderr[-3000:]
    assert named.format(**paths) in result.stderr and "Traceback" not in result.stderr
    assert list(paths["dir"].iterdir()) == [] and paths["file"].read_text() == "keep me\n"


@pytest.mark.parametrize(("check", "value", "named"), [
    (output_file, "{dir}", "output={dir}: {dir} is a directory"),
    (output_file, "{file}/table.csv", "{file} is a file, not a directory"),
    (output_directory, "{file}", "output={file}: {file} is a file"),
    (output_directory, None, "output is not set"),
])
def test_output_checks(tmp_path, check, value: str | None, named: str) -> None:
    paths = {"dir": tmp_path / "existing", "file": tmp_path / "existing.csv"}
    paths["dir"].mkdir()
    paths["file"].write_text("")
    arguments = ("output", "x.csv") + (("files",) if check is output_directory else ())
    with pytest.raises(InputError, match=re.escape(named.format(**paths))):
        check(None if value is None else value.format(**paths), *arguments)
    assert check(str(tmp_path / "new" / "x.csv"), *arguments) == tmp_path / "new" / "x.csv"


# ----------------------------------------------------------------------------- CSV dialects


@pytest.mark.parametrize(("separator", "name"), [(";", "semicolon"), ("\t", "tab")])
def test_a_csv_in_another_dialect_is_named_and_converted(tmp_path, separator: str,
                                                         name: str) -> None:
    path = tmp_path / "pilots.csv"
    path.write_text(separator.join(["run_id", "tokens", "language", "loss", "share_en"]) +
                    "\n" + separator.join(["r1", "1e8", "en", "3,2", "1"]) + "\n")
    for read in (read_pilots, read_csv):
        with pytest.raises(InputError) as error:
            read(path)
        message = str(error.value)
        assert f"looks {name}-separated; climb_bayes reads comma-separated CSV: convert it" \
            in message
        assert "did you mean" not in message
    written = separator.encode("unicode_escape").decode()
    assert f"pd.read_csv('{path}', sep='{written}')" in message


def test_convert_refuses_a_semicolon_separated_table(cli, tmp_path) -> None:
    mixtures = tmp_path / "mixtures.csv"
    mixtures.write_text("run_id;share_en;share_de\nr1;0.5;0.5\n")
    losses = tmp_path / "losses.csv"
    losses.write_text("run_id,en,de\nr1,3.2,3.5\n")
    output = tmp_path / "pilots.csv"
    result = cli("climb_bayes.convert", f"mixtures={mixtures}", f"losses={losses}",
                 "tokens=1e9", f"output={output}")
    assert result.returncode == INPUT_ERROR_STATUS, result.stderr[-3000:]
    assert f"{mixtures}: the header is one column" in result.stderr
    assert "semicolon-separated" in result.stderr and not output.exists()
