package loader

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// maxSafetensorsHeader bounds the JSON header, as the reference implementation does
// (100 MB): a corrupt length must not make the reader walk gigabytes of weights as JSON.
const maxSafetensorsHeader = 100_000_000

// maxSafetensorsElems bounds the elements of one tensor so sizes cannot overflow.
const maxSafetensorsElems = 1 << 50

// SafetensorsFile is a parsed safetensors file: tensors in file order (by offset), with
// Data aliasing the bytes it was parsed from, and the free-form __metadata__ strings.
type SafetensorsFile struct {
	Metadata map[string]string
	Tensors  []*Tensor
	byName   map[string]*Tensor
	close    func() error
}

// Tensor returns the named tensor, or nil.
func (f *SafetensorsFile) Tensor(name string) *Tensor { return f.byName[name] }

// OpenSafetensors maps a safetensors file and parses its header: nothing but the
// header is read until a tensor's Data is used. Close unmaps it.
func OpenSafetensors(path string) (*SafetensorsFile, error) {
	data, release, err := mapFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, withoutPath(err, path))
	}
	f, err := ParseSafetensors(data)
	if err != nil {
		release()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f.close = release
	return f, nil
}

// OpenSafetensorsFile is OpenSafetensors on an open file (closing f afterwards is the
// caller's business; the mapping stays until Close).
func OpenSafetensorsFile(f *os.File) (*SafetensorsFile, error) {
	data, release, err := mapOpen(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	sf, err := ParseSafetensors(data)
	if err != nil {
		release()
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	sf.close = release
	return sf, nil
}

// Close releases the file mapping of a SafetensorsFile from OpenSafetensors (a no-op
// otherwise); its tensors' Data are invalid afterwards.
func (f *SafetensorsFile) Close() error {
	if f.close == nil {
		return nil
	}
	c := f.close
	f.close = nil
	return c()
}

// safetensorsDTypes are the element types the loader converts; the others the format
// knows (F64, F8_*, integer and bool types) are refused by name.
var safetensorsDTypes = map[string]DType{"F32": F32, "F16": F16, "BF16": BF16}

type safetensorsEntry struct {
	DType       string   `json:"dtype"`
	Shape       []int64  `json:"shape"`
	DataOffsets []uint64 `json:"data_offsets"`
}

// ParseSafetensors reads a safetensors file held in data: an 8-byte little-endian header
// length, a JSON object mapping each tensor name to {dtype, shape, data_offsets} (plus an
// optional "__metadata__" of strings), then the tensor bytes, offsets relative to the end
// of the header. It checks the header size, duplicate names, dtypes (F32, F16, BF16),
// that every tensor's bytes lie inside the file, match product(shape) times the element
// size, and do not overlap another tensor's. Errors name the tensor.
func ParseSafetensors(data []byte) (*SafetensorsFile, error) {
	if len(data) < 8 {
		return nil, fmt.Errorf("safetensors: truncated: %d bytes, too short for the header length", len(data))
	}
	n := binary.LittleEndian.Uint64(data)
	if n > maxSafetensorsHeader {
		return nil, fmt.Errorf("safetensors: header length %d exceeds the limit of %d bytes", n, maxSafetensorsHeader)
	}
	if n > uint64(len(data)-8) {
		return nil, fmt.Errorf("safetensors: truncated: header length %d but only %d bytes follow", n, len(data)-8)
	}
	header := data[8 : 8+n]
	body := data[8+n:]
	if len(bytes.TrimSpace(header)) == 0 || bytes.TrimSpace(header)[0] != '{' {
		return nil, fmt.Errorf("safetensors: header is not a JSON object")
	}
	f := &SafetensorsFile{Metadata: map[string]string{}, byName: map[string]*Tensor{}}
	dec := json.NewDecoder(bytes.NewReader(header))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil { // '{'
		return nil, fmt.Errorf("safetensors: header: %w", err)
	}
	type span struct {
		name       string
		begin, end uint64
	}
	var spans []span
	seenMeta := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("safetensors: header: %w", err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("safetensors: header: unexpected %v", tok)
		}
		if name == "__metadata__" {
			if seenMeta {
				return nil, fmt.Errorf("safetensors: header: duplicate __metadata__")
			}
			seenMeta = true
			var m map[string]string
			if err := dec.Decode(&m); err != nil {
				return nil, fmt.Errorf("safetensors: __metadata__ must map strings to strings: %w", err)
			}
			for k, v := range m {
				f.Metadata[k] = v
			}
			continue
		}
		if _, dup := f.byName[name]; dup {
			return nil, fmt.Errorf("safetensors: tensor %q appears twice in the header", name)
		}
		var e safetensorsEntry
		if err := dec.Decode(&e); err != nil {
			return nil, fmt.Errorf("safetensors: tensor %q: %w", name, err)
		}
		dt, ok := safetensorsDTypes[e.DType]
		if !ok {
			if e.DType == "" {
				return nil, fmt.Errorf("safetensors: tensor %q has no dtype", name)
			}
			return nil, fmt.Errorf("safetensors: tensor %q has dtype %s, not supported (only F32, F16, BF16)", name, e.DType)
		}
		if e.Shape == nil {
			return nil, fmt.Errorf("safetensors: tensor %q has no shape", name)
		}
		if len(e.DataOffsets) != 2 {
			return nil, fmt.Errorf("safetensors: tensor %q: data_offsets must be [begin, end], got %d numbers", name, len(e.DataOffsets))
		}
		shape := make([]int, len(e.Shape))
		elems := uint64(1)
		for i, d := range e.Shape {
			if d < 0 || d >= maxConfigValue {
				return nil, fmt.Errorf("safetensors: tensor %q has implausible shape %v", name, e.Shape)
			}
			shape[i] = int(d)
			if d != 0 && elems > maxSafetensorsElems/uint64(d) {
				return nil, fmt.Errorf("safetensors: tensor %q: shape %v is too large", name, e.Shape)
			}
			elems *= uint64(d)
		}
		begin, end := e.DataOffsets[0], e.DataOffsets[1]
		if begin > end || end > uint64(len(body)) {
			return nil, fmt.Errorf("safetensors: tensor %q: data_offsets [%d, %d] outside the %d data bytes (truncated file?)", name, begin, end, len(body))
		}
		size := elems * uint64(dt.elemSize())
		if end-begin != size {
			return nil, fmt.Errorf("safetensors: tensor %q: %s %v needs %d bytes, data_offsets [%d, %d] hold %d", name, e.DType, e.Shape, size, begin, end, end-begin)
		}
		t := &Tensor{Name: name, Type: dt, Shape: shape, Data: body[begin:end:end]}
		f.byName[name] = t
		f.Tensors = append(f.Tensors, t)
		spans = append(spans, span{name, begin, end})
	}
	if _, err := dec.Token(); err != nil { // '}'
		return nil, fmt.Errorf("safetensors: header: %w", err)
	}
	if rest := header[dec.InputOffset():]; len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("safetensors: header: trailing data after the JSON object")
	}
	idx := make([]int, len(spans))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return spans[idx[a]].begin < spans[idx[b]].begin })
	ordered := make([]*Tensor, len(idx))
	var last *span // the non-empty tensor reaching furthest so far
	for k, i := range idx {
		ordered[k] = f.Tensors[i]
		cur := &spans[i]
		if cur.end == cur.begin {
			continue // empty tensors occupy no bytes
		}
		if last != nil && cur.begin < last.end {
			return nil, fmt.Errorf("safetensors: tensors %q [%d, %d] and %q [%d, %d] overlap", last.name, last.begin, last.end, cur.name, cur.begin, cur.end)
		}
		last = cur
	}
	f.Tensors = ordered
	return f, nil
}

func (d DType) elemSize() int {
	if d == F32 {
		return 4
	}
	return 2
}

// safetensorsName is the format's spelling of a dtype the writer accepts.
func safetensorsName(d DType) (string, bool) {
	for k, v := range safetensorsDTypes {
		if v == d {
			return k, true
		}
	}
	return "", false
}

// WriteSafetensors writes tensors (F32, F16 or BF16, in the given order) as a
// safetensors file with __metadata__ {"format": "pt"}, the header padded with spaces to a
// multiple of 8 bytes as the reference writer does. Names must be unique.
func WriteSafetensors(w io.Writer, tensors []*Tensor) error {
	var hdr strings.Builder
	hdr.WriteString(`{"__metadata__":{"format":"pt"}`)
	var off uint64
	seen := map[string]bool{}
	for _, t := range tensors {
		name, ok := safetensorsName(t.Type)
		if !ok {
			return fmt.Errorf("safetensors: tensor %q: dtype %s cannot be written", t.Name, t.Type)
		}
		if seen[t.Name] || t.Name == "__metadata__" {
			return fmt.Errorf("safetensors: tensor name %q used twice", t.Name)
		}
		seen[t.Name] = true
		if err := t.checkSize(); err != nil {
			return fmt.Errorf("safetensors: %w", err)
		}
		key, _ := json.Marshal(t.Name)
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		sh, _ := json.Marshal(shape)
		fmt.Fprintf(&hdr, `,%s:{"dtype":%q,"shape":%s,"data_offsets":[%d,%d]}`, key, name, sh, off, off+uint64(len(t.Data)))
		off += uint64(len(t.Data))
	}
	hdr.WriteString("}")
	for hdr.Len()%8 != 0 {
		hdr.WriteByte(' ')
	}
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(hdr.Len()))
	if _, err := w.Write(n[:]); err != nil {
		return err
	}
	if _, err := io.WriteString(w, hdr.String()); err != nil {
		return err
	}
	for _, t := range tensors {
		if _, err := w.Write(t.Data); err != nil {
			return err
		}
	}
	return nil
}
