import torch

from grokscope.analysis.attention_scores import (
    copying_accuracy, copying_scores, induction_scores, ov_circuits, previous_token_scores, repeated_random_tokens,
)


def planted_patterns(n_ctx=10, batch=3):
    """Head 0 attends to the previous token, head 1 is an induction head, head 2 attends to itself."""
    half = n_ctx // 2
    pattern = torch.zeros(batch, 3, n_ctx, n_ctx)
    for i in range(n_ctx):
        pattern[:, 0, i, max(i - 1, 0)] = 1
        pattern[:, 1, i, i - half + 1 if i >= half else 0] = 1
        pattern[:, 2, i, i] = 1
    return pattern


def test_previous_token_and_induction_scores_pick_their_heads():
    pattern = planted_patterns()
    prev, ind = previous_token_scores(pattern), induction_scores(pattern)
    assert prev[0] == 1 and prev[2] == 0 and ind[1] == 1 and ind[0] == 0 and ind[2] == 0
    tokens = repeated_random_tokens(20, 11, n=4)
    assert tokens.shape == (4, 10) and torch.equal(tokens[:, :5], tokens[:, 5:])


def test_copying_scores_of_planted_ov_circuits():
    n, d = 12, 16
    g = torch.Generator().manual_seed(0)
    W_E = torch.linalg.qr(torch.randn(d, d, generator=g))[0][:n]  # orthonormal rows: W_E W_E^T = I
    W_U = W_E.T.clone()
    eye = torch.eye(d)[None]
    W_V, W_O = torch.cat([eye, -eye]), torch.cat([eye, eye])  # head 0 copies, head 1 anti-copies
    ov = ov_circuits(W_E, W_V, W_O, W_U)
    torch.testing.assert_close(ov[0], torch.eye(n, dtype=torch.float64), atol=1e-5, rtol=0)
    scores = copying_scores(ov)
    assert scores[0] > 0.999 and scores[1] < 0.001
    assert copying_accuracy(ov[:1]) == 1.0
