// Package quantize writes GGUF files of the types users run: `vireo quantize IN OUT
// --type T`. IN is a GGUF file (F32, F16 or BF16 tensors; block-quantized ones with
// AllowRequantize), a Hugging Face model directory or synthetic:<shape>; the output
// keeps IN's metadata and tokenizer (an HF directory's are converted to GGUF's keys).
//
// Each tensor's type is chosen as llama-quantize chooses it for a Llama model without
// an importance matrix (types.go), tensors are ordered as llama-quantize writes them,
// and the blocks are ggml's reference quantizers (runtime/quant/ggml), so quantizing
// llama.cpp's F32 file gives llama.cpp's file. Tensors are converted one at a time,
// rows in parallel, and the output appears under its name only once complete.
package quantize

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/vireo-ai/vireo/runtime/loader"
	"github.com/vireo-ai/vireo/runtime/quant/ggml"
)

// ggmlQuantVersion is general.quantization_version (GGML_QNT_VERSION).
const ggmlQuantVersion = 2

// Options control Run.
type Options struct {
	Type Target
	// Pure gives every quantizable matrix the base type, as llama-quantize --pure
	// (the row-length fallback still applies).
	Pure bool
	// AllowRequantize accepts block-quantized input tensors, dequantized first (their
	// rounding is paid twice); a tensor that keeps its type is copied as it is.
	AllowRequantize bool
	// F16Fallback keeps F16 the matrices whose rows are not whole blocks of a type for
	// which llama.cpp defines no fallback type (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0), where
	// llama-quantize refuses the file.
	F16Fallback bool
	// Threads quantize rows in parallel (0: GOMAXPROCS).
	Threads int
	// Progress, when set, hears of each tensor as it is written (i counts from 0).
	Progress func(i, n int, t TensorReport)
}

// TensorReport says what became of one tensor.
type TensorReport struct {
	Name     string
	Shape    []int // outermost first
	From, To ggml.Type
	Bytes    int // in the output
}

// Report is what Run wrote.
type Report struct {
	Tensors []TensorReport // in file order
	Bytes   int64          // the output file's size
}

// Run quantizes in into a GGUF file at out (see the package comment).
func Run(in, out string, opt Options) (*Report, error) {
	if opt.Type.Name == "" {
		return nil, errors.New("quantize: no --type given")
	}
	if err := loader.CheckOutput(in, out); err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	src, err := open(in)
	if err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	defer src.close()
	for _, kv := range src.meta {
		if kv.Key == loader.KeyCompressVersion {
			return nil, fmt.Errorf("quantize: %s holds matrices compressed by vireo compress (low-rank or 2:4), which quantize does not rewrite: load it with -weights int8, or quantize before compressing", in)
		}
	}

	infos := make([]tensorInfo, len(src.tensors))
	order := make(map[string]int, len(src.tensors))
	for i, t := range src.tensors {
		infos[i] = t.tensorInfo
		order[t.name] = i
	}
	sortLikeLlamaCpp(infos)
	types, err := chooseTypes(infos, opt.Type, src.hp, opt.Pure, opt.F16Fallback)
	if err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	tensors := make([]*loader.Tensor, len(infos))
	rep := &Report{}
	for k, t := range infos {
		to := types[k]
		if t.typ.Quantized() && to != t.typ && !opt.AllowRequantize {
			return nil, fmt.Errorf("quantize: tensor %q is already %s: requantizing to %s rounds twice (use an F32, F16 or BF16 source, or allow requantizing)", t.name, t.typ, to)
		}
		dt, ok := loader.DTypeOf(to)
		if !ok {
			return nil, fmt.Errorf("quantize: tensor %q: type %s cannot be written", t.name, to)
		}
		tensors[k] = &loader.Tensor{Name: t.name, Type: dt, Shape: t.shape}
		rep.Tensors = append(rep.Tensors, TensorReport{Name: t.name, Shape: t.shape, From: t.typ, To: to})
	}
	meta := append(append([]loader.KV(nil), src.meta...),
		loader.KV{Key: "general.quantization_version", Value: uint32(ggmlQuantVersion)},
		loader.KV{Key: "general.file_type", Value: opt.Type.FileType})

	threads := opt.Threads
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	data := func(k int) ([]byte, error) {
		st := src.tensors[order[infos[k].name]]
		b, err := convert(st, types[k], threads)
		if err != nil {
			return nil, err
		}
		rep.Tensors[k].Bytes = len(b)
		if opt.Progress != nil {
			opt.Progress(k, len(infos), rep.Tensors[k])
		}
		return b, nil
	}
	n, err := loader.WriteFile(out, func(w io.Writer) error { return loader.WriteGGUFStream(w, meta, tensors, data) })
	if err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	rep.Bytes = n
	return rep, nil
}

// convert returns tensor t's bytes as type to: its stored bytes when the type stays,
// else its values encoded row by row on threads goroutines.
func convert(t srcTensor, to ggml.Type, threads int) ([]byte, error) {
	if to == t.typ && t.raw != nil {
		return t.raw, nil
	}
	f, err := t.f32()
	if err != nil {
		return nil, err
	}
	cols := t.shape[len(t.shape)-1]
	rows := len(f) / cols
	rowBytes, err := to.RowBytes(cols)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", t.name, err)
	}
	out := make([]byte, rows*rowBytes)
	per := max(1, (rows+threads-1)/threads)
	errs := make([]error, (rows+per-1)/per)
	var wg sync.WaitGroup
	for w, r0 := 0, 0; r0 < rows; w, r0 = w+1, r0+per {
		r1 := min(rows, r0+per)
		wg.Go(func() {
			for r := r0; r < r1; r++ {
				if err := ggml.Quantize(to, out[r*rowBytes:(r+1)*rowBytes], f[r*cols:(r+1)*cols]); err != nil {
					errs[w] = fmt.Errorf("tensor %q row %d: %w", t.name, r, err)
					return
				}
			}
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}
