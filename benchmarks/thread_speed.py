"""CPU training speed by torch thread count, idle and beside busy processes, side by side.

    python -m benchmarks.thread_speed                 # threads 1 and 2, load 0 and 1
    python -m benchmarks.thread_speed --threads 1 2 4 --load 0 1 2 --repeats 3

Trains ``gpt_tiny`` on the Django corpus with the plain PyTorch loop of
``benchmarks/train_speed.py`` (same batches, AdamW and schedule), alternating the thread
counts within each load level so that they see the same machine state. A load level of ``n``
runs ``n`` processes that spin on the CPU meanwhile, as another pilot of a sweep or any other
job would. Reported: the median tokens per second of each (threads, load) over ``--repeats``
runs, and its ratio to one thread at the same load. This is what ``trainer.threads`` in
``conf/trainer/cpu.yaml`` is chosen by; the rows are appended to
``benchmarks/results/thread_speed.csv``.
"""

import argparse
import multiprocessing
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import torch
from omegaconf import OmegaConf

from benchmarks.train_speed import SKIP, build_django_corpus, datamodule, plain_loop
from trainers import tokeniser

REPO = Path(__file__).resolve().parents[1]


def spin(stop: multiprocessing.Event) -> None:
    """Keep one core busy until ``stop`` is set."""
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--load", type=int, nargs="+", default=[0, 1],
                        help="numbers of busy processes running beside the training")
    parser.add_argument("--tokens", type=float, default=6e4, help="tokens per timed run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path,
                        default=REPO / "benchmarks" / "results" / "thread_speed.csv")
    args = parser.parse_args()
    preset = OmegaConf.to_container(OmegaConf.load(REPO / "conf" / "model" / "gpt_tiny.yaml"))
    batch = 16
    per_step = batch * preset["context"]
    steps = max(SKIP + 5, round(args.tokens / per_step))
    timed = (steps - SKIP) * per_step
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        corpus = build_django_corpus(Path(tmp))
        vocab = tokeniser.load(corpus).get_vocab_size()
        data = datamodule(corpus, preset["context"], batch, steps * per_step)
        for load in args.load:
            stop = multiprocessing.Event()
            busy = [multiprocessing.Process(target=spin, args=(stop,)) for _ in range(load)]
            for process in busy:
                process.start()
            time.sleep(0.5)
            seconds: dict[int, list[float]] = {n: [] for n in args.threads}
            try:
                for _ in range(args.repeats):
                    for threads in args.threads:
                        torch.set_num_threads(threads)
                        seconds[threads].append(plain_loop(preset, vocab, data, "cpu", False))
            finally:
                stop.set()
                for process in busy:
                    process.join()
            base = timed / statistics.median(seconds[args.threads[0]])
            for threads in args.threads:
                rate = timed / statistics.median(seconds[threads])
                rows.append({"date": datetime.now(UTC).isoformat(timespec="seconds"),
                             "cores": len(os.sched_getaffinity(0)), "model": "gpt_tiny",
                             "load_processes": load, "threads": threads,
                             "tokens_per_s": rate,
                             f"ratio_to_{args.threads[0]}_thread": rate / base,
                             "repeats": args.repeats})
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format="{:.3g}".format))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    if args.output.is_file():
        table = pd.concat([pd.read_csv(args.output), table], ignore_index=True)
    table.to_csv(args.output, index=False)
    print(f"appended to {args.output}")


if __name__ == "__main__":
    main()
