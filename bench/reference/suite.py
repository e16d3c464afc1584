"""The PyTorch reference of bench/suite.ts: the same measurements at the same shapes, eager fp32 on the CPU, in
plain torch.nn (models.py). One measurement per process; prints one JSON line with the fields of the engine's
Measurement (bench/suite/ours.ts). Needs only torch (no transformers). bench/compare.ts runs it; by hand:

  python3 bench/reference/suite.py --mode generate --config '<GptConfig JSON>' [--batch 32] [--prompt 32]
    [--new-tokens 64] [--sft-batch 8] [--seq 128] [--fused-steps 4] [--ppo-epochs 4] [--minibatches 1]
    [--calls 3] [--threads 2] [--seed 1]

modes: generate (temperature-1 sampling with a KV cache), sft-unfused (one step per call), sft-fused (K steps per
call: a Python loop, torch has no fused step), ppo (rollout + 4-model scoring + targets + K clipped updates)."""
import argparse
import copy
import json
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True  # no __pycache__ beside the script in the repository
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from models import build, random_weights  # noqa: E402


def token_rows(rows, length, vocab, seed):
    """The engine's tokenRows: (b·7919 + j·104729 + seed·31) mod vocab."""
    return torch.tensor(
        [[(b * 7919 + j * 104729 + seed * 31) % vocab for j in range(length)] for b in range(rows)],
        dtype=torch.long,
    )


def timed(calls, call):
    """The warm-up's ms, then the median wall and process CPU seconds (all threads) of `calls` calls."""
    started = time.perf_counter()
    call()
    first_ms = round(1000 * (time.perf_counter() - started))
    seconds, cpu_seconds = [], []
    for _ in range(calls):
        started, cpu = time.perf_counter(), time.process_time()
        call()
        seconds.append(time.perf_counter() - started)
        cpu_seconds.append(time.process_time() - cpu)
    return first_ms, statistics.median(seconds), statistics.median(cpu_seconds)


@torch.no_grad()
def generate(model, prompts, new_tokens, temperature, gen):
    """Prefill, then one cached decode step per token; the LM head only on the last position."""
    hidden, cache = model.hidden(prompts)
    P = prompts.shape[1]
    tokens, logprobs = [], []
    for step in range(new_tokens):
        logp = torch.log_softmax(model.logits(hidden[:, -1]) / temperature, dim=-1)
        token = torch.multinomial(logp.exp(), 1, generator=gen)
        tokens.append(token)
        logprobs.append(logp.gather(1, token))
        if step + 1 < new_tokens:
            hidden, cache = model.hidden(token, cache, P + step)
    return torch.cat(tokens, 1), torch.cat(logprobs, 1)


def adamw(params, lr, weight_decay, decay_matrices):
    """torch.optim.AdamW with the engine's defaults (β 0.9 / 0.999, ε 1e-8); decay on matrices only."""
    params = list(params)
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay if decay_matrices else 0.0},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8)


def measure_generate(cfg, a):
    weights = random_weights(cfg, False, a.seed)
    started = time.perf_counter()
    model = build(cfg, weights)
    setup_ms = round(1000 * (time.perf_counter() - started))
    prompts = token_rows(a.batch, a.prompt, cfg["vocabSize"], a.seed)
    gen = torch.Generator().manual_seed(0)
    first_ms, seconds, cpu = timed(a.calls, lambda: generate(model, prompts, a.new_tokens, 1.0, gen))
    return dict(
        setupMs=setup_ms,
        firstCallMs=first_ms,
        secondsPerCall=seconds,
        cpuSecondsPerCall=cpu,
        tokensPerCall=a.batch * a.new_tokens,
    )


def measure_sft(cfg, a, steps):
    weights = random_weights(cfg, False, a.seed)
    started = time.perf_counter()
    model = build(cfg, weights)
    opt = adamw(model.parameters(), 1e-4, 0.01, True)  # buildTrainStep's default AdamW: wd 0.01 on matrices
    setup_ms = round(1000 * (time.perf_counter() - started))
    B, T = a.sft_batch, a.seq
    rows = token_rows(steps * B, T + 1, cfg["vocabSize"], a.seed).view(steps, B, T + 1)
    mask = torch.ones(B, T)
    losses = []

    def call():
        losses.clear()
        for k in range(steps):
            ids, targets = rows[k, :, :T], rows[k, :, 1:]
            logits = model.logits(model.hidden(ids)[0])
            ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
            loss = (ce * mask.reshape(-1)).sum() / mask.sum()  # token-mean causal LM cross-entropy
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            losses.append(loss.item())

    first_ms, seconds, cpu = timed(a.calls, call)
    return dict(
        setupMs=setup_ms,
        firstCallMs=first_ms,
        secondsPerCall=seconds,
        cpuSecondsPerCall=cpu,
        tokensPerCall=steps * B * T,
        loss=round(sum(losses) / len(losses), 4),
    )


def response_scores(model, seq, P, temperature):
    """Log-probs and entropy of the response tokens seq[:, P:] (the LM head only at the columns predicting them)."""
    hidden = model.hidden(seq)[0][:, P - 1 : -1]
    logp = torch.log_softmax(model.logits(hidden) / temperature, dim=-1)
    entropy = -(logp.exp() * logp).sum(-1)
    return logp.gather(2, seq[:, P:, None]).squeeze(2), entropy


def critic_values(model, seq, P):
    """Values V(s_t) before each response token: the scalar head at the columns P - 1 .. end - 1."""
    return model.score(model.hidden(seq)[0][:, P - 1 : -1]).squeeze(-1)


def whiten(x, shift_mean=True):
    mean, var = x.mean(), x.var()  # unbiased, as TRL and the engine
    out = (x - mean) * torch.rsqrt(var + 1e-8)
    return out if shift_mean else out + mean


def targets_of(logprobs, ref_logprobs, values, scores, beta, gamma, lam):
    """score − β·KL per token (score on the last), GAE(γ, λ), whitened advantages (no EOS: every token is real)."""
    rewards = -beta * (logprobs - ref_logprobs)
    rewards[:, -1] += scores
    N = rewards.shape[1]
    advantages = torch.zeros_like(rewards)
    last = torch.zeros(rewards.shape[0])
    for t in reversed(range(N)):
        following = values[:, t + 1] if t + 1 < N else torch.zeros_like(last)
        delta = rewards[:, t] + gamma * following - values[:, t]
        last = delta + gamma * lam * last
        advantages[:, t] = last
    return whiten(advantages), advantages + values


def measure_ppo(cfg, a):
    # The engine's PPO defaults (packages/contracts PpoConfig): lr 3e-5, wd 0, clip 0.2 / 0.2, vf 0.1, ent 0,
    # max grad norm 1, γ 1, λ 0.95, β 0.05, temperature 1.
    lr, clip, clip_v, vf_coef, beta, gamma, lam, temperature = 3e-5, 0.2, 0.2, 0.1, 0.05, 1.0, 0.95, 1.0
    policy_w = random_weights(cfg, False, a.seed)
    rm_w = random_weights(cfg, True, a.seed + 1)
    started = time.perf_counter()
    policy, ref = build(cfg, policy_w), build(cfg, policy_w)
    rm, critic = build(cfg, rm_w, True), build(cfg, copy.deepcopy(rm_w), True)
    for p in [*ref.parameters(), *rm.parameters()]:
        p.requires_grad_(False)
    trained = [*policy.parameters(), *critic.parameters()]
    opt = adamw(trained, lr, 0.0, False)
    setup_ms = round(1000 * (time.perf_counter() - started))
    B, P, N = a.batch, a.prompt, a.new_tokens
    prompts = token_rows(B, P, cfg["vocabSize"], a.seed)
    K, mini = a.ppo_epochs * a.minibatches, B // a.minibatches
    gen = torch.Generator().manual_seed(0)
    phases, losses = {}, []

    def iteration():
        t0 = time.perf_counter()
        responses, _ = generate(policy, prompts, N, temperature, gen)
        t1 = time.perf_counter()
        seq = torch.cat([prompts, responses], 1)
        with torch.no_grad():
            logprobs, _ = response_scores(policy, seq, P, temperature)
            ref_logprobs, _ = response_scores(ref, seq, P, temperature)
            values = critic_values(critic, seq, P)
            scores = rm.score(rm.hidden(seq)[0][:, -1]).squeeze(-1)  # the last real token (no EOS, no padding)
        t2 = time.perf_counter()
        advantages, returns = targets_of(logprobs, ref_logprobs, values, scores, beta, gamma, lam)
        t3 = time.perf_counter()
        losses.clear()
        for k in range(K):
            rows = torch.arange(k % a.minibatches * mini, (k % a.minibatches + 1) * mini)
            lp, entropy = response_scores(policy, seq[rows], P, temperature)
            ratio = torch.exp(lp - logprobs[rows])
            pg = torch.max(-advantages[rows] * ratio, -advantages[rows] * ratio.clamp(1 - clip, 1 + clip)).mean()
            v = critic_values(critic, seq[rows], P)
            v_clipped = values[rows] + (v - values[rows]).clamp(-clip_v, clip_v)
            vf = 0.5 * torch.max((v - returns[rows]) ** 2, (v_clipped - returns[rows]) ** 2).mean()
            loss = pg + vf_coef * vf
            with torch.no_grad():  # the metrics the engine's step reports
                _ = entropy.mean(), ((ratio - 1) - (lp - logprobs[rows])).mean()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trained, 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            losses.append(loss.item())
        t4 = time.perf_counter()
        phases.update(
            generate=round(t1 - t0, 4), score=round(t2 - t1, 4), targets=round(t3 - t2, 4), train=round(t4 - t3, 4)
        )

    first_ms, seconds, cpu = timed(a.calls, iteration)
    return dict(
        setupMs=setup_ms,
        firstCallMs=first_ms,
        secondsPerCall=seconds,
        cpuSecondsPerCall=cpu,
        tokensPerCall=B * N,
        loss=round(sum(losses) / len(losses), 4),
        phases=dict(phases),
    )


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", required=True, choices=["generate", "sft-unfused", "sft-fused", "ppo"])
    p.add_argument("--config", required=True, help="the engine's GptConfig as JSON")
    for name, default in [
        ("batch", 32), ("prompt", 32), ("new-tokens", 64), ("sft-batch", 8), ("seq", 128), ("fused-steps", 4),
        ("ppo-epochs", 4), ("minibatches", 1), ("calls", 3), ("threads", os.cpu_count()), ("seed", 1),
    ]:  # fmt: skip
        p.add_argument(f"--{name}", type=int, default=default)
    a, _ = p.parse_known_args()  # the engine's other flags (--presets, --max-rss-mb, ...) are not ours
    cfg = json.loads(a.config)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    if a.mode == "generate":
        result = measure_generate(cfg, a)
    elif a.mode == "ppo":
        result = measure_ppo(cfg, a)
    else:
        result = measure_sft(cfg, a, a.fused_steps if a.mode == "sft-fused" else 1)
    seconds = result["secondsPerCall"]
    result.update(
        impl="torch",
        mode=a.mode,
        secondsPerCall=round(seconds, 4),
        tokensPerSecond=round(result["tokensPerCall"] / seconds, 1),
        cpuSecondsPerCall=round(result["cpuSecondsPerCall"], 4),
        tokensPerCpuSecond=round(result["tokensPerCall"] / result["cpuSecondsPerCall"], 1),
        peakRssMiB=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        threads=torch.get_num_threads(),
        torch=torch.__version__,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
