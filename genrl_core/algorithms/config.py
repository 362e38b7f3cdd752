"""What the algorithms' config dataclasses are built from: documented fields (`doc`, whose text is the command line's
help), an algorithm's own defaults for inherited fields without declaring them again (`with_defaults`), and the
one-line checks their `__post_init__` methods run (`check_choice`, `check_min`)."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence, TypeVar

__all__ = ["check_choice", "check_min", "doc", "field_docs", "with_defaults"]

T = TypeVar("T", bound=type)


def doc(default: Any, text: str) -> Any:
    """A config field with its default and its documentation (the `--help` text)."""
    return dataclasses.field(default=default, metadata={"doc": text})


def field_docs(config_class: type) -> dict[str, str]:
    """Each field's documentation, as given by `doc`."""
    return {f.name: f.metadata.get("doc", "") for f in dataclasses.fields(config_class)}


def with_defaults(**values: Any) -> Callable[[T], T]:
    """Class decorator, placed under @dataclass: inherited fields take these defaults in this class, keeping the
    field's declaration (type, documentation and place) where it was declared. A value made with `doc` also
    replaces the documentation."""

    def wrap(cls: T) -> T:
        inherited = {f.name: f for base in cls.__mro__[1:] if dataclasses.is_dataclass(base)
                     for f in dataclasses.fields(base)}
        own = cls.__dict__.get("__annotations__", {})
        cls.__annotations__ = dict(own)
        for name, value in values.items():
            if name not in inherited or name in own:
                raise TypeError(f"{cls.__name__}: with_defaults({name}=...) needs a field inherited and not "
                                f"declared in the class; inherited: {sorted(inherited)}")
            base = inherited[name]
            cls.__annotations__[name] = base.type
            if not isinstance(value, dataclasses.Field):
                value = dataclasses.field(default=value, metadata=base.metadata)
            setattr(cls, name, value)
        return cls

    return wrap


def check_choice(algo: str, name: str, value: str, valid: Sequence[str]) -> None:
    """One clear line for a config string outside its valid set."""
    if value not in valid:
        raise ValueError(f"{algo}: unknown {name} {value!r}; valid: {list(valid)}")


def check_min(algo: str, name: str, value: float, low: float) -> None:
    """One clear line for a config number below its minimum."""
    if value < low:
        raise ValueError(f"{algo}: {name} must be >= {low}, got {value}")
