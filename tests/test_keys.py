"""The key-frequency rules (which decide the headline answer) on planted inputs with known
answers, at and around their thresholds."""

import math

import torch

from grokscope.analysis.fourier import FourierBasis
from grokscope.analysis.frequencies import logit_frequency_fit, logit_waves, neuron_clusters
from grokscope.analysis.keys import combine_key_frequencies, embedding_keys, logit_keys, neuron_keys

P = 31  # 15 frequencies: the embedding threshold is max(5 %, 2/15) = 13.3 %, the logit one 0.5/15 = 3.3 %


def test_embedding_keys_take_the_frequencies_above_the_energy_share():
    norms = torch.full((15,), 1e-3, dtype=torch.float64)
    norms[[2, 6, 10]] = torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64)  # energy shares 9/14, 4/14, 1/14 (= 7.1 %: below)
    assert embedding_keys(norms) == [3, 7]
    norms[10] = math.sqrt(1.6)  # share 1.6 / 14.6 = 11.0 %: still below 13.3 %
    assert embedding_keys(norms) == [3, 7]
    norms[10] = 2.0  # 4/17 = 23.5 %
    assert embedding_keys(norms) == [3, 7, 11]
    assert embedding_keys(torch.ones(15, dtype=torch.float64)) == []  # spread evenly: 6.7 % each, no key


def test_neuron_keys_need_a_cluster_of_well_explained_neurons():
    basis = FourierBasis(P)
    x = torch.arange(P, dtype=torch.float64)
    w = lambda k: 2 * math.pi * k / P  # noqa: E731
    grid = lambda f: f(x[:, None], x[None, :]) + torch.zeros(P, P, dtype=torch.float64)  # noqa: E731
    neurons = [grid(lambda a, b: torch.cos(w(4) * (a + b))) for _ in range(3)]  # 3 neurons on k = 4
    neurons += [grid(lambda a, b: torch.cos(w(9) * a) + 0.1 * torch.cos(w(2) * b)) for _ in range(2)]  # 2 on k = 9
    neurons += [grid(lambda a, b: torch.cos(w(6) * a))]  # a lone neuron on k = 6: below the minimum of 2
    neurons += [grid(lambda a, b: torch.cos(w(1) * a) + torch.cos(w(12) * b))]  # half and half: FVE 0.5, unclustered
    neurons += [torch.zeros(P, P, dtype=torch.float64)]  # dead: FVE 0
    clusters = neuron_clusters(basis, torch.stack(neurons, dim=-1))
    assert clusters.frequency[:6].tolist() == [4, 4, 4, 9, 9, 6]
    assert clusters.clustered.tolist() == [True] * 6 + [False, False]
    assert neuron_keys(clusters) == [4, 9]


def test_logit_keys_take_the_waves_above_their_variance_share():
    logits = 3 * logit_waves(P, 5) + 2 * logit_waves(P, 11) + 0.2 * logit_waves(P, 14)  # shares 9/13.04, 4/13.04, 0.3 %
    fit = logit_frequency_fit(logits)
    assert logit_keys(fit) == [5, 11]
    assert abs(fit.fve([5, 11]) - 13 / 13.04) < 1e-9
    subtraction = logit_frequency_fit(logit_waves(P, 7, sign=-1), sign=-1)
    assert logit_keys(subtraction) == [7]


def test_key_frequencies_are_named_by_a_majority_of_methods():
    found = combine_key_frequencies({"embedding": [3, 7, 11], "neurons": [3, 7], "logits": [3, 5]})
    assert found.key == [3, 7]
    assert found.disagreements == ["frequency 5: named by logits, not by embedding, neurons",
                                   "frequency 7: named by embedding, neurons, not by logits",
                                   "frequency 11: named by embedding, not by neurons, logits"]
    assert combine_key_frequencies({"embedding": [2], "logits": [4]}).key == []  # one of two is not a majority
