package scale

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
)

// metricValues reads the named series from a Prometheus text exposition
// (what /metrics serves), summing the samples of a name over its label
// sets. Names that do not appear are absent from the result. Only gauges
// and counters are meant: a histogram's _bucket lines would be summed too.
//
// The parent could use prometheus/common's parser, but that would turn an
// indirect dependency of the module into a direct one; the subset read
// here (one name, optional labels, one value, optional timestamp) is a few
// lines.
func metricValues(text []byte, names ...string) map[string]float64 {
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ \t"); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		if !want[name] {
			continue
		}
		if strings.HasPrefix(rest, "{") {
			// A label value may hold spaces or braces; the label set ends
			// at the last '}' (the value and timestamp hold none).
			j := strings.LastIndexByte(rest, '}')
			if j < 0 {
				continue
			}
			rest = rest[j+1:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		out[name] += v
	}
	return out
}
