package tokenizer

import (
	"encoding/binary"
	"fmt"
	"math"
)

// FromSentencePieceModel reads a SentencePiece tokenizer.model (a serialized
// sentencepiece.ModelProto) into a Model "llama" Vocab: pieces with their scores and
// types, unk/bos/eos ids from trainer_spec, AddSpacePrefix from normalizer_spec's
// add_dummy_prefix. Only BPE models (trainer_spec.model_type 2) with the identity
// normalizer are accepted: the encoder does not run SentencePiece's Unigram search or its
// NFKC character maps. A minimal protobuf wire-format reader keeps the package free of
// dependencies; unknown fields are skipped as protobuf requires.
func FromSentencePieceModel(data []byte) (*Vocab, error) {
	v := &Vocab{Model: "llama", AddBOS: true, AddSpacePrefix: true}
	// Proto2 defaults, for fields the file leaves out.
	modelType, byteFallback := int64(1), false
	unk, bos, eos := int64(0), int64(1), int64(2)
	normName, charsmap, removeExtra, escape := "", 0, true, true
	err := walkProto(data, func(field int, wire int, val uint64, b []byte) error {
		switch field {
		case 1: // repeated SentencePiece pieces
			if wire != wireBytes {
				return fmt.Errorf("pieces: wire type %d", wire)
			}
			if len(v.Tokens) >= maxVocabSize {
				return fmt.Errorf("more than %d pieces", maxVocabSize)
			}
			piece, score, typ := "", float32(0), TypeNormal
			err := walkProto(b, func(f, w int, val uint64, b []byte) error {
				switch {
				case f == 1 && w == wireBytes:
					piece = string(b)
				case f == 2 && w == wireFixed32:
					score = math.Float32frombits(uint32(val))
				case f == 3 && w == wireVarint:
					if val < 1 || val > 6 {
						return fmt.Errorf("piece type %d", val)
					}
					typ = TokenType(val)
				case f <= 3:
					return fmt.Errorf("piece field %d: wire type %d", f, w)
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("piece %d: %w", len(v.Tokens), err)
			}
			v.Tokens = append(v.Tokens, piece)
			v.Scores = append(v.Scores, score)
			v.Types = append(v.Types, typ)
		case 2: // TrainerSpec trainer_spec
			if wire != wireBytes {
				return fmt.Errorf("trainer_spec: wire type %d", wire)
			}
			return walkProto(b, func(f, w int, val uint64, _ []byte) error {
				if w != wireVarint {
					return nil // strings and floats we do not need
				}
				switch f {
				case 3:
					modelType = int64(val)
				case 35:
					byteFallback = val != 0
				case 40:
					unk = int64(int32(val))
				case 41:
					bos = int64(int32(val))
				case 42:
					eos = int64(int32(val))
				}
				return nil
			})
		case 3: // NormalizerSpec normalizer_spec
			if wire != wireBytes {
				return fmt.Errorf("normalizer_spec: wire type %d", wire)
			}
			return walkProto(b, func(f, w int, val uint64, b []byte) error {
				switch {
				case f == 1 && w == wireBytes:
					normName = string(b)
				case f == 2 && w == wireBytes:
					charsmap = len(b)
				case f == 3 && w == wireVarint:
					v.AddSpacePrefix = val != 0
				case f == 4 && w == wireVarint:
					removeExtra = val != 0
				case f == 5 && w == wireVarint:
					escape = val != 0
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sentencepiece model: %w", err)
	}
	switch {
	case len(v.Tokens) == 0:
		return nil, fmt.Errorf("sentencepiece model: no pieces")
	case modelType != 2:
		name := map[int64]string{1: "UNIGRAM", 3: "WORD", 4: "CHAR"}[modelType]
		return nil, fmt.Errorf("sentencepiece model: model_type %d %s not supported (only BPE = 2)", modelType, name)
	case charsmap > 0 || (normName != "" && normName != "identity"):
		return nil, fmt.Errorf("sentencepiece model: normalizer %q with a %d-byte character map not supported (only identity)", normName, charsmap)
	case removeExtra:
		return nil, fmt.Errorf("sentencepiece model: normalizer remove_extra_whitespaces not supported")
	case !escape:
		return nil, fmt.Errorf("sentencepiece model: normalizer without escape_whitespaces not supported")
	}
	for _, f := range []struct {
		name string
		id   int64
		dst  *int32
	}{{"unk_id", unk, &v.UNK}, {"bos_id", bos, &v.BOS}, {"eos_id", eos, &v.EOS}} {
		if f.id < -1 || f.id >= int64(len(v.Tokens)) {
			return nil, fmt.Errorf("sentencepiece model: %s %d outside the %d pieces", f.name, f.id, len(v.Tokens))
		}
		*f.dst = int32(f.id)
	}
	if !byteFallback {
		// Without byte_fallback SentencePiece never emits <0xXX> pieces; make them
		// unreachable so unknown characters become <unk> as there.
		for i, t := range v.Types {
			if t == TypeByte {
				v.Types[i] = TypeUnused
			}
		}
	}
	return v, nil
}

// Protobuf wire types.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

// walkProto calls fn for each field of a serialized message: the varint or fixed value
// in val, length-delimited contents in b. Groups (deprecated) are rejected.
func walkProto(data []byte, fn func(field, wire int, val uint64, b []byte) error) error {
	for off := 0; off < len(data); {
		key, n := binary.Uvarint(data[off:])
		if n <= 0 {
			return fmt.Errorf("bad field key at offset %d", off)
		}
		off += n
		field, wire := key>>3, int(key&7)
		if field == 0 || field > math.MaxInt32 {
			return fmt.Errorf("bad field number %d at offset %d", field, off)
		}
		var val uint64
		var b []byte
		switch wire {
		case wireVarint:
			val, n = binary.Uvarint(data[off:])
			if n <= 0 {
				return fmt.Errorf("field %d: bad varint at offset %d", field, off)
			}
			off += n
		case wireFixed64:
			if len(data)-off < 8 {
				return fmt.Errorf("field %d: truncated fixed64 at offset %d", field, off)
			}
			val = binary.LittleEndian.Uint64(data[off:])
			off += 8
		case wireFixed32:
			if len(data)-off < 4 {
				return fmt.Errorf("field %d: truncated fixed32 at offset %d", field, off)
			}
			val = uint64(binary.LittleEndian.Uint32(data[off:]))
			off += 4
		case wireBytes:
			l, n := binary.Uvarint(data[off:])
			if n <= 0 {
				return fmt.Errorf("field %d: bad length at offset %d", field, off)
			}
			off += n
			if l > uint64(len(data)-off) {
				return fmt.Errorf("field %d: length %d runs past the end (%d bytes left)", field, l, len(data)-off)
			}
			b = data[off : off+int(l)]
			off += int(l)
		default:
			return fmt.Errorf("field %d: unsupported wire type %d at offset %d", field, wire, off)
		}
		if err := fn(int(field), wire, val, b); err != nil {
			return err
		}
	}
	return nil
}
