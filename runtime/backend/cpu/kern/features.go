package kern

import "golang.org/x/sys/cpu"

// Features reports which instruction sets this process may use, read once at start-up.
var Features = struct {
	AVX2, FMA, AVX512, VNNI bool
}{
	AVX2:   cpu.X86.HasAVX2,
	FMA:    cpu.X86.HasFMA,
	AVX512: cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL,
	VNNI:   cpu.X86.HasAVX512VNNI,
}
