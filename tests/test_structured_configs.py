"""The structured configs of ``predict``, ``design``, ``simulate``, ``convert`` and
``trainers.sweep``: each command's dataclass is the one source of its keys and defaults
(``--cfg job`` prints them; its YAML file holds none), a value of the wrong type is refused by
Hydra naming the key (exit 1), and a misspelt key, a key added with ``+key=value`` or ``+`` on
a key that exists is refused naming it, before anything is read or written."""

import logging
import runpy
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from climb_bayes.data.convert_config import ConvertConfig
from climb_bayes.data.design_config import DesignConfig
from climb_bayes.data.simulate_config import SimulateConfig
from climb_bayes.errors import INPUT_ERROR_STATUS
from climb_bayes.predict_config import PredictConfig
from trainers.sweep_config import SweepConfig

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Command:
    """A command converted to a structured config, and the overrides that probe it."""

    module: str
    config: str  # its conf/<config>.yaml
    schema: type  # its dataclass
    wrong_type: str  # an override of the wrong type for its key
    misspelt: str  # an override of a misspelt key
    suggested: str  # the key the refusal suggests for it
    existing: str  # a key the config sets (refused with +key=value)


COMMANDS = [
    Command("climb_bayes.predict", "predict", PredictConfig, "seed=1.5", "sed=1", "seed",
            "seed"),
    Command("climb_bayes.design", "design", DesignConfig, "budgets=6e3", "budget=[1e7,3e7]",
            "budgets", "floor"),
    Command("climb_bayes.simulate", "simulate", SimulateConfig, "languages=2.5",
            "transfer_means=0.2", "transfer_mean", "noise"),
    Command("climb_bayes.convert", "convert", ConvertConfig, "normalise=perhaps",
            "normalize=true", "normalise", "tokens_per_step"),
    Command("trainers.sweep", "sweep", SweepConfig, "design=[a,b]", "desing=x", "design",
            "output"),
]
IDS = [command.config for command in COMMANDS]


@pytest.mark.parametrize("command", COMMANDS, ids=IDS)
def test_cfg_job_prints_the_defaults_of_the_dataclass(cli, command: Command) -> None:
    """``--cfg job`` prints every key of the dataclass with its default (``???`` for a required
    key) and nothing else; the YAML file only selects the schema."""
    result = cli(command.module, "--cfg", "job", timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    printed = yaml.safe_load(result.stdout)
    assert printed == OmegaConf.to_container(OmegaConf.structured(command.schema))
    conf = yaml.safe_load((REPO / "conf" / f"{command.config}.yaml").read_text())
    assert set(conf) == {"defaults", "hydra"}
    assert conf["defaults"][0] == f"{command.config}_schema"


def test_the_defaults_are_those_the_yaml_files_had() -> None:
    """The move kept every default (a sample from each command)."""
    assert PredictConfig().mixes == "???" and PredictConfig().output == "predictions.csv"
    assert DesignConfig().budgets == [1e7, 3e7, 1e8]
    assert DesignConfig().focal_shares == [0.15, 0.4, 0.7]
    assert SimulateConfig().checkpoints == [0.25, 0.5, 1.0] and SimulateConfig().noise_df is None
    assert ConvertConfig().run_id_column == "run_id"
    assert ConvertConfig().tokens_per_step == 1048576
    assert SweepConfig() == SweepConfig("runs/pilots/design.csv", "runs/pilots")


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """The root logger's handlers and level as they were: a command run in this process sets
    up Hydra's job logging (conf: ``hydra/job_logging: stdout``)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def run_in_process(module: str, overrides: list[str], monkeypatch) -> int:
    """Run ``python -m module overrides...`` in this process (its ``__main__`` block: the
    command-line check, then Hydra); its exit status."""
    monkeypatch.setattr("sys.argv", [module, *overrides])
    with warnings.catch_warnings(), pytest.raises(SystemExit) as exit_:
        warnings.simplefilter("ignore", RuntimeWarning)  # runpy: the module is imported
        runpy.run_module(module, run_name="__main__")
    return exit_.value.code


@pytest.mark.parametrize("command", COMMANDS, ids=IDS)
def test_bad_keys_and_values_are_refused_naming_the_key(command: Command, tmp_path, monkeypatch,
                                                        capsys, restored_logging) -> None:
    output = tmp_path / "out"
    inputs = {"predict": [f"mixes={tmp_path / 'none.csv'}", f"posterior={tmp_path / 'none.nc'}"],
              "convert": [f"log={tmp_path / 'none.txt'}"],
              "sweep": [f"design={tmp_path / 'none.csv'}"]}.get(command.config, [])
    common = [*inputs, f"output={output}"]

    def refused(override: str) -> tuple[int, str]:
        # the override last: it replaces a common one of the same key
        status = run_in_process(command.module, [*common, override], monkeypatch)
        message = capsys.readouterr().err
        assert "Traceback" not in message, message
        return status, message

    key = command.wrong_type.split("=")[0]
    status, message = refused(command.wrong_type)
    assert status == 1, message
    assert f"Error merging override {command.wrong_type}" in message
    assert f"full_key: {key}" in message
    status, message = refused(command.misspelt)
    assert status == INPUT_ERROR_STATUS, message
    assert f"there is no key '{command.misspelt.split('=')[0]}'" in message
    assert f"did you mean {command.suggested}?" in message
    status, message = refused("+colour=red")
    assert status == INPUT_ERROR_STATUS, message
    assert "there is no key colour in this command's configuration" in message
    status, message = refused(f"+{command.existing}=1")
    assert status == 1, message
    assert f"An item is already at '{command.existing}'" in message
    assert list(tmp_path.iterdir()) == []  # nothing read, nothing written
