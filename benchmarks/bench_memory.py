"""Memory per model: parameters + AdamW state, and the peak resident memory a training step
adds, for grokscope's folded step and for the plain full-sequence reference, each measured
in a fresh process at the same p.

    python benchmarks/bench_memory.py [--p 113 59]

"Step peak" is the growth of the process's peak RSS over a few training steps, measured
after the data and the model exist, so it is the activation and gradient working set.
"""

import argparse
import json
import resource
import subprocess
import sys

CHILD = """
import json, resource, sys
from grokscope import load_preset
import torch
sys.path.insert(0, {bench!r})
from grokscope.models.folded import folded_logits
from grokscope.training.loss import cross_entropy
from grokscope.training.optim import make_optimizer
from reference_model import PlainTransformer, plain_step
torch.set_num_threads(1)
config = load_preset("nanda2023").with_overrides(["task.p={p}"])
task = config.task.build()
data, split = task.dataset(), task.split()
tokens, labels = data.tokens[split.train], data.labels[split.train]
if {plain}:
    model = PlainTransformer(d_vocab=task.d_vocab, d_vocab_out=task.d_vocab_out)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1.0, betas=(0.9, 0.98))
    step = lambda: plain_step(model, opt, tokens, labels[:, 0])
else:
    model = config.model.build(task.d_vocab, task.d_vocab_out, task.n_ctx)
    model.init_weights(0)
    opt = make_optimizer(model, config.train)
    query = torch.tensor(data.target_positions)
    def step():
        cross_entropy(folded_logits(model, tokens, query), labels).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for _ in range(3):
    step()
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"n_train": len(tokens), "params": n_params, "peak_kib": after - before}}))
"""


def measure(p: int, plain: bool) -> dict:
    code = CHILD.format(bench=sys.path[0], p=p, plain=plain)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--p", type=int, nargs="+", default=[113, 59])
    args = parser.parse_args()
    print("p    n_train  trainable  params+grad+AdamW  step peak: grokscope  plain reference  ratio")
    for p in args.p:
        ours, ref = measure(p, plain=False), measure(p, plain=True)
        state_mb = ours["params"] * 4 * 4 / 2**20  # float32 weights, grads, exp_avg, exp_avg_sq
        print(f"{p:<4} {ours['n_train']:>7}  {ours['params']:>9,}  {state_mb:>13.1f} MB"
              f"  {ours['peak_kib'] / 1024:>16.1f} MB  {ref['peak_kib'] / 1024:>12.1f} MB"
              f"  {ours['peak_kib'] / max(ref['peak_kib'], 1):>5.2f}x")


if __name__ == "__main__":
    main()
