// Command bench measures Vireo, as `vireo bench` does (package internal/benchcmd holds
// both):
//
//	bench load --url http://localhost:8000 --model stories260K --concurrency 1,4,16 --out load.json
//	bench load --engine --serve --model-path ../shared/models/stories260K/stories260K.bin --out load.json
//	bench quality --model-path ../shared/models/stories260K/stories260K.bin --out quality.json
//	bench ttft-configs --model-path synthetic:tiny --out ttft.json
//	bench weight-configs --model-path ../shared/models/stories260K/stories260K.bin --out weights.json
//	bench report --load load.json --quality quality.json --ttft ttft.json --weights weights.json --out-dir out
//
// See bench/README.md for the commands behind the committed results.
package main

import (
	"os"

	"github.com/vireo-ai/vireo/internal/benchcmd"
)

func main() { benchcmd.Main("bench", os.Args[1:]) }
