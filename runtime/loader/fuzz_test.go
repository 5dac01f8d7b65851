package loader

import (
	"encoding/binary"
	"slices"
	"testing"
)

// checkLoaded asserts the invariants of a checkpoint that loaded without error.
func checkLoaded(t *testing.T, ck *Checkpoint) {
	if err := ck.Config.validate(); err != nil {
		t.Fatalf("loaded an invalid config: %v", err)
	}
	if err := checkTensors(ck.Config, ck.Tensors); err != nil {
		t.Fatalf("loaded with bad tensors: %v", err)
	}
	for name, tt := range ck.Tensors {
		f, err := tt.Float32()
		if err != nil {
			t.Fatalf("tensor %s: Float32: %v", name, err)
		}
		if len(f) != tt.NumElements() {
			t.Fatalf("tensor %s: %d values for shape %v", name, len(f), tt.Shape)
		}
		if tt.Type == Q8_0 {
			if _, _, err := tt.Q8_0Blocks(); err != nil {
				t.Fatalf("tensor %s: %v", name, err)
			}
		}
	}
	if ck.Vocab == nil || len(ck.Vocab.Tokens) != ck.Config.VocabSize || len(ck.Vocab.Scores) != len(ck.Vocab.Tokens) {
		t.Fatalf("vocabulary does not match the config")
	}
}

func ggufSeeds(t testing.TB) [][]byte {
	c := tinyConfig
	ts, _ := smallTensors(t, c, 9)
	meta := smallMeta(c, smallTokens)
	valid := encodeGGUF(t, meta, ts)

	// Same model with 16-bit and Q8_0 tensors (Q8_0 needs 32 columns: use smallConfig).
	sts, svals := smallTensors(t, smallConfig, 9)
	for i, tt := range sts {
		typ := []DType{F32, F16, BF16, Q8_0}[i%4]
		nt, err := NewTensor(tt.Name, typ, tt.Shape, svals[tt.Name])
		if err != nil {
			t.Fatal(err)
		}
		sts[i] = nt
	}
	mixed := encodeGGUF(t, append(smallMeta(smallConfig, smallTokens),
		KV{"x.nested", []any{[]uint8{1}, []any{[]string{"a"}}}}), sts)

	v2 := slices.Clone(valid)
	v2[4] = 2
	seeds := [][]byte{valid, mixed, v2, valid[:len(valid)/2], valid[:40], []byte("GGUF"), {}}
	// Mutations: bump counts, lengths and types at the start of the header.
	for _, at := range []int{4, 8, 16, 24, 32, 60} {
		for _, v := range []uint64{0, 1, 0xff, 1 << 32, 1<<64 - 1} {
			b := slices.Clone(valid)
			binary.LittleEndian.PutUint64(b[at:], v)
			seeds = append(seeds, b)
		}
	}
	return seeds
}

func FuzzGGUFHeader(f *testing.F) {
	for _, s := range ggufSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := ParseGGUF(data)
		if err != nil {
			return
		}
		for _, tt := range g.Tensors {
			if err := tt.checkSize(); err != nil {
				t.Fatalf("parsed tensor with bad size: %v", err)
			}
		}
		ck, err := LoadGGUF(data)
		if err != nil {
			return
		}
		checkLoaded(t, ck)
	})
}

func llama2cSeeds() [][2][]byte {
	h := smallLlama2CHeader
	tok := tokenizerBin(smallLlama2CTokens)
	valid := llama2cFile(h, llama2cFloats(h))
	hu := h
	hu[5] = -6
	untied := llama2cFile(hu, llama2cFloats(hu))
	minimal := [7]int32{2, 1, 1, 1, 1, 3, 1}
	min := llama2cFile(minimal, llama2cFloats(minimal))
	minTok := tokenizerBin([]string{"<unk>", "<s>", "</s>"})
	seeds := [][2][]byte{
		{valid, tok}, {untied, tok}, {min, minTok}, {valid[:100], tok}, {valid, tok[:10]},
		{[]byte("24ka\x01\x00\x00\x00"), tok}, {nil, nil},
	}
	for i := 0; i < 7; i++ {
		for _, v := range []uint32{0, 1, 3, 0x7fffffff, 0x80000000, 0xffffffff} {
			b := slices.Clone(min)
			binary.LittleEndian.PutUint32(b[4*i:], v)
			seeds = append(seeds, [2][]byte{b, minTok})
		}
	}
	return seeds
}

func FuzzLlama2CHeader(f *testing.F) {
	for _, s := range llama2cSeeds() {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, model, tok []byte) {
		ck, err := LoadLlama2C(model, tok)
		if err != nil {
			return
		}
		checkLoaded(t, ck)
	})
}
