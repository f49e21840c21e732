"""The studies and benchmarks behind the numbers in ``docs/``: each module is a script
(``python -m benchmarks.<name> --help``), and the code only they use (simulated worlds, the
point fit, and the parts of the two large studies in ``simulation/`` and ``real/``) lives here
beside them, not in the package."""
