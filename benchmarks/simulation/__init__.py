"""The simulation study's parts; ``python -m benchmarks.simulation_study`` runs the study.

:mod:`~benchmarks.simulation.settings` (the grid and the world of each setting and seed),
:mod:`~benchmarks.simulation.scoring` (fit, decide and score one world),
:mod:`~benchmarks.simulation.tables` (the summary tables) and
:mod:`~benchmarks.simulation.figures` (their figures).

Importing the package gives JAX two host devices, so that NUTS runs its two chains in
parallel; that must happen before JAX starts, and nothing here starts it on import.
"""

import numpyro

numpyro.set_host_device_count(2)
