#!/usr/bin/env python3
"""A tiny Monte Carlo payload: estimate pi from a seed, write result.json.

Run by each job of examples/campaign.py on the worker (here: the local backend).
"""

import json
import random
import sys

seed = int(sys.argv[1])
samples = int(sys.argv[2]) if len(sys.argv) > 2 else 20_000
rng = random.Random(seed)
inside = sum(rng.random() ** 2 + rng.random() ** 2 <= 1.0 for _ in range(samples))
estimate = 4.0 * inside / samples
print(f"seed {seed}: pi ~ {estimate:.5f} from {samples} samples")
with open("result.json", "w") as f:
    json.dump({"seed": seed, "samples": samples, "inside": inside, "pi": estimate}, f)
