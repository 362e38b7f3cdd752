"""Parquet results: one row per evaluation, partitioned by sweep, written idempotently.

Layout: <storage>/parquet/sweep=<sweep>/<trial_id>-<step>.parquet. The file name is the row key
(trial_id, step), so a retried or resumed trial that evaluates the same step again overwrites its row
instead of adding one. Local files are written to a temporary name and renamed (a killed writer never
leaves half a row); object stores (s3://, gs://) write each object in one piece. Each row holds the
full flat config, the config as JSON, the metrics, the evaluation protocol (PROTOCOL_KEYS: episodes, the
reference returns of score_mean and their source, the dataset id and the hash of its transitions), and where
and how it ran (git commit, package versions, host, node, pid, GPU name, timings). `final` is True on the last
evaluation of a trial.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import uuid
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs as pafs

PARQUET_DIR = "parquet"
PACKAGES = ("genrl-platform", "torch", "ray", "numpy", "gymnasium", "minari", "mujoco")
# How a row's scores were made (genrl_core.evaluation.protocol); columns under these names in every trainable row
PROTOCOL_KEYS = ("eval_episodes", "ref_min_score", "ref_max_score", "ref_source", "dataset_id", "data_hash")


def absolute(uri: str) -> str:
    """Local paths made absolute (Ray and pyarrow need that); URIs with a scheme unchanged."""
    return uri if "://" in uri else str(Path(uri).expanduser().resolve())


def results_root(storage: str) -> str:
    """The Parquet dataset under a sweep storage location (a local path or s3:// / gs:// URI)."""
    return absolute(storage).rstrip("/") + "/" + PARQUET_DIR


def _fs(uri: str) -> tuple[pafs.FileSystem, str]:
    return pafs.FileSystem.from_uri(absolute(uri))


def row_path(root: str, sweep: str, trial_id: str, step: int) -> str:
    """Where the row (trial_id, step) of a sweep lives."""
    return f"{root.rstrip('/')}/sweep={sweep}/{trial_id}-{int(step):012d}.parquet"


def protocol_columns(data: Any, eval_episodes: int) -> dict[str, Any]:
    """The PROTOCOL_KEYS columns of an OfflineData evaluated over eval_episodes episodes (also for a row without an
    evaluation: a diverged seed, a toy bandit)."""
    from genrl_core.evaluation import protocol

    return protocol(data, eval_episodes)


def _cell(value: Any) -> Any:
    """Tuples and lists as JSON text (one Parquet type per column across algorithms); None stays."""
    return json.dumps(list(value)) if isinstance(value, (tuple, list)) else value


def write_row(root: str, row: dict[str, Any]) -> str:
    """Write one row (it must hold sweep, trial_id and step); returns its path. Same key -> same file."""
    path = row_path(root, row["sweep"], row["trial_id"], row["step"])
    table = pa.Table.from_pylist([{k: _cell(v) for k, v in row.items()}])
    fs, fs_path = _fs(path)
    parent = fs_path.rsplit("/", 1)[0]
    fs.create_dir(parent, recursive=True)
    if isinstance(fs, pafs.LocalFileSystem):
        tmp = f"{parent}/.tmp-{uuid.uuid4().hex}"
        pq.write_table(table, tmp, filesystem=fs)
        fs.move(tmp, fs_path)
    else:
        pq.write_table(table, fs_path, filesystem=fs)
    return path


def _row_files(root: str, sweep: str | None) -> tuple[pafs.FileSystem, list[str]]:
    fs, base = _fs(root)
    if fs.get_file_info(base).type == pafs.FileType.NotFound:
        return fs, []
    selector = pafs.FileSelector(f"{base}/sweep={sweep}" if sweep else base, recursive=True, allow_not_found=True)
    files = [i.path for i in fs.get_file_info(selector)
             if i.type == pafs.FileType.File and i.base_name.endswith(".parquet") and not i.base_name.startswith(".")]
    return fs, sorted(files)


def read_rows(root: str, sweep: str | None = None) -> pd.DataFrame:
    """All rows (of one sweep, or of all), one DataFrame; empty when there are none."""
    fs, files = _row_files(root, sweep)
    frames = [pq.read_table(f, filesystem=fs).to_pandas() for f in files]
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True).sort_values(["sweep", "trial_id", "step"], ignore_index=True)


def mark_final(root: str, sweep: str, trial_id: str, step: int, reason: str) -> bool:
    """Mark a trial's row at `step` as its final one (a trial a scheduler stopped early); a packed trial's rows
    ('<trial_id>_s<seed>') are all marked. False if there is none."""
    fs, fs_path = _fs(row_path(root, sweep, trial_id, step))
    paths = [fs_path]
    if fs.get_file_info(fs_path).type != pafs.FileType.File:
        suffix = f"-{int(step):012d}.parquet"
        paths = [p for p in _row_files(root, sweep)[1]
                 if p.rsplit("/", 1)[-1].startswith(f"{trial_id}_s") and p.endswith(suffix)]
    for path in paths:
        row = pq.read_table(path, filesystem=fs).to_pylist()[0]
        if not row.get("final"):
            write_row(root, {**row, "final": True, "stop_reason": reason})
    return bool(paths)


def git_commit(repo: str | Path | None = None) -> str:
    """HEAD of the repository holding this package ('+dirty' when it has changes; 'unknown' without git)."""
    repo = Path(repo or Path(__file__).resolve().parents[1])
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def package_versions() -> str:
    """'name==version' of the packages that decide a result, comma-separated."""
    out = []
    for name in PACKAGES:
        try:
            out.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ",".join(out)


def host_info(device: str) -> dict[str, Any]:
    """Host, process and accelerator of the current worker."""
    import torch

    gpu = torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else "none"
    return {"host": socket.gethostname(), "pid": os.getpid(), "gpu_name": gpu, "device_used": device,
            "torch_threads": torch.get_num_threads(), "package_versions": package_versions()}
