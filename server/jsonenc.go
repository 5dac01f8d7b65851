package server

import (
	"strconv"
	"unicode/utf8"
)

// The streaming path builds its JSON by hand: one chunk per token for hundreds of
// streams is the server's hottest loop, and reflection-based encoding would dominate
// it. Everything else uses encoding/json.

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string: control characters, quote and
// backslash escaped, invalid UTF-8 replaced by U+FFFD, U+2028/U+2029 escaped (as
// encoding/json does, so the output is also valid JavaScript). HTML characters are
// left alone: these are API responses, not HTML.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendFloat appends a float32 as a JSON number (non-finite values, which JSON
// cannot hold, as a very negative number: a log-probability of -inf).
func appendFloat(dst []byte, f float32) []byte {
	if f != f || f < -3.4e38 {
		return append(dst, "-9999.0"...)
	}
	if f > 3.4e38 {
		return append(dst, "3.4e38"...)
	}
	return strconv.AppendFloat(dst, float64(f), 'g', -1, 32)
}
