"""The real study's fit: the posterior of the current model version (the package's sources,
the fit's configs and overrides and the pilot table), fitted once and reused until that
version changes."""

import hashlib
import json
import shutil
import subprocess
import time
from pathlib import Path

from benchmarks.real.stages import REPO, Study, run

#: Fit status with ``keep_broken=true`` when the fit is broken: posterior.nc is still written.
FIT_BROKEN_STATUS = 3
#: What the fit's result depends on in this repository (hashed into the model version).
MODEL_FILES = ("climb_bayes/**/*.py", "conf/fit.yaml", "conf/law/*.yaml")


def model_version(study: Study, pilots: Path) -> str:
    """12 hex digits of the SHA-256 of everything the fit's result depends on: the package's
    sources and the fit's configs (:data:`MODEL_FILES`), the fit overrides and the pilot table.
    A new model version gets a new fit; the same version reuses it."""
    digest = hashlib.sha256()
    files = sorted({p for pattern in MODEL_FILES for p in REPO.glob(pattern)})
    for path in [*files, pilots]:
        digest.update(str(path.relative_to(REPO) if path.is_relative_to(REPO) else "pilots")
                      .encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(" ".join(study.sampler).encode())
    return digest.hexdigest()[:12]


def git_commit() -> str:
    """The repository's commit, with ``+dirty`` when the package or configs differ from it."""
    def git(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *arguments], cwd=REPO, capture_output=True, text=True,
                              check=False)

    commit = git("rev-parse", "--short", "HEAD").stdout.strip() or "unknown"
    dirty = git("status", "--porcelain", "--", "climb_bayes", "conf").stdout.strip()
    return commit + ("+dirty" if dirty else "")


def ensure_fit(study: Study, pilots: Path, workdir: Path, refit: bool) -> Path | None:
    """The posterior of the current model version (``fit/<version>/posterior.nc``), fitted now
    if missing or if ``refit``; None if the fit wrote none. A broken fit is kept
    (``keep_broken=true``): the evaluation reports its verdict beside its scores."""
    version = model_version(study, pilots)
    directory = workdir / "fit" / version
    posterior = directory / "posterior.nc"
    if posterior.is_file() and not refit:
        return posterior
    shutil.rmtree(directory, ignore_errors=True)
    start = time.perf_counter()
    status = run("-m", "climb_bayes.fit", f"pilots={pilots}", f"output={directory}",
                 "keep_broken=true", *study.sampler)
    if status not in (0, FIT_BROKEN_STATUS) or not posterior.is_file():
        print(f"the fit failed (exit status {status}); no evaluation", flush=True)
        return None
    (directory / "version.json").write_text(json.dumps(
        {"model_version": version, "commit": git_commit(), "pilots": str(pilots),
         "fit_seconds": round(time.perf_counter() - start, 1)}, indent=2) + "\n")
    return posterior
