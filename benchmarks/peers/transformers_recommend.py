#!/usr/bin/env python3
"""What a product team would otherwise write for recommendation scoring: a Python gRPC service with
transformers, serving inferd.v1.Inference/Recommend (stubs generated from proto/ at start-up) so the same
loadgen scenarios drive it and inferd alike. Each candidate is scored as inferd scores it: the context
(with BOS when the tokenizer adds one) and the candidate tokenized separately, concatenated, and the sum
and mean of the candidate tokens' log-probabilities.

  --mode per_candidate: one forward pass per candidate (context + candidate).
  --mode batched:       one forward pass for all candidates of a request (right-padded, attention mask).

Usage: transformers_recommend.py --model DIR --port N --proto-dir proto [--mode batched] [--threads 2]
"""

import argparse
import os
import sys
import tempfile
import threading
from concurrent import futures

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "e2e", "python"))
import edge_client_test as support  # noqa: E402  (generate_stubs)


def main():
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--proto-dir", required=True)
    ap.add_argument("--mode", choices=["per_candidate", "batched"], default="batched")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", default="bfloat16")
    a = ap.parse_args()

    import grpc  # noqa: PLC0415
    import torch  # noqa: PLC0415
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: PLC0415

    torch.set_num_threads(a.threads)
    support.generate_stubs(a.proto_dir, tempfile.mkdtemp(prefix="peer-stubs-"))
    from inferd.v1 import inferd_pb2 as pb, inferd_pb2_grpc as pb_grpc  # noqa: PLC0415

    tok = AutoTokenizer.from_pretrained(a.model)
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=getattr(torch, a.dtype)).eval()
    lock = threading.Lock()  # one forward at a time: the model's threads are the machine's cores

    def encode_context(text):
        ids = tok(text, add_special_tokens=False)["input_ids"]
        if tok.bos_token_id is not None and getattr(tok, "add_bos_token", True):
            ids = [tok.bos_token_id] + ids
        return ids

    @torch.inference_mode()
    def score(context, candidates):
        seqs = [context + c for c in candidates]
        out = []
        if a.mode == "per_candidate":
            for s, c in zip(seqs, candidates):
                logits = model(torch.tensor([s])).logits[0].float()
                lp = torch.log_softmax(logits[len(context) - 1 : len(s) - 1], dim=-1)
                out.append(lp.gather(1, torch.tensor(c).unsqueeze(1)).squeeze(1))
            return out
        width = max(len(s) for s in seqs)
        ids = torch.zeros(len(seqs), width, dtype=torch.long)
        mask = torch.zeros(len(seqs), width, dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s)
            mask[i, : len(s)] = 1
        logits = model(input_ids=ids, attention_mask=mask).logits.float()
        for i, (s, c) in enumerate(zip(seqs, candidates)):
            lp = torch.log_softmax(logits[i, len(context) - 1 : len(s) - 1], dim=-1)
            out.append(lp.gather(1, torch.tensor(c).unsqueeze(1)).squeeze(1))
        return out

    class Servicer(pb_grpc.InferenceServicer):
        def Recommend(self, request, context):
            if not request.context or not request.candidates:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "context and candidates are required")
            ctx_ids = encode_context(request.context)
            cands = [tok(c.text, add_special_tokens=False)["input_ids"] or [tok.eos_token_id] for c in request.candidates]
            with lock:
                lps = score(ctx_ids, cands)
            items = [(c.item_id, float(lp.sum()), float(lp.mean()), len(lp)) for c, lp in zip(request.candidates, lps)]
            items.sort(key=lambda t: -(t[2] if request.score_by_mean else t[1]))
            resp = pb.RecommendResponse(request_id=request.request_id)
            for item_id, s, m, n in items[: request.top_k or None]:
                resp.plain.items.add(item_id=item_id, sum_logprob=s, mean_logprob=m, num_tokens=n)
            resp.usage.prompt_tokens = len(ctx_ids) + sum(len(c) for c in cands)
            return resp

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    pb_grpc.add_InferenceServicer_to_server(Servicer(), server)
    server.add_insecure_port(f"127.0.0.1:{a.port}")
    server.start()
    print(f"transformers Recommend ({a.mode}) on 127.0.0.1:{a.port}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
