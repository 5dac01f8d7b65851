// Package bench measures Vireo the way its users see it, and writes what it measured.
//
// Three measurements, each a plain function over an explicit configuration:
//
//   - Load (RunLoad): requests against a Target — an OpenAI-compatible server over HTTP
//     with streamed SSE (HTTPTarget) or an in-process engine (EngineTarget) — in a
//     closed loop at a fixed concurrency or an open loop with seeded Poisson arrivals.
//     Every request is recorded (TTFT, inter-token gaps, end-to-end latency, token
//     counts, the error and its kind); Summarize turns the records into p50/p90/p99 and
//     mean of TTFT, ITL, TPOT and E2E, request and token throughput, and goodput under
//     an SLO. Failures are data: a run whose server is down still yields a result.
//   - Quality (RunQuality): perplexity, next-token accuracy and teacher-forced top-1
//     agreement with the float reference per eval text, for the reference and each
//     available optimization, over strided windows, with paired bootstrap confidence
//     intervals; plus the golden nll.json protocol as a check row.
//   - Experiments on an in-process engine: the three prefill configurations of
//     DESIGN.md's TTFT section (RunTTFTConfigs) and decode throughput and weight memory
//     per weight format (RunWeightConfigs).
//
// BuildReport combines any of these into a Report, written as JSON (every number),
// Markdown and hand-written SVG charts (WriteReport). cmd/bench is the command line.
package bench
