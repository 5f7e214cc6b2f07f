"""Student throughput on this machine: batched vs one-user-at-a-time prediction, SFT tokens/s, peak RSS.

Synthetic ProfileBench users; label-free keyword pseudo-labels feed the SFT records, so nothing needs a
teacher run. The student is the `tiny` Qwen3 unless --model names a trained student directory.

    python benchmarks/predict_throughput.py --users 64 --batch-size 32 --max-new-tokens 96
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=64, help="users for prediction and SFT")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--max-user-tokens", type=int, default=256)
    parser.add_argument("--sft-steps", type=int, default=20, help="SFT steps timed for tokens/s (batch 8)")
    parser.add_argument("--model", type=Path, default=None, help="trained student dir (default: the tiny student, trained here)")
    args = parser.parse_args()

    import torch
    from transformers import AutoTokenizer, TrainerCallback

    from confprofile.baselines import keyword_predictions
    from confprofile.bench.profilebench import generate
    from confprofile.data import UserRecord
    from confprofile.render import render_user
    from confprofile.distill import DistillConfig, build_sft_records, train_student
    from confprofile.predict import generate_texts, load_student
    from confprofile.prompts import build_messages
    from confprofile.taxonomy import Taxonomy

    taxonomy = Taxonomy.builtin("profilebench")
    users = [UserRecord(**u) for u in generate(args.users, seed=7, difficulty=0.5)[0]]
    pseudo = keyword_predictions(users, taxonomy).assign(kept=True)
    records = build_sft_records(users, pseudo, taxonomy, max_user_tokens=args.max_user_tokens)
    work = Path(tempfile.mkdtemp(prefix="cp-bench-"))
    print(f"torch threads: {torch.get_num_threads()}, users: {len(users)}, SFT records: {len(records)}")

    class Timer(TrainerCallback):
        runtime = 0.0

        def on_log(self, a, state, control, logs=None, **kw):
            self.runtime = (logs or {}).get("train_runtime", self.runtime)

    timer = Timer()
    config = DistillConfig(max_steps=args.sft_steps, batch_size=8, save_steps=10**6, logging_steps=10**6)
    student = train_student(records, work / "student", config, callbacks=[timer])
    sft_tokenizer = AutoTokenizer.from_pretrained(student)
    seen = min(len(records), args.sft_steps * 8)
    tokens = sum(len(sft_tokenizer.apply_chat_template(r["messages"], tokenize=True, return_dict=True)["input_ids"])
                 for r in (records * args.sft_steps * 8)[: args.sft_steps * 8])
    print(f"SFT ({'tiny' if args.model is None else 'tiny, timing only'}): {args.sft_steps} steps x 8 records "
          f"in {timer.runtime:.1f} s -> {tokens / timer.runtime:,.0f} tokens/s ({seen} distinct records)")

    model, tokenizer = load_student(args.model or student)
    messages = [build_messages(render_user(u, args.max_user_tokens), taxonomy, "student") for u in users]
    kw = dict(max_new_tokens=args.max_new_tokens, progress=False)
    generate_texts(model, tokenizer, messages[:2], batch_size=2, **kw)  # warm-up
    timings = {}
    for label, batch in (("one at a time", 1), (f"batched ({args.batch_size})", args.batch_size)):
        start = time.perf_counter()
        texts = generate_texts(model, tokenizer, messages, batch_size=batch, **kw)
        timings[label] = time.perf_counter() - start
        new_tokens = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
        print(f"predict {label}: {len(users) / timings[label]:.2f} users/s ({new_tokens / len(users):.0f} new tokens/user)")
    one, batched = timings.values()
    print(f"speed-up batched vs one at a time: {one / batched:.1f}x")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
