"""Does the run implement the Fourier-multiplication algorithm? Decided by stated criteria.

Every criterion must hold for a positive verdict:

1. the model generalises: final test accuracy >= 99 %;
2. a sparse set of key frequencies exists: 1 <= |K| <= p // 4;
3. the logits are the algorithm's: ``sum_k alpha_k cos(w_k(x + s*y - z))`` over K explains
   >= 70 % of the centred logits' variance (the paper: 95 %);
4. the key directions suffice: restricted loss on the test pairs <= 0.1 nats;
5. the model depends on them: the excluded train loss is >= 10x the train loss and >= 0.1 nats;
6. (MLP models) the neurons compute it: with every neuron restricted to the key frequencies'
   2-D terms, the test loss stays <= 0.1 nats.

How cleanly the neurons have separated into single-frequency clusters is reported beside the
verdict (the paper: 85 % of neurons at 40K epochs); it grows through clean-up and long after,
so it measures how finished the implementation is, not whether the algorithm is there.
"""

from __future__ import annotations

from grokscope.analysis.modular_records import FinalMeasures, Phases, Verdict


def decide(final: FinalMeasures, freqs: list[int], p: int, sign: int = 1, axes: tuple[str, str] = ("x", "y")) -> Verdict:
    """Apply the criteria to the final checkpoint's measures and the key frequencies ``freqs``,
    for the p residues; ``sign`` and ``axes`` name the wave the logits were tested against."""
    x, y = axes
    wave = f"cos(w({x}+{y}-z))" if sign > 0 else f"cos(w({x}-{y}-z))"
    checks: list[tuple[bool, str]] = [
        (final.test_acc >= 0.99, f"final test accuracy is {final.test_acc:.1%} (needs >= 99%)"),
        (1 <= len(freqs) <= p // 4,
         f"{len(freqs)} key frequencies {freqs} (needs 1 to {p // 4})"),
        (final.logit_fve >= 0.7,
         f"{wave} waves of the key frequencies explain {final.logit_fve:.1%} of the logits' variance (needs >= 70%)"),
        (final.restricted_loss_test <= 0.1,
         f"restricted test loss is {final.restricted_loss_test:.3g} (needs <= 0.1; full test loss {final.test_loss:.3g})"),
        (final.excluded_loss_train >= max(10 * final.train_loss, 0.1),
         f"excluded train loss is {final.excluded_loss_train:.3g} vs train loss {final.train_loss:.3g} (needs >= 10x and >= 0.1)"),
    ]
    if final.restricted_neuron_loss_test is not None:
        loss = final.restricted_neuron_loss_test
        checks.append((loss <= 0.1, f"with every neuron restricted to the key frequencies' terms, test loss is {loss:.3g} (needs <= 0.1)"))
    reasons = [("pass: " if ok else "fail: ") + text for ok, text in checks]
    if final.logit_fit_loss is not None:
        reasons.append(f"note: the fitted waves alone, as logits, have loss {final.logit_fit_loss:.3g} over all pairs "
                       f"(the model's test loss: {final.test_loss:.3g})")
    if final.frac_neurons_in_key_clusters is not None:
        reasons.append(f"note: {final.frac_neurons_in_key_clusters:.1%} of neurons are clustered (FVE >= 0.85) "
                       "on a key frequency (the paper: 85% after 40K epochs)")
    return Verdict(implements_fourier_multiplication=all(ok for ok, _ in checks), key_frequencies=freqs, reasons=reasons)


def headline(verdict: Verdict, grokking_epoch: int | None, phases: Phases) -> str:
    """One line: the verdict, key frequencies and phases."""
    yes = "implements" if verdict.implements_fourier_multiplication else "does not implement"
    return (f"verdict: {yes} the Fourier-multiplication algorithm; key frequencies {verdict.key_frequencies}; "
            f"grokked at {grokking_epoch}; phases end at memorisation {phases.memorisation_end}, "
            f"circuit formation {phases.circuit_formation_end}, clean-up {phases.cleanup_end}")

