"""The static kernels of the signature kernels, as pySigLib names them.

Each kernel is a description the library evaluates on the paths' points itself (on the CPU or
the GPU); `spec()` is that description.
"""

from ._arrays import real


class StaticKernel:
    """A static kernel `κ(p, q)` on the points of two paths."""

    def spec(self):
        """`(name, parameter)` as the native module reads it."""
        raise NotImplementedError

    def __repr__(self):
        name, p = self.spec()
        return f"{type(self).__name__}({p})" if name != "linear" else "LinearKernel()"


class LinearKernel(StaticKernel):
    """`κ(p, q) = <p, q>`: the plain signature kernel."""

    def spec(self):
        return ("linear", 0.0)


class ScaledLinearKernel(StaticKernel):
    """`κ(p, q) = <s·p, s·q>`."""

    def __init__(self, scale: float = 1.0):
        self.scale = real(scale, "scale")

    def spec(self):
        return ("scaled_linear", self.scale)


class RBFKernel(StaticKernel):
    """`κ(p, q) = exp(−|p − q|² / σ)` (σ as pySigLib takes it)."""

    def __init__(self, sigma: float):
        self.sigma = real(sigma, "sigma")

    def spec(self):
        return ("rbf", self.sigma)
