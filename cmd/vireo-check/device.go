package main

import (
	"fmt"
	"sort"

	"github.com/vireo-ai/vireo/cgo"
)

func runDevice(args []string) (any, error) {
	if err := flags("device").Parse(args); err != nil {
		return nil, err
	}
	res := map[string]any{"cuda_build": cgo.Available, "abi_version": cgo.ABIVersion()}
	rt, drv, err := cgo.Versions()
	if err != nil {
		return res, err
	}
	res["runtime_version"], res["driver_version"] = rt, drv
	if archs, err := cgo.BuildArchs(); err == nil {
		res["library_archs"] = archs
	}
	n, err := cgo.DeviceCount()
	res["devices"] = n
	if err != nil {
		return res, err
	}
	info, err := cgo.GetDeviceInfo(0)
	if err != nil {
		return res, err
	}
	res["device"] = info
	res["peak_bandwidth_gbs"] = info.PeakBandwidth() / 1e9
	free, total, err := cgo.MemInfo()
	if err != nil {
		return res, err
	}
	res["mem_free"], res["mem_total"] = free, total
	record("device", res)
	// One tiny kernel: a library without a kernel image for this card (or a broken
	// driver) fails here, with the CUDA error, rather than inside the op checks.
	vals, err := cgo.Probe()
	if err != nil {
		res["probe"] = err.Error()
		return res, fmt.Errorf("probe kernel (library archs %v, card %d.%d): %w", res["library_archs"], info.Major, info.Minor, err)
	}
	for i, v := range vals {
		if v != int32(3*i+1) {
			res["probe"] = fmt.Sprintf("value %d is %d, want %d", i, v, 3*i+1)
			return res, fmt.Errorf("probe kernel wrote wrong values: %s", res["probe"])
		}
	}
	res["probe"] = "ok"
	return res, nil
}

// timeMs runs f reps times between two events, trials times, and returns the median
// milliseconds per call (after one untimed warm-up trial).
func timeMs(s cgo.Stream, reps, trials int, f func(i int) error) (float64, error) {
	a, err := cgo.EventCreate(true)
	if err != nil {
		return 0, err
	}
	defer a.Destroy()
	b, err := cgo.EventCreate(true)
	if err != nil {
		return 0, err
	}
	defer b.Destroy()
	var ms []float64
	for t := 0; t <= trials; t++ {
		if err := a.Record(s); err != nil {
			return 0, err
		}
		for i := 0; i < reps; i++ {
			if err := f(i); err != nil {
				return 0, err
			}
		}
		if err := b.Record(s); err != nil {
			return 0, err
		}
		if err := b.Sync(); err != nil {
			return 0, err
		}
		e, err := cgo.ElapsedMs(a, b)
		if err != nil {
			return 0, err
		}
		if t > 0 {
			ms = append(ms, float64(e)/float64(reps))
		}
	}
	sort.Float64s(ms)
	return ms[len(ms)/2], nil
}

func runBandwidth(args []string) (any, error) {
	fs := flags("bandwidth")
	mib := fs.Int("mib", 1024, "buffer size in MiB")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	n := *mib << 20
	res := map[string]any{"bytes": n}
	s, err := cgo.StreamCreate(0)
	if err != nil {
		return res, err
	}
	defer s.Destroy()
	src, err := cgo.Malloc(n)
	if err != nil {
		return res, err
	}
	defer cgo.Free(src)
	dst, err := cgo.Malloc(n)
	if err != nil {
		return res, err
	}
	defer cgo.Free(dst)
	if err := cgo.Memset(src, 0x5a, n, s); err != nil {
		return res, err
	}
	ms, err := timeMs(s, 10, 5, func(int) error { return cgo.MemcpyD2D(dst, src, n, s) })
	if err != nil {
		return res, err
	}
	res["d2d_ms"] = ms
	res["d2d_gbs"] = 2 * float64(n) / ms / 1e6 // bytes read + written
	record("d2d", res)
	host, err := cgo.MallocHost(n)
	if err != nil {
		return res, err
	}
	defer cgo.FreeHost(host)
	for _, dir := range []struct {
		name string
		f    func() error
	}{
		{"h2d", func() error { return cgo.MemcpyH2D(dst, host, n, s) }},
		{"d2h", func() error { return cgo.MemcpyD2H(host, src, n, s) }},
	} {
		ms, err := timeMs(s, 3, 3, func(int) error { return dir.f() })
		if err != nil {
			return res, fmt.Errorf("%s: %w", dir.name, err)
		}
		res[dir.name+"_gbs"] = float64(n) / ms / 1e6
		record(dir.name, res[dir.name+"_gbs"])
	}
	return res, nil
}
