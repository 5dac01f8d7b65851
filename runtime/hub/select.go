package hub

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// DefaultQuants is the order in which a GGUF is chosen when the name gives no :QUANT
// and the repo has several: llama.cpp's default (Q4_K_M) first, then the types that
// keep the most quality per byte.
var DefaultQuants = []string{"Q4_K_M", "Q8_0", "Q6_K", "Q5_K_M", "Q4_0", "F16", "BF16", "F32"}

// Files of a safetensors model directory that Vireo's loader reads (besides the weights).
var dirFiles = []string{
	"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "tokenizer.model",
	"special_tokens_map.json", "chat_template.jinja", "chat_template.json",
}

const (
	kindGGUF        = "gguf"
	kindLlama2C     = "llama2c"
	kindSafetensors = "safetensors"
	indexFile       = "model.safetensors.index.json"
)

// choice is what to take from a repo for one Ref.
type choice struct {
	kind  string
	main  string   // the model file (gguf, llama2c), "" for a directory
	files []string // every file to fetch, main included
	index string   // a safetensors index whose shards are still to be added
}

// llama2cTok is a llama2.c tokenizer named for its vocabulary (tok512.bin).
var llama2cTok = regexp.MustCompile(`^tok[0-9]+\.bin$`)

// splitGGUF matches the parts of a split GGUF (model-00001-of-00003.gguf).
var splitGGUF = regexp.MustCompile(`(?i)-(\d{5})-of-(\d{5})\.gguf$`)

// quantRe recognizes a quantization name among a file name's parts.
var quantRe = regexp.MustCompile(`(?i)^(I?Q[0-9]+(_[A-Z0-9]+)*|BF16|F16|F32|F64|FP16|FP32)$`)

// quantOf is the quantization a GGUF file's name gives (Llama-3.2-1B-Q4_K_M.gguf:
// Q4_K_M), upper-cased, or "".
func quantOf(file string) string {
	base := path.Base(file)
	base = splitGGUF.ReplaceAllString(base, ".gguf")
	base = strings.TrimSuffix(base, path.Ext(base))
	parts := strings.FieldsFunc(base, func(r rune) bool { return r == '-' || r == '.' })
	for i := len(parts) - 1; i >= 0; i-- {
		if quantRe.MatchString(parts[i]) {
			return strings.ToUpper(parts[i])
		}
	}
	return ""
}

// ggufCandidates are the repo's GGUF model files (vision projectors left out), sorted.
func ggufCandidates(files map[string]int64) []string {
	var out []string
	for f := range files {
		if strings.EqualFold(path.Ext(f), ".gguf") && !strings.HasPrefix(strings.ToLower(path.Base(f)), "mmproj") {
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return out
}

// describeGGUFs lists GGUF files as "Q4_K_M (x.gguf, 4.9 GB)" for messages.
func describeGGUFs(files map[string]int64, cands []string) string {
	var parts []string
	for _, f := range cands {
		label := cmp.Or(quantOf(f), "?")
		s := fmt.Sprintf("%s (%s", label, f)
		if n := files[f]; n > 0 {
			s += ", " + humanBytes(n)
		}
		parts = append(parts, s+")")
	}
	return strings.Join(parts, ", ")
}

// matchQuant returns the candidates whose quantization is tag: the name's recognized
// quantization first, then any '-'/'.'-separated part, then a substring.
func matchQuant(cands []string, tag string) []string {
	tag = strings.ToUpper(tag)
	var exact, part, sub []string
	for _, f := range cands {
		base := strings.ToUpper(path.Base(f))
		if quantOf(f) == tag {
			exact = append(exact, f)
			continue
		}
		stem := strings.TrimSuffix(base, ".GGUF")
		if slices.Contains(strings.FieldsFunc(stem, func(r rune) bool { return r == '-' || r == '.' }), tag) {
			part = append(part, f)
		} else if strings.Contains(base, tag) {
			sub = append(sub, f)
		}
	}
	for _, m := range [][]string{exact, part, sub} {
		if len(m) > 0 {
			return m
		}
	}
	return nil
}

// choose decides what to fetch from a repo (files: path -> size, -1 when unknown) for
// ref; repo names the repo in messages.
func choose(ref Ref, files map[string]int64) (choice, error) {
	name := ref.String()
	cands := ggufCandidates(files)
	if ref.File != "" {
		if _, ok := files[ref.File]; !ok {
			msg := fmt.Sprintf("%s: the repo has no file %q at %s", name, ref.File, ref.Rev())
			if len(cands) > 0 {
				msg += "; its GGUF files: " + describeGGUFs(files, cands)
			}
			return choice{}, newErr(ErrFileNotFound, msg, nil)
		}
		if strings.EqualFold(path.Ext(ref.File), ".bin") {
			c := choice{kind: kindLlama2C, main: ref.File, files: []string{ref.File}}
			dir := path.Dir(ref.File)
			for f := range files {
				b := path.Base(f)
				if path.Dir(f) == dir && f != ref.File && (b == "tokenizer.bin" || llama2cTok.MatchString(b)) {
					c.files = append(c.files, f)
				}
			}
			sort.Strings(c.files[1:])
			return c, nil
		}
		return ggufChoice(name, ref.File, files)
	}
	if ref.Quant != "" {
		if len(cands) == 0 {
			return choice{}, newErr(ErrNoQuant, fmt.Sprintf("%s: :%s names a GGUF quantization but the repo has no GGUF files at %s (%s)", name, ref.Quant, ref.Rev(), listFiles(files)), nil)
		}
		m := matchQuant(cands, ref.Quant)
		// The parts of one split GGUF all match: keep the first part to report on.
		if len(m) > 1 && allSplitOfOne(m) {
			m = m[:1]
		}
		switch {
		case len(m) == 0:
			return choice{}, newErr(ErrNoQuant, fmt.Sprintf("%s: no GGUF file matches %s; the repo has: %s. Name one of these after ':' (or the file as %s/<file>)",
				name, strings.ToUpper(ref.Quant), describeGGUFs(files, cands), ref.Repo), nil)
		case len(m) > 1:
			return choice{}, newErr(ErrNoQuant, fmt.Sprintf("%s: %d GGUF files match %s: %s. Name the file as %s/<file>",
				name, len(m), strings.ToUpper(ref.Quant), strings.Join(m, ", "), ref.Repo), nil)
		}
		return ggufChoice(name, m[0], files)
	}
	_, hasCfg := files["config.json"]
	_, hasIdx := files[indexFile]
	_, hasST := files["model.safetensors"]
	if hasCfg && (hasIdx || hasST) {
		c := choice{kind: kindSafetensors}
		for _, f := range dirFiles {
			if _, ok := files[f]; ok {
				c.files = append(c.files, f)
			}
		}
		if hasIdx {
			c.files = append(c.files, indexFile)
			c.index = indexFile
		} else {
			c.files = append(c.files, "model.safetensors")
		}
		return c, nil
	}
	if len(cands) == 1 {
		return ggufChoice(name, cands[0], files)
	}
	if len(cands) > 1 {
		if allSplitOfOne(cands) {
			return ggufChoice(name, cands[0], files)
		}
		for _, q := range DefaultQuants {
			if m := matchQuant(cands, q); len(m) == 1 || len(m) > 1 && allSplitOfOne(m) {
				return ggufChoice(name, m[0], files)
			}
		}
		return choice{}, newErr(ErrNoQuant, fmt.Sprintf("%s has several GGUF files and none is a default choice (%s); name one: %s:QUANT with QUANT from: %s",
			name, strings.Join(DefaultQuants, ", "), ref.Repo, describeGGUFs(files, cands)), nil)
	}
	return choice{}, newErr(ErrNoModel, fmt.Sprintf("%s has nothing Vireo can load at %s: no GGUF file and no config.json with model.safetensors (or its index); files: %s",
		name, ref.Rev(), listFiles(files)), nil)
}

func ggufChoice(name, file string, files map[string]int64) (choice, error) {
	if m := splitGGUF.FindStringSubmatch(file); m != nil {
		return choice{}, newErr(ErrNoModel, fmt.Sprintf("%s: %s is part of a GGUF split into %s files, which Vireo cannot load yet; merge the parts with llama.cpp's llama-gguf-split --merge, or pick a quantization in one file",
			name, file, strings.TrimLeft(m[2], "0")), nil)
	}
	return choice{kind: kindGGUF, main: file, files: []string{file}}, nil
}

func allSplitOfOne(fs []string) bool {
	if len(fs) < 2 {
		return false
	}
	stem := ""
	for _, f := range fs {
		if !splitGGUF.MatchString(f) {
			return false
		}
		s := splitGGUF.ReplaceAllString(f, "")
		if stem != "" && s != stem {
			return false
		}
		stem = s
	}
	return true
}

// shardsOf reads a safetensors index and returns its shard files, sorted.
func shardsOf(data []byte) ([]string, error) {
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("%s: %w", indexFile, err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, fmt.Errorf("%s has an empty weight_map", indexFile)
	}
	seen := map[string]bool{}
	var out []string
	for _, f := range idx.WeightMap {
		if err := checkRepoPath(f); err != nil {
			return nil, fmt.Errorf("%s: shard %w", indexFile, err)
		}
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return out, nil
}

// listFiles renders a repo's files for a message, at most 20.
func listFiles(files map[string]int64) string {
	names := slices.Sorted(maps.Keys(files))
	if len(names) == 0 {
		return "none"
	}
	if len(names) > 20 {
		return strings.Join(names[:20], ", ") + fmt.Sprintf(" and %d more", len(names)-20)
	}
	return strings.Join(names, ", ")
}

// humanBytes renders n as 1.2 GB / 350 MB / 12 KB (decimal units, as the Hub shows).
func humanBytes(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f KB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}
