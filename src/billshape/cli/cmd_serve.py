"""``billshape serve``: cost per token of a deployment, from a throughput, a measurement or the serving model."""

from __future__ import annotations

from typing import Annotated, Literal, Optional

import typer

from billshape.cli._common import JsonOpt, KvPrecision, MaxAgeOpt, SnapshotOpt, Tier, WeightPrecision

HELP = """Throughput, latency and cost per million tokens of a self-hosted LLM deployment.

Three ways: give the throughput (--tokens-per-second), a measurement (--measured FILE: vLLM benchmark_serving JSON,
SGLang bench_serving JSON lines, GenAI-Perf or AIPerf profile export, trtllm-bench report, or CSV), or the model and
hardware (--model --gpu --gpus) for the roofline serving model. Add --requests-per-second with
--tpot-limit/--ttft-limit for the replicas and GPUs a service level needs.

Examples:
  billshape serve --tokens-per-second 14800 --gpus 8 --price 2 --utilization 1
  billshape serve --model llama-3.1-70b --gpu h100 --gpus 2 --precision fp8 --input-tokens 1000 --output-tokens 1000 --batch max --price 2.5
  billshape serve --model llama-3.1-70b --gpu h100 --precision fp8 --requests-per-second 10 --tpot-limit 0.05 --price 2.5
  billshape serve --model qwen3-235b-a22b --gpu h100 --gpus 8 --engine vllm --lengths sharegpt --arrival burst --requests 984
  billshape serve --model llama-3.1-70b --gpu h100 --gpus 8 --tp 4 --pp 2 --precision fp8
  billshape serve --model deepseek-v3 --gpu h200 --gpus 8 --precision fp8 --speculative mtp --draft-tokens 1
"""


def register(app: typer.Typer) -> None:
    @app.command("serve", help=HELP)
    def serve(
        tokens_per_second: Annotated[Optional[float], typer.Option("--tokens-per-second", help="Output tokens/s of the whole deployment.")] = None,
        input_tokens_per_second: Annotated[Optional[float], typer.Option("--input-tokens-per-second", help="Input (prefill) tokens/s of the deployment, to price input tokens.")] = None,
        gpus: Annotated[Optional[float], typer.Option("--gpus", help="GPUs in the deployment.")] = None,
        gpu: Annotated[Optional[str], typer.Option("--gpu", help="Accelerator (catalog name).")] = None,
        model: Annotated[Optional[str], typer.Option("--model", help="Model architecture (catalog name), for the serving model.")] = None,
        tp: Annotated[Optional[float], typer.Option("--tp", help="Tensor-parallel GPUs per replica (default: --gpus).")] = None,
        ep: Annotated[Optional[float], typer.Option("--ep", help="Expert-parallel GPUs per replica for MoE models: a divisor of --tp (default 1; each expert is tensor-parallel over tp/ep GPUs).")] = None,
        dp_attention: Annotated[bool, typer.Option("--dp-attention", help="Attention data parallel on every GPU of the replica (MoE; with or without --ep; --tp then need not divide the heads).")] = False,
        engine: Annotated[Optional[str], typer.Option("--engine", help="Serving engine profile: trtllm (default), vllm or sglang.")] = None,
        redundant_experts: Annotated[float, typer.Option("--redundant-experts", help="Extra expert slots per MoE layer for load balancing (EPLB), with --ep; default 0.")] = 0,
        expert_routing: Annotated[Optional[str], typer.Option("--expert-routing", help="MoE routing skew: measured (default: the router's measured skew, or what EPLB leaves of it with --redundant-experts) or balanced (none beyond sampling noise, as benchmarks that simulate balanced routing, e.g. DeepSeek's released profiles).")] = None,
        lengths: Annotated[Optional[str], typer.Option("--lengths", help="Request lengths from a distribution: sharegpt (shipped) or a CSV file of input,output pairs; --input-tokens/--output-tokens then rescale its means.")] = None,
        requests: Annotated[Optional[float], typer.Option("--requests", help="Requests queued at t=0, with --arrival burst.")] = None,
        arrival: Annotated[Optional[str], typer.Option("--arrival", help="steady (default: continuous batching in steady state) or burst (--requests N at t=0, as vllm bench serve --request-rate inf: output tokens over the makespan).")] = None,
        pp: Annotated[Optional[float], typer.Option("--pp", help="Pipeline-parallel stages per replica, each of --tp GPUs (gpus = tp x pp x replicas; default 1; stages need not divide the layers).")] = None,
        speculative: Annotated[Optional[str], typer.Option("--speculative", help="Speculative decoding: mtp (the model's multi-token-prediction module), eagle (a one-layer draft head) or draft (--draft-model).")] = None,
        draft_tokens: Annotated[Optional[float], typer.Option("--draft-tokens", help="Draft tokens verified per step K, 1-16 (default: 1 for mtp; required otherwise).")] = None,
        acceptance: Annotated[Optional[float], typer.Option("--acceptance", help="Per-token acceptance rate A in [0, 1) (defaults: mtp 0.85 DeepSeek-V3, eagle 0.75 EAGLE; required for draft).")] = None,
        draft_model: Annotated[Optional[str], typer.Option("--draft-model", help="Draft model (catalog name) with --speculative draft.")] = None,
        precision: Annotated[Optional[WeightPrecision], typer.Option("--precision", case_sensitive=False, help="Weights precision (default bf16).")] = None,
        kv_precision: Annotated[Optional[KvPrecision], typer.Option("--kv-precision", case_sensitive=False, help="KV cache precision (default: --precision).")] = None,
        input_tokens: Annotated[Optional[float], typer.Option("--input-tokens", help="Prompt tokens per request (default 1000).")] = None,
        output_tokens: Annotated[Optional[float], typer.Option("--output-tokens", help="Output tokens per request (default 1000).")] = None,
        batch: Annotated[Optional[str], typer.Option("--batch", help="Batch size B, or 'max' (implies --mode max-load; default).")] = None,
        mode: Annotated[Optional[Literal["static", "max-load"]], typer.Option("--mode", case_sensitive=False, help="static (a fixed --batch) or max-load (the largest batch that fits).")] = None,
        price: Annotated[Optional[float], typer.Option("--price", help="USD per GPU-hour.")] = None,
        provider: Annotated[Optional[str], typer.Option("--provider", help="Price from the rental catalog.")] = None,
        tier: Annotated[Optional[Tier], typer.Option("--tier", case_sensitive=False, help="Price tier (default on-demand).")] = None,
        utilization: Annotated[Optional[float], typer.Option("--utilization", help="Busy share of paid hours, (0, 1]; default 1.")] = None,
        measured: Annotated[Optional[str], typer.Option("--measured", help="A benchmark result: vLLM benchmark_serving JSON, SGLang bench_serving JSON lines, GenAI-Perf/AIPerf profile_export_*.json, a trtllm-bench report (text or --report_json), or CSV (output_tokens_per_second,input_tokens,output_tokens,gpus). The format is detected from the content.")] = None,
        reasoning_multiplier: Annotated[float, typer.Option("--reasoning-multiplier", help="Output tokens generated per visible output token (>= 1).")] = 1.0,
        cache_hit_rate: Annotated[float, typer.Option("--cache-hit-rate", help="Share of input tokens served from a prompt cache, [0, 1).")] = 0.0,
        requests_per_second: Annotated[Optional[float], typer.Option("--requests-per-second", help="Capacity: request rate to serve.")] = None,
        tpot_limit: Annotated[Optional[float], typer.Option("--tpot-limit", help="Capacity: max time per output token [s].")] = None,
        ttft_limit: Annotated[Optional[float], typer.Option("--ttft-limit", help="Capacity: max time to first token [s].")] = None,
        prefill_gpus: Annotated[Optional[float], typer.Option("--prefill-gpus", help="Disaggregated: GPUs that only prefill (with --decode-gpus).")] = None,
        decode_gpus: Annotated[Optional[float], typer.Option("--decode-gpus", help="Disaggregated: GPUs that only decode (with --prefill-gpus).")] = None,
        prefill_tp: Annotated[Optional[float], typer.Option("--prefill-tp", help="Prefill pool's tensor-parallel GPUs per replica (default: --tp, else the pool within one node).")] = None,
        prefill_ep: Annotated[Optional[float], typer.Option("--prefill-ep", help="Prefill pool's expert parallel (default: --ep).")] = None,
        prefill_dp_attention: Annotated[Optional[bool], typer.Option("--prefill-dp-attention/--no-prefill-dp-attention", help="Prefill pool's attention data parallel (default: --dp-attention).")] = None,
        decode_tp: Annotated[Optional[float], typer.Option("--decode-tp", help="Decode pool's tensor-parallel GPUs per replica (default: --tp, else the pool within one node).")] = None,
        decode_ep: Annotated[Optional[float], typer.Option("--decode-ep", help="Decode pool's expert parallel (default: --ep).")] = None,
        decode_dp_attention: Annotated[Optional[bool], typer.Option("--decode-dp-attention/--no-decode-dp-attention", help="Decode pool's attention data parallel (default: --dp-attention).")] = None,
        decode_batch: Annotated[Optional[float], typer.Option("--decode-batch", help="Sequences per decode replica (default: the largest that fits).")] = None,
        two_batch_overlap: Annotated[bool, typer.Option("--two-batch-overlap", help="Disaggregated pools overlap communication with computation (two micro-batches).")] = False,
        snapshot: SnapshotOpt = None,
        max_age_days: MaxAgeOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        from billshape.cli._common import catalog_options

        catalog_options(snapshot, max_age_days)
        from billshape.chains import ServeRequest, run
        from billshape.chains.serving import mode as serve_mode
        from billshape.cli._common import print_json, render

        req = ServeRequest(
            tokens_per_second=tokens_per_second, input_tokens_per_second=input_tokens_per_second, gpus=gpus, gpu=gpu,
            model=model, tp=tp, ep=ep, dp_attention=dp_attention, engine=engine, redundant_experts=redundant_experts,
            expert_routing=expert_routing,
            lengths=lengths, requests=requests, arrival=arrival, precision=precision, kv_precision=kv_precision,
            input_tokens=input_tokens, output_tokens=output_tokens, batch=batch, mode=mode, price=price,
            provider=provider, tier=tier, utilization=utilization, measured=measured,
            reasoning_multiplier=reasoning_multiplier, cache_hit_rate=cache_hit_rate,
            requests_per_second=requests_per_second, tpot_limit=tpot_limit, ttft_limit=ttft_limit,
            prefill_gpus=prefill_gpus, decode_gpus=decode_gpus, prefill_tp=prefill_tp, prefill_ep=prefill_ep,
            prefill_dp_attention=prefill_dp_attention, decode_tp=decode_tp, decode_ep=decode_ep,
            decode_dp_attention=decode_dp_attention, decode_batch=decode_batch, two_batch_overlap=two_batch_overlap,
            pp=pp, speculative=speculative, draft_tokens=draft_tokens, acceptance=acceptance, draft_model=draft_model)
        how = serve_mode(req)
        res = run(req)
        if json_out:
            print_json(res.to_dict())
            return
        if how == "capacity":
            cap = res
            render(cap, f"Capacity: {cap.model} on {cap.gpu}", [
                ("requests/s", cap.requests_per_second, ""), ("batch per replica", cap.batch_per_replica, ""),
                ("TPOT", cap.tpot_seconds, "s"), ("TTFT", cap.ttft_seconds, "s"),
                ("replicas", cap.replicas, ""), ("GPUs", cap.gpus, ""),
                ("USD per month", cap.usd_per_month, "USD"),
                ("engine", cap.engine + (" (extrapolated: no validation for this engine x model class)"
                                         if cap.extrapolated else ""), ""),
            ])
            return
        if getattr(res, "prefill_gpus", 0):
            _render_disaggregated(res)
            return
        if how in ("measured", "model"):
            def band(low, high, unit=""):
                from billshape.cli._common import fmt

                return None if low is None else f"{fmt(low, unit)} - {fmt(high, unit)}"

            rows = [
                ("output tokens/s (deployment)", res.output_tokens_per_second, ""),
                ("input tokens/s (prefill)", res.input_tokens_per_second, ""),
                ("TTFT", res.ttft_seconds, "s"), ("TPOT", res.tpot_seconds, "s"),
                ("batch / max batch", f"{res.batch:g} / {res.max_batch:g}", ""),
                ("bound", res.bound, ""), ("KV cache per token", res.kv_cache_bytes_per_token, "bytes"),
                ("parameters total / active", f"{res.params_total / 1e9:,.1f}B / {res.params_active / 1e9:,.1f}B", ""),
            ]
            if res.output_tokens_per_second_low is not None:
                label = ("  P10-P90 band (EXTRAPOLATED: no validation for this engine x model class; wide band)"
                         if res.extrapolated else "  P10-P90 band (validation)")
                rows.insert(1, (label, band(res.output_tokens_per_second_low, res.output_tokens_per_second_high), ""))
            if getattr(res, "arrival", "steady") == "burst":
                rows.append(("burst: requests / makespan", f"{res.requests:,} / {res.makespan_seconds:,.1f} s", ""))
            if getattr(res, "lengths", None):
                rows.append(("request lengths", f"{res.lengths} (mean {res.input_tokens:,.0f} in / "
                             f"{res.output_tokens:,.0f} out)", ""))
            if res.source == "model":
                rows.append(("engine", res.engine + (" (extrapolated)" if res.extrapolated else ""), ""))
            if res.expert_parallel > 1 or res.attention_dp:
                rows.append(("expert parallel / attention DP", f"{res.expert_parallel} / {'yes' if res.attention_dp else 'no'}"
                             + (f" / {res.redundant_experts} redundant experts" if res.redundant_experts else ""), ""))
                rows.append(("  busiest rank / mean (EP, attention DP)",
                             f"{res.expert_load_imbalance:.2f} / {res.attention_dp_imbalance:.2f}", ""))
            if getattr(res, "pipeline_parallel", 1) > 1:
                rows.append(("pipeline stages / bubble", f"{res.pipeline_parallel} x {res.tensor_parallel} GPUs / "
                             f"{res.pipeline_bubble:.1%} idle", ""))
            if getattr(res, "speculative", None):
                rows.append(("speculative (draft tokens, acceptance)", f"{res.speculative}"
                             + (f" ({res.draft_model})" if res.draft_model else "")
                             + f": K={res.draft_tokens}, A={res.acceptance:g}", ""))
                rows.append(("  tokens per step / decode speedup", f"{res.tokens_per_step:.3f} / "
                             f"{res.speculative_speedup:.2f}x", ""))
            if res.measured_over_modeled is not None:
                rows.insert(1, ("modeled output tokens/s", res.modeled_output_tokens_per_second, ""))
                rows.insert(2, ("measured / modeled", res.measured_over_modeled, ""))
            if getattr(res, "measured_source", None):
                engine = res.measured_engine or "engine not recorded"
                version = f" {res.measured_engine_version}" if res.measured_engine_version else ""
                rows.insert(3, ("measured with", f"{res.measured_source} ({engine}{version})", ""))
            if res.usd_per_million_output_tokens is not None:
                rows += [("USD per million output tokens", res.usd_per_million_output_tokens, "USD"),
                         ("USD per million input tokens", res.usd_per_million_input_tokens, "USD")]
                if res.usd_per_million_output_tokens_low is not None:
                    rows += [("  output USD range (P10-P90)", band(res.usd_per_million_output_tokens_low, res.usd_per_million_output_tokens_high, "USD"), ""),
                             ("  input USD range (P10-P90)", band(res.usd_per_million_input_tokens_low, res.usd_per_million_input_tokens_high, "USD"), "")]
            render(res, f"Serving {res.model} on {res.gpus:g} x {res.gpu} ({res.source})", rows)
            return

        render(res, "Serving cost", [
            ("deployment price", res.usd_per_hour, "USD"),
            ("utilization", res.utilization, ""),
            ("output tokens/s", res.output_tokens_per_second, ""),
            ("USD per million output tokens", res.usd_per_million_output_tokens, "USD"),
            ("USD per million input tokens", res.usd_per_million_input_tokens, "USD"),
        ])


def _render_disaggregated(res) -> None:
    """Both pools and the pair, then the assumptions."""
    from billshape.cli._common import render

    def pool(label, gpus, t, e, dp):
        return (label, f"{gpus} GPUs ({gpus / res.gpus_per_node:g} nodes), TP {t}, EP {e}, attention DP "
                f"{'yes' if dp else 'no'}", "")

    rows = [
        pool("prefill pool", res.prefill_gpus, res.prefill_tensor_parallel, res.prefill_expert_parallel,
             res.prefill_attention_dp),
        ("  input tokens/s (pool, per node)", f"{res.prefill_input_tokens_per_second:,.0f} "
         f"({res.prefill_input_tokens_per_second_per_node:,.0f})", ""),
        ("  prompts per forward / forward", f"{res.prefill_batch:,.1f} / {res.prefill_seconds:.4g} s", ""),
        pool("decode pool", res.decode_gpus, res.decode_tensor_parallel, res.decode_expert_parallel,
             res.decode_attention_dp),
        ("  output tokens/s (pool, per node)", f"{res.decode_output_tokens_per_second:,.0f} "
         f"({res.decode_output_tokens_per_second_per_node:,.0f})", ""),
        ("  batch / max batch per replica", f"{res.decode_batch:,} / {res.decode_max_batch:,}", ""),
        ("KV transfer per request", f"{res.kv_transfer_bytes_per_request / 1e6:,.1f} MB in {res.kv_transfer_seconds:.4g} s "
         f"({res.kv_transfer_fabric_share:.1%} of the fabric)", ""),
        ("pair: output tokens/s", res.output_tokens_per_second, ""),
        ("pair: input tokens/s", res.input_tokens_per_second, ""),
        ("bound by", f"{res.bound_pool} pool" if res.bound_pool != "kv-transfer" else "KV transfer", ""),
        ("prefill / decode GPUs (balanced)", f"{res.pool_ratio:.3g} ({res.balanced_prefill_gpus_per_decode_gpu:.3g} "
         "for this traffic)", ""),
        ("TTFT", res.ttft_seconds, "s"), ("TPOT", res.tpot_seconds, "s"),
        ("engine", res.engine + (" (extrapolated)" if res.extrapolated else ""), ""),
    ]
    if res.usd_per_million_output_tokens is not None:
        rows += [("USD per million output tokens", res.usd_per_million_output_tokens, "USD"),
                 ("USD per million input tokens", res.usd_per_million_input_tokens, "USD")]
    render(res, f"Serving {res.model} on {res.gpus:g} x {res.gpu}, disaggregated", rows)
