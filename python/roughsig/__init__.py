"""roughsig: path signatures, log-signatures and signature kernels on the CPU and on any GPU.

The functions follow pySigLib 4.0's (`import roughsig as pysiglib` gives the same numbers) with
two differences: `n_jobs` defaults to -1 (all cores), and every computing function takes
`device="auto" | "cpu" | "gpu" | "gpu:NAME"`. numpy arrays in, numpy arrays out (float32 and
float64 kept, integers read as float64); `roughsig.torch_api` has the same functions for torch
tensors, with gradients.
"""

from ._api import (
    auto_device_reason,
    devices,
    expected_sig_score,
    idx_to_word,
    is_lyndon,
    last_backend,
    linear_log_sig,
    linear_log_sig_backprop,
    linear_sig,
    linear_sig_backprop,
    log_sig,
    log_sig_backprop,
    log_sig_combine,
    log_sig_combine_backprop,
    log_sig_join,
    log_sig_join_backprop,
    log_sig_length,
    log_sig_to_sig,
    log_sig_to_sig_backprop,
    logsig_to_sig,
    logsig_to_sig_backprop,
    lyndon_words,
    lyndon_words_of_length,
    prepare_log_sig,
    sig,
    sig_backprop,
    sig_coef,
    sig_coef_backprop,
    sig_combine,
    sig_combine_backprop,
    sig_join,
    sig_join_backprop,
    sig_kernel,
    sig_kernel_backprop,
    sig_kernel_gram,
    sig_kernel_gram_backprop,
    sig_length,
    sig_mmd,
    sig_score,
    sig_to_log_sig,
    sig_to_log_sig_backprop,
    signature,
    transform_path,
    transform_path_backprop,
    word_to_idx,
    words,
    words_of_length,
)
from .static_kernels import (  # noqa: F401
    LinearKernel,
    Matern12Kernel,
    Matern32Kernel,
    Matern52Kernel,
    PolynomialKernel,
    RationalQuadraticKernel,
    RBFKernel,
    ScaledLinearKernel,
    StaticKernel,
)

__version__ = "0.1.0"
