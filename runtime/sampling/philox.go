package sampling

// Philox4x32-10 constants (Salmon et al., "Parallel Random Numbers: As Easy as
// 1, 2, 3", SC'11; Random123 philox.h).
const (
	philoxM0 = 0xD2511F53 // multiplier applied to counter word 0
	philoxM1 = 0xCD9E8D57 // multiplier applied to counter word 2
	philoxW0 = 0x9E3779B9 // Weyl increment of key word 0 (golden ratio)
	philoxW1 = 0xBB67AE85 // Weyl increment of key word 1 (sqrt(3)-1)
)

// Philox4x32 is the Random123 Philox4x32-10 block function: it maps a 128-bit
// counter and a 64-bit key to 128 pseudo-random bits. It is a pure function, so a
// GPU thread can compute any draw independently.
//
// Each of the 10 rounds (the key is bumped by the Weyl constants before every round
// except the first) computes, with 32x32→64-bit products:
//
//	p0 = 0xD2511F53 * ctr[0];  p1 = 0xCD9E8D57 * ctr[2]
//	ctr = { hi(p1) ^ ctr[1] ^ key[0], lo(p1), hi(p0) ^ ctr[3] ^ key[1], lo(p0) }
//
// This matches Random123's philox4x32_R(10, ctr, key) and CUDA cuRAND-free
// implementations of it bit for bit.
func Philox4x32(ctr [4]uint32, key [2]uint32) [4]uint32 {
	for r := 0; r < 10; r++ {
		if r > 0 {
			key[0] += philoxW0
			key[1] += philoxW1
		}
		p0 := uint64(philoxM0) * uint64(ctr[0])
		p1 := uint64(philoxM1) * uint64(ctr[2])
		ctr = [4]uint32{
			uint32(p1>>32) ^ ctr[1] ^ key[0],
			uint32(p1),
			uint32(p0>>32) ^ ctr[3] ^ key[1],
			uint32(p0),
		}
	}
	return ctr
}

// StreamToken is the Philox stream used for the token-sampling draw of Sampler.Sample.
// Other random decisions use other streams (StreamAccept, StreamDraft).
const StreamToken uint32 = 0

// Uniform returns the uniform variate in [0, 1) used for the draw of token number
// tokenIndex of a request seeded with seed. The definition, which a CUDA kernel must
// reproduce exactly, is:
//
//	key = { uint32(seed), uint32(seed >> 32) }                 // lo word first
//	ctr = { uint32(tokenIndex), uint32(tokenIndex >> 32), stream, 0 }
//	x   = Philox4x32-10(ctr, key)[0]                            // word 0 only
//	u   = float32(x >> 8) * (1.0 / 16777216.0)                  // float32 arithmetic
//
// x>>8 has 24 significant bits, so the conversion to float32 and the multiplication
// by 2^-24 are both exact: u is one of the 2^24 values k/2^24, k = 0 … 2^24-1, and is
// never 1. Words 1–3 of the Philox output are currently unused.
func Uniform(seed uint64, tokenIndex uint64, stream uint32) float32 {
	return float32(UniformBits(seed, tokenIndex, stream)) * (1.0 / 16777216.0)
}

// UniformBits is the 24-bit integer r of Uniform (u = r / 2^24): x >> 8.
func UniformBits(seed uint64, tokenIndex uint64, stream uint32) uint32 {
	out := Philox4x32(
		[4]uint32{uint32(tokenIndex), uint32(tokenIndex >> 32), stream, 0},
		[2]uint32{uint32(seed), uint32(seed >> 32)},
	)
	return out[0] >> 8
}
