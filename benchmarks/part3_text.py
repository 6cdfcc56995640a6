"""Benchmark of the language-model chapter's building blocks: text encoding speed (cold
and cached), the per-epoch cost of each LightGCN text-fusion variant, and (``--llm``)
SmolLM2 load time and greedy generation speed.

    python benchmarks/part3_text.py [--repeats 3] [--threads 1 2] [--encode-only] [--llm]

Encoding is timed ``--repeats`` times (no cache, model already loaded) for each thread
count and precision; min and median are printed with the 1-minute load average before
each run (the machine may be shared: a load above the core count inflates the times).

Prints a table; record it in ``benchmarks/README.md`` with the date and the machine.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time

import torch

from recsys_ref.data import load_movielens
from recsys_ref.models.text.fusion import FUSIONS, LightGCNText
from recsys_ref.models.graph.lightgcn import LightGCN
from recsys_ref.protocol.splits import stratified_split
from recsys_ref.lm.text import TextEncoder, item_texts, load_omdb, match_omdb, user_texts
from recsys_ref.train import get_device


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=2, help="epochs timed per model (median reported)")
    ap.add_argument("--batch-size", type=int, default=4096)
    ap.add_argument("--device", default=None)
    ap.add_argument("--llm", action="store_true", help="also time SmolLM2 (loads ~100 MB, slow on CPU)")
    ap.add_argument("--repeats", type=int, default=3, help="timed encodings per setting (min, median)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, os.cpu_count() or 1],
                    help="torch thread counts to time the encoder with")
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=TextEncoder.PRECISIONS)
    ap.add_argument("--encode-only", action="store_true", help="skip the fusion epochs and the LLM")
    args = ap.parse_args()
    device = get_device(args.device)
    rows: list[tuple[str, str]] = [("device", f"{device} | {platform.processor() or platform.machine()} | "
                                              f"torch threads {torch.get_num_threads()}")]
    ml = load_movielens("ml-100k")
    texts = item_texts(ml.items, match_omdb(ml.items, load_omdb()))
    enc = TextEncoder(device=str(device), cache=False)
    enc._load()
    lengths = enc.token_lengths(texts)
    rows.append(("item texts: tokens mean / max, cut at max_length",
                 f"{lengths.mean():.1f} / {lengths.max()}, {int((lengths > enc.max_length).sum())} "
                 f"cut at {enc.max_length}"))
    item_emb = enc.encode(texts)
    for precision in args.precisions:
        for threads in args.threads:
            e = TextEncoder(device=str(device), cache=False, num_threads=threads, precision=precision)
            e._tokenizer, e._model = enc._tokenizer, enc._model            # same weights, loaded once
            secs, loads = [], []
            for _ in range(args.repeats):
                loads.append(os.getloadavg()[0])
                t0 = time.perf_counter()
                emb = e.encode(texts)
                secs.append(time.perf_counter() - t0)
            cos = float((emb * item_emb).sum(1).min())
            rows.append((f"encode {len(texts)} item texts, {precision}, {threads} thread(s), no cache",
                         f"min {min(secs):.2f} s, median {statistics.median(secs):.2f} s "
                         f"({100 * min(secs) / len(texts):.2f} s / 100 texts; load {min(loads):.1f}-"
                         f"{max(loads):.1f}; min cos to fp32 {cos:.5f})"))
            print(" | ".join(rows[-1]), flush=True)                 # long runs: show progress
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["RECSYS_REF_CACHE"] = tmp
        cached = TextEncoder(device=str(device))
        cached.encode(texts)
        t0 = time.perf_counter()
        TextEncoder(device=str(device)).encode(texts)
        rows.append(("same, cache hit (new encoder)", f"{time.perf_counter() - t0:.3f} s"))
    if args.encode_only:
        _print(rows)
        return
    user_emb = enc.encode(user_texts(ml.users))
    train, _ = stratified_split(ml.ratings, 0.75, filter_by="item", seed=42)
    kw = dict(num_epochs=args.epochs, batch_size=args.batch_size, eval_every=args.epochs + 1,
              patience=None, device=str(device), seed=0)
    models = {"lightgcn": LightGCN(**kw)}
    for f in FUSIONS:
        models[f"lightgcn-text ({f})"] = LightGCNText(item_features=item_emb, user_features=user_emb, fusion=f, **kw)
    for name, m in models.items():
        m.fit(train, ml.num_users, ml.num_items)
        rows.append((f"{name}: epoch", f"{m.epoch_seconds:.3f} s"))
    if args.llm:
        from recsys_ref.lm.generator import LanguageModel
        lm = LanguageModel(device=str(device), cache=False, batch_size=8)
        t0 = time.perf_counter()
        lm.load()
        rows.append(("SmolLM2-135M load (GGUF -> torch)", f"{time.perf_counter() - t0:.1f} s"))
        prompts = [f"Describe the film {t} in one sentence." for t in ml.items.title[:8]]
        t0 = time.perf_counter()
        lm.generate(prompts, max_new_tokens=32)
        dt = time.perf_counter() - t0
        rows.append(("generate 8 x 32 tokens (batched, greedy)", f"{dt:.1f} s ({8 * 32 / dt:.1f} tokens/s)"))
    _print(rows)


def _print(rows: list[tuple[str, str]]) -> None:
    width = max(len(a) for a, _ in rows)
    print("-" * (width + 30))
    for a, b in rows:
        print(f"{a:<{width}} | {b}")
    print("-" * (width + 30))


if __name__ == "__main__":
    main()
