"""When a re-run's contribution changed sides: paid in one run, slashed in the other.

`admin round verify` and `admin tournament verify` re-run an MPC valuation, whose
truncations draw fresh dealer randomness, so every number moves a little (an honest
re-run's noise: `coordinator.round_verify.rerun_noise_micro`). A contribution that was
paid in one run and slashed in the other is a disagreement whatever the tolerance - but
only beyond a band that honest noise cannot cross: the larger of the dead band (epsilon)
and half the noise, so that a flip needs a difference beyond the noise. With epsilon
alone (1,000 micro against a noise of ~2,300-2,700), a value near zero flipped in about
one honest re-run in fifteen of the test tournament (+1,129 recorded, -1,556 re-run).

One owner for the rule: the verifiers apply it and record the band in their ledger entry
(`flip_band_micro`); the ledger's rules re-apply it on append and replay. Entries written
before the band was recorded replay with epsilon alone. Pure: numbers in, labels out.
"""

from __future__ import annotations

from collections.abc import Sequence


def flip_band(epsilon_micro: int, noise_micro: int) -> int:
    """How far beyond zero a contribution must lie, each way, for a change of side to count."""
    return max(epsilon_micro, noise_micro // 2)


def sign_flips(labels: Sequence[str], recorded: Sequence[int], recomputed: Sequence[int],
               epsilon_micro: int, band_micro: int | None = None) -> list[str]:
    """The labels whose number is beyond +band in one run and below -band in the other;
    the band is max(epsilon, `band_micro`), epsilon alone when `band_micro` is None."""
    band = max(epsilon_micro, band_micro or 0)
    return [label for label, a, b in zip(labels, recorded, recomputed, strict=True)
            if (a > band and b < -band) or (a < -band and b > band)]
