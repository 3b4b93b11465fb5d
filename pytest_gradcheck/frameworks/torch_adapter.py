"""PyTorch tensors as leaves: any float dtype, on CPU or CUDA.

Imported only once the user has imported torch (see registry._load_optional).

* ``leaf_from_buffer`` on CPU is ``torch.from_numpy(buffer)``: the tensor shares
  the checker's buffer, so perturbing one entry is O(1).  On other devices the
  tensor is a copy on the original's device (the evaluator notices it does not
  alias and rebuilds it per evaluation).
* ``requires_grad`` is preserved, so a ``fun`` that itself differentiates
  (``torch.autograd.grad`` inside a loss) still works; the batched path runs
  under ``torch.no_grad()``.
* bfloat16 is read as float32 numpy values; eps is the torch dtype's.
* ``gradient``: grad=None means torch autograd on fresh float tensors.
* ``batched``: ``torch.func.vmap`` over a leading axis of every leaf.

Layer: frameworks, top.  Imports errors, pytree, frameworks.base and
frameworks.outputs; never numerics/.
"""

from __future__ import annotations

import weakref

import numpy as np
import torch

from ..errors import GradcheckInputError, GradcheckUserCodeError
from ..pytree import TreeSpec, build, structure
from .base import Adapter, batch_dispatcher, not_a_scalar, timed_choice

_F64_EPS = float(np.finfo(np.float64).eps)
_EPS_CACHE: dict = {}
#: below this many parameters vmap is not tried (its first call in a process costs
#: ~1-2 s of functorch set-up; 2n plain calls of a small problem cost less)
MIN_BATCH_PARAMS = 64
#: from this many parameters on, vmap is not tried either: every batched point is a full
#: copy of the n parameters (O(n) per point on top of fun), while the core's own loop
#: perturbs one aliased entry in O(1), and fun's cost (also O(n)) dwarfs the Python
#: overhead that batching saves (measured: 2x slower with vmap at n = 10^4 and 2*10^4)
MAX_BATCH_PARAMS = 4096
#: points per vmap call are capped so that one call's inputs stay near this many
#: float64 numbers (larger batches are no faster per point: per-sample weights make
#: the work compute-bound, and big batches fall out of cache)
SUB_BATCH_FLOATS = 2**20
#: rows timed each way (vmap vs one call per point) before choosing the faster

_NP_TO_TORCH = {
    np.dtype(np.float16): torch.float16,
    np.dtype(np.float32): torch.float32,
    np.dtype(np.float64): torch.float64,
    np.dtype(np.complex64): torch.complex64,
    np.dtype(np.complex128): torch.complex128,
}


#: sparse layouts checked on their stored values (as torch.autograd.gradcheck does)
_SPARSE = (torch.sparse_coo, torch.sparse_csr)
#: coordinates of a sparse leaf's stored values, per tensor (computed once: named for every reported entry);
#: keyed by id with a weak reference to tell a reused id (a tensor's == is elementwise, so no WeakKeyDictionary)
_COORDS: dict = {}


def _check_sparse(t):
    if t.layout not in _SPARSE or t.dim() != 2 or (t.layout == torch.sparse_coo and t.dense_dim() != 0):
        raise GradcheckInputError(
            f"a sparse tensor of layout {t.layout} and shape {tuple(t.shape)} is not supported: 2-D "
            f"torch.sparse_coo (without dense dimensions) and torch.sparse_csr are checked on their stored "
            f"values; pass the dense tensor (x.to_dense()) otherwise")


def _stored_values(t):
    """The stored values of a 2-D sparse COO (coalesced: one value per coordinate) or CSR tensor, in
    the order _coords gives their coordinates."""
    _check_sparse(t)
    return t.coalesce().values() if t.layout == torch.sparse_coo else t.values()


def _coords(t) -> np.ndarray:
    """(2, nnz) row and column of each stored value of a sparse tensor (its entries' names)."""
    ref, got = _COORDS.get(id(t), (None, None))
    if ref is None or ref() is not t:
        _check_sparse(t)
        if t.layout == torch.sparse_coo:
            got = t.coalesce().indices().cpu().numpy().astype(np.int64)
        else:
            crow = t.crow_indices().cpu().numpy().astype(np.int64)
            got = np.stack([np.repeat(np.arange(crow.size - 1), np.diff(crow)),
                            t.col_indices().cpu().numpy().astype(np.int64)])
        key = id(t)
        _COORDS[key] = (weakref.ref(t, lambda _, key=key: _COORDS.pop(key, None)), got)
    return got


def _sparse_like(values, like):
    """A sparse tensor with like's layout, shape and coordinates holding ``values`` (shared, not copied,
    so that the evaluator's buffer writes reach it)."""
    grad = values.requires_grad
    values = values.detach()
    if like.layout == torch.sparse_coo:
        idx = torch.as_tensor(_coords(like), device=values.device)
        t = torch.sparse_coo_tensor(idx, values, tuple(like.shape), is_coalesced=True)
    else:
        t = torch.sparse_csr_tensor(like.crow_indices().to(values.device), like.col_indices().to(values.device),
                                    values, tuple(like.shape))
    return t.requires_grad_(True) if grad else t


def _eps_of(dtype) -> float:
    e = _EPS_CACHE.get(dtype)
    if e is None:
        e = float(torch.finfo(dtype).eps) if (dtype.is_floating_point or dtype.is_complex) else _F64_EPS
        _EPS_CACHE[dtype] = e
    return e


class TorchAdapter(Adapter):
    name = "torch"
    aliases_buffer = True  # on CPU; the evaluator tests each leaf, so CUDA copies are detected
    gradient_copies_params = True  # autograd runs on detached clones
    validates_batches = True  # decide() compares a batched value with a plain call

    def owns(self, leaf):
        return isinstance(leaf, torch.Tensor)

    def to_numpy(self, leaf):
        if leaf.layout != torch.strided:
            leaf = _stored_values(leaf)  # a sparse tensor is checked on its stored values
        if leaf.device.type == "meta":
            raise GradcheckInputError("a meta tensor has no values to differentiate at: create it on 'cpu' or 'cuda'")
        t = leaf.detach()
        if t.device.type != "cpu":
            t = t.cpu()
        if t.dtype == torch.bfloat16 or (t.is_floating_point() and t.dtype not in (torch.float16, torch.float32, torch.float64)):
            t = t.to(torch.float32)  # bfloat16 / float8: no numpy dtype; float32 holds them exactly
        if t.is_conj():
            t = t.resolve_conj()
        if t.is_neg():
            t = t.resolve_neg()
        return np.array(t.numpy(), copy=True)

    def native_dtype(self, leaf):
        return str(leaf.dtype).replace("torch.", "")

    def eps(self, leaf):
        return _eps_of(leaf.dtype)

    def read_like(self, obj, like):
        if not (isinstance(like, torch.Tensor) and like.layout != torch.strided):
            return None
        # the gradient of a sparse leaf, sparse or dense (autograd gives either), at its stored coordinates
        if not isinstance(obj, torch.Tensor):
            try:
                obj = torch.as_tensor(np.asarray(obj))
            except Exception as e:  # noqa: BLE001
                raise GradcheckInputError(f"cannot read {type(obj).__name__} as the gradient of a sparse tensor: "
                                          f"{e}") from e
        if tuple(obj.shape) != tuple(like.shape):
            raise GradcheckInputError(f"has shape {tuple(obj.shape)} but params leaf is a sparse tensor of shape "
                                      f"{tuple(like.shape)}")
        dense = obj.detach()
        if dense.layout != torch.strided:
            dense = dense.to_dense()
        coords = torch.as_tensor(_coords(like), device=dense.device)
        return self.to_numpy(dense[tuple(coords)])

    def entry_index(self, like, j):
        if not (isinstance(like, torch.Tensor) and like.layout != torch.strided):
            return None
        c = _coords(like)
        return tuple(int(c[k, j]) for k in range(c.shape[0])) if j < c.shape[1] else None

    def leaf_from_buffer(self, buffer, like):
        if like.layout != torch.strided:
            return _sparse_like(self.leaf_from_buffer(buffer, _stored_values(like)), like)
        buf = buffer.reshape(tuple(like.shape))
        if not buf.flags.writeable or not buf.flags.c_contiguous:
            buf = np.ascontiguousarray(buf).copy()
        t = torch.from_numpy(buf)
        if t.dtype == torch.float32 and like.dtype != torch.float32 and like.is_floating_point() \
                and like.dtype not in (torch.float16, torch.float64):
            # float32 is only numpy's stand-in for bfloat16 / float8 (to_numpy): the native-dtype
            # side (grad, and fun when it refuses float64) gets the leaf's own dtype back (a copy)
            t = t.to(like.dtype)
        if like.device.type != "cpu":
            t = t.to(like.device)
        if like.requires_grad and (t.is_floating_point() or t.is_complex()):
            t.requires_grad_(True)
        return t

    def scalar_output(self, out):
        if out.numel() != 1:
            raise not_a_scalar("a tensor", out.shape, "out.sum()")
        if out.dtype == torch.bool:
            raise GradcheckInputError("fun returned a boolean tensor; it must return a number")
        return out.item(), _eps_of(out.dtype)

    def numeric_fun(self, fun):
        """``fun`` under ``torch.no_grad()``: the finite differences need values only, and with
        params that require grad every call would otherwise record an autograd graph (time, and
        memory while the output lives).  The analytic side calls ``fun`` itself, not this.

        Decided at the first call: a fun that differentiates inside itself (torch.autograd.grad
        without torch.enable_grad) raises under no_grad, and is then called with the graph, then
        and from then on."""
        state = {"no_grad": None}  # None: undecided until the first call
        # one context object for every call of this check (stage A makes 2n of them; building a
        # fresh torch.no_grad() each time was ~4% of a check of a 1e4-parameter MLP).  It is
        # entered by one call at a time: fun does not call the checker's wrapper of itself
        no_grad = torch.no_grad()

        def without_graph(params):
            mode = state["no_grad"]
            if mode:
                with no_grad:
                    return fun(params)
            if mode is None:
                try:
                    with no_grad:
                        out = fun(params)
                except Exception:  # noqa: BLE001 - fun needs the graph; if not, the plain call raises again
                    state["no_grad"] = False
                    return fun(params)
                state["no_grad"] = True
                return out
            return fun(params)

        without_graph.__wrapped__ = fun
        return without_graph

    # -- analytic side ----------------------------------------------------------
    def gradient(self, fun, params):
        node, leaves = structure(params)
        if not leaves or not all(isinstance(x, torch.Tensor) for x in leaves):
            return None  # mixed trees: torch cannot differentiate numpy leaves
        if not all(x.is_floating_point() for x in leaves):
            bad = next(x for x in leaves if not x.is_floating_point())
            raise GradcheckInputError(
                f"grad=None uses torch autograd, which needs floating-point tensors; a leaf has dtype {bad.dtype}. "
                f"Pass grad= or make the leaf a float tensor")
        work = [x.detach().clone().requires_grad_(True) for x in leaves]
        with torch.enable_grad():
            try:
                out = fun(build(TreeSpec(node, leaves, 0), lambda k, _: work[k]))
            except GradcheckInputError:
                raise
            except Exception as e:  # noqa: BLE001
                raise GradcheckUserCodeError(f"fun raised {type(e).__name__}: {e}") from e
            if not isinstance(out, torch.Tensor):
                raise GradcheckInputError(
                    f"grad=None needs fun to return a torch tensor so autograd can differentiate it; it returned "
                    f"{type(out).__name__} (avoid .item(), float() or numpy inside fun, or pass grad=)")
            if out.numel() != 1:
                raise GradcheckInputError(
                    f"fun must return a scalar; it returned a tensor of shape {tuple(out.shape)}")
            if not out.requires_grad:
                raise GradcheckInputError(
                    "grad=None: fun's output does not depend on params through autograd (is the graph cut by "
                    ".detach(), .data, numpy or torch.no_grad() inside fun?); pass grad= to check a gradient "
                    "computed another way")
            try:  # runs the user's custom backward rules (autograd.Function.backward), if any
                grads = torch.autograd.grad(out.reshape(()), work, allow_unused=True)
            except Exception as e:  # noqa: BLE001
                raise GradcheckUserCodeError(f"grad=None: torch autograd's backward pass through fun raised "
                                             f"{type(e).__name__}: {e}") from e
        grad_leaves = [torch.zeros_like(w) if g is None else g.detach() for g, w in zip(grads, work)]
        return build(TreeSpec(node, leaves, 0), lambda k, _: grad_leaves[k])

    # -- batched finite differences --------------------------------------------
    def batched(self, fun, spec, dtypes, vectorized):
        if not all(isinstance(leaf.original, torch.Tensor) and leaf.original.layout == torch.strided
                   for leaf in spec.leaves):
            return None  # numpy leaves, or sparse tensors (vmap does not batch them): plain calls
        if vectorized is None and not MIN_BATCH_PARAMS <= spec.size < MAX_BATCH_PARAMS:
            return None
        from .outputs import scalar_of
        from ..pytree import build

        devices = [leaf.original.device for leaf in spec.leaves]
        tdtypes = [_NP_TO_TORCH.get(np.dtype(d)) for d in dtypes]
        if any(t is None for t in tdtypes):
            return None
        if any(t != leaf.original.dtype and t == torch.float32 for t, leaf in zip(tdtypes, spec.leaves)):
            return None  # float32 stand-ins of bfloat16 leaves: plain calls rebuild them in their own dtype
        nleaves = len(spec.leaves)

        def call_on(leaf_tensors):
            return fun(build(spec, lambda k, leaf: leaf_tensors[k]))

        if vectorized:
            evaluate = lambda *ts: call_on(ts)  # noqa: E731 - the user promises a leading batch axis
        else:
            evaluate = torch.func.vmap(lambda *ts: call_on(ts), in_dims=(0,) * nleaves)

        sub = max(8, SUB_BATCH_FLOATS // max(spec.size, 1))
        shapes = [tuple(leaf.shape) for leaf in spec.leaves]
        # vmap over per-sample parameters turns matrix products into batched products, which can be
        # slower per point than plain calls (a 10^4-parameter MLP: 2x slower).  The first real chunk
        # times both on PROBE_ROWS rows each, checks the vmapped value against a plain call, and the
        # faster one evaluates the rest of this check; a fun that vmap cannot run gets plain calls.
        def decide(points):
            return timed_choice(points, run_batched, run_single)

        def run_batched(points):
            if points.shape[0] > sub and not vectorized:
                return np.concatenate([run_chunk(points[s:s + sub]) for s in range(0, points.shape[0], sub)])
            return run_chunk(points)

        owners: dict = {}  # output type -> adapter (scalar_of's cache)

        def run_single(points):
            vals = np.empty(points.shape[0])
            with torch.no_grad():
                for r in range(points.shape[0]):
                    row = points[r]
                    ts = []
                    for k, leaf in enumerate(spec.leaves):
                        a = row[leaf.slice]
                        if a.dtype != dtypes[k] or not a.flags.writeable:
                            a = np.array(a, dtype=dtypes[k])
                        t = torch.from_numpy(a.reshape(shapes[k]))
                        ts.append(t.to(devices[k]) if devices[k].type != "cpu" else t)
                    v, _ = scalar_of(call_on(ts), owners=owners)  # any scalar, as the core's evaluator accepts
                    vals[r] = v.real if isinstance(v, complex) else v
            return vals

        def run_chunk(points):
            B = points.shape[0]
            ts = []
            for k, leaf in enumerate(spec.leaves):
                block = np.ascontiguousarray(points[:, leaf.slice], dtype=dtypes[k]).reshape((B,) + shapes[k])
                t = torch.from_numpy(block)
                if devices[k].type != "cpu":
                    t = t.to(devices[k])
                ts.append(t)
            with torch.no_grad():
                out = evaluate(*ts)
            if not isinstance(out, torch.Tensor) or out.numel() != B:
                shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                if vectorized:
                    raise GradcheckInputError(
                        f"vectorized=True: fun was given a batch of {B} points (a leading axis on every leaf) and "
                        f"must return {B} values; it returned {shape}")
                raise ValueError(f"batched fun returned {shape}; expected {B} values")
            out = out.detach().reshape(B)
            if out.is_complex():
                out = out.real
            return out.to(device="cpu", dtype=torch.float64).numpy()

        return batch_dispatcher(vectorized, run_single, run_batched, decide)
