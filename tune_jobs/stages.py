"""Stage reuse across a sweep: a trial's pre-policy stage is trained once and loaded by every trial that shares it.

GMPO (Algorithm 1) and GMPG (Algorithm 3) train the IQL critic, and GMPG its behaviour model mu, before the policy,
with the policy untouched. In a beta or clamp ablation every trial of one dataset and seed trains that same stage.
The first trial to reach the policy phase saves the whole pack there (networks, optimisers, random streams) with the
rows of the evaluations it made on the way, under <storage>/stages/<key>.pt; a later trial with the same key loads it
and continues from the policy phase's first step.

The key holds the code's commit, the data's content hash and every setting of the trial except those its config class
lists in POLICY_ONLY: settings read only by the policy phase's losses and held in no state (beta, weight clamps,
...). So a trial that loads a stage continues exactly as if it had trained it: same state, same random streams, the
same rows (marked stage=loaded; the trial that trained it marks its own stage=trained).

Several trials asking at once: the first claims <key>.lock (created exclusively, touched while it trains); the others
wait for the file, and claim it themselves once its trainer is gone (a dead process on the same host, or a lock not
touched for STALE_S). Files are written
to a temporary name and renamed, so no trial reads a torn one. Only local or shared-filesystem storage is used; with
an s3:// or gs:// storage every trial trains its own stage.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import torch

from genrl_core import algorithms

STAGE_DIR = "stages"
STALE_S = 300.0  # a lock not touched for this long belongs to a dead trial (on another node)
POLL_S = 2.0  # how often a waiting trial looks for the stage file
# run-level keys that only matter once the policy phase runs (the stage's state does not depend on them)
RUN_POLICY_ONLY = frozenset({"steps", "policy_eval_every", "policy_epochs", "reuse_stages", "task", "preset"})


def policy_only(algo: str) -> frozenset[str]:
    """The config fields of `algo` that the pre-policy stage never reads (empty: the algorithm shares no stage)."""
    return frozenset(getattr(algorithms.get(algo)[0].config_class, "POLICY_ONLY", frozenset()))


def stage_key(run: dict[str, Any], overrides: dict[str, Any], content_hash: str, commit: str) -> str:
    """20 hex digits naming a trial's stage: everything it depends on."""
    shared = policy_only(run["algorithm"])
    keyed = {"run": {k: v for k, v in run.items() if k not in RUN_POLICY_ONLY},
             "config": {k: v for k, v in overrides.items() if k not in shared},
             "data": content_hash, "commit": commit}
    return hashlib.sha256(json.dumps(keyed, sort_keys=True, default=list).encode()).hexdigest()[:20]


class StageStore:
    """The stage files of one sweep storage (a local or shared folder)."""

    def __init__(self, root: Path):
        self.root = root

    @classmethod
    def for_results(cls, results_root: str | None) -> "StageStore | None":
        """The store beside a sweep's Parquet root; None for remote (URI) or missing storage."""
        if not results_root or "://" in results_root:
            return None
        return cls(Path(results_root).parent / STAGE_DIR)

    def _file(self, key: str) -> Path:
        return self.root / f"{key}.pt"

    def _lock(self, key: str) -> Path:
        return self.root / f"{key}.lock"

    def load(self, key: str) -> dict[str, Any] | None:
        """The saved stage, or None when there is none yet."""
        path = self._file(key)
        return torch.load(path, weights_only=True, map_location="cpu") if path.exists() else None

    def claim(self, key: str) -> bool:
        """Take the right to train this stage (True), or see that another trial holds it (False)."""
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self._lock(key), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            f.write(f"{socket.gethostname()} {os.getpid()}")
        return True

    def _dead(self, key: str) -> bool:
        """Whether the lock's owner is gone: a dead process on this host, or no touch for STALE_S."""
        lock = self._lock(key)
        try:
            host, pid = lock.read_text().split()
            age = time.time() - lock.stat().st_mtime
        except (OSError, ValueError):  # gone, or caught before its owner wrote it
            return not lock.exists()
        if host == socket.gethostname():
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                pass
        return age > STALE_S

    def touch(self, key: str) -> None:
        """Tell waiting trials that this stage is still being trained."""
        self._lock(key).touch()

    def wait(self, key: str) -> dict[str, Any] | None:
        """Wait for a stage another trial trains: the stage, or None once its lock is gone or stale (then claim)."""
        while True:
            found = self.load(key)
            if found is not None:
                return found
            if not self._lock(key).exists():
                return None
            if self._dead(key):
                self._lock(key).unlink(missing_ok=True)
                return None
            time.sleep(POLL_S)

    def save(self, key: str, stage: dict[str, Any]) -> None:
        """Write the stage atomically and release the claim."""
        tmp = self._file(key).with_suffix(f".{os.getpid()}.tmp")
        torch.save(stage, tmp)
        tmp.replace(self._file(key))
        self._lock(key).unlink(missing_ok=True)

    def release(self, key: str) -> None:
        """Give the claim up without a stage (the trainer diverged or stopped)."""
        self._lock(key).unlink(missing_ok=True)


def open_stage(store: StageStore | None, key: str) -> tuple[dict[str, Any] | None, bool]:
    """(the stage to load or None, whether this trial trains and saves it)."""
    if store is None:
        return None, False
    while True:
        found = store.load(key)
        if found is not None:
            return found, False
        if store.claim(key):
            return None, True
        found = store.wait(key)
        if found is not None:
            return found, False
