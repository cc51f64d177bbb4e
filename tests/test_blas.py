"""MKL's strict mode (grokscope/blas.py): set before torch loads unless the user chose a mode,
and with it a full-batch weight-gradient product has the same bits on one thread and two."""

import os
import subprocess
import sys

SCRIPT = """
import os
from grokscope.entry import before_torch
before_torch()
import torch
g = torch.Generator().manual_seed(0)
hidden = torch.randn(3830, 625, generator=g)[:, :512]  # a slice of the folded step's buffer
grad = torch.randn(3830, 113, generator=g) * 1e-3  # the logits' gradient
products = []
for threads in (1, 2):
    torch.set_num_threads(threads)
    products.append(hidden.T @ grad)  # [512, 113]: summed over the 3,830 examples
print(os.environ["MKL_CBWR"], int((products[0] != products[1]).sum()))
"""


def run(env_mkl: str | None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}
    if env_mkl is not None:
        env["MKL_CBWR"] = env_mkl
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.split()


def test_strict_mode_is_chosen_and_makes_the_product_independent_of_threads():
    mode, differing = run(None)
    assert mode == "AUTO,STRICT" and differing == "0"


def test_a_mode_the_user_chose_is_kept():
    mode, _ = run("COMPATIBLE")
    assert mode == "COMPATIBLE"
