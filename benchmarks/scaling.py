"""How LightGCN's training cost grows with the graph: synthetic power-law bipartite
graphs of 10^5 .. 10^7 edges, time per step, time per epoch and peak memory.

    python benchmarks/scaling.py [--edges 1e5,3e5,1e6,3e6,1e7] [--steps 5] [--threads 1]

Each size runs in a fresh subprocess (so the peak resident set size, ``ru_maxrss``, is that
size's own) and does:

1. draws ``E`` distinct (user, item) pairs with Zipf-like popularity on both sides
   (exponent 0.8; ``U = E / 20`` users, ``I = E / 50`` items, so the mean user degree is
   20 and the mean item degree 50, like MovieLens);
2. builds :math:`\\tilde A` with :func:`recsys_ref.graph.normalized_adjacency` and a
   :class:`~recsys_ref.models.graph.lightgcn.LightGCNModule` (d=64, 3 layers);
3. times (in CPU seconds of this process, ``time.process_time``, with one thread by
   default, so that other processes on a shared machine do not distort the growth)
   ``--steps`` BPR training steps (one negative) exactly as
   :class:`~recsys_ref.models.graph.lightgcn.LightGCN` takes them, at batch size 2048 and at
   batch size ``E / 32`` (32 steps per epoch).

Every step propagates over the whole graph, so a step costs :math:`O(E\\,d\\,L)`. An
epoch at a *fixed* batch of 2048 has :math:`E/2048` steps and so costs
:math:`O(E^2)`: it is extrapolated (``step time x steps``), not run. With the batch
growing with the graph (a fixed number of steps per epoch, how LightGCN is trained on
large graphs) the epoch is :math:`O(E)`. Peak memory is :math:`O(E + N d)`.

Writes ``benchmarks/scaling.csv`` and ``benchmarks/scaling.png``.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def power_law_pairs(num_edges: int, seed: int = 0, exponent: float = 0.8) -> tuple[np.ndarray, int, int]:
    """``num_edges`` distinct ``(user, item)`` pairs with Zipf-like marginals."""
    rng = np.random.default_rng(seed)
    num_users, num_items = max(num_edges // 20, 10), max(num_edges // 50, 10)
    pu = np.arange(1, num_users + 1, dtype=np.float64) ** -exponent
    pi = np.arange(1, num_items + 1, dtype=np.float64) ** -exponent
    pu, pi = pu / pu.sum(), pi / pi.sum()
    keys = np.empty(0, dtype=np.int64)
    while len(keys) < num_edges:
        m = int((num_edges - len(keys)) * 1.3) + 1000
        u = rng.choice(num_users, m, p=pu)
        i = rng.choice(num_items, m, p=pi)
        keys = np.unique(np.concatenate([keys, u.astype(np.int64) * num_items + i]))
    keys = rng.permutation(keys)[:num_edges]
    return np.stack([keys // num_items, keys % num_items], 1), num_users, num_items


def run_one(num_edges: int, steps: int, threads: int, seed: int = 0) -> dict:
    import scipy.sparse as sp
    import torch

    from recsys_ref.graph import normalized_adjacency
    from recsys_ref.nn.losses import NegativeSampler
    from recsys_ref.models.graph.lightgcn import LightGCNModule
    from recsys_ref.nn.fused_losses import BPRFromTables

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024        # MiB, after imports
    t0 = time.perf_counter()
    pairs, num_users, num_items = power_law_pairs(num_edges, seed)
    u = torch.as_tensor(pairs[:, 0])
    i = torch.as_tensor(pairs[:, 1]) + num_users
    edge_index = torch.stack([torch.cat([u, i]), torch.cat([i, u])])
    adj = normalized_adjacency(edge_index, num_users + num_items)
    module = LightGCNModule(num_users, num_items, 64, 3, adj, symmetric=True)
    del adj, edge_index, u, i
    mat = sp.csr_matrix((np.ones(num_edges, np.float32), (pairs[:, 0], pairs[:, 1])),
                        shape=(num_users, num_items))
    sampler = NegativeSampler(mat, seed=seed)
    build_s = time.perf_counter() - t0
    opt = torch.optim.Adam(module.parameters(), lr=1e-3)
    pu, pi = torch.as_tensor(pairs[:, 0]), torch.as_tensor(pairs[:, 1])
    gen = torch.Generator().manual_seed(seed)

    def step(batch: int) -> float:
        t = time.process_time()     # CPU seconds: robust to other processes on a shared machine
        idx = torch.randint(0, num_edges, (batch,), generator=gen)
        users, pos = pu[idx], pi[idx]
        neg = sampler(users.numpy(), 1)
        user_emb, item_emb = module()
        loss = BPRFromTables.apply(user_emb, item_emb, users, torch.cat([pos, neg.reshape(-1)]), 1)
        loss = loss + 1e-4 * module.reg_loss(users, pos, neg)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return time.process_time() - t

    out = {"edges": num_edges, "users": num_users, "items": num_items, "build_s": build_s}
    for name, batch in (("b2048", 2048), ("e32", max(2048, num_edges // 32))):
        step(batch)                                          # warm-up
        times = [step(batch) for _ in range(steps)]
        out[f"step_s_{name}"] = float(np.median(times))
        out[f"batch_{name}"] = batch
    out["epoch_s_b2048"] = out["step_s_b2048"] * int(np.ceil(num_edges / 2048))
    out["epoch_s_e32"] = out["step_s_e32"] * int(np.ceil(num_edges / out["batch_e32"]))
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["rss_after_imports_mib"] = rss0
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--edges", default="1e5,3e5,1e6,3e6,1e7")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per batch size (median)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--one", type=float, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one is not None:
        print(json.dumps(run_one(int(args.one), args.steps, args.threads)))
        return 0

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from recsys_ref.book.plotting import use_book_style

    rows = []
    for e in [int(float(x)) for x in args.edges.split(",")]:
        proc = subprocess.run([sys.executable, __file__, "--one", str(e), "--steps", str(args.steps),
                               "--threads", str(args.threads)], capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return 1
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(f"E={e:>9,d}  step(2048)={r['step_s_b2048']:.3f}s  step(E/32)={r['step_s_e32']:.3f}s  "
              f"peak RSS={r['peak_rss_mib']:.0f} MiB", flush=True)
    df = pd.DataFrame(rows)
    df["mem_over_imports_mib"] = df["peak_rss_mib"] - df["rss_after_imports_mib"]
    df.to_csv(HERE / "scaling.csv", index=False)

    # log-log slopes: ~1 means linear growth
    le = np.log(df["edges"])
    slopes = {c: float(np.polyfit(le, np.log(df[c]), 1)[0])
              for c in ("step_s_b2048", "epoch_s_e32", "epoch_s_b2048", "mem_over_imports_mib")}
    cols = ["edges", "users", "items", "build_s", "step_s_b2048", "epoch_s_b2048", "batch_e32",
            "step_s_e32", "epoch_s_e32", "peak_rss_mib", "mem_over_imports_mib"]
    print()
    print(df[cols].to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print("\nlog-log slope vs edges (1 = linear): " + ", ".join(f"{k} {v:.2f}" for k, v in slopes.items()))
    print(f"machine: {platform.processor() or platform.machine()}, threads={args.threads}; "
          f"epochs at batch 2048 extrapolated from {args.steps} steps")

    use_book_style()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    ax = axes[0]
    ax.loglog(df["edges"], df["step_s_b2048"], "o-", label="one step (batch 2048)")
    ax.loglog(df["edges"], df["epoch_s_e32"], "s-", label="epoch, 32 steps (batch E/32)")
    ax.loglog(df["edges"], df["epoch_s_b2048"], "^--", label="epoch, batch 2048 (extrapolated)")
    ref = df["edges"] / df["edges"].iloc[0]
    ax.loglog(df["edges"], df["epoch_s_e32"].iloc[0] * ref, ":", color="grey", label="slope 1 (linear)")
    ax.set_xlabel("edges |E|")
    ax.set_ylabel("seconds")
    ax.set_title("LightGCN training time (d=64, L=3)")
    ax.legend(fontsize=8)
    ax = axes[1]
    ax.loglog(df["edges"], df["peak_rss_mib"], "o-", label="peak RSS")
    ax.loglog(df["edges"], df["mem_over_imports_mib"], "s-", label="peak RSS minus imports")
    ax.loglog(df["edges"], df["mem_over_imports_mib"].iloc[-1] * df["edges"] / df["edges"].iloc[-1], ":",
              color="grey", label="slope 1 (linear)")
    ax.set_xlabel("edges |E|")
    ax.set_ylabel("MiB")
    ax.set_title("Peak memory")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(HERE / "scaling.png", dpi=120)
    print(f"wrote {HERE / 'scaling.csv'} and {HERE / 'scaling.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
