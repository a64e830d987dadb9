"""One config mechanism: dataclass configs, filled from YAML and changed by dotted ``a.b=value`` overrides.

Every setting voxa takes is a field of a dataclass (nested dataclasses for sections such as
``trainer`` or ``mixing``). :func:`from_dict` builds one from a plain mapping (a YAML file, a recipe
section, a model header) and refuses keys the class does not have, naming the valid ones;
:func:`override` applies ``--set`` items such as ``trainer.lr=3e-3`` to a config and refuses keys it
cannot honour: unknown ones, and those a schedule would overwrite (a class lists them in
``__scheduled__``, mapping the overwritten key to the setting that controls it). Values are parsed
as YAML, so ``--set a=[0.9,0.7]`` gives a list and ``--set a=null`` gives ``None``.

Example:
    >>> from dataclasses import dataclass, field
    >>> @dataclass
    ... class Opt:
    ...     lr: float = 1e-3
    ...     epochs: int = 10
    >>> @dataclass
    ... class Run:
    ...     name: str = "x"
    ...     trainer: Opt = field(default_factory=Opt)
    >>> override(Run(), ["trainer.lr=3e-3", "name=big"])  # 3e-3 is a string to YAML, a float here
    Run(name='big', trainer=Opt(lr=0.003, epochs=10))
    >>> override(Run(), ["trainer.rate=2"])
    Traceback (most recent call last):
    ...
    voxa.errors.ConfigError: unknown setting 'trainer.rate'; trainer takes: epochs, lr
"""

from __future__ import annotations

import copy
import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from voxa.errors import ConfigError

__all__ = ["apply_overrides", "from_dict", "load_yaml", "override", "parse_overrides", "to_dict",
           "valid_keys"]


def parse_overrides(items: list[str] | tuple[str, ...]) -> list[tuple[list[str], Any]]:
    """``["a.b=1", ...]`` as ``[(["a", "b"], 1), ...]``, values parsed as YAML.

    Raises:
        ConfigError: For an item without ``=`` or with an empty key part.
    """
    out = []
    for item in items:
        if "=" not in item:
            raise ConfigError(f"setting {item!r} must look like key.sub=value")
        key, text = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(parts):
            raise ConfigError(f"setting {item!r}: empty part in key {key!r}")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text  # a bare string YAML cannot parse (e.g. "a: b") is taken as written
        out.append((parts, value))
    return out


def apply_overrides(d: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of the mapping ``d`` with dotted overrides set (creating sub-mappings as needed).

    This is the schema-free half, for mappings whose keys a later :func:`from_dict` checks.
    """
    d = copy.deepcopy(d)
    for parts, value in parse_overrides(overrides):
        node = d
        for i, p in enumerate(parts[:-1]):
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"setting {'.'.join(parts)}: {'.'.join(parts[:i + 1])} is not a section")
        node[parts[-1]] = value
    return d


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # an annotation that does not resolve (a class defined in a function): the raw ones
        return {f.name: f.type for f in dataclasses.fields(cls)}


def _dataclass_of(tp: Any) -> type | None:
    """The dataclass a field holds (also through ``Optional[...]``), else ``None``."""
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return tp
    if typing.get_origin(tp) in (typing.Union, types.UnionType):  # Optional[X] and X | None only
        for arg in typing.get_args(tp):
            if isinstance(arg, type) and dataclasses.is_dataclass(arg):
                return arg
    return None


def _section(cls: type, name: str) -> type | None:
    """The dataclass of field ``name`` of ``cls``: from its annotation, else from its default factory
    (annotations written as strings that do not resolve still have one)."""
    sub = _dataclass_of(_hints(cls).get(name))
    if sub is None:
        f = next((f for f in dataclasses.fields(cls) if f.name == name), None)
        factory = getattr(f, "default_factory", dataclasses.MISSING)
        if isinstance(factory, type) and dataclasses.is_dataclass(factory):
            sub = factory
    return sub


def _list_of(tp: Any) -> type | None:
    """The dataclass of a ``list[X]`` field's items (``X`` a dataclass), else ``None``."""
    if typing.get_origin(tp) is list:
        return _dataclass_of(typing.get_args(tp)[0]) if typing.get_args(tp) else None
    return None


def _coerce(tp: Any, v: Any) -> Any:
    """A string given for a number field as the number (YAML reads ``3e-3`` as a string)."""
    if not isinstance(v, str):
        return v
    names = {tp} | set(typing.get_args(tp)) if tp is not None else set()
    names = {getattr(n, "__name__", n) for n in names}
    for kind, conv in (("float", float), ("int", int)):
        if kind in names or (isinstance(tp, str) and kind in tp.replace("|", " ").split()):
            try:
                return conv(v)
            except ValueError:
                return v
    return v


def _is_tuple(tp: Any) -> bool:
    return tp is tuple or typing.get_origin(tp) is tuple or any(
        typing.get_origin(a) is tuple for a in typing.get_args(tp))


def valid_keys(cls: type) -> list[str]:
    """The field names of the dataclass ``cls``, sorted."""
    return sorted(f.name for f in dataclasses.fields(cls) if f.init)


def from_dict(cls: type, d: dict[str, Any] | None, where: str = "") -> Any:
    """An instance of the dataclass ``cls`` from a mapping, nested sections included.

    Args:
        cls: The dataclass.
        d: Field values; missing fields keep their defaults; nested dataclass fields take mappings;
            tuple fields take lists.
        where: Prefix naming this section in errors (``"trainer."``).

    Raises:
        ConfigError: For a key ``cls`` does not have (naming the valid ones), a section that is not a
            mapping, or a value the class's own checks refuse.
    """
    if isinstance(d, cls):
        return d
    if d is None:
        d = {}
    if not isinstance(d, dict):
        raise ConfigError(f"{where.rstrip('.') or 'config'}: expected a mapping of settings, got {d!r}")
    names = valid_keys(cls)
    unknown = sorted(set(d) - set(names))
    if unknown:
        section = where.rstrip(".") or cls.__name__
        raise ConfigError(f"unknown setting {where + unknown[0]!r}; {section} takes: {', '.join(names)}")
    hints = _hints(cls)
    kw = {}
    for k, v in d.items():
        sub = _section(cls, k)
        if sub is not None and isinstance(v, dict):
            v = from_dict(sub, v, f"{where}{k}.")
        elif sub is not None and not isinstance(v, sub) and v is not None:
            raise ConfigError(f"{where}{k}: expected a mapping of settings, got {v!r}")
        elif _is_tuple(hints.get(k)) and isinstance(v, list):
            v = tuple(v)
        elif _list_of(hints.get(k)) is not None and isinstance(v, list):
            item = _list_of(hints.get(k))
            v = [from_dict(item, x, f"{where}{k}[{i}].") for i, x in enumerate(v)]
        else:
            v = _coerce(hints.get(k), v)
        kw[k] = v
    try:
        return cls(**kw)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where.rstrip('.') or cls.__name__}: {e}") from None


def to_dict(cfg: Any) -> dict[str, Any]:
    """A dataclass config as plain YAML/JSON-ready data (tuples become lists)."""
    def plain(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(cfg))


def _check_path(cls: type, parts: list[str]) -> None:
    """Refuse a dotted key that does not name a field of ``cls`` (or of its nested sections)."""
    node: type | None = cls
    for i, p in enumerate(parts):
        if node is None:
            return  # inside a free-form mapping field (e.g. a model's own settings): checked later
        names = valid_keys(node)
        if p not in names:
            prefix = ".".join(parts[:i])
            section = prefix or cls.__name__
            hint = _suggest(cls, p)
            raise ConfigError(f"unknown setting {'.'.join(parts)!r}; {section} takes: {', '.join(names)}"
                              + (f" (did you mean {hint}?)" if hint else ""))
        tp = _hints(node).get(p)
        sub = _section(node, p)
        if i + 1 < len(parts) and sub is None and typing.get_origin(tp) is not dict and tp is not dict \
                and "dict" not in str(tp):
            raise ConfigError(f"setting {'.'.join(parts)!r}: {'.'.join(parts[:i + 1])} is not a section")
        node = sub


def _suggest(cls: type, leaf: str, prefix: str = "") -> str | None:
    """The dotted path of a nested field named ``leaf``, for a flat key given where a dotted one is needed."""
    for f in dataclasses.fields(cls):
        sub = _section(cls, f.name)
        if sub is None:
            continue
        if leaf in valid_keys(sub):
            return f"{prefix}{f.name}.{leaf}"
        deeper = _suggest(sub, leaf, f"{prefix}{f.name}.")
        if deeper:
            return deeper
    return None


def override(cfg: Any, overrides: list[str] | tuple[str, ...]) -> Any:
    """A new config with dotted ``--set`` items applied, re-validated by the classes' own checks.

    A class may declare ``__scheduled__ = {"mixing.presence": "presence_schedule"}``: such a key is
    overwritten during a run by another setting, so setting it directly would be ignored and is refused.

    Raises:
        ConfigError: For an unknown key (naming the valid ones), a key a schedule overwrites, or a value
            the config refuses.
    """
    cls = type(cfg)
    scheduled: dict[str, str] = getattr(cls, "__scheduled__", {})
    d = to_dict(cfg)
    for parts, value in parse_overrides(list(overrides)):
        key = ".".join(parts)
        if key in scheduled:
            raise ConfigError(f"setting {key!r} is overwritten during the run by {scheduled[key]!r}; "
                              f"set {scheduled[key]} instead")
        _check_path(cls, parts)
        node = d
        for p in parts[:-1]:
            nxt = node.get(p)
            if nxt is None:
                nxt = node[p] = {}
            node = nxt
        node[parts[-1]] = value
    return from_dict(cls, d)


def load_yaml(path: str | os.PathLike, cls: type | None = None) -> Any:
    """A YAML file as a mapping, or as an instance of the dataclass ``cls`` (strictly checked).

    Raises:
        ConfigError: If the file is missing, is not valid YAML, is not a mapping, or has a key ``cls``
            does not take.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config not found")
    try:
        d = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        first = str(e).splitlines()[0] if str(e) else "parse error"
        raise ConfigError(f"{p}: not valid YAML ({first})") from None
    if d is None:
        d = {}
    if not isinstance(d, dict):
        raise ConfigError(f"{p}: expected a YAML mapping of settings")
    if cls is None:
        return d
    try:
        return from_dict(cls, d)
    except ConfigError as e:
        raise ConfigError(f"{p}: {e}") from None
