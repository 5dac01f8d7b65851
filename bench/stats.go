package bench

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"sort"
)

// Dist summarizes a sample: mean and percentiles, in the sample's unit.
type Dist struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean"`
	Min  float64 `json:"min"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}

// NewDist summarizes xs (not modified). Percentiles interpolate linearly between the
// two nearest ranks (NumPy's default, which vLLM's benchmark uses).
func NewDist(xs []float64) Dist {
	if len(xs) == 0 {
		return Dist{}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	var sum float64
	for _, x := range s {
		sum += x
	}
	return Dist{N: len(s), Mean: sum / float64(len(s)), Min: s[0], Max: s[len(s)-1],
		P50: percentileSorted(s, 50), P90: percentileSorted(s, 90), P99: percentileSorted(s, 99)}
}

// Percentile returns the p-th percentile (0..100) of xs, linearly interpolated.
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return percentileSorted(s, p)
}

func percentileSorted(s []float64, p float64) float64 {
	if len(s) == 1 {
		return s[0]
	}
	r := p / 100 * float64(len(s)-1)
	lo := int(math.Floor(r))
	if lo >= len(s)-1 {
		return s[len(s)-1]
	}
	f := r - float64(lo)
	return s[lo] + f*(s[lo+1]-s[lo])
}

// Interval is an estimate with its 95% bootstrap confidence interval.
type Interval struct {
	Value float64 `json:"value"`
	Lo    float64 `json:"ci95_lo"`
	Hi    float64 `json:"ci95_hi"`
}

// Significant reports whether the interval excludes zero.
func (iv Interval) Significant() bool { return iv.Lo > 0 || iv.Hi < 0 }

// Bootstrap resamples n units with replacement resamples times (seeded) and returns the
// statistic on the full sample with the 2.5th and 97.5th percentiles of its resampled
// values. stat receives the chosen unit indices (repeats included); pairing comes from
// the caller computing both arms of a difference over the same indices.
func Bootstrap(n, resamples int, seed uint64, stat func(idx []int) float64) Interval {
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	iv := Interval{Value: stat(all)}
	if n == 0 || resamples <= 0 {
		iv.Lo, iv.Hi = iv.Value, iv.Value
		return iv
	}
	rng := rand.New(rand.NewPCG(seed, 0x6a09e667f3bcc909))
	vals := make([]float64, 0, resamples)
	idx := make([]int, n)
	for r := 0; r < resamples; r++ {
		for i := range idx {
			idx[i] = rng.IntN(n)
		}
		if v := stat(idx); !math.IsNaN(v) {
			vals = append(vals, v)
		}
	}
	sort.Float64s(vals)
	if len(vals) == 0 {
		iv.Lo, iv.Hi = math.NaN(), math.NaN()
		return iv
	}
	iv.Lo, iv.Hi = percentileSorted(vals, 2.5), percentileSorted(vals, 97.5)
	return iv
}

// BootstrapDiff is the unpaired bootstrap of stat(b) - stat(a): each sample is
// resampled on its own (two independent runs, e.g. two engine configurations). With
// fewer than 3 values on a side there is no interval (NaN bounds: never significant).
func BootstrapDiff(a, b []float64, resamples int, seed uint64, stat func([]float64) float64) Interval {
	if len(a) == 0 || len(b) == 0 {
		return Interval{Value: math.NaN(), Lo: math.NaN(), Hi: math.NaN()}
	}
	iv := Interval{Value: stat(b) - stat(a)}
	if len(a) < 3 || len(b) < 3 {
		iv.Lo, iv.Hi = math.NaN(), math.NaN()
		return iv
	}
	rng := rand.New(rand.NewPCG(seed, 0xbb67ae8584caa73b))
	ra, rb := make([]float64, len(a)), make([]float64, len(b))
	vals := make([]float64, 0, resamples)
	for r := 0; r < resamples; r++ {
		for i := range ra {
			ra[i] = a[rng.IntN(len(a))]
		}
		for i := range rb {
			rb[i] = b[rng.IntN(len(b))]
		}
		vals = append(vals, stat(rb)-stat(ra))
	}
	sort.Float64s(vals)
	iv.Lo, iv.Hi = percentileSorted(vals, 2.5), percentileSorted(vals, 97.5)
	return iv
}

// jsonFloat encodes NaN (no estimate) as null, which JSON has in place of NaN.
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	if !finite(float64(f)) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(f))
}

func (f *jsonFloat) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = jsonFloat(math.NaN())
		return nil
	}
	var v float64
	err := json.Unmarshal(b, &v)
	*f = jsonFloat(v)
	return err
}

type intervalJSON struct {
	Value jsonFloat `json:"value"`
	Lo    jsonFloat `json:"ci95_lo"`
	Hi    jsonFloat `json:"ci95_hi"`
}

// MarshalJSON writes missing bounds as null.
func (iv Interval) MarshalJSON() ([]byte, error) {
	return json.Marshal(intervalJSON{jsonFloat(iv.Value), jsonFloat(iv.Lo), jsonFloat(iv.Hi)})
}

// UnmarshalJSON reads null bounds back as NaN.
func (iv *Interval) UnmarshalJSON(b []byte) error {
	var j intervalJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*iv = Interval{float64(j.Value), float64(j.Lo), float64(j.Hi)}
	return nil
}
