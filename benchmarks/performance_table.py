"""One performance table from the fit, solve and training speed benchmarks.

    python -m benchmarks.performance_table               # table from saved results
    python -m benchmarks.performance_table --run solve train --quick   # run those first

Sources (``benchmarks/results/``):

- ``fit_speed.csv``, written by ``benchmarks/fit_speed.py``: NUTS against the point fit.
- ``solve_speed.csv``: :func:`solve_speed.benchmark` (the JAX interior-point solver against
  scipy's trust-constr); that script only prints, so ``--run`` calls its ``benchmark``
  function in this process and saves the frame.
- ``train_speed.txt``: the printed output of ``benchmarks/train_speed.py`` (it writes no
  file); ``--run`` runs it and saves its output; the tokens/s lines and the
  Lightning / plain ratio are parsed from it.

The table has one row per measurement: ``component``, ``task``, ``implementation``,
``value``, ``unit``, ``ratio`` (against the row the benchmark compares with) and ``notes``;
saved as ``performance.csv``.
"""

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
COLUMNS = ["component", "task", "implementation", "value", "unit", "ratio", "notes"]


def fit_rows(path: Path) -> list[dict]:
    """Rows from ``fit_speed.csv``: wall seconds of each method, ratio to the point fit."""
    if not path.is_file():
        return []
    rows = []
    for _, r in pd.read_csv(path).iterrows():
        notes = (f"R-hat {r['max_r_hat']:.3f}, min bulk ESS {r['min_ess_bulk']:.0f}, "
                 f"{int(r['divergences'])} divergences" if r["method"] == "nuts" else
                 f"Huber + L-BFGS; held-out RMSE {r['rmse_inside']:.4f}")
        rows.append({"component": "fit", "task": f"m = {r['m']} ({r['runs']} runs)",
                     "implementation": r["method"], "value": r["seconds"], "unit": "s",
                     "ratio": r["time_vs_point"], "notes": notes})
    return rows


def solve_rows(path: Path) -> list[dict]:
    """Rows from ``solve_speed.csv`` (the frame :func:`solve_speed.benchmark` returns)."""
    if not path.is_file():
        return []
    return [{"component": "solve", "task": r["task"], "implementation": r["solver"],
             "value": float(str(r["wall_s"]).split()[0]), "unit": "s",
             "ratio": r["time_ratio"], "notes": r["notes"]}
            for _, r in pd.read_csv(path).iterrows()]


def train_rows(path: Path) -> list[dict]:
    """Rows parsed from the printed output of ``train_speed.py``: tokens/s per implementation
    (``name  seconds  tokens/s`` lines) and the ratio Lightning / plain."""
    if not path.is_file():
        return []
    text = path.read_text()
    setup = next((line for line in text.splitlines() if line.startswith("model ")), "")
    rate = re.compile(r"^(plain PyTorch loop|Lightning Trainer|Lightning as train\.py.*?)\s+"
                      r"([\d.]+)\s+([\d,]+)\s*$", re.M)
    rows = [{"component": "train", "task": "GPT training throughput", "implementation": name,
             "value": float(tokens.replace(",", "")), "unit": "tokens/s", "ratio": None,
             "notes": setup} for name, _, tokens in rate.findall(text)]
    plain = next((r["value"] for r in rows if r["implementation"] == "plain PyTorch loop"), None)
    for row in rows:
        row["ratio"] = row["value"] / plain if plain else None
    return rows


def run_benchmarks(names: list[str], quick: bool) -> None:
    """Run the named benchmarks (``fit``, ``solve``, ``train``) and save what each produces
    under ``results/``."""
    flag = ["--quick"] if quick else []
    if "fit" in names:
        subprocess.run([sys.executable, "-m", "benchmarks.fit_speed", *flag], check=True)
    if "solve" in names:
        from benchmarks import solve_speed  # noqa: PLC0415  (optax: the bench extra)

        languages, draws = (8, 500) if quick else (16, 4000)
        solve_speed.benchmark(languages, draws, 3 if quick else 10).to_csv(
            RESULTS / "solve_speed.csv", index=False)
    if "train" in names:
        done = subprocess.run([sys.executable, "-m", "benchmarks.train_speed", *flag],
                              check=True, capture_output=True, text=True)
        (RESULTS / "train_speed.txt").write_text(done.stdout)


def performance_table(results: Path = RESULTS) -> pd.DataFrame:
    """The combined table from whatever results exist."""
    rows = (fit_rows(results / "fit_speed.csv") + solve_rows(results / "solve_speed.csv")
            + train_rows(results / "train_speed.txt"))
    return pd.DataFrame(rows, columns=COLUMNS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", nargs="*", default=[], choices=["fit", "solve", "train"],
                        help="run these benchmarks first")
    parser.add_argument("--quick", action="store_true", help="their --quick modes")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.run:
        run_benchmarks(args.run, args.quick)
    table = performance_table()
    table.to_csv(RESULTS / "performance.csv", index=False)
    with pd.option_context("display.width", 250, "display.max_colwidth", 80):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))


if __name__ == "__main__":
    main()
