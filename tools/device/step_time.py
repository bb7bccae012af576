"""On the GPU machine: XS training-step time (float32 + TF32, Triton scan) at two batch sizes.

python3 tools/device/step_time.py
"""

import torch

from hgmamba_core.train import TrainConfig, seconds_per_step

torch.backends.cuda.matmul.allow_tf32 = True
for b in (128, 512):
    cfg = TrainConfig(out="/tmp/x", data="/tmp/x", variant="xs", batch_size=b, device="cuda")
    s = seconds_per_step(cfg, steps=4)
    mem = torch.cuda.max_memory_allocated() / 2**30
    print(f"xs train step batch {b}: {s * 1000:.0f} ms = {b / s:.0f} windows/s; peak {mem:.1f} GiB")
