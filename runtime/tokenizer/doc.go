// Package tokenizer turns text into token ids and back for Llama-family checkpoints:
// SentencePiece-style BPE where merges are chosen by piece score and characters missing
// from the vocabulary fall back to <0xXX> byte pieces. Encoding follows llama2.c's
// encode (dummy space prefix, best-score-first merges, leftmost on ties) so ids match
// the reference runtime exactly; decoding follows its decode (the space after BOS is
// dropped). It reads vocabularies in either space convention: GGUF/SentencePiece "▁"
// or llama2.c's plain " ", and a Stream detokenizes one id at a time without ever
// splitting a UTF-8 character.
package tokenizer
