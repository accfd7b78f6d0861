"""The static kernels of the signature kernels, as pySigLib names them.

Each kernel is a description the library evaluates on the paths' points itself (on the CPU or
the GPU); `spec()` is that description, in the command line's syntax (`rbf:0.5`,
`polynomial:3.0,1.0,1.0`, …).
"""

from ._arrays import real


def _positive(value, name, kernel):
    value = real(value, name)
    if not value > 0:
        raise ValueError(f"{kernel}: {name} must be > 0, got {value}")
    return value


class StaticKernel:
    """A static kernel `κ(p, q)` on the points of two paths."""

    def spec(self):
        """The kernel as the native module reads it: `name` or `name:value,value,…`."""
        raise NotImplementedError

    def __repr__(self):
        name, _, values = self.spec().partition(":")
        return f"{type(self).__name__}({values})"


class LinearKernel(StaticKernel):
    """`κ(p, q) = <p, q>`: the plain signature kernel."""

    def spec(self):
        return "linear"


class ScaledLinearKernel(StaticKernel):
    """`κ(p, q) = <s·p, s·q>`."""

    def __init__(self, scale: float = 1.0):
        self.scale = real(scale, "scale")

    def spec(self):
        return f"scaled-linear:{self.scale!r}"


class RBFKernel(StaticKernel):
    """`κ(p, q) = exp(−|p − q|² / σ)` (σ as pySigLib takes it)."""

    def __init__(self, sigma: float):
        self.sigma = _positive(sigma, "sigma", "RBFKernel")

    def spec(self):
        return f"rbf:{self.sigma!r}"


class PolynomialKernel(StaticKernel):
    """`κ(p, q) = scale·(<p, q> + γ)^degree`; as in pySigLib a negative base is clamped to 0 unless
    the degree is 0 or an integer from 1 to 5."""

    def __init__(self, degree: float = 3.0, gamma: float = 1.0, scale: float = 1.0):
        self.degree, self.gamma, self.scale = (real(degree, "degree"), real(gamma, "gamma"),
                                               real(scale, "scale"))
        if self.degree < 0:
            raise ValueError(f"PolynomialKernel: degree must be >= 0, got {degree}")
        if self.scale < 0:
            raise ValueError(f"PolynomialKernel: scale must be >= 0, got {scale}")

    def spec(self):
        return f"polynomial:{self.degree!r},{self.gamma!r},{self.scale!r}"


class Matern12Kernel(StaticKernel):
    """`κ(p, q) = exp(−|p − q| / σ)`."""

    def __init__(self, sigma: float):
        self.sigma = _positive(sigma, "sigma", "Matern12Kernel")

    def spec(self):
        return f"matern12:{self.sigma!r}"


class Matern32Kernel(StaticKernel):
    """`κ(p, q) = (1 + u)·exp(−u)`, `u = √3·|p − q| / σ`."""

    def __init__(self, sigma: float):
        self.sigma = _positive(sigma, "sigma", "Matern32Kernel")

    def spec(self):
        return f"matern32:{self.sigma!r}"


class Matern52Kernel(StaticKernel):
    """`κ(p, q) = (1 + u + u²/3)·exp(−u)`, `u = √5·|p − q| / σ`."""

    def __init__(self, sigma: float):
        self.sigma = _positive(sigma, "sigma", "Matern52Kernel")

    def spec(self):
        return f"matern52:{self.sigma!r}"


class RationalQuadraticKernel(StaticKernel):
    """`κ(p, q) = (1 + |p − q|² / (2ασ²))^−α`."""

    def __init__(self, sigma: float, alpha: float = 1.0):
        self.sigma = _positive(sigma, "sigma", "RationalQuadraticKernel")
        self.alpha = _positive(alpha, "alpha", "RationalQuadraticKernel")

    def spec(self):
        return f"rational-quadratic:{self.sigma!r},{self.alpha!r}"
