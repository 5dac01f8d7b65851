package tokenizer

import "unicode/utf8"

// Stream detokenizes one id at a time, for printing generated text as it arrives. Byte
// tokens can split a character across ids (an emoji is four <0xXX> tokens), so bytes
// that may still complete a character are held back; bytes that never can become
// U+FFFD, one per byte, as Go's range over a string does. For ids whose Decode is valid
// UTF-8, the Add outputs plus Flush equal Decode.
type Stream struct {
	t         *Tokenizer
	stripNext bool // the next token drops a leading space (it follows BOS)
	raw       bool // invalid bytes pass through instead of becoming U+FFFD
	pending   []byte
}

// NewStream starts a stream. skipLeadingSpace makes the stream behave as if it followed
// BOS: for SentencePiece vocabularies the first token's leading space (the encoder's
// dummy prefix) is dropped, so a stream fed ids equals Decode of BOS followed by them;
// byte-level vocabularies drop nothing after BOS, so it has no effect there.
func (t *Tokenizer) NewStream(skipLeadingSpace bool) *Stream {
	return &Stream{t: t, stripNext: skipLeadingSpace && t.stripAfterBOS}
}

// NewRawStream is NewStream for output that must keep every byte (a file, or a
// terminal that escapes them): bytes that can never complete a character are
// returned as they are instead of as U+FFFD, so the Add outputs plus Flush equal
// Decode for every id sequence. Characters are still never split across outputs.
func (t *Tokenizer) NewRawStream(skipLeadingSpace bool) *Stream {
	s := t.NewStream(skipLeadingSpace)
	s.raw = true
	return s
}

// Add consumes one id and returns the text it completes, possibly "".
func (s *Stream) Add(id int32) string {
	p := s.t.Piece(id)
	if s.stripNext && len(p) > 0 && p[0] == ' ' {
		p = p[1:]
	}
	s.stripNext = s.t.stripAfterBOS && s.t.bos >= 0 && id == s.t.bos
	if len(s.pending) == 0 && utf8.ValidString(p) {
		return p
	}
	s.pending = append(s.pending, p...)
	return s.drain(false)
}

// Flush returns whatever is held back, incomplete characters as U+FFFD, and resets the
// stream's byte buffer.
func (s *Stream) Flush() string {
	return s.drain(true)
}

// drain emits the longest prefix of pending that holds only whole characters (invalid
// bytes replaced), keeping an incomplete tail unless final.
func (s *Stream) drain(final bool) string {
	b := s.pending
	out := make([]byte, 0, len(b)+3)
	i := 0
	for i < len(b) {
		if !final && !utf8.FullRune(b[i:]) {
			break
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 && !s.raw {
			out = utf8.AppendRune(out, utf8.RuneError)
		} else {
			out = append(out, b[i:i+size]...)
		}
		i += size
	}
	s.pending = append(s.pending[:0], b[i:]...)
	return string(out)
}
