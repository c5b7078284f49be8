"""The `Backend` contract (mpcnode/worker/backend.py), run against every implementation.

Each test states what an operation must return, as a float64 formula, and checks it on
`PlainBackend` and on `CrypTenBackend` (real CrypTen, one party in this process, so its
trusted-first-party provider is allowed: this is a unit test). The training code is
written once against this contract; a backend that broke it would train another model
than the plaintext reference it is compared to. CrypTen computes in fixed point with 16
fractional bits, so its tolerance is that of the operation's approximation; the exact
operations (masking, integer ratios, gates) must be exact up to one encoding step.
`prefetch` is left out: CrypTen's needs a dealer, and the MPC job tests run it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch

from mpcnode.worker.backend import Backend, CrypTenBackend, PlainBackend, hard_sigmoid
from mpcnode.worker.softmax_training import plain_softmax

STEP = 2.0**-16  # one fixed-point step

# absolute tolerance per kind of operation: (plain, crypten)
EXACT = (1e-12, 4 * STEP)
APPROX = (1e-12, 2e-2)

X = torch.tensor([[-9.0, -3.5, -0.75, -0.01, 0.4, 2.25, 5.0, 11.0],
                  [1.5, -2.0, 3.25, -0.5, 6.0, -7.5, 0.125, 4.0]], dtype=torch.float64)
ZERO = torch.zeros((1, 3), dtype=torch.float64)


@pytest.fixture(scope="module", params=["plain", "crypten"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "plain":
        yield PlainBackend()
        return
    from mutualmind.crypten_compat import crypten

    crypten.init()
    try:
        yield CrypTenBackend()
    finally:
        crypten.uninit()


def tolerance(backend: Backend, kind: tuple[float, float]) -> float:
    return kind[0] if backend.name == "plain" else kind[1]


def close(backend: Backend, got: Any, want: torch.Tensor, kind: tuple[float, float]) -> None:
    got = backend.reveal(got) if not isinstance(got, torch.Tensor) else got
    assert got.shape == want.shape
    assert torch.allclose(got, want, rtol=0, atol=tolerance(backend, kind)), (got, want)


def test_a_public_value_reveals_as_itself(backend: Backend) -> None:
    close(backend, backend.public(X), X, EXACT)
    assert backend.name in ("plain", "crypten")


def test_masking_rows_is_exact(backend: Backend) -> None:
    mask = torch.tensor([[1], [0]])
    close(backend, backend.mask_rows(backend.public(X), mask), X * mask, EXACT)


def test_taking_rows_moves_them_exactly_and_pads_with_zero(backend: Backend) -> None:
    value = torch.arange(12, dtype=torch.float64).reshape(2, 3, 2) / 4
    index = torch.tensor([[2, 0, 3], [1, 1, 3]])     # 3 = the number of rows: a 0 row
    want = torch.stack([torch.stack([value[0, 2], value[0, 0], torch.zeros(2)]),
                        torch.stack([value[1, 1], value[1, 1], torch.zeros(2)])])
    close(backend, backend.take_rows(backend.public(value), index), want, EXACT)
    shared_rows = value[0]                               # [rows, k]: the same table for every model
    want = torch.stack([torch.stack([shared_rows[2], shared_rows[0], torch.zeros(2)]),
                        torch.stack([shared_rows[1], shared_rows[1], torch.zeros(2)])])
    close(backend, backend.take_rows(backend.public(shared_rows), index), want, EXACT)


def test_the_gradient_on_each_models_own_rows_equals_the_masked_one(backend: Backend) -> None:
    """A tournament's models see few of the rows: the sigmoid runs only on those (gathered
    and put back), and the gradient is the masked gradient over all rows, exactly."""
    from mpcnode.worker.layers import logit_gradient
    from mpcnode.worker.training import masked_gradient
    from mutualmind.vocabulary.model_spec import parse_model_spec

    spec = parse_model_spec({"kind": "logistic", "epochs": 1})
    generator = torch.Generator().manual_seed(5)
    logits = torch.randn(3, 8, 1, generator=generator, dtype=torch.float64)
    labels = (torch.rand(8, 1, generator=generator) > 0.5).to(torch.float64)
    mask = torch.zeros(3, 8, 1, dtype=torch.long)
    mask[0, :3], mask[1, 4:6], mask[2, [1, 7]] = 1, 1, 1     # each model at most 3 of 8 rows
    want = hard_sigmoid(logits) - labels
    want = want * mask
    got = masked_gradient(backend, spec, backend.public(logits), backend.public(labels), mask)
    close(backend, got, want, EXACT)
    full = backend.mask_rows(logit_gradient(backend, spec, backend.public(logits), backend.public(labels)), mask)
    close(backend, full, want, EXACT)


def test_sigmoid_is_the_hard_sigmoid(backend: Backend) -> None:
    close(backend, backend.sigmoid(backend.public(X)), hard_sigmoid(X), EXACT)


def test_logistic_is_the_exact_sigmoid(backend: Backend) -> None:
    """The newton solver's link: within 1e-3 of 1 / (1 + e^-z) in MPC, so the model it
    converges to is the plaintext logistic regression's."""
    close(backend, backend.logistic(backend.public(X)), torch.sigmoid(X), (1e-12, 1e-3))


def test_relu_with_its_gate(backend: Backend) -> None:
    relu, gate = backend.relu_with_gate(backend.public(X))
    close(backend, relu, torch.clamp(X, min=0), EXACT)
    close(backend, gate, (X > 0).to(torch.float64), EXACT)


def test_positive_is_one_where_the_value_is_above_zero(backend: Backend) -> None:
    close(backend, backend.positive(backend.public(X)), (X > 0).to(torch.float64), EXACT)


def test_the_gate_at_exactly_zero(backend: Backend, request: pytest.FixtureRequest) -> None:
    """Found by this suite: at exactly 0 CrypTen's gate is 1 (1 - [z < 0]) where the
    plaintext reference's is 0 ([z > 0]), so a ReLU unit at exactly 0 passes gradient in
    MPC and not in the reference. Marked as a known difference until one side changes."""
    if backend.name == "crypten":
        request.applymarker(pytest.mark.xfail(strict=True, reason="CrypTen gate is 1 at exactly 0"))
    close(backend, backend.positive(backend.public(ZERO)), ZERO, EXACT)
    close(backend, backend.relu_with_gate(backend.public(ZERO))[1], ZERO, EXACT)


def test_scaling_by_a_public_integer_ratio(backend: Backend) -> None:
    numerators = torch.tensor([[3], [5]])
    denominators = torch.tensor([[4], [7]])
    close(backend, backend.scale_by_ratio(backend.public(X), numerators, denominators),
          X * numerators / denominators, EXACT)


def test_softplus_holds_for_large_values_too(backend: Backend) -> None:
    close(backend, backend.softplus(backend.public(X)), torch.nn.functional.softplus(X), APPROX)


def test_softmax_and_log_softmax_over_the_last_dimension(backend: Backend) -> None:
    """The training softmax is `softmax_training`'s algorithm (within ~1e-2 of the exact
    one by design); evaluation's log-softmax is the exact one within CrypTen's error."""
    small = X / 4   # logits in the range training produces
    close(backend, backend.softmax(backend.public(small), -1), plain_softmax(small), APPROX)
    assert torch.allclose(plain_softmax(small), torch.softmax(small, -1), atol=3e-2)
    close(backend, backend.log_softmax(backend.public(small), -1), torch.log_softmax(small, -1),
          (1e-12, 5e-2))


def test_argmax_and_one_hot(backend: Backend) -> None:
    want = torch.nn.functional.one_hot(X.argmax(-1), X.shape[1]).to(torch.float64)
    close(backend, backend.argmax_one_hot(backend.public(X), -1), want, EXACT)
    labels = torch.tensor([[2.0], [0.0], [1.0]], dtype=torch.float64)
    close(backend, backend.one_hot(backend.public(labels), 3),
          torch.nn.functional.one_hot(labels.long().reshape(-1), 3).to(torch.float64), EXACT)


def test_column_sums_of_squares_and_inverse_std(backend: Backend) -> None:
    sums = backend.column_sums_of_squares(backend.public(X))
    want = (X**2).sum(0)
    close(backend, sums, want, (1e-12, 1e-2))
    rows = 1_000_000
    got = backend.reveal(backend.inverse_std(sums, rows))
    assert torch.allclose(got, torch.sqrt(rows / want), rtol=1e-4, atol=0), got  # relative: ~1e-5 seen


def test_inverse_std_covers_every_level_and_drops_constant_columns(backend: Backend) -> None:
    """Sums of squares from a near-constant column to 4N at the row limit: every level of
    the range reduction, its edges, and below the constant threshold (factor 0)."""
    rows = 1 << 22
    sums = torch.tensor([4.0**-7, 4.0**-6 * 1.25, 0.3, 1.0, 3.99, 4.0, 1234.5, 4.0**10 * 2.5, 4.0 * rows * 0.999],
                        dtype=torch.float64)
    got = backend.reveal(backend.inverse_std(backend.public(sums), rows))
    want = torch.sqrt(rows / sums)
    want[0] = 0.0
    assert got[0] == 0.0
    assert torch.allclose(got[1:], want[1:], rtol=2e-3), (got, want)


def test_write_rows_overwrites_in_place(backend: Backend) -> None:
    table = backend.public(torch.zeros(4, 8, dtype=torch.float64))
    backend.write_rows(table, 1, backend.public(X[:2]))
    want = torch.zeros(4, 8, dtype=torch.float64)
    want[1:3] = X[:2]
    close(backend, table, want, EXACT)


def test_cat_joins_along_a_dimension(backend: Backend) -> None:
    parts = [backend.public(X[:1]), backend.public(X[1:])]
    close(backend, backend.cat(parts, dim=0), X, EXACT)
    close(backend, backend.cat(parts, dim=1), torch.cat([X[:1], X[1:]], dim=1), EXACT)


def test_a_transposed_value_reveals_as_itself(backend: Backend) -> None:
    """A column-major share (a transposed view, a table built column by column) reveals
    element by element: with gloo it would be summed in memory order otherwise."""
    close(backend, backend.public(X).t(), X.t(), EXACT)


def test_weighted_sums_by_public_integers(backend: Backend) -> None:
    numerators = torch.tensor([[3, 0], [250_000, 750_000], [0, 0]])
    want = (numerators.to(torch.float64) @ X / 1_000_000).reshape(3, 8)
    close(backend, backend.weighted_sums(backend.public(X), numerators, 1_000_000), want, EXACT)


def test_logistic_and_log(backend: Backend) -> None:
    close(backend, backend.logistic(backend.public(X)), torch.sigmoid(X), (1e-12, 3e-3))
    probabilities = torch.tensor([1e-3, 0.05, 0.5, 0.9, 1.0], dtype=torch.float64)
    close(backend, backend.log(backend.public(probabilities)), torch.log(probabilities), (1e-12, 0.1))


@pytest.mark.parametrize("backend", ["crypten"], indirect=True)
def test_used_up_prefetched_material_sends_the_next_request_to_the_dealer(backend: Backend) -> None:
    """A request whose prefetched material is used up (the newton solver's steps used
    the exp material of [m, rows, 1]; a validation table of as many rows asks again)
    is served by the dealer, not popped from CrypTen's emptied list (an IndexError that
    failed the job)."""
    from mpcnode.worker.dealer_prefetch import MaterialCache
    from mutualmind.crypten_compat import crypten

    provider = crypten.mpc.get_default_provider()
    size = torch.Size([2, 3])
    key = ("square", (size,), frozenset({"device": None}.items()))
    saved = provider.tuple_cache
    try:
        provider.tuple_cache = {key: []}  # CrypTen's own cache after its material was used
        with pytest.raises(IndexError):
            provider.square(size, device=None)
        provider.tuple_cache = MaterialCache({key: []})
        r, r2 = provider.square(size, device=None)
        assert tuple(r.size()) == tuple(r2.size()) == (2, 3)
    finally:
        provider.tuple_cache = saved
