"""Pytrees -> one flat float64 vector, each leaf read through its framework's adapter.

Layer: numerics, bottom (beside evaluate.py).  Imports errors, pytree (the
structure: Leaf, TreeSpec, paths) and frameworks.registry (which adapter reads a
leaf); nothing else of numerics/.

A leaf is a numpy array, a Python or numpy scalar, or a framework array (via an
adapter).  The structure and its paths are :mod:`pytest_gradcheck.pytree`'s.
"""

from __future__ import annotations

import numpy as np

from ..errors import GradcheckInputError
from ..frameworks.registry import adapter_for, unsupported
from ..pytree import ROOT, Leaf, TreeSpec, build, child_path

#: containers nested deeper than this are refused before Python's recursion limit (~1000 frames)
#: is hit: real parameter trees nest a few levels (model -> layer -> weight)
MAX_DEPTH = 100


def flatten(params, name: str = "params") -> tuple[np.ndarray, TreeSpec]:
    """Read a pytree into a new float64 vector and its spec (the caller's leaves are only read)."""
    leaves: list[Leaf] = []
    chunks: list[np.ndarray] = []
    offset = 0
    open_: set = set()  # ids of the containers on the path being visited (a cycle comes back to one)

    def visit(obj, path, top):
        if isinstance(obj, (dict, list, tuple)):
            p = path if path else ROOT
            if id(obj) in open_:
                raise GradcheckInputError(f"{name} contains itself at {p!r} (a cycle); it must be a tree of containers")
            if len(open_) >= MAX_DEPTH:
                raise GradcheckInputError(f"{name} nests containers more than {MAX_DEPTH} deep (at {p[:200]!r}...); "
                                          f"flatten it into a dict or list of arrays")
            open_.add(id(obj))
            try:
                return visit_node(obj, path, top)
            finally:
                open_.discard(id(obj))
        return visit_node(obj, path, top)

    def visit_node(obj, path, top):
        nonlocal offset
        if obj is None:  # an empty subtree (jax's convention): no entries, grad has None there too
            return ("none", None, [])
        if isinstance(obj, dict):
            if not obj and top:
                pass
            return ("dict", list(obj.keys()), [visit(v, child_path(path, k, top), False) for k, v in obj.items()])
        if isinstance(obj, (list, tuple)) and not hasattr(obj, "_fields"):
            kind = "list" if isinstance(obj, list) else "tuple"
            return (kind, None, [visit(v, child_path(path, i, top), False) for i, v in enumerate(obj)])
        if isinstance(obj, tuple):  # namedtuple
            return ("namedtuple", type(obj), [visit(v, child_path(path, i, top), False) for i, v in enumerate(obj)])
        p = path if path else ROOT
        if isinstance(obj, bool) or (isinstance(obj, np.ndarray) and obj.dtype == bool):
            raise GradcheckInputError(f"{name} leaf {p!r} is boolean; only numeric leaves can be differentiated")
        adapter = adapter_for(obj)
        if adapter is None:
            raise GradcheckInputError(f"{name} leaf {p!r} has {unsupported(obj)}")
        values = np.asarray(_read(adapter, obj, f"{name} leaf {p!r}"))
        if values.dtype == object or not (np.issubdtype(values.dtype, np.number)):
            raise GradcheckInputError(f"{name} leaf {p!r} has non-numeric dtype {values.dtype}")
        if np.issubdtype(values.dtype, np.complexfloating):
            raise GradcheckInputError(
                f"{name} leaf {p!r} is complex ({values.dtype}); gradients are checked for real parameters "
                f"(split real and imaginary parts into two leaves)")
        if not np.issubdtype(values.dtype, np.floating):
            raise GradcheckInputError(
                f"{name} leaf {p!r} has integer dtype {values.dtype}; finite differences need floating-point "
                f"parameters: pass it as float (e.g. np.asarray(x, dtype=float))")
        leaf = Leaf(p, tuple(values.shape), offset, int(values.size), adapter, obj, values.dtype,
                    adapter.native_dtype(obj), adapter.eps(obj))
        leaves.append(leaf)
        chunks.append(values.astype(np.float64, copy=False).ravel())  # concatenate copies it
        offset += leaf.size
        return len(leaves) - 1

    try:
        node = visit(params, "", True)
    finally:
        del visit  # the recursive closure is a reference cycle: it would keep chunks (n floats) until gc
    vec = np.concatenate(chunks) if chunks else np.zeros(0)
    return vec, TreeSpec(node, leaves, offset)


def _read(adapter, obj, where):
    """adapter.to_numpy(obj); an adapter's refusal or failure becomes an error naming the leaf."""
    try:
        return adapter.to_numpy(obj)
    except GradcheckInputError as e:
        raise GradcheckInputError(f"{where}: {e}") from e
    except Exception as e:  # noqa: BLE001 - a framework's own error (e.g. a tensor it cannot copy out)
        raise GradcheckInputError(f"{where} cannot be read as numbers: {type(e).__name__}: {e}") from e


def _read_like(leaf, obj, where):
    """obj read by the params leaf's own adapter in that leaf's layout (a sparse leaf's stored
    coordinates), or None when the adapter leaves it to obj's adapter."""
    read_like = getattr(leaf.adapter, "read_like", None)  # third-party adapters may predate the hook
    if read_like is None:
        return None
    try:
        got = read_like(obj, leaf.original)
    except GradcheckInputError as e:
        raise GradcheckInputError(f"{where}: {e}") from e
    return None if got is None else np.asarray(got)
#: how backward code names the gradient of parameter K (dW1 for W1, as in course code)
_GRADIENT_NAMES = ("d{}", "d_{}", "grad_{}", "{}_grad", "grad{}", "g{}")


def _mapping_hint(missing, extra) -> str:
    """What grad has instead of params' keys and, where its keys are gradient names of them
    (backward's own dict: dW1, db1, dZ1...), the mapping to return."""
    if not extra:
        return ""
    names = {str(e): e for e in extra}
    mapping = {}
    for k in missing:
        for spelling in _GRADIENT_NAMES:
            hit = names.get(spelling.format(k))
            if hit is not None:
                mapping[k] = hit
                break
    text = f"; grad has key(s) {extra}"
    if not mapping:
        return text
    pairs = ", ".join(f"{k!r}: g[{v!r}]" for k, v in mapping.items())
    rest = [e for e in extra if e not in mapping.values()]
    text += (f", which look like backward's own names for the parameters' gradients: return "
             f"{{{pairs}}} from grad")
    return text + (f" (its other keys {rest} are not in params)" if rest else "")


def flatten_like(tree, spec: TreeSpec, what: str = "grad") -> tuple[np.ndarray, list]:
    """Read ``tree`` (e.g. the analytic gradient) in the structure of ``spec``.

    Returns the float64 vector and, per leaf, the numpy dtype of the values.
    Raises GradcheckInputError naming the leaf on any structural mismatch.
    ``None`` for a leaf means a zero gradient (as torch's autograd.Function does).
    Entries ``spec.held`` marks (params' non-finite entries, not checked) may hold anything;
    they are read as 0.
    """
    out = np.zeros(spec.size)
    dtypes: list = [np.dtype(np.float64)] * len(spec.leaves)

    def where(path):
        return path if path else ROOT

    def visit(node, obj, path, top):
        if isinstance(node, int):
            leaf = spec.leaves[node]
            if obj is None:
                if what == "grad" and leaf.adapter.name == "numpy":
                    # torch's autograd.Function returns None for "no gradient"; numpy code that does so
                    # has most likely forgotten to write it (a zero gradient is np.zeros_like(x))
                    raise GradcheckInputError(
                        f"grad returned None for leaf {leaf.path!r} (params has an array of shape {leaf.shape} "
                        f"there); return its gradient, np.zeros_like(...) if it is zero")
                dtypes[node] = leaf.dtype
                return
            if isinstance(obj, (dict, list)):
                raise GradcheckInputError(
                    f"{what} has a {type(obj).__name__} at {leaf.path!r} where params has an array of shape {leaf.shape}")
            v = _read_like(leaf, obj, f"{what} leaf {leaf.path!r}")
            if v is None:
                a = adapter_for(obj)
                if a is None:
                    raise GradcheckInputError(f"{what} leaf {leaf.path!r} has {unsupported(obj)}")
                v = np.asarray(_read(a, obj, f"{what} leaf {leaf.path!r}"))
            if not np.issubdtype(v.dtype, np.number):
                raise GradcheckInputError(f"{what} leaf {leaf.path!r} has non-numeric dtype {v.dtype}")
            if np.issubdtype(v.dtype, np.complexfloating):
                raise GradcheckInputError(f"{what} leaf {leaf.path!r} is complex ({v.dtype}); expected real values")
            if tuple(v.shape) != leaf.shape:
                if v.size == leaf.size and leaf.size == 1:
                    pass  # a scalar as () or (1,): harmless
                else:
                    hint = " (transposed?)" if tuple(v.shape) == tuple(reversed(leaf.shape)) and len(leaf.shape) == 2 else ""
                    raise GradcheckInputError(
                        f"{what} leaf {leaf.path!r} has shape {tuple(v.shape)} but params leaf has shape {leaf.shape}{hint}")
            vals = v.astype(np.float64, copy=False).ravel()
            held = None if spec.held is None else spec.held[leaf.slice]
            if held is not None and held.any():
                vals = np.where(held, 0.0, vals)  # not checked: whatever grad wrote there is not read
            if not np.isfinite(vals).all():
                bad = ~np.isfinite(vals)
                j = int(np.flatnonzero(bad)[0])
                idx = np.unravel_index(j, leaf.shape) if leaf.shape else ()
                raise GradcheckInputError(
                    f"{what} is not finite at {leaf.path}{list(map(int, idx)) if idx else ''}: {vals[j]} "
                    f"({int(bad.sum())} non-finite entries in this leaf)")
            out[leaf.slice] = vals
            dtypes[node] = v.dtype if np.issubdtype(v.dtype, np.floating) else np.dtype(np.float64)
            return
        kind, keys, children = node
        p = where(path)
        if kind == "none":
            if obj is not None and not (isinstance(obj, (dict, list, tuple)) and not obj):
                raise GradcheckInputError(f"{what} has {type(obj).__name__} at {p!r} where params has None "
                                          f"(an empty subtree, nothing to check): return None there")
            return
        if kind == "dict":
            if not isinstance(obj, dict):
                raise GradcheckInputError(f"{what} has {type(obj).__name__} at {p!r} where params has a dict")
            missing = [k for k in keys if k not in obj]
            extra = [k for k in obj if k not in keys]
            if missing:
                raise GradcheckInputError(f"{what} is missing key(s) {missing} at {p!r} (params has keys {keys})"
                                          + _mapping_hint(missing, extra))
            if extra:
                raise GradcheckInputError(f"{what} has unexpected key(s) {extra} at {p!r} (params has keys {keys})")
            for k, c in zip(keys, children):
                visit(c, obj[k], child_path(path, k, top), False)
            return
        if not isinstance(obj, (list, tuple)):
            raise GradcheckInputError(f"{what} has {type(obj).__name__} at {p!r} where params has a {kind} of length {len(children)}")
        if len(obj) != len(children):
            raise GradcheckInputError(f"{what} has a {type(obj).__name__} of length {len(obj)} at {p!r} where params has length {len(children)}")
        for i, (c, o) in enumerate(zip(children, obj)):
            visit(c, o, child_path(path, i, top), False)

    try:
        visit(spec.node, tree, "", True)
    finally:
        del visit  # break the recursive closure's cycle, which would keep ``out`` alive until gc
    return out, dtypes


def unflatten(spec: TreeSpec, x: np.ndarray, dtypes=None):
    """A new pytree of ``spec``'s structure holding the values of the flat vector ``x``: each
    leaf a fresh buffer in ``dtypes[k]`` (default: the leaf's own dtype), handed back as the
    leaf's framework object.  The caller's arrays are never shared with it."""
    def make(k, leaf):
        buf = np.array(x[leaf.slice], dtype=leaf.dtype if dtypes is None else dtypes[k]).reshape(leaf.shape)
        return leaf.adapter.leaf_from_buffer(buf, leaf.original)
    return build(spec, make)
