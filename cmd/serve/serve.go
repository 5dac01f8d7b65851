// Command serve runs Vireo's OpenAI-compatible HTTP server on one model, as `vireo
// serve` does (package internal/servecmd holds both):
//
//	serve ../shared/models/stories260K/stories260K.bin --port 8000
//	serve --model bartowski/Llama-3.2-1B-Instruct-GGUF:Q8_0
//
// serve --help lists the flags, which follow vLLM's names.
package main

import (
	"os"

	"github.com/vireo-ai/vireo/internal/servecmd"
)

func main() { servecmd.Main("serve", os.Args[1:]) }
