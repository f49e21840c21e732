"""Stage 3, the decision: mixes optimised over posterior draws (an interior-point solver),
the baselines, comparisons against a reference, and the mix file the trainers read."""
