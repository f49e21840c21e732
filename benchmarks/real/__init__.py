"""The real study's parts; ``python -m benchmarks.real_study`` runs the study.

:mod:`~benchmarks.real.stages` (what to run and the training stages),
:mod:`~benchmarks.real.mixes` (the fixed held-out mixes), :mod:`~benchmarks.real.record` (the
record of finished runs), :mod:`~benchmarks.real.fit` (the posterior of the current model
version) and :mod:`~benchmarks.real.evaluation` (the scores of that posterior on the held-out
runs).
"""
