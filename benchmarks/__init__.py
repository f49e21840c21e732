"""The studies and benchmarks behind the numbers in ``docs/``: each module is a script
(``python -m benchmarks.<name> --help``), and the code only they use (simulated worlds, the
point fit) lives here beside them, not in the package."""
