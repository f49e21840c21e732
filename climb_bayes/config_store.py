"""Structured configs: the defaults of ``python -m climb_bayes.fit``, ``predict``, ``solve``,
``report``, ``design``, ``simulate`` and ``convert`` live in dataclasses, and this module
registers them in Hydra's ``ConfigStore``.

Each command's YAML file starts its defaults list with its schema node (stored here), so the
YAML holds no defaults of its own:

- ``fit_schema`` (``conf/fit.yaml``): ``sampler``, :class:`climb_bayes.model.fitting.Sampler`
  (NUTS and MAP settings), and ``law``, :class:`LawConfig`, the statistical law: its
  interaction form, its priors (:class:`climb_bayes.model.priors.Priors`, where each
  default is explained), the pooled sites sampled centred and its error beyond the pilots.
  ``conf/fit.yaml`` then selects an option of the config group ``law``
  (``conf/law/source_saturating.yaml``, the default, or ``conf/law/self_saturating.yaml``),
  which sets only what differs: the form;
- ``solve_schema`` (``conf/solve.yaml``): :class:`climb_bayes.decide.solve_config.SolveConfig`;
- ``report_schema`` (``conf/report.yaml``):
  :class:`climb_bayes.inspect.report_config.ReportConfig`;
- ``predict_schema`` (``conf/predict.yaml``): :class:`climb_bayes.predict_config.PredictConfig`;
- ``design_schema`` (``conf/design.yaml``):
  :class:`climb_bayes.data.design_config.DesignConfig`;
- ``simulate_schema`` (``conf/simulate.yaml``):
  :class:`climb_bayes.data.simulate_config.SimulateConfig`;
- ``convert_schema`` (``conf/convert.yaml``):
  :class:`climb_bayes.data.convert_config.ConvertConfig`.

``sweep_schema`` (``conf/sweep.yaml``, :class:`trainers.sweep_config.SweepConfig`) is
registered by :mod:`trainers.sweep_config` in the same way: ``climb_bayes`` never imports
``trainers``.

The values are typed and the keys fixed: an override of a key the schema lacks
(``law.priors.nonsense=1``), or one added with ``+key=value``
(:func:`climb_bayes.cli.schema_keys`), is refused naming it, a value of the wrong type
(``sampler.chains=2.5``) is refused by OmegaConf naming the key, and ``--cfg job`` shows every
key with its default. The range checks stay in the code that reads the config
(``Sampler.from_config``, :func:`climb_bayes.model.fitting.model_settings`,
:func:`climb_bayes.decide.inputs.solve_options`,
:meth:`climb_bayes.inspect.assemble.ReportSettings.from_config`, :func:`climb_bayes.predict.main`,
:func:`climb_bayes.data.designs.climb_design`, :func:`climb_bayes.simulate.settings`,
:func:`climb_bayes.convert.main`).

The frozen dataclasses of ``fit`` cannot be stored (OmegaConf would make their nodes read-only,
and no override could change them): :func:`schema` copies their fields, types and defaults
into a plain dataclass, so the defaults are written once. Every entry point that composes one
of these configs imports this module before Hydra starts; importing it registers the schemas
(:func:`register`, idempotent).
"""

from dataclasses import dataclass, field, fields, make_dataclass

from hydra.core.config_store import ConfigStore

from climb_bayes.data.convert_config import ConvertConfig
from climb_bayes.data.design_config import DesignConfig
from climb_bayes.data.simulate_config import SimulateConfig
from climb_bayes.decide.solve_config import SolveConfig
from climb_bayes.inspect.report_config import ReportConfig
from climb_bayes.model.fitting import Sampler
from climb_bayes.model.numpyro_model import CENTRED
from climb_bayes.model.priors import Priors
from climb_bayes.predict_config import PredictConfig

#: The name of the fit's schema node in the ConfigStore (first in ``conf/fit.yaml``'s defaults).
FIT_SCHEMA = "fit_schema"
#: The schema node of every other command, by its config name (``conf/<name>.yaml`` lists
#: ``<name>_schema`` first in its defaults).
SCHEMAS: dict[str, type] = {"solve": SolveConfig, "report": ReportConfig,
                            "predict": PredictConfig, "design": DesignConfig,
                            "simulate": SimulateConfig, "convert": ConvertConfig}


def schema(cls: type, name: str) -> type:
    """A mutable dataclass ``name`` with the fields, types and defaults of the dataclass
    ``cls`` (which may be frozen): the node OmegaConf types a config section with."""
    return make_dataclass(name, [(f.name, f.type, field(default=f.default))
                                 for f in fields(cls)])


#: The schema of ``sampler`` (:class:`~climb_bayes.model.fitting.Sampler`).
SamplerConfig = schema(Sampler, "SamplerConfig")
#: The schema of ``law.priors`` (:class:`~climb_bayes.model.priors.Priors`).
PriorsConfig = schema(Priors, "PriorsConfig")


@dataclass
class LawConfig:
    """``law``: the CLIMB law the fit samples (docs/design.md; docs/model.md)."""

    # The interaction form (climb_bayes.model.law.INTERACTION_FORMS): source_saturating,
    # rt_i = r_i + sum_{j != i} alpha_{j->i}(D) * (1 - exp(-eta_i * r_j)) / eta_i (the
    # default), or self_saturating, rt_i = r_i + exp(-eta_i * r_i) * sum_{j != i}
    # alpha_{j->i}(D) * r_j. Selected with the config group: law=self_saturating
    # (conf/law/*.yaml); compare_forms=true fits both and compares them by PSIS-LOO.
    form: str = "source_saturating"
    # The prior hyper-parameters, the same for every form; the reasons for each default are
    # beside the fields of climb_bayes.model.priors.Priors.
    priors: PriorsConfig = field(default_factory=PriorsConfig)  # type: ignore[valid-type]
    # Pooled sites sampled centred (the rest non-centred, via numpyro's LocScaleReparam; choose
    # from log_beta, a_pair, k_pair). None by default: on real pilots every site mixed better
    # non-centred (the reasons beside climb_bayes.model.numpyro_model.CENTRED; RegMix's 128
    # runs: centred pairs, tree depth 10 and min ESS 205 in 1036 s; non-centred, healthy in
    # 683 s). Simulated pilots, far less noisy, pin each pair down and mix better centred: list
    # all three for them. k_pair is non-centred whatever this says when every pilot has the same
    # budget; a broken fit with centred pairs is sampled again with them non-centred
    # (sampler.refit).
    centred: list[str] = field(default_factory=lambda: list(CENTRED))
    # How far the true loss may depart from the law beyond the largest pilot budget, in nats
    # per e-fold of extrapolation: predictions at D get delta ~ Normal(0, (sd * ln(D /
    # D_pilot))^2), shared by every mix (python -m climb_bayes.predict, solve and report show
    # it; the mix choice does not change). 0 trusts the law; see docs/extrapolation.md.
    extrapolation_sd: float = 0.0
    # The law's error below the smallest share the pilots measured a language at, on the log
    # of its reducible loss at a share of 0 (climb_bayes/model/share_error.py; predictions and
    # the solver carry it, so an optimised mix pays for dropping a language the pilots never
    # saw that low). null: measured on the monolingual pilots' losses on the other training
    # languages (untrained=drop leaves them out of the fit), or 0.3 when the pilots report
    # none; a number fixes it; 0 trusts the law down to a share of 0.
    share_sd: float | None = None
    # Its growth per e-fold of effective share deeper than one below the smallest the pilots
    # measured (same module): null measures it on the same losses at a share of 0 (0.1 when
    # the pilots report none); a number fixes it; 0 keeps the error at share_sd however deep.
    share_sd_growth: float | None = None


def register() -> None:
    """Store ``fit_schema`` (``sampler`` and ``law``) and ``<name>_schema`` for every command of
    :data:`SCHEMAS` in Hydra's ConfigStore; idempotent."""
    store = ConfigStore.instance()
    store.store(name=FIT_SCHEMA, node={"sampler": SamplerConfig, "law": LawConfig})
    for name, node in SCHEMAS.items():
        store.store(name=f"{name}_schema", node=node)


register()
