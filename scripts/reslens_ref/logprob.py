"""Log-softmax arithmetic, the log-probability increase, ranks and orderings (spec 2.3, 3.1).

Imp(v | x) = log p(w | x + v) - log p(w | x) with p(.|u) = softmax(bs(u) + c). Because bs is
linear, with B = bs(v) and log p(.|x) known, the factored form (spec 2.3, [derived])

  Imp(v | x) = B_w - log sum_j p(j|x) exp(B_j)

needs only the projection of v itself; when v = a * u (a neuron: coefficient times a fixed
vector) B = a * bs(u), so the fixed vectors are projected once per layer. The direct form
projects the state x + v and is used as a cross-check.

Ordering convention (one rule everywhere: neuron lists, sorted slots, token lists): descending
by value; among exact ties the HIGHER index comes first. It is the authors' notebook rule
(`sorted(items, key=score)[::-1]`, spec 6.2) applied to items in index order.
"""

import numpy as np


def logsumexp(z, axis=-1):
    z = np.asarray(z, dtype=np.float64)
    m = np.max(z, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    return np.squeeze(m, axis=axis) + np.log(np.sum(np.exp(z - m), axis=axis))


def log_softmax(z, axis=-1):
    z = np.asarray(z, dtype=np.float64)
    return z - np.expand_dims(logsumexp(z, axis=axis), axis)


def imp_factored(logp_x, B, w):
    """Imp of the vectors whose projections are the rows of B [..., V], against a context with
    log-distribution logp_x [V], for target w: B_w - logsumexp(logp_x + B)."""
    return B[..., w] - logsumexp(logp_x + B, axis=-1)


def contrast_factored(B, w, f):
    """The contrast score of spec's foil option: the increase of log p(w) - log p(f), which is
    exactly the logit difference bs_w(v) - bs_f(v) (the normalisers cancel)."""
    return B[..., w] - B[..., f]


def rank_of(z, w):
    """Rank of token w in logits z [..., V]: 1 + the number of tokens with a strictly larger
    value (1 = top; exact ties share the better rank)."""
    z = np.asarray(z)
    return 1 + np.sum(z > z[..., w:w + 1], axis=-1)


def order_desc(values):
    """Indices of a 1-D array, descending by value; exact ties: higher index first."""
    return np.argsort(np.asarray(values), kind="stable")[::-1]


def top_ids(z, k):
    """The k highest entries of a 1-D array (descending; ties: higher index first)."""
    return [int(i) for i in order_desc(z)[:k]]


def bottom_ids(z, k):
    """The k lowest entries, lowest first (the reverse of order_desc)."""
    return [int(i) for i in order_desc(z)[::-1][:k]]


def chunks(n_rows, row_size, budget=1 << 21):
    """Row ranges so that each block of rows * row_size floats stays near `budget` elements
    (16 MB of float64: large enough for BLAS, small enough to be reused by the allocator)."""
    step = max(1, budget // max(1, row_size))
    for start in range(0, n_rows, step):
        yield slice(start, min(n_rows, start + step))
