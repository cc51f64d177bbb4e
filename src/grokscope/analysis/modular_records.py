"""The modular family's results as named records: what ``analysis.json`` holds for a modular run.

Field names are the document's keys (``grokscope.analysis/1``, the documented contract), so
``records.to_json(ModularAnalysis)`` is the document and ``records.from_json`` reads it back,
including documents written before these records existed. Frequencies are 1-based
(``w_k = 2 pi k / p``); losses are cross-entropies in nats, averaged over the pairs named;
"FVE" is a fraction of variance explained. Torch-free: the report reads these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

IMPORTANCE_DEFINITION = "increase in all-pairs loss when the neuron is replaced by its mean activation over the grid"


@dataclass(frozen=True)
class ValueWaves:
    """W_E fitted by least squares as waves over a non-bijective power's values t^e (pow_sum)."""

    coordinate: str  # e.g. "t^4": the power of the token the waves run over ("t": the token itself)
    n_values: int  # distinct values of t^e mod p
    fve: float  # share of W_E's variance explained by the best function of t^e (1: W_E is one)
    frequencies: list[int]  # greedy least-squares selection of waves over t^e, in order
    explained: list[float]  # the fit's share of W_E's variance after each frequency
    needed: int | None  # frequencies needed to explain 90 % (None: never reached)


@dataclass(frozen=True)
class PowerCoset:
    """One coset k·G of G = ±(image of t -> t^e) in Z_p^* (G's members name the same waves up to
    a sign), and the key frequencies in it."""

    least: int  # the coset's least residue, its name
    wave_mean: float  # |sum_t exp(2 pi i k t^e / p)| / p for k in the coset (the same for all of them)
    keys: list[int]  # the key frequencies in it


@dataclass(frozen=True)
class PowerCosets:
    """The key frequencies over the cosets of a non-bijective power's values (pow_sum)."""

    coordinate: str  # e.g. "t^4"
    subgroup_size: int  # |G|, G = ±(image of t -> t^e on the non-zero residues): 28 for t^4 mod 113
    cosets: list[PowerCoset]  # every coset, largest wave mean first


@dataclass(frozen=True)
class MarginalRise:
    """How early the logits' mean over one input (what the other input alone can predict) took up
    its waves, by coset of ±(the averaged input's power values), for pow_sum with exactly one
    bijective power (progress columns ``marginal_wave_coset{least}``)."""

    averaged_over: str  # the input averaged out: "y" for (x^3 + y^4)
    waves: str  # what the waves run over, e.g. "x^3 - z"
    epoch: int  # the first checkpoint where their total norm is at least half its peak
    peak_epoch: int
    cosets: list[int]  # the cosets' least residues, largest wave mean first (as in PowerCosets)
    norms: list[float]  # [coset]: the norm of the waves with k in each coset at ``epoch`` (logits)
    leading: int  # the coset with the largest norm at ``epoch``


@dataclass(frozen=True)
class Coordinates:
    """The input coordinates the analysis used, and how sparse W_E is in the Fourier basis over
    them (Gini of its frequency norms; higher = sparser)."""

    axes: tuple[str, str] = ("x", "y")  # ("u", "v") for pow_sum, analysed in u = x^a, v = y^b
    basis: str = "x, y"  # in words
    embedding_gini_x: float = math.nan  # over the raw token x
    embedding_gini_u: float | None = None  # over the natural coordinate u (pow_sum only)
    sparser: str | None = None  # where W_E is sparser: "u" or "x", or for a non-bijective power "t" or "t^e"
    value_waves: list[ValueWaves] = field(default_factory=list)  # non-bijective pow_sum: over t, then each t^e
    wave_axes: tuple[str, str] = ("x", "y")  # what the logits' waves add: cos(w(x + y - z)), or (x^3, y^4)
    power_cosets: list[PowerCosets] = field(default_factory=list)  # non-bijective pow_sum: keys by coset of the powers
    marginal_rise: MarginalRise | None = None  # pow_sum with exactly one bijective power


@dataclass(frozen=True)
class LabelStatistics:
    """How the labels of all p^2 pairs spread over the p residues."""

    residues_hit: int
    label_entropy_bits: float  # entropy of the label distribution
    max_entropy_bits: float  # log2(p)
    top_label_share: float  # share of pairs with the commonest label


@dataclass(frozen=True)
class NeuronSummary:
    """Each MLP neuron's best frequency over the (x, y) grid, and the clusters it forms."""

    threshold: float  # FVE a neuron's best frequency must reach for the neuron to be clustered
    frequency: list[int]  # [d_mlp]: the frequency whose 2-D terms explain most of the neuron's variance
    fve: list[float]  # [d_mlp]: the share of the neuron's variance those terms explain
    cluster_sizes: dict[int, int]  # frequency -> neurons clustered on it


@dataclass(frozen=True)
class NeuronExample:
    """The best-explained neuron of a key cluster (drawn in the report from analysis.safetensors)."""

    neuron: int
    frequency: int
    fve: float


@dataclass(frozen=True)
class AttentionSummary:
    """Attention from ``=`` over the grid and how Fourier-sparse it is."""

    mean_to_position: list[list[float]]  # [head][key]: mean attention paid to x, y, '='
    top_frequency: list[int]  # per head: frequency of the largest non-constant 2-D terms of the attention to x
    fve_top_frequency: list[float]  # per head: variance share of that frequency's terms


@dataclass(frozen=True)
class AblationResults:
    """Losses (all pairs) after each ablation; ``mode`` says what an ablated neuron is replaced by."""

    mode: str  # "mean": the neuron's mean activation over the grid
    base_loss: float
    importance: list[float]  # per neuron, in neuron order
    top_k: list[tuple[int, float]]  # (k, loss with the k most important neurons ablated), k = 1, 2, 4, ..., all
    clusters: dict[int, float]  # frequency -> loss with that cluster's neurons ablated
    frequency_directions: dict[int, float]  # frequency -> loss with its 2-D terms removed from every neuron
    single_frequency_approximation: float  # loss with every neuron replaced by its own frequency's terms
    clustered_single_frequency_approximation: float  # the same, only for clustered neurons (others kept)
    importance_definition: str = IMPORTANCE_DEFINITION


@dataclass(frozen=True)
class Phases:
    """Where each phase ends (checkpoint epochs; None: not reached by the end of training)."""

    memorisation_end: int | None
    circuit_formation_end: int | None
    cleanup_end: int | None


@dataclass(frozen=True)
class FinalMeasures:
    """The last checkpoint's losses, accuracies and fits, over all p^2 pairs split by the training mask."""

    train_loss: float
    test_loss: float
    train_acc: float
    test_acc: float
    restricted_loss_train: float  # logits kept only along the key frequencies' directions
    restricted_loss_test: float
    excluded_loss_train: float  # logits with the key frequencies' directions removed
    logit_fve: float  # share of the centred logits' variance the key frequencies' waves explain
    logit_fit_loss: float | None = None  # loss of the fitted waves alone, as logits, over all pairs
    logit_fit_loss_test: float | None = None
    neuron_fve_mean: float | None = None  # mean over neurons of their best frequency's FVE (MLP models)
    frac_neurons_clustered: float | None = None
    frac_neurons_in_key_clusters: float | None = None
    restricted_neuron_loss_test: float | None = None  # test loss, every neuron restricted to the key terms


@dataclass(frozen=True)
class Verdict:
    """Whether the run implements the Fourier-multiplication algorithm (analysis/verdict.py's criteria)."""

    implements_fourier_multiplication: bool
    key_frequencies: list[int]
    reasons: list[str]  # one sentence per criterion, with its number, each starting "pass:" or "fail:", then notes


@dataclass(frozen=True)
class ModularAnalysis:
    """Everything ``grokscope analyze`` found in a modular-arithmetic run (``analysis.json``)."""

    format: str
    epoch: int  # the final checkpoint analysed
    sign: int  # +1: the logits are tested against cos(w(x + y - z)); -1: cos(w(x - y - z))
    key_frequencies: list[int]
    key_frequency_rule: str
    key_frequency_rules: dict[str, str]  # method -> its rule in words
    key_frequencies_by_method: dict[str, list[int]]  # embedding, neurons (MLP models), logits
    key_frequency_disagreements: list[str]
    embedding_frequency_norms: list[float]  # [p // 2]: norm of W_E along cos and sin of each frequency
    logit_frequency_share: list[float]  # [p // 2]: variance share of each frequency's wave in the logits
    logit_frequency_alpha: list[float]  # [p // 2]: the fitted wave's amplitude
    final: FinalMeasures
    phases: Phases
    phase_rules: dict[str, str]
    grokking_epoch: int | None
    verdict: Verdict
    headline: str
    findings: list[str]
    embedding_pca_variance_ratio: list[float] = field(default_factory=list)
    coordinates: Coordinates = Coordinates()
    label_statistics: LabelStatistics | None = None
    neurons: NeuronSummary | None = None  # None for models without an MLP
    W_L_frequency_norms: list[float] | None = None  # [p // 2]: W_L = W_out W_U's norm along each frequency
    attention: AttentionSummary | None = None
    neuron_examples: list[NeuronExample] = field(default_factory=list)
    ablations: AblationResults | None = None
    seconds: float = math.nan  # time the analysis took

    @property
    def axes(self) -> tuple[str, str]:
        return self.coordinates.axes

    @property
    def wave_axes(self) -> tuple[str, str]:
        """What the logits' waves add: ``cos(w(x + y - z))``, or ``cos(w(x^3 + y^4 - z))``."""
        return self.coordinates.wave_axes


@dataclass(frozen=True)
class ClockPizza:
    """Which modular-addition algorithm the final model runs, by Zhong et al.'s two measures."""

    gradient_symmetricity: float  # mean cosine between d logit_c / d e_x and d logit_c / d e_y over sampled (x, y, c)
    distance_irrelevance: float  # mean over d of std over s of the correct logit L[s, d], over std of all of L
    kind: str  # "clock", "pizza" or "unclear", by ``rule``
    rule: str
    samples: int  # (x, y, c) triples the symmetricity averages over
    pizza_correlation: dict[int, float]  # key frequency k -> corr over d of mean_s L[s, d] with |cos(w_k d / 2)|


@dataclass(frozen=True)
class LeadTimes:
    """When each progress measure moved, against the grokking epoch (checkpoint epochs)."""

    rule: str
    start_epoch: int | None  # where each measure's move is measured from (the end of memorisation)
    grokking_epoch: int | None
    crossing: dict[str, int | None]  # measure -> first checkpoint past the rule's threshold (None: never)
    lead: dict[str, int | None]  # measure -> grokking epoch minus its crossing (positive: it moved first)


@dataclass(frozen=True)
class SGLDSettings:
    """One SGLD sampler setting of the LLC estimator (Lau et al., 2023)."""

    chains: int
    draws: int  # steps per chain whose loss enters the estimate
    burn_in: int  # steps per chain before them
    batch_size: int  # training examples per step (drawn with replacement)
    lr: float  # the step size epsilon
    localization: float  # gamma: pull back towards the checkpoint's weights
    seed: int


@dataclass(frozen=True)
class LearningCoefficient:
    """The local learning coefficient over training, and the check that its estimate is stable."""

    settings: SGLDSettings  # the setting of every checkpoint's estimate
    check_settings: SGLDSettings  # a second, larger setting with another seed, at the final checkpoint
    nbeta: float  # n / log(n), n the training examples
    epochs: list[int]  # the checkpoints estimated
    final: float  # at the last checkpoint, by ``settings``
    final_check: float  # at the last checkpoint, by ``check_settings``
    final_per_chain: list[float]
    tolerance: float  # stable: |final - final_check| <= tolerance * mean of the two
    stable: bool
