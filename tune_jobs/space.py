"""Plans and param-space algebra: what a sweep script declares and how the flags reshape it, before any Ray runs.

A Plan is one Tune experiment: a param space of constants, tune.grid_search lists, searcher domains and
"variant" dicts of tied keys, plus its searcher / scheduler. This module expands a space into its trial configs
(searcher domains at their bounds), applies --set (a list becomes a grid) and --only (on grids, constants and
variant keys), adds the seeds and the preset to a plan, says why --only left nothing, names the experiments
after --name and counts the trials a plan runs.
"""
from __future__ import annotations

import argparse
import ast
import itertools
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from ray import tune

from tune_jobs import config as C


@dataclass
class Plan:
    """One Tune experiment of a sweep."""

    name: str  # Ray experiment name (a folder under --storage)
    space: dict[str, Any]  # param space: constants, tune.grid_search(...), searcher domains, "variant"
    samples: int = 1  # num_samples (searcher plans)
    searcher: Callable[[], Any] | None = None  # makes the search algorithm (e.g. OptunaSearch)
    scheduler: Callable[[dict[str, Any]], Any] | None = None  # makes the trial scheduler from the prepared space
    metric: str | None = None  # metric and mode given to TuneConfig (searcher / scheduler plans)
    mode: str | None = None
    notes: list[str] = field(default_factory=list)  # printed before running (skipped tasks, ...)


Presets = dict[str, Callable[[], list[Plan]]]


def every_preset(plans: Callable[[str], list[Plan]]) -> Presets:
    """A sweep script's plans(preset) for each preset the sweeps know (C.PRESETS)."""
    return {preset: (lambda preset=preset: plans(preset)) for preset in C.PRESETS}


def _grid(value: Any) -> list | None:
    return value["grid_search"] if isinstance(value, dict) and set(value) == {"grid_search"} else None


def points(value: Any) -> list:
    """The values a key takes for validation: grid values, a domain's bounds or categories, or the constant."""
    if _grid(value) is not None:
        return _grid(value)
    from ray.tune.search.sample import Categorical, Domain

    if isinstance(value, Categorical):
        return list(value.categories)
    if isinstance(value, Domain):
        return [value.lower, value.upper]
    return [value]


def expand(space: dict[str, Any]) -> list[dict[str, Any]]:
    """Every trial config of a param space (searcher domains at their bounds), variants merged."""
    keys = list(space)
    combos = itertools.product(*(points(space[k]) for k in keys))
    return [C.flatten(dict(zip(keys, combo))) for combo in combos]


def trial_count(plan: Plan) -> int:
    """Trials a plan runs: its grid (times samples), or the searcher's samples."""
    return plan.samples if plan.searcher else len(expand(plan.space)) * plan.samples


def _literal(text: str) -> Any:
    """A Python literal, true / false (any case) as bools, else the text itself."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _key_value(item: str, flag: str) -> tuple[str, str]:
    if "=" not in item:
        raise C.SweepConfigError(f"{flag} {item!r}: expected KEY=VALUE")
    key, value = item.split("=", 1)
    return key.strip(), value.strip()


def apply_sets(space: dict[str, Any], sets: list[str]) -> dict[str, Any]:
    """--set KEY=VALUE: a top-level key wins over variants; a list value becomes a grid."""
    out = dict(space)
    for item in sets:
        key, text = _key_value(item, "--set")
        value = _literal(text)
        out[key] = tune.grid_search(value) if isinstance(value, list) else value
    return out


def filter_space(space: dict[str, Any], key: str, keep: Callable[[Any], bool]) -> dict[str, Any] | None:
    """Keep only trials whose `key` passes `keep` (a grid, a constant or a variant key); None if none is left."""
    out = dict(space)
    variants = [k for k in out if k.startswith("variant") and _grid(out[k]) is not None
                and any(key in v for v in _grid(out[k]))]
    if key in out and _grid(out[key]) is not None:
        out[key] = tune.grid_search([v for v in _grid(out[key]) if keep(v)])
        return out if _grid(out[key]) else None
    if key in out:
        return out if keep(out[key]) else None
    for vkey in variants:
        out[vkey] = tune.grid_search([v for v in _grid(out[vkey]) if keep(v.get(key, C.RUN_DEFAULTS.get(key)))])
        if not _grid(out[vkey]):
            return None
    if not variants:
        return out if keep(C.RUN_DEFAULTS.get(key)) else None
    return out


def _one_of(value: Any, allowed: list[str]) -> bool:
    """Whether a config value is one of --only's texts (numbers compared as numbers: beta=4 keeps 4.0)."""
    for text in allowed:
        wanted = _literal(text)
        if str(value) == text or (_number(value) and _number(wanted) and float(value) == float(wanted)):
            return True
    return False


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def apply_only(space: dict[str, Any], only: list[str]) -> dict[str, Any] | None:
    """--only KEY=V1,V2 on grids, constants and variants; None when no trial is left."""
    out: dict[str, Any] | None = dict(space)
    for item in only:
        key, text = _key_value(item, "--only")
        allowed = text.split(",")
        out = filter_space(out, key, lambda v: _one_of(v, allowed)) if out is not None else None
    return out


def only_problem(plans: list[Plan], only: list[str]) -> str:
    """Why --only left no trial: the first filter naming an unknown key or a value no trial has, with the valid ones."""
    configs = [c for p in plans for c in expand(p.space)]
    for item in only:
        key, text = _key_value(item, "--only")
        values = sorted({str(c[key]) for c in configs if key in c})
        if not values:
            keys = sorted({k for c in configs for k in c})
            return f"--only {item}: no trial of this sweep sets {key!r}; keys: {', '.join(keys)}"
        if not any(_one_of(c[key], text.split(",")) for c in configs if key in c):
            return f"--only {item}: no trial has {key}={text}; values in this sweep: {', '.join(values)}"
    return f"no trials left after --only {' '.join(only)}: no trial passes all of them together"


def prepare_plan(plan: Plan, args: argparse.Namespace) -> Plan | None:
    """Seeds, preset, --set and --only applied to a plan; None if --only leaves nothing."""
    space = dict(plan.space)
    seeds = args.seeds or C.PRESET_SEEDS[args.preset]
    if len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise C.SweepConfigError(f"--seeds {' '.join(map(str, seeds))}: give each seed once, as integers >= 0")
    if plan.searcher and args.seeds and len(seeds) > 1:
        raise C.SweepConfigError(f"--seeds {' '.join(map(str, seeds))}: {plan.name} searches with one seed per trial; "
                                 f"give one seed")
    space.setdefault("seed", seeds[0] if plan.searcher else tune.grid_search(seeds))
    space["preset"] = args.preset
    space = apply_only(apply_sets(space, args.sets), args.only)
    return None if space is None else replace(plan, space=space)


def with_samples(make: Callable[[], list[Plan]], samples: int) -> Callable[[], list[Plan]]:
    """A preset whose searcher plans run `samples` trials each (--samples)."""
    return lambda: [replace(p, samples=samples) if p.searcher else p for p in make()]


def named(plans: list[Plan], default: str, name: str) -> list[Plan]:
    """The plans' experiment folders under --name: the sweep's own name, their prefix, replaced by it."""
    if name == default:
        return plans
    return [replace(p, name=name + (p.name[len(default):] if p.name.startswith(default) else f"-{p.name}"))
            for p in plans]
