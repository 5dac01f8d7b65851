package loader

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"os"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/vireo-ai/vireo/runtime/quant/ggml"
)

// ggufMagic is "GGUF" read as a little-endian uint32.
const ggufMagic = 0x46554747

// GGUF metadata value types.
const (
	ggufUint8   = 0
	ggufInt8    = 1
	ggufUint16  = 2
	ggufInt16   = 3
	ggufUint32  = 4
	ggufInt32   = 5
	ggufFloat32 = 6
	ggufBool    = 7
	ggufString  = 8
	ggufArray   = 9
	ggufUint64  = 10
	ggufInt64   = 11
	ggufFloat64 = 12
)

const (
	ggufDefaultAlignment = 32
	ggufMaxDims          = 4  // GGML_MAX_DIMS
	ggufMaxArrayDepth    = 16 // arrays of arrays nested deeper than this are refused
)

// supportedTypes lists the GGML types the loader reads, for error messages.
func supportedTypes() string {
	var s []string
	for d := range DType(len(dtypeGGML)) {
		s = append(s, d.String())
	}
	return strings.Join(s, ", ")
}

// ggmlID returns the GGML type id of a DType.
func ggmlID(d DType) (uint32, error) {
	if g, ok := d.GGML(); ok {
		return uint32(g), nil
	}
	return 0, fmt.Errorf("unknown dtype %d", int(d))
}

// GGUFFile is a parsed GGUF file: header metadata and the tensor list, with tensor
// Data aliasing the bytes it was parsed from.
//
// Metadata values are uint8, int8, uint16, int16, uint32, int32, uint64, int64,
// float32, float64, bool or string; arrays of those are typed slices ([]uint32,
// []string, ...) and arrays of arrays are []any.
type GGUFFile struct {
	Version    uint32
	Alignment  int      // general.alignment, default 32
	DataOffset int      // start of the tensor data section
	Keys       []string // metadata keys in file order
	Metadata   map[string]any
	Tensors    []*Tensor // file order
	byName     map[string]*Tensor
	close      func() error
}

// Tensor returns the tensor with the given name, or nil.
func (g *GGUFFile) Tensor(name string) *Tensor { return g.byName[name] }

// String returns a string metadata value.
func (g *GGUFFile) String(key string) (string, bool) {
	s, ok := g.Metadata[key].(string)
	return s, ok
}

// Int returns an integer metadata value of any integer type (false when absent, not an
// integer, or a uint64 past the int64 range).
func (g *GGUFFile) Int(key string) (int64, bool) {
	return asInt(g.Metadata[key])
}

// Float returns a float32 or float64 metadata value as float64.
func (g *GGUFFile) Float(key string) (float64, bool) {
	switch v := g.Metadata[key].(type) {
	case float32:
		return float64(v), true
	case float64:
		return v, true
	}
	return 0, false
}

// Bool returns a bool metadata value.
func (g *GGUFFile) Bool(key string) (bool, bool) {
	b, ok := g.Metadata[key].(bool)
	return b, ok
}

// Close releases the file mapping of a GGUFFile from OpenGGUF (a no-op otherwise).
func (g *GGUFFile) Close() error {
	if g.close == nil {
		return nil
	}
	err := g.close()
	g.close = nil
	return err
}

func asInt(v any) (int64, bool) {
	switch v := v.(type) {
	case uint8:
		return int64(v), true
	case int8:
		return int64(v), true
	case uint16:
		return int64(v), true
	case int16:
		return int64(v), true
	case uint32:
		return int64(v), true
	case int32:
		return int64(v), true
	case int64:
		return v, true
	case uint64:
		if v > math.MaxInt64 {
			return 0, false
		}
		return int64(v), true
	}
	return 0, false
}

// OpenGGUF maps a GGUF file and parses its header; Close unmaps it.
func OpenGGUF(path string) (*GGUFFile, error) {
	data, release, err := mapFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, withoutPath(err, path))
	}
	g, err := ParseGGUF(data)
	if err != nil {
		release()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	g.close = release
	return g, nil
}

// OpenGGUFFile is OpenGGUF on an open file (closing f afterwards is the caller's
// business; the mapping stays until Close).
func OpenGGUFFile(f *os.File) (*GGUFFile, error) {
	data, release, err := mapOpen(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	g, err := ParseGGUF(data)
	if err != nil {
		release()
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	g.close = release
	return g, nil
}

// ggufReader reads little-endian values, recording the first error.
type ggufReader struct {
	b   []byte
	off int
}

func (r *ggufReader) remaining() int { return len(r.b) - r.off }

func (r *ggufReader) need(n int, what string) error {
	if n < 0 || r.remaining() < n {
		return fmt.Errorf("gguf: truncated at byte %d of %d reading %s", r.off, len(r.b), what)
	}
	return nil
}

func (r *ggufReader) u8(what string) (uint8, error) {
	if err := r.need(1, what); err != nil {
		return 0, err
	}
	v := r.b[r.off]
	r.off++
	return v, nil
}

func (r *ggufReader) u16(what string) (uint16, error) {
	if err := r.need(2, what); err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint16(r.b[r.off:])
	r.off += 2
	return v, nil
}

func (r *ggufReader) u32(what string) (uint32, error) {
	if err := r.need(4, what); err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint32(r.b[r.off:])
	r.off += 4
	return v, nil
}

func (r *ggufReader) u64(what string) (uint64, error) {
	if err := r.need(8, what); err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint64(r.b[r.off:])
	r.off += 8
	return v, nil
}

// count reads a uint64 count of items of at least minSize bytes each and checks that
// they can fit in what remains, so nothing is allocated for absurd counts.
func (r *ggufReader) count(minSize int, what string) (int, error) {
	n, err := r.u64(what)
	if err != nil {
		return 0, err
	}
	if n > uint64(r.remaining()/minSize) {
		return 0, fmt.Errorf("gguf: %s %d is absurd or the file is truncated: only %d bytes remain at byte %d", what, n, r.remaining(), r.off)
	}
	return int(n), nil
}

func (r *ggufReader) str(what string) (string, error) {
	n, err := r.count(1, what+" length")
	if err != nil {
		return "", err
	}
	s := string(r.b[r.off : r.off+n])
	r.off += n
	return s, nil
}

// value reads one metadata value of type typ.
func (r *ggufReader) value(typ uint32, key string, depth int) (any, error) {
	what := fmt.Sprintf("value of %q", key)
	switch typ {
	case ggufUint8:
		return r.u8(what)
	case ggufInt8:
		v, err := r.u8(what)
		return int8(v), err
	case ggufUint16:
		return r.u16(what)
	case ggufInt16:
		v, err := r.u16(what)
		return int16(v), err
	case ggufUint32:
		return r.u32(what)
	case ggufInt32:
		v, err := r.u32(what)
		return int32(v), err
	case ggufFloat32:
		v, err := r.u32(what)
		return math.Float32frombits(v), err
	case ggufUint64:
		return r.u64(what)
	case ggufInt64:
		v, err := r.u64(what)
		return int64(v), err
	case ggufFloat64:
		v, err := r.u64(what)
		return math.Float64frombits(v), err
	case ggufBool:
		v, err := r.u8(what)
		if err != nil {
			return nil, err
		}
		if v > 1 {
			return nil, fmt.Errorf("gguf: metadata %q: bool byte %d is neither 0 nor 1", key, v)
		}
		return v == 1, nil
	case ggufString:
		return r.str(what)
	case ggufArray:
		if depth >= ggufMaxArrayDepth {
			return nil, fmt.Errorf("gguf: metadata %q: arrays nested deeper than %d", key, ggufMaxArrayDepth)
		}
		et, err := r.u32(fmt.Sprintf("array type of %q", key))
		if err != nil {
			return nil, err
		}
		size, ok := ggufElemSize(et)
		if !ok {
			return nil, fmt.Errorf("gguf: metadata %q: unknown array element type %d", key, et)
		}
		n, err := r.count(size, fmt.Sprintf("array length of %q", key))
		if err != nil {
			return nil, err
		}
		return r.array(et, n, key, depth)
	}
	return nil, fmt.Errorf("gguf: metadata %q: unknown value type %d", key, typ)
}

// ggufElemSize is the smallest encoding of a value of type t.
func ggufElemSize(t uint32) (int, bool) {
	switch t {
	case ggufUint8, ggufInt8, ggufBool:
		return 1, true
	case ggufUint16, ggufInt16:
		return 2, true
	case ggufUint32, ggufInt32, ggufFloat32:
		return 4, true
	case ggufUint64, ggufInt64, ggufFloat64, ggufString:
		return 8, true
	case ggufArray:
		return 12, true
	}
	return 0, false
}

func readArray[T any](r *ggufReader, n int, et uint32, key string, depth int) (any, error) {
	out := make([]T, n)
	for i := range out {
		v, err := r.value(et, key, depth)
		if err != nil {
			return nil, err
		}
		out[i] = v.(T)
	}
	return out, nil
}

func (r *ggufReader) array(et uint32, n int, key string, depth int) (any, error) {
	switch et {
	case ggufUint8:
		return readArray[uint8](r, n, et, key, depth)
	case ggufInt8:
		return readArray[int8](r, n, et, key, depth)
	case ggufUint16:
		return readArray[uint16](r, n, et, key, depth)
	case ggufInt16:
		return readArray[int16](r, n, et, key, depth)
	case ggufUint32:
		return readArray[uint32](r, n, et, key, depth)
	case ggufInt32:
		return readArray[int32](r, n, et, key, depth)
	case ggufFloat32:
		return readArray[float32](r, n, et, key, depth)
	case ggufUint64:
		return readArray[uint64](r, n, et, key, depth)
	case ggufInt64:
		return readArray[int64](r, n, et, key, depth)
	case ggufFloat64:
		return readArray[float64](r, n, et, key, depth)
	case ggufBool:
		return readArray[bool](r, n, et, key, depth)
	case ggufString:
		return readArray[string](r, n, et, key, depth)
	}
	return readArray[any](r, n, et, key, depth+1)
}

// ParseGGUF parses a GGUF v2 or v3 file held in data. Tensor Data slices alias data.
// Tensor types other than F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 and Q2_K … Q6_K
// are refused, naming the tensor and the type.
func ParseGGUF(data []byte) (*GGUFFile, error) {
	r := &ggufReader{b: data}
	magic, err := r.u32("magic")
	if err != nil {
		return nil, err
	}
	if magic != ggufMagic {
		return nil, fmt.Errorf("gguf: wrong magic %q (want \"GGUF\")", data[:4])
	}
	version, err := r.u32("version")
	if err != nil {
		return nil, err
	}
	switch {
	case version == 2 || version == 3:
	case version == 1:
		return nil, fmt.Errorf("gguf: version 1 is not supported (only 2 and 3)")
	case version != 0 && version&0xffff == 0 && bits.ReverseBytes32(version) <= 3:
		return nil, fmt.Errorf("gguf: big-endian GGUF (version %d) is not supported", bits.ReverseBytes32(version))
	default:
		return nil, fmt.Errorf("gguf: unsupported version %d (only 2 and 3)", version)
	}
	g := &GGUFFile{Version: version, Metadata: map[string]any{}, byName: map[string]*Tensor{}}

	// Smallest tensor info: empty name (8), n_dims (4), one dim (8), type (4), offset (8).
	nTensors, err := r.count(32, "tensor count")
	if err != nil {
		return nil, err
	}
	// Smallest key/value: empty key (8), type (4), one byte (1).
	nKV, err := r.count(13, "metadata count")
	if err != nil {
		return nil, err
	}
	for i := 0; i < nKV; i++ {
		key, err := r.str(fmt.Sprintf("metadata key %d", i))
		if err != nil {
			return nil, err
		}
		if !utf8.ValidString(key) {
			return nil, fmt.Errorf("gguf: metadata key %d is not valid UTF-8: %q", i, key)
		}
		if _, dup := g.Metadata[key]; dup {
			return nil, fmt.Errorf("gguf: duplicate metadata key %q", key)
		}
		typ, err := r.u32(fmt.Sprintf("type of %q", key))
		if err != nil {
			return nil, err
		}
		v, err := r.value(typ, key, 0)
		if err != nil {
			return nil, err
		}
		g.Keys = append(g.Keys, key)
		g.Metadata[key] = v
	}

	g.Alignment = ggufDefaultAlignment
	if v, ok := g.Metadata["general.alignment"]; ok {
		a, ok := asInt(v)
		if !ok || a <= 0 || a > 1<<30 || a&(a-1) != 0 {
			return nil, fmt.Errorf("gguf: general.alignment %v is not a positive power of two", v)
		}
		g.Alignment = int(a)
	}

	type info struct {
		offset uint64
		size   int
	}
	infos := make([]info, nTensors)
	g.Tensors = make([]*Tensor, nTensors)
	for i := 0; i < nTensors; i++ {
		name, err := r.str(fmt.Sprintf("name of tensor %d", i))
		if err != nil {
			return nil, err
		}
		if _, dup := g.byName[name]; dup {
			return nil, fmt.Errorf("gguf: duplicate tensor name %q", name)
		}
		nd, err := r.u32(fmt.Sprintf("dimension count of tensor %q", name))
		if err != nil {
			return nil, err
		}
		if nd == 0 || nd > ggufMaxDims {
			return nil, fmt.Errorf("gguf: tensor %q has %d dimensions (want 1 to %d)", name, nd, ggufMaxDims)
		}
		shape := make([]int, nd)
		n := uint64(1)
		for j := int(nd) - 1; j >= 0; j-- { // GGUF lists the innermost dimension first
			d, err := r.u64(fmt.Sprintf("dimensions of tensor %q", name))
			if err != nil {
				return nil, err
			}
			if d == 0 || d > math.MaxInt32 {
				return nil, fmt.Errorf("gguf: tensor %q has dimension %d", name, d)
			}
			hi, lo := bits.Mul64(n, d)
			if hi != 0 || lo > uint64(math.MaxInt)/64 {
				return nil, fmt.Errorf("gguf: tensor %q: element count overflows", name)
			}
			n = lo
			shape[j] = int(d)
		}
		typ, err := r.u32(fmt.Sprintf("type of tensor %q", name))
		if err != nil {
			return nil, err
		}
		dt, ok := DTypeOf(ggml.Type(typ))
		if !ok {
			return nil, fmt.Errorf("tensor %q: type %s (%d) not supported (supported: %s)", name, ggml.Type(typ), typ, supportedTypes())
		}
		off, err := r.u64(fmt.Sprintf("offset of tensor %q", name))
		if err != nil {
			return nil, err
		}
		if off%uint64(g.Alignment) != 0 {
			return nil, fmt.Errorf("gguf: tensor %q: offset %d is not a multiple of the alignment %d", name, off, g.Alignment)
		}
		size, err := dataSize(dt, int(n), shape[nd-1])
		if err != nil {
			return nil, fmt.Errorf("gguf: tensor %q: %w", name, err)
		}
		t := &Tensor{Name: name, Type: dt, Shape: shape, GGMLType: typ}
		g.Tensors[i] = t
		g.byName[name] = t
		infos[i] = info{off, size}
	}

	start := uint64(r.off+g.Alignment-1) / uint64(g.Alignment) * uint64(g.Alignment)
	g.DataOffset = int(start)
	fileLen := uint64(len(data))
	for i, t := range g.Tensors {
		in := infos[i]
		end := start + in.offset + uint64(in.size) // each term < 2^63: no overflow
		if in.offset > fileLen || end > fileLen {
			return nil, fmt.Errorf("gguf: tensor %q: data [%d, %d) runs past the end of the file (%d bytes): truncated?",
				t.Name, start+in.offset, end, fileLen)
		}
		t.Data = data[start+in.offset : end : end]
	}
	// Tensors must not overlap.
	order := make([]int, nTensors)
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return infos[order[a]].offset < infos[order[b]].offset })
	for k := 1; k < len(order); k++ {
		p, c := order[k-1], order[k]
		if infos[p].offset+uint64(infos[p].size) > infos[c].offset {
			return nil, fmt.Errorf("gguf: tensors %q and %q overlap", g.Tensors[p].Name, g.Tensors[c].Name)
		}
	}
	return g, nil
}
