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


def structure(tree) -> tuple[Any, list]:
    """(node, leaves): ``tree``'s structure in TreeSpec's node format and its leaf objects in
    order, untouched.  What an adapter needs to take a tree apart and put it back together with
    new leaves (``build(TreeSpec(node, leaves, 0), lambda k, _: new[k])``); reading leaves into
    numbers, with the checks on them, is numerics/trees.flatten's job."""
    leaves: list = []

    def visit(obj):
        if obj is None:  # an empty subtree, as in jax: no leaf
            return ("none", None, [])
        if isinstance(obj, dict):
            return ("dict", list(obj.keys()), [visit(v) for v in obj.values()])
        if isinstance(obj, tuple) and hasattr(obj, "_fields"):
            return ("namedtuple", type(obj), [visit(v) for v in obj])
        if isinstance(obj, (list, tuple)):
            return ("list" if isinstance(obj, list) else "tuple", None, [visit(v) for v in obj])
        leaves.append(obj)
        return len(leaves) - 1

    try:
        return visit(tree), leaves
    finally:
        del visit  # a recursive closure is a reference cycle


def same_structure(spec: TreeSpec, tree) -> bool:
    """Whether ``tree`` has ``spec``'s containers and leaf shapes (a gradient of params would):
    read only to word a message, never to decide a verdict."""
    try:
        node, leaves = structure(tree)
    except RecursionError:  # pragma: no cover - a cyclic container
        return False

    def same_leaf(leaf, obj):
        shape = () if isinstance(obj, (int, float)) else getattr(obj, "shape", None)
        if shape is None:
            return False
        return tuple(shape) == leaf.shape or (leaf.size == 1 and int(np.prod(shape)) == 1)

    def same(a, b):
        if isinstance(a, int) or isinstance(b, int):
            return isinstance(a, int) and isinstance(b, int) and same_leaf(spec.leaves[a], leaves[b])
        return a[0] == b[0] and a[1] == b[1] and len(a[2]) == len(b[2]) and all(map(same, a[2], b[2]))

    try:
        return same(spec.node, node)
    finally:
        del same


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
        if kind == "none":
            return None
        return keys(*[visit(c) for c in children])  # namedtuple type

    try:
        return visit(spec.node)
    finally:
        del visit  # a recursive closure is a reference cycle: make_leaf and what it holds would wait for gc


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
        if kind == "none":
            return "None"
        return f"{bind(keys)}(" + ", ".join(parts) + ")"  # namedtuple type

    source = f"lambda objs: {expr(spec.node)}"
    return eval(source, {"__builtins__": {}, **names})  # noqa: S307 - source built above from indices and bound names


def unravel(spec: TreeSpec, i: int) -> tuple[str, tuple]:
    """(leaf path, index within the leaf's shape) of flat entry ``i``.

    Plain Python (bisect, divmod): called for every reported entry, where numpy's
    searchsorted and unravel_index cost more than the arithmetic."""
    leaves = spec.leaves
    lo, hi = 0, len(leaves)
    while hi - lo > 1:  # the last leaf whose offset is <= i
        mid = (lo + hi) // 2
        if leaves[mid].offset <= i:
            lo = mid
        else:
            hi = mid
    leaf = leaves[lo]
    j = int(i) - leaf.offset
    named = getattr(leaf.adapter, "entry_index", None)
    named = named(leaf.original, j) if named is not None else None
    if named is not None:  # a sparse tensor's stored value: its coordinates, not its place among the values
        return leaf.path, named
    if not leaf.shape:
        return leaf.path, ()
    idx = []
    for dim in reversed(leaf.shape):
        j, r = divmod(j, dim)
        idx.append(r)
    return leaf.path, tuple(reversed(idx))
