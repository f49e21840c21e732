"""Stage 2, the statistical model: the law (one home), its learned error in budget, the priors
and likelihood as one numpyro model, sampling, the fit's health verdict, and the posterior on
disk with the loss model every later stage predicts through."""
