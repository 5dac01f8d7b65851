package loader

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
)

// KV is one GGUF metadata entry for WriteGGUF. Value is uint8, int8, uint16, int16,
// uint32, int32, uint64, int64, float32, float64, bool or string, a slice of one of
// those (a GGUF array), or []any whose elements are all such slices (an array of
// arrays). Go int is refused: pick the width.
type KV struct {
	Key   string
	Value any
}

// WriteGGUF writes a GGUF v3 file: meta in order, then the tensors, each at an offset
// aligned to general.alignment (from meta, default 32) and padded to it. A tensor's GGML
// type id is GGMLType when non-zero, else Type's; its Data is written as given (Data of
// a known type must have the size its shape implies).
func WriteGGUF(w io.Writer, meta []KV, tensors []*Tensor) error {
	for _, t := range tensors {
		if t.GGMLType == 0 {
			if err := t.checkSize(); err != nil {
				return fmt.Errorf("gguf write: %w", err)
			}
		}
	}
	return WriteGGUFStream(w, meta, tensors, func(i int) ([]byte, error) { return tensors[i].Data, nil })
}

// WriteFile writes a file with write beside path and renames it into place once
// written and synced, so path never holds a partial file; it returns the size written.
func WriteFile(path string, write func(w io.Writer) error) (int64, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".part-*")
	if err != nil {
		return 0, err
	}
	tmp := f.Name()
	err = write(f)
	if err == nil {
		err = f.Sync()
	}
	var size int64
	if err == nil {
		var fi os.FileInfo
		if fi, err = f.Stat(); err == nil {
			size = fi.Size()
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return 0, err
	}
	return size, nil
}

// CheckOutput refuses an output path that is the input file or a directory.
func CheckOutput(in, out string) error {
	a, err1 := os.Stat(in)
	b, err2 := os.Stat(out)
	if err1 == nil && err2 == nil && os.SameFile(a, b) {
		return fmt.Errorf("OUT %s is IN", out)
	}
	if err2 == nil && b.IsDir() {
		return fmt.Errorf("OUT %s is a directory", out)
	}
	return nil
}

// WriteGGUFStream is WriteGGUF with the tensor data produced one tensor at a time, in
// order, by data(i), so that a file larger than memory can be written: tensors give
// names, shapes and types, and their Data may be nil unless GGMLType overrides the type
// (then Data's length is the size). The bytes data returns must have the size the
// tensor's type and shape imply.
func WriteGGUFStream(w io.Writer, meta []KV, tensors []*Tensor, data func(i int) ([]byte, error)) error {
	align := uint64(ggufDefaultAlignment)
	for _, kv := range meta {
		if kv.Key == "general.alignment" {
			a, ok := asInt(kv.Value)
			if !ok || a <= 0 || a&(a-1) != 0 {
				return fmt.Errorf("gguf write: general.alignment %v is not a positive power of two", kv.Value)
			}
			align = uint64(a)
		}
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	ww := &ggufWriter{w: bw}
	ww.u32(ggufMagic)
	ww.u32(3)
	ww.u64(uint64(len(tensors)))
	ww.u64(uint64(len(meta)))
	for _, kv := range meta {
		ww.str(kv.Key)
		typ, err := ggufValueType(kv.Value)
		if err != nil {
			return fmt.Errorf("gguf write: metadata %q: %w", kv.Key, err)
		}
		ww.u32(typ)
		ww.value(kv.Value)
	}
	offsets := make([]uint64, len(tensors))
	sizes := make([]int, len(tensors))
	var off uint64
	for i, t := range tensors {
		typ := t.GGMLType
		if typ == 0 {
			id, err := ggmlID(t.Type)
			if err != nil {
				return fmt.Errorf("gguf write: tensor %q: %w", t.Name, err)
			}
			typ = id
			if sizes[i], err = dataSize(t.Type, t.NumElements(), t.Cols()); err != nil {
				return fmt.Errorf("gguf write: tensor %q: %w", t.Name, err)
			}
		} else {
			sizes[i] = len(t.Data)
		}
		ww.str(t.Name)
		ww.u32(uint32(len(t.Shape)))
		for j := len(t.Shape) - 1; j >= 0; j-- {
			ww.u64(uint64(t.Shape[j]))
		}
		ww.u32(typ)
		offsets[i] = off
		ww.u64(off)
		off = (off + uint64(sizes[i]) + align - 1) / align * align
	}
	ww.pad(align)
	for i, t := range tensors {
		if ww.err != nil {
			return ww.err
		}
		b, err := data(i)
		if err != nil {
			return fmt.Errorf("gguf write: tensor %q: %w", t.Name, err)
		}
		if len(b) != sizes[i] {
			return fmt.Errorf("gguf write: tensor %q: %s %v needs %d bytes, has %d", t.Name, t.Type, t.Shape, sizes[i], len(b))
		}
		ww.bytes(b)
		ww.pad(align)
	}
	if ww.err != nil {
		return ww.err
	}
	return bw.Flush()
}

type ggufWriter struct {
	w   *bufio.Writer
	n   uint64
	err error
	buf [8]byte
}

func (w *ggufWriter) bytes(b []byte) {
	if w.err != nil {
		return
	}
	_, w.err = w.w.Write(b)
	w.n += uint64(len(b))
}
func (w *ggufWriter) u8(v uint8)   { w.bytes([]byte{v}) }
func (w *ggufWriter) u16(v uint16) { binary.LittleEndian.PutUint16(w.buf[:], v); w.bytes(w.buf[:2]) }
func (w *ggufWriter) u32(v uint32) { binary.LittleEndian.PutUint32(w.buf[:], v); w.bytes(w.buf[:4]) }
func (w *ggufWriter) u64(v uint64) { binary.LittleEndian.PutUint64(w.buf[:], v); w.bytes(w.buf[:8]) }
func (w *ggufWriter) str(s string) { w.u64(uint64(len(s))); w.bytes([]byte(s)) }
func (w *ggufWriter) zeros(n uint64) {
	for ; n > 0; n-- {
		w.u8(0)
	}
}
func (w *ggufWriter) pad(align uint64) { w.zeros((align - w.n%align) % align) }

func ggufValueType(v any) (uint32, error) {
	switch v := v.(type) {
	case uint8:
		return ggufUint8, nil
	case int8:
		return ggufInt8, nil
	case uint16:
		return ggufUint16, nil
	case int16:
		return ggufInt16, nil
	case uint32:
		return ggufUint32, nil
	case int32:
		return ggufInt32, nil
	case uint64:
		return ggufUint64, nil
	case int64:
		return ggufInt64, nil
	case float32:
		return ggufFloat32, nil
	case float64:
		return ggufFloat64, nil
	case bool:
		return ggufBool, nil
	case string:
		return ggufString, nil
	case []uint8, []int8, []uint16, []int16, []uint32, []int32, []uint64, []int64,
		[]float32, []float64, []bool, []string:
		return ggufArray, nil
	case []any:
		for _, e := range v {
			if t, err := ggufValueType(e); err != nil || t != ggufArray {
				return 0, fmt.Errorf("array of arrays holds a %T", e)
			}
		}
		return ggufArray, nil
	}
	return 0, fmt.Errorf("cannot write a %T", v)
}

func writeArray[T any](w *ggufWriter, et uint32, xs []T) {
	w.u32(et)
	w.u64(uint64(len(xs)))
	for _, x := range xs {
		w.value(x)
	}
}

// value writes v, whose type ggufValueType accepted.
func (w *ggufWriter) value(v any) {
	switch v := v.(type) {
	case uint8:
		w.u8(v)
	case int8:
		w.u8(uint8(v))
	case uint16:
		w.u16(v)
	case int16:
		w.u16(uint16(v))
	case uint32:
		w.u32(v)
	case int32:
		w.u32(uint32(v))
	case uint64:
		w.u64(v)
	case int64:
		w.u64(uint64(v))
	case float32:
		w.u32(math.Float32bits(v))
	case float64:
		w.u64(math.Float64bits(v))
	case bool:
		if v {
			w.u8(1)
		} else {
			w.u8(0)
		}
	case string:
		w.str(v)
	case []uint8:
		writeArray(w, ggufUint8, v)
	case []int8:
		writeArray(w, ggufInt8, v)
	case []uint16:
		writeArray(w, ggufUint16, v)
	case []int16:
		writeArray(w, ggufInt16, v)
	case []uint32:
		writeArray(w, ggufUint32, v)
	case []int32:
		writeArray(w, ggufInt32, v)
	case []uint64:
		writeArray(w, ggufUint64, v)
	case []int64:
		writeArray(w, ggufInt64, v)
	case []float32:
		writeArray(w, ggufFloat32, v)
	case []float64:
		writeArray(w, ggufFloat64, v)
	case []bool:
		writeArray(w, ggufBool, v)
	case []string:
		writeArray(w, ggufString, v)
	case []any:
		writeArray(w, ggufArray, v)
	}
}
