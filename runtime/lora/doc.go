// Package lora reads low-rank adapters (LoRA, Hu et al. 2021) for a Llama-family base
// model and checks them against it: a fine-tune stored as ΔW = scale·B·A per adapted
// linear layer, A [r][in] and B [out][r], applied beside the base weights without
// merging them (runtime/model), so many adapters share one base.
//
// Two formats are read, and everything else is refused at Load naming what it is:
//
//   - PEFT directories: adapter_config.json (peft_type LORA, r, lora_alpha, use_rslora,
//     target_modules, rank_pattern, alpha_pattern) beside adapter_model.safetensors,
//     tensors named base_model.model.model.layers.N.{self_attn,mlp}.M.lora_{A,B}.weight
//     for M in q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj. The scale
//     is lora_alpha/r, or lora_alpha/√r with use_rslora (each module's own r and alpha
//     under rank_pattern and alpha_pattern). DoRA, bias adapters, fan_in_fan_out,
//     modules_to_save and adapted embeddings or classifiers are refused by name, as are
//     adapter_model.bin pickles.
//   - GGUF adapters (llama.cpp's convert_lora_to_gguf.py): general.type = adapter,
//     adapter.type = lora, general.architecture the base's, adapter.lora.alpha, tensors
//     blk.N.T.weight.lora_a ([r][in]) and .lora_b ([out][r]) for T in attn_q, attn_k,
//     attn_v, attn_output, ffn_gate, ffn_up, ffn_down. The scale is alpha/r, or 1 when
//     alpha is 0 or absent (llama.cpp's rule).
//
// Every tensor must belong to a known target of a layer the base has, with A and B of
// one rank no larger than the caller's maximum, shapes the base's matrices, and finite
// values; a problem is an error naming the tensor. Nothing is kept on error.
//
// Row order: PEFT adapters are written for Hugging Face checkpoints, whose q and k rows
// are permuted for rotate-half RoPE; GGUF adapters, like GGUF models, use adjacent
// pairs. Load puts B's q and k rows in the base's order (loader.Config.RopeStyle), as
// llama.cpp's converter does, so an adapter of either format fits a base of either.
//
// loratest writes random adapters in both formats for tests.
package lora
