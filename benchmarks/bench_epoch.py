"""Per-epoch cost of grokscope's training step vs a plain full-sequence PyTorch model and vs
the matmul floor of the last-position computation, all measured here, now.

    python benchmarks/bench_epoch.py [--threads N] [--epochs N]

The floor is the 9 matmuls a last-position model cannot avoid in a plain formulation
(x @ W_in, h @ W_out, r @ W_U forward, and their two backward products each) at the
canonical shapes. grokscope's folded forward removes some of that arithmetic, so it can
run below the floor.
"""

import argparse
import time

from grokscope import load_preset  # first: it sets OpenMP's wait policy before torch loads

import torch  # noqa: E402
from grokscope.models.folded import folded_logits
from grokscope.training.loss import cross_entropy
from grokscope.training.optim import make_optimizer
from reference_model import PlainTransformer, plain_step


def per_call(fn, repeats: int, warmup: int = 5) -> float:
    for _ in range(warmup):
        fn()
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t) / repeats


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)  # as in training
    torch.utils.deterministic.fill_uninitialized_memory = False

    config = load_preset("nanda2023")
    task = config.task.build()
    data, split = task.dataset(), task.split()
    tokens, labels = data.tokens[split.train], data.labels[split.train]
    n = len(tokens)

    reference = PlainTransformer()
    ref_opt = torch.optim.AdamW(reference.parameters(), lr=1e-3, weight_decay=1.0, betas=(0.9, 0.98))
    t_ref = per_call(lambda: plain_step(reference, ref_opt, tokens, labels[:, 0]), max(5, args.epochs // 4))

    model = config.model.build(task.d_vocab, task.d_vocab_out, task.n_ctx)
    model.init_weights(0)
    opt = make_optimizer(model, config.train)
    query = torch.tensor(data.target_positions)

    def grokscope_step():
        loss = cross_entropy(folded_logits(model, tokens, query), labels)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    t_ours = per_call(grokscope_step, args.epochs)

    d_model, d_mlp, d_out = 128, 512, 113
    x, h = torch.randn(n, d_model), torch.randn(n, d_mlp)
    W_in, W_out, W_U = torch.randn(d_model, d_mlp), torch.randn(d_mlp, d_model), torch.randn(d_model, d_out)
    g_in, g_out, g_U = torch.randn(n, d_mlp), torch.randn(n, d_model), torch.randn(n, d_out)

    def floor_matmuls():
        x @ W_in; h @ W_out; x @ W_U  # forward
        g_in @ W_in.T; x.T @ g_in  # backward of x @ W_in
        g_out @ W_out.T; h.T @ g_out  # backward of h @ W_out
        g_U @ W_U.T; x.T @ g_U  # backward of r @ W_U

    t_floor = per_call(floor_matmuls, args.epochs)

    print(f"threads={args.threads}, {n} training examples, canonical model")
    print(f"plain full-sequence reference : {t_ref * 1000:7.1f} ms/epoch")
    print(f"matmul floor (last position)  : {t_floor * 1000:7.1f} ms/epoch")
    print(f"grokscope training step       : {t_ours * 1000:7.1f} ms/epoch")
    print(f"speed-up vs reference         : {t_ref / t_ours:7.2f}x")
    print(f"grokscope / floor             : {t_ours / t_floor:7.2f}x")


if __name__ == "__main__":
    main()
