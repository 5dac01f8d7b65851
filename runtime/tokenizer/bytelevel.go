package tokenizer

import "unicode/utf8"

// Byte-level BPE vocabularies (GPT-2, Llama 3) spell every byte as a printable
// character so that tokens are readable strings: printable Latin-1 bytes stand for
// themselves and the rest (controls, space, NBSP, soft hyphen) are moved to U+0100
// upwards in byte order, so " the" is stored as "Ġthe" and "\n" as "Ċ". These tables
// are GPT-2's bytes_to_unicode.
var (
	byteToRune [256]rune
	runeToByte = make(map[rune]byte, 256)
)

func init() {
	n := rune(0)
	for b := 0; b < 256; b++ {
		switch {
		case '!' <= b && b <= '~', 0xA1 <= b && b <= 0xAC, 0xAE <= b && b <= 0xFF:
			byteToRune[b] = rune(b)
		default:
			byteToRune[b] = 256 + n
			n++
		}
		runeToByte[byteToRune[b]] = byte(b)
	}
}

// byteLevelDecode turns a vocabulary spelling into the bytes it stands for. A token with
// a character outside the byte alphabet (an added token like "<|eot_id|>" is fine, it
// has none; some vocabularies carry odd entries) is taken as its own UTF-8, as the HF
// ByteLevel decoder does.
func byteLevelDecode(tok string) (string, bool) {
	out := make([]byte, 0, len(tok))
	for _, r := range tok {
		b, ok := runeToByte[r]
		if !ok {
			return tok, false
		}
		out = append(out, b)
	}
	return string(out), true
}

// byteLevelEncode is the inverse, for tests and error messages.
func byteLevelEncode(raw string) string {
	out := make([]byte, 0, 2*len(raw))
	for i := 0; i < len(raw); i++ {
		out = utf8.AppendRune(out, byteToRune[raw[i]])
	}
	return string(out)
}
