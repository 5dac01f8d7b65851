package cuda

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestNoDeviceWideWait: nothing the backend issues in a step waits for the whole
// device. In this package (cuda-tagged files included) cgo.DeviceSync is called by
// Close only, and no copy or memset is issued on the legacy NULL stream (cgo.Stream{},
// which synchronizes with every blocking stream); in the kernel library,
// cudaDeviceSynchronize appears only in vireo_device_sync, and the synchronous
// cudaMemcpy/cudaMemset only where the caller passed no stream (runtime.cu) and in the
// device probe (fill.cu). Host waits left in a step are on one stream or event
// (Download: the writer stream of the tensor; Upload: the transfer stream). It reads
// the sources, so it runs without a GPU.
func TestNoDeviceWideWait(t *testing.T) {
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if x, ok := sel.X.(*ast.Ident); !ok || x.Name != "cgo" {
					return true
				}
				calls++
				switch sel.Sel.Name {
				case "DeviceSync":
					if fn.Name.Name != "Close" {
						t.Errorf("%s: cgo.DeviceSync in %s (only Close may wait for the whole device)", fset.Position(call.Pos()), fn.Name.Name)
					}
				case "MemcpyH2D", "MemcpyD2H", "Memset":
					last := call.Args[len(call.Args)-1]
					if lit, ok := last.(*ast.CompositeLit); ok {
						t.Errorf("%s: cgo.%s on %s: the NULL stream synchronizes with the device", fset.Position(call.Pos()), sel.Sel.Name, types(lit))
					}
				}
				return true
			})
		}
	}
	if calls < 20 {
		t.Fatalf("found %d cgo calls in %v: is this the backend's directory?", calls, files)
	}

	kernels := filepath.Join("..", "..", "..", "cuda", "kernels")
	srcs, err := filepath.Glob(filepath.Join(kernels, "*.cu"))
	if err != nil || len(srcs) < 5 {
		t.Fatalf("kernel sources in %s: %v %v", kernels, srcs, err)
	}
	sync := regexp.MustCompile(`\bcudaDeviceSynchronize\s*\(`)
	blocking := regexp.MustCompile(`\bcuda(Memcpy|Memset)\s*\(`)
	for _, src := range srcs {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		base := filepath.Base(src)
		for i, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "//") {
				continue
			}
			if sync.MatchString(line) && !(base == "runtime.cu" && strings.Contains(line, `"vireo_device_sync"`)) {
				t.Errorf("%s:%d: cudaDeviceSynchronize outside vireo_device_sync: %s", base, i+1, strings.TrimSpace(line))
			}
			if blocking.MatchString(line) && base != "runtime.cu" && base != "fill.cu" {
				t.Errorf("%s:%d: a synchronous copy or memset: %s", base, i+1, strings.TrimSpace(line))
			}
		}
	}
}

func types(lit *ast.CompositeLit) string {
	if sel, ok := lit.Type.(*ast.SelectorExpr); ok {
		return sel.Sel.Name + "{}"
	}
	return "a composite literal"
}
