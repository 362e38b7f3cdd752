"""The structure the core promises: layers that import only downwards and never the command lines, every private
torch / Ray API behind its compat module, each config field declared once, and a registry that is all an algorithm
needs to appear in the command line, the sweeps' validation and the tables."""
from __future__ import annotations

import ast
import dataclasses
import importlib
import importlib.util
import re
import sys
import textwrap
from pathlib import Path

import pytest

from genrl_core import algorithms

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "genrl_core"
COMMANDS = {"genrl_core.train", "genrl_core.datasets", "genrl_core.demo"}
# each layer may import itself and the layers before it (genrl_core/__init__.py draws them); making datasets runs
# rollouts, so data.making, its SAC and the maze makers (data.mazes) sit above evaluation
LAYERS = ["torch_compat", "common", "progress", "generative", "data", "evaluation", "making", "algorithms", "run"]
MAKING = {"genrl_core.data.making", "genrl_core.data.sac", "genrl_core.data.mazes"}


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def _layer(module: str) -> str | None:
    if any(module == m or module.startswith(m + ".") for m in MAKING):
        return "making"
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "genrl_core" and parts[1] in LAYERS else None


def _core_files() -> list[Path]:
    return [p for p in CORE.rglob("*.py") if p.stem not in {"train", "datasets", "demo"} or p.parent != CORE]


def test_core_modules_import_no_command_line_and_no_ray_and_only_downwards():
    bad = []
    for path in _core_files():
        own = _layer("genrl_core." + ".".join(path.relative_to(CORE).with_suffix("").parts))
        for mod in _imports(path):
            if mod in COMMANDS or mod.split(".")[0] == "ray":
                bad.append(f"{path.relative_to(ROOT)} imports {mod}")
            layer = _layer(mod)
            if own and layer and LAYERS.index(layer) > LAYERS.index(own):
                bad.append(f"{path.relative_to(ROOT)} ({own}) imports {mod} ({layer})")
    assert bad == []


@pytest.mark.parametrize("private", [r"torch\._C\b", r"ray\._private", r"\._version\b", r"\._parameters\b",
                                     r"torch\._foreach", r"_node_ip_address", r"_reparametrize_module"])
def test_private_apis_only_in_the_compat_modules(private: str):
    compat = {CORE / "torch_compat.py", ROOT / "tune_jobs" / "ray_compat.py"}
    found = [str(p.relative_to(ROOT)) for folder in ("genrl_core", "tune_jobs", "sweeps", "analysis", "benchmarks")
             for p in (ROOT / folder).rglob("*.py") if p not in compat and re.search(private, p.read_text())]
    assert found == []


def _declared(cls: type) -> set[str]:
    """The field names annotated in the class's own body (its source), not those with_defaults re-defaults."""
    tree = ast.parse(textwrap.dedent(importlib.import_module(cls.__module__).__loader__.get_source(cls.__module__)))
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == cls.__name__)
    return {s.target.id for s in node.body if isinstance(s, ast.AnnAssign) and "ClassVar" not in ast.unparse(s)}


def test_no_config_field_is_declared_twice():
    twice, critic_owners = {}, set()
    for name in algorithms.names():
        owners: dict[str, list[str]] = {}
        for cls in algorithms.get(name)[0].config_class.__mro__:
            if dataclasses.is_dataclass(cls):
                for field in _declared(cls):
                    owners.setdefault(field, []).append(cls.__name__)
        twice.update({f"{name}.{f}": o for f, o in owners.items() if len(o) > 1})
        critic_owners.update(o[0] for f, o in owners.items() if f in ("gamma", "critic_lr", "critic_init"))
    assert twice == {}
    assert critic_owners == {"CriticConfig"}  # one critic config, composed into every algorithm with a critic


TOY = '''
from dataclasses import dataclass

from genrl_core.algorithms.bc import BC, BCConfig
from genrl_core.algorithms.config import doc


@dataclass
class ToyConfig(BCConfig):
    noise: float = doc(0.5, "the toy's own knob")


class Toy(BC):
    config_class = ToyConfig
'''


@pytest.fixture
def toy_algorithm(tmp_path, monkeypatch):
    (tmp_path / "toy_algo_mod.py").write_text(TOY)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(algorithms, "_REGISTRY", dict(algorithms._REGISTRY))
    algorithms.register("toyalgo", "toy_algo_mod:Toy", "ToyAlgo")
    yield
    sys.modules.pop("toy_algo_mod", None)


def test_a_registered_algorithm_reaches_the_command_line_the_sweeps_and_the_tables(toy_algorithm, capsys):
    from genrl_core import train

    with pytest.raises(SystemExit) as done:
        train.main(["--algo", "toyalgo", "--help"])
    help_text = capsys.readouterr().out
    assert done.value.code == 0
    assert "toyalgo config (ToyConfig)" in help_text and "--noise NOISE" in help_text
    assert "the toy's own knob" in help_text

    from tune_jobs import config as C

    flat = {**C.RUN_DEFAULTS, "algorithm": "toyalgo", "dataset": "toy/swissroll-v0", "noise": 0.1}
    assert C.trial_problems(flat) == []
    assert any("nosie" in p for p in C.trial_problems({**flat, "nosie": 0.1}))

    from conftest import load_make_tables  # noqa: PLC0415

    assert load_make_tables()._alg({"algorithm": "toyalgo"}) == "ToyAlgo"  # (a full table: test_tables' registry test)


def test_help_text_comes_from_the_fields_documentation():
    from genrl_core.algorithms.config import field_docs
    from genrl_core.algorithms.gmpo import GMPOConfig

    docs = field_docs(GMPOConfig)
    assert docs["critic_steps"].startswith("IQL steps of Algorithm 1's first loop")  # with_defaults' own text
    assert docs["gamma"] == "discount factor"  # declared once, in CriticConfig
    assert [f.name for f in dataclasses.fields(GMPOConfig)][:2] == ["path", "icfm_sigma"]
    assert GMPOConfig().critic_steps == 1000 and GMPOConfig().critic_alongside is False
