"""The structure of a pytree: leaves, their flat layout and readable paths.

Layer: bottom (beside errors).  Imports numpy only: no framework, no adapter,
nothing else of the package.  Reading leaves into numbers goes through the
adapters (frameworks/), so it lives above this module, in numerics/trees.py;
the adapters themselves use :func:`build` to rebuild a tree from their leaves.

A pytree is a leaf or a dict / list / tuple (namedtuple) of pytrees.  Dict keys
keep the user's order.  Paths read like Python: ``W1``, ``enc[0]``,
``dec[1]['s']``; a bare leaf is ``params``.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

import numpy as np

#: the path of a bare leaf (params that are one array)
ROOT = "params"


@dataclass
class Leaf:
    path: str
    shape: tuple
    offset: int
    size: int
    adapter: Any           # the frameworks.base.Adapter that read this leaf (duck-typed here)
    original: Any
    dtype: np.dtype        # numpy dtype of the leaf's values (as read)
    dtype_name: str        # the framework's spelling ("bfloat16")
    eps: float             # unit roundoff of the native dtype

    @property
    def slice(self) -> slice:
        return slice(self.offset, self.offset + self.size)

    @property
    def is_float(self) -> bool:
        return np.issubdtype(self.dtype, np.floating) or np.issubdtype(self.dtype, np.complexfloating)


@dataclass
class TreeSpec:
    """The structure of a pytree: nested ('dict'|'list'|'tuple', keys, children) or a leaf index."""

    node: Any
    leaves: list
    size: int
    #: flat entries held fixed (a bool mask: params' non-finite entries, e.g. -inf masks), or None.
    #: A gradient read in this layout may hold anything there; it is read as 0 (trees.flatten_like)
    held: Any = None


def child_path(parent: str, key, top: bool) -> str:
    """The path of child ``key`` of the node at ``parent`` (``top``: the node is the root)."""
    if isinstance(key, int):
        return f"{'' if top else parent}[{key}]"
    if top and isinstance(key, str):
        return key
    return f"{'' if top else parent}[{key!r}]"


def build(spec: TreeSpec, make_leaf) -> Any:
    """Rebuild the pytree; ``make_leaf(k, leaf)`` returns the k-th leaf object."""

    def visit(node):
        if isinstance(node, int):
            return make_leaf(node, spec.leaves[node])
        kind, keys, children = node
        if kind == "dict":
            return {k: visit(c) for k, c in zip(keys, children)}
        if kind == "list":
            return [visit(c) for c in children]
        if kind == "tuple":
            return tuple(visit(c) for c in children)
        return keys(*[visit(c) for c in children])  # namedtuple type

    return visit(spec.node)


def builder(spec: TreeSpec):
    """``make(objs)``: a new pytree of ``spec``'s structure holding ``objs[k]`` as its k-th leaf.

    The evaluator hands fun a fresh structure on every call (a fun that rebinds ``p["w"]`` in
    the container it got must not change what the next call sees), so this is on the hot path:
    it is compiled once per spec into one expression of container displays
    (``{K0: objs[0], K1: [objs[1], objs[2]]}``), which costs little more than creating the
    containers (a recursive rebuild costs ~10x more per leaf).  Keys and namedtuple types are
    bound as names, never written into the source."""
    if isinstance(spec.node, int):  # a bare leaf: no container to renew (a C getter, no Python frame)
        return operator.itemgetter(spec.node)
    names: dict = {}

    def bind(value) -> str:
        name = f"_K{len(names)}"
        names[name] = value
        return name

    def expr(node) -> str:
        if isinstance(node, int):
            return f"objs[{node}]"
        kind, keys, children = node
        parts = [expr(c) for c in children]
        if kind == "dict":
            return "{" + ", ".join(f"{bind(k)}: {p}" for k, p in zip(keys, parts)) + "}"
        if kind == "list":
            return "[" + ", ".join(parts) + "]"
        if kind == "tuple":
            return "(" + "".join(f"{p}, " for p in parts) + ")"
        return f"{bind(keys)}(" + ", ".join(parts) + ")"  # namedtuple type

    source = f"lambda objs: {expr(spec.node)}"
    return eval(source, {"__builtins__": {}, **names})  # noqa: S307 - source built above from indices and bound names


def unravel(spec: TreeSpec, i: int) -> tuple[str, tuple]:
    """(leaf path, index within the leaf's shape) of flat entry ``i``."""
    offs = [leaf.offset for leaf in spec.leaves]
    k = int(np.searchsorted(offs, i, side="right") - 1)
    leaf = spec.leaves[k]
    j = i - leaf.offset
    idx = tuple(int(t) for t in np.unravel_index(j, leaf.shape)) if leaf.shape else ()
    return leaf.path, idx
