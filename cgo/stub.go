//go:build !cuda

// The stub keeps the API of cuda.go so that code above this package builds without the
// toolkit; every call fails with ErrNoCUDA.

package cgo

import "unsafe"

// Available reports whether this build has CUDA.
const Available = false

func ABIVersion() int { return 0 }

// HeaderABIVersion is 0 without CUDA.
const HeaderABIVersion = 0

func Versions() (runtimeVersion, driverVersion int, err error) { return 0, 0, ErrNoCUDA }

func BuildArchs() (string, error) { return "", ErrNoCUDA }

func DeviceCount() (int, error) { return 0, ErrNoCUDA }

func SetDevice(dev int) error { return ErrNoCUDA }

func GetDeviceInfo(dev int) (DeviceInfo, error) { return DeviceInfo{}, ErrNoCUDA }

func MemInfo() (free, total uint64, err error) { return 0, 0, ErrNoCUDA }

func DeviceSync() error { return ErrNoCUDA }

func Malloc(bytes int) (unsafe.Pointer, error) { return nil, ErrNoCUDA }

func Free(p unsafe.Pointer) error { return ErrNoCUDA }

func MallocHost(bytes int) (unsafe.Pointer, error) { return nil, ErrNoCUDA }

func FreeHost(p unsafe.Pointer) error { return ErrNoCUDA }

func MemcpyH2D(dst, src unsafe.Pointer, bytes int, s Stream) error { return ErrNoCUDA }

func MemcpyD2H(dst, src unsafe.Pointer, bytes int, s Stream) error { return ErrNoCUDA }

func MemcpyD2D(dst, src unsafe.Pointer, bytes int, s Stream) error { return ErrNoCUDA }

func Memset(dst unsafe.Pointer, value byte, bytes int, s Stream) error { return ErrNoCUDA }

func StreamPriorityRange() (least, greatest int, err error) { return 0, 0, ErrNoCUDA }

func StreamCreate(priority int) (Stream, error) { return Stream{}, ErrNoCUDA }

func (s Stream) Destroy() error { return ErrNoCUDA }

func (s Stream) Sync() error { return ErrNoCUDA }

func (s Stream) Wait(e Event) error { return ErrNoCUDA }

func EventCreate(timing bool) (Event, error) { return Event{}, ErrNoCUDA }

func (e Event) Destroy() error { return ErrNoCUDA }

func (e Event) Record(s Stream) error { return ErrNoCUDA }

func (e Event) Query() (bool, error) { return false, ErrNoCUDA }

func (e Event) Sync() error { return ErrNoCUDA }

func ElapsedMs(start, end Event) (float32, error) { return 0, ErrNoCUDA }

func NVTXRangeID(name string, color uint32) (int, error) { return 0, ErrNoCUDA }

func NVTXPush(id int) {}

func NVTXPop() {}

func BeginCapture(s Stream) error { return ErrNoCUDA }

func EndCapture(s Stream) (Graph, error) { return Graph{}, ErrNoCUDA }

func (g Graph) Instantiate() (GraphExec, error) { return GraphExec{}, ErrNoCUDA }

func (g Graph) Destroy() error { return ErrNoCUDA }

func (x GraphExec) Launch(s Stream) error { return ErrNoCUDA }

func (x GraphExec) Destroy() error { return ErrNoCUDA }

func Convert(s Stream, dstType DType, dst unsafe.Pointer, srcType DType, src unsafe.Pointer, n int) error {
	return ErrNoCUDA
}

func Embed(s Stream, dt DType, out unsafe.Pointer, tableType DType, table, scales, ids unsafe.Pointer, n, dim, vocab int) error {
	return ErrNoCUDA
}

func RMSNorm(s Stream, a *RMSNormArgs) error { return ErrNoCUDA }

func RMSNormQuant(s Stream, a *RMSNormArgs) error { return ErrNoCUDA }

func QuantizeRows(s Stream, dt DType, q, scale, x unsafe.Pointer, ldX, n, dim int) error {
	return ErrNoCUDA
}

func RoPE(s Stream, dt DType, x unsafe.Pointer, ldX, n, heads, headDim int, pos, invFreq unsafe.Pointer, style int) error {
	return ErrNoCUDA
}

func SiLUMul(s Stream, dt DType, out, gate, up unsafe.Pointer, n, hidden int) error { return ErrNoCUDA }
func LoRA(s Stream, dt DType, out, x, a, b, ranks, rowSlots unsafe.Pointer, n, in, outDim, slots, maxRank int) error {
	return ErrNoCUDA
}

func GatherRows(s Stream, out, x, rows unsafe.Pointer, n, cols, xRows, elemBytes int) error {
	return ErrNoCUDA
}

func WriteKV(s Stream, dt DType, kCache, vCache, k, v unsafe.Pointer, ldK, ldV int, slots unsafe.Pointer, n, kvHeads, headDim, blockSize, numBlocks int) error {
	return ErrNoCUDA
}

func AttentionWorkspaceBytes(nRows, heads, headDim, maxCtx int) (int, error) { return 0, ErrNoCUDA }

func Attention(s Stream, a *AttentionArgs) error { return ErrNoCUDA }

func Attention2WorkspaceBytes(nRows, heads, kvHeads, headDim, maxCtx int, cfg *Attention2Config) (int, error) {
	return 0, ErrNoCUDA
}

func Attention2(s Stream, a *AttentionArgs, cfg *Attention2Config) error { return ErrNoCUDA }

func MatMulW8A16(s Stream, a *MatMulArgs) error { return ErrNoCUDA }

func MatMulW8A8(s Stream, a *MatMulArgs) error { return ErrNoCUDA }

func MatMulF16(s Stream, a *MatMulArgs) error { return ErrNoCUDA }

func MatMulSp24(s Stream, a *Sp24Args) error { return ErrNoCUDA }

func SampleWorkspaceBytes(rows, vocab int) (int, error) { return 0, ErrNoCUDA }

func Sample(s Stream, logitsType DType, logits unsafe.Pointer, ld, rows, vocab int, params, history, out, workspace unsafe.Pointer, workspaceBytes int) error {
	return ErrNoCUDA
}

func Sample2WorkspaceBytes(rows, vocab, chunk int) (int, error) { return 0, ErrNoCUDA }

func Sample2(s Stream, logitsType DType, logits unsafe.Pointer, ld, rows, vocab int, params, history, out, workspace unsafe.Pointer, workspaceBytes int, cfg *Sample2Config) error {
	return ErrNoCUDA
}

func PhiloxUniform(s Stream, out, seeds, indices unsafe.Pointer, n int, streamID uint32) error {
	return ErrNoCUDA
}

func KVIndex(s Stream, pos, seq, tables unsafe.Pointer, n, nTables, maxBlocks, blockSize, numBlocks, maxCtx int, slots, seqs, rowSeq unsafe.Pointer) error {
	return ErrNoCUDA
}

func DecodeAdvance(s Stream, a *DecodeAdvanceArgs) error { return ErrNoCUDA }

func FillUniform(s Stream, dt DType, dst unsafe.Pointer, n int, seed uint64, scale float32) error {
	return ErrNoCUDA
}

func Probe() ([32]int32, error) { return [32]int32{}, ErrNoCUDA }

func MatMul2Config(i int) (MM2Config, bool) { return MM2Config{}, false }

func MatMul2WorkspaceBytes(config, n, nOut int, epi Epilogue, split int) (int, error) {
	return 0, ErrNoCUDA
}

func MatMul2(s Stream, a *MM2Args) error { return ErrNoCUDA }
