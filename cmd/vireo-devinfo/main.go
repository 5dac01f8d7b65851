//go:build cuda

// Command vireo-devinfo reads device 0's name, compute capability, multiprocessor
// count, memory and clocks through the CUDA driver API (gorgonia.org/cu) and beside
// them what Vireo's kernel library reports through its own ABI (cudaGetDeviceProperties
// inside libvireo_kernels.so), and fails when the two disagree: a library that sees
// another card, or a stale device table, shows up before any kernel runs.
//
// gorgonia.org/cu's package init calls cuInit and exits the process when there is no
// driver, and the binary links libcuda at load time: it cannot even start on a machine
// without a driver. So it lives in this separate small binary, which nothing else
// links; scripts/gpu-check.sh runs it only after checking that a driver exists, and CI
// builds and vets it but never runs it.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"gorgonia.org/cu"

	"github.com/vireo-ai/vireo/cgo"
	"github.com/vireo-ai/vireo/internal/version"
)

type side struct {
	Name            string `json:"name"`
	Major           int    `json:"major"`
	Minor           int    `json:"minor"`
	Multiprocessors int    `json:"multiprocessors"`
	TotalMem        uint64 `json:"total_mem"`
	ClockKHz        int    `json:"clock_khz"`
	MemClockKHz     int    `json:"mem_clock_khz"`
	MemBusBits      int    `json:"mem_bus_bits"`
}

func main() {
	out := flag.String("out", "", "write the JSON result to this file")
	ver := version.Flag(flag.CommandLine)
	flag.Parse()
	if *ver {
		fmt.Println(version.Line("vireo-devinfo"))
		return
	}
	res := map[string]any{"driver_version": cu.Version()}
	drv, err := driverSide()
	res["driver_api"] = drv
	if err == nil {
		var info cgo.DeviceInfo
		if info, err = cgo.GetDeviceInfo(0); err == nil {
			lib := side{Name: info.Name, Major: info.Major, Minor: info.Minor, Multiprocessors: info.Multiprocessors,
				TotalMem: info.TotalMem, ClockKHz: info.ClockKHz, MemClockKHz: info.MemClockKHz, MemBusBits: info.MemBusBits}
			res["library_abi"] = lib
			if diff := compare(drv, lib); len(diff) > 0 {
				res["disagree"] = diff
				err = fmt.Errorf("the driver API and libvireo_kernels.so disagree on %v", diff)
			}
		}
	}
	if err != nil {
		res["error"] = err.Error()
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	b = append(b, '\n')
	if *out != "" {
		if werr := os.WriteFile(*out, b, 0o644); werr != nil {
			fmt.Fprintln(os.Stderr, "vireo-devinfo:", werr)
			os.Exit(1)
		}
	} else {
		os.Stdout.Write(b)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "vireo-devinfo:", err)
		os.Exit(1)
	}
}

func driverSide() (side, error) {
	var s side
	n, err := cu.NumDevices()
	if err != nil {
		return s, fmt.Errorf("cuDeviceGetCount: %w", err)
	}
	if n == 0 {
		return s, fmt.Errorf("no CUDA device")
	}
	d, err := cu.GetDevice(0)
	if err != nil {
		return s, err
	}
	if s.Name, err = d.Name(); err != nil {
		return s, err
	}
	if s.Major, s.Minor, err = d.ComputeCapability(); err != nil {
		return s, err
	}
	mem, err := d.TotalMem()
	if err != nil {
		return s, err
	}
	s.TotalMem = uint64(mem)
	attrs, err := d.Attributes(cu.MultiprocessorCount, cu.ClockRate, cu.MemoryClockRate, cu.GlobalMemoryBusWidth)
	if err != nil {
		return s, err
	}
	s.Multiprocessors, s.ClockKHz, s.MemClockKHz, s.MemBusBits = attrs[0], attrs[1], attrs[2], attrs[3]
	return s, nil
}

// compare lists the fields whose values differ.
func compare(a, b side) []string {
	var d []string
	add := func(name string, x, y any) {
		if x != y {
			d = append(d, fmt.Sprintf("%s (driver %v, library %v)", name, x, y))
		}
	}
	add("name", a.Name, b.Name)
	add("compute capability", fmt.Sprint(a.Major, ".", a.Minor), fmt.Sprint(b.Major, ".", b.Minor))
	add("multiprocessors", a.Multiprocessors, b.Multiprocessors)
	add("total memory", a.TotalMem, b.TotalMem)
	add("SM clock kHz", a.ClockKHz, b.ClockKHz)
	add("memory clock kHz", a.MemClockKHz, b.MemClockKHz)
	add("memory bus bits", a.MemBusBits, b.MemBusBits)
	return d
}
