"""The prior hyper-parameters of the CLIMB model, each default beside the reasons for it.

:class:`Priors` is ``law.priors`` of ``python -m climb_bayes.fit``
(:mod:`climb_bayes.config_store` registers it with Hydra); the model that uses them is
:func:`climb_bayes.model.numpyro_model.climb_model`, whose docstring lists every prior.
"""

from dataclasses import dataclass, fields
from typing import Any

from climb_bayes.errors import InputError


@dataclass(frozen=True)
class Priors:
    """Prior hyper-parameters, with the reasons for their defaults: ``law.priors`` of
    ``python -m climb_bayes.fit`` (registered with Hydra by :mod:`climb_bayes.config_store`;
    this class is where the defaults live, ``law.priors.<key>=...`` overrides one).

    Budgets are scaled by ``D_ref`` (the median pilot checkpoint budget) and each language's
    losses by its ``loss_scale`` (its median observed pilot loss), so these priors suit any
    corpus.
    """

    # E_i ~ LogNormal(log(E_fraction * loss_scale_i), E_log_sd): the irreducible loss is about
    # half of a typical pilot loss (Chinchilla's E is 55-60% of the loss at 1B tokens); sd 0.5
    # lets it range over x0.4-x2.7.
    E_fraction: float = 0.5
    E_log_sd: float = 0.5
    # B_i ~ LogNormal(log(B_fraction * loss_scale_i), B_log_sd): the reducible part at D_ref;
    # wide (sd 1.0) because it trades off with E and beta over a narrow budget range.
    B_fraction: float = 0.5
    B_log_sd: float = 1.0
    # log beta_i ~ Normal(mu, tau), pooled across languages: mu ~ Normal(log beta_median,
    # beta_log_sd) around Chinchilla's 0.28; tau ~ Gamma(4, 5 / beta_spread) lets languages
    # differ. Every spread (tau) has this prior: the mean of a HalfNormal(spread) (0.8 spread;
    # 90% interval 0.27-1.55 spread), but a density that vanishes at 0 like tau^3, so the
    # posterior has no funnel where all languages are squeezed alike (with half-normal
    # spreads NUTS diverged there).
    beta_median: float = 0.3
    beta_log_sd: float = 0.5
    beta_spread: float = 0.3
    # a_ji ~ Normal(mu_a, tau_a), tau_a ~ Gamma(4, 5 / a_spread): transfer at the reference
    # budget, pooled over pairs; centred on a small positive value (a token of j is worth ~0.1
    # tokens of i) with room for interference.
    a_mean: float = 0.1
    a_mean_sd: float = 0.2
    a_spread: float = 0.3
    # k_ji ~ Normal(0, tau_k), tau_k ~ Gamma(4, 5 / k_spread): how the transfer changes with
    # budget, multiplied by D_ref / D - 1 (zero at D_ref); small, since early checkpoints
    # multiply it by up to ~10.
    k_spread: float = 0.05
    # eta_i ~ LogNormal(log eta_median, eta_log_sd): transferred help saturates at alpha / eta;
    # sd 1.0 spans nearly linear (eta 0.1) to strongly saturating (eta 10).
    eta_median: float = 1.0
    eta_log_sd: float = 1.0
    # sigma_i ~ HalfNormal(sigma_fraction * loss_scale_i): run-to-run noise of a validation
    # loss, typically 0.01-0.05 nats, i.e. about 1% of the loss.
    sigma_fraction: float = 0.02
    # The noise changes with the budget as a power: sigma_i (D / D_ref)^-kappa, kappa ~
    # Normal(0, noise_budget_exponent_sd), one kappa for every language. Small runs scatter
    # more about the law than large ones (the real study's pilots: residual sd 0.11-0.12 nats
    # at 2e5 and 5.5e5 tokens, 0.05 at 1.5e6; docs/extrapolation.md), and a prediction at the
    # target should carry the target's noise, not the smallest pilots'. 0.5: the noise may
    # halve or double over 1.4 e-folds of budget at one prior sd. 0 keeps it the same at every
    # budget.
    noise_budget_exponent_sd: float = 0.5
    # Student-t degrees of freedom of the likelihood: 4 keeps one bad run from dominating;
    # null (None) learns it with a Gamma(2, 0.1) prior.
    nu: float | None = 4.0
    # The law's error in budget (climb_bayes/model/discrepancy.py): each language's reducible
    # loss is multiplied by exp(delta_i(ln D)), delta_i an integrated random walk (less its
    # trend over the pilots' budgets) whose slope wanders with intensity tau_i^2 per e-fold;
    # tau_i = tau * exp(discrepancy_spread * w_i), w_i ~ Normal(0, 1), pooled around
    # tau ~ LogNormal(log discrepancy_scale, discrepancy_log_sd). Prior median from published
    # multi-size loss curves: Data Mixing Laws' RedPajama runs of 160M, 305M and 410M
    # parameters (github yegcjs/mixinglaws; the 70M runs are kept for the benchmark), 440-462
    # curves each, 10k-30k steps: beyond each curve's own parabola (the exponent's drift
    # below), the restricted maximum likelihood of an integrated random walk gives tau of
    # ln L 0.007-0.009 (95% at most 0.013; benchmarks/published_curvature.py), about twice
    # that on the reducible part (about half the loss). sd 0.75: x0.3-x3.4 at 90%.
    # 0 leaves the walk out.
    discrepancy_scale: float = 0.02
    discrepancy_log_sd: float = 0.75
    discrepancy_spread: float = 0.5
    # A second part of the error, delta_0, shared by every language (what bends all curves
    # alike, e.g. a network short of capacity), of intensity tau_0 ~ LogNormal(log
    # discrepancy_shared_scale, discrepancy_log_sd); 0 leaves it out. Off by default: on the
    # real study, without the exponent's drift, it predicted worse (MAE 0.130 / 0.367 nats at
    # 3x / 10x against 0.117 / 0.274 without it) and its fit had 2 divergent transitions
    # (docs/extrapolation.md); 0.02 (the languages' own median) switches it on.
    discrepancy_shared_scale: float = 0.0
    # The exponent's drift: each language's reducible loss bends by gamma_i u^2 / 2 (its
    # exponent falls by gamma_i per e-fold of budget), a bend that keeps curving beyond the
    # pilots the way their budgets curve, where the random walk's slope only wanders. The fall
    # is a fraction of the exponent, gamma_i = beta_i g_i: g_i = g + exponent_drift_spread *
    # exponent_drift_scale * z_i, z_i ~ Normal(0, 1), pooled around g ~
    # Normal(exponent_drift_centre, exponent_drift_scale). Relative, because fast-falling
    # curves bend fast: from published curves, Data Mixing Laws' 160M and 410M RedPajama runs
    # (10k-30k steps; benchmarks/published_curvature.py) on the five Pile domains the
    # external benchmark scores, ln L curves by +0.015 to +0.018 per e-fold (sd 0.015-0.025
    # across curves) at slopes of -0.071 to -0.087; less the bend an irreducible loss gives a
    # pure power law, that is g = 0.03-0.18 for reducible parts of 30-70% of the loss. Our real
    # study's pilots (tiny models, 2e5-1.5e6 tokens, three budgets) fit g = 0.24-0.40
    # (docs/extrapolation.md). 0.15 and 0.15 cover both; scale 0 leaves the drift out.
    exponent_drift_scale: float = 0.15
    exponent_drift_spread: float = 0.5
    exponent_drift_centre: float = 0.15
    # The run effect (used when some run has several checkpoints, checkpoints=all), integrated
    # out (run_effect.run_likelihood): each run's offset u_s ~ MultivariateNormal(0,
    # diag(rho) Omega diag(rho)) on all its checkpoints, rho_i ~ HalfNormal(run_sd_fraction *
    # loss_scale_i), Omega ~ LKJ(run_correlation), plus its own slope in budget v_si ln(D /
    # D_last), v_si ~ Normal(0, psi_i), psi_i ~ HalfNormal(run_slope_fraction * loss_scale_i),
    # zero at the run's last checkpoint, so one run's checkpoints weigh as one run's evidence.
    # 0.02: a run's luck is worth about as much as the observation noise (sigma_fraction);
    # 0.01: a run's curve may leave the law's by about a percent of its loss per e-fold
    # (docs/extrapolation.md has what the fit finds on Data Mixing Laws' 70M RedPajama runs).
    # run_sd_fraction = 0 leaves the effect out.
    run_sd_fraction: float = 0.02
    run_slope_fraction: float = 0.01
    run_correlation: float = 2.0

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> "Priors":
        """Build from a config mapping; an unknown key is an error naming the allowed keys."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(
                f"unknown prior hyper-parameter(s) {unknown} in law.priors; "
                f"the allowed keys are {sorted(known)}."
            )
        return cls(**values)
