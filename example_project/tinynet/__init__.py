"""tinynet: a tiny numpy neural-network library with hand-written gradients.

The example project of pytest-gradcheck.  Modules:

* :mod:`tinynet.two_layer` -- a two-layer network (column-major, course style)
* :mod:`tinynet.layers` -- layer-style forward/backward pairs (affine, ReLU,
  softmax loss, naive convolution, batch normalisation)
* :mod:`tinynet.models` -- models registered for automatic gradient checks
* :mod:`tinynet.torch_ops` -- a PyTorch custom ``autograd.Function`` (needs torch)
* :mod:`tinynet.jax_ops` -- JAX ``custom_vjp`` functions (needs jax)

``import tinynet`` needs only numpy; torch and jax are imported by their own
modules only.
"""

__version__ = "0.1.0"
