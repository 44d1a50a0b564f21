package budget

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/deployq/deployq/internal/bench"
)

func TestMovingAverageCentred(t *testing.T) {
	t.Parallel()
	got := movingAverage([]int{0, 0, 10, 0, 0, 5}, 3)
	want := []float64{0, 10.0 / 3, 10.0 / 3, 10.0 / 3, 5.0 / 3, 2.5}
	if !slices.Equal(got, want) {
		t.Errorf("movingAverage = %v, want %v", got, want)
	}
	if got := movingAverage([]int{4, 2}, 0); !slices.Equal(got, []float64{4, 2}) {
		t.Errorf("window 0 = %v, want the samples", got)
	}
}

func TestPlotIsWellFormedSVG(t *testing.T) {
	t.Parallel()
	rep := report{
		Machine: bench.Machine{NProc: 2, CPUModel: `Vendor "X" <fast> & cheap`, GoVersion: "go1.26", Date: "2026-01-01T00:00:00Z"},
		Settings: settings{Requests: 3, Processes: 3, Concurrency: 16, BuildTime: "20s", BuildJitter: "2s",
			Limits: map[string]string{"deployments.create": "20/10s", "projects.create": "50/10s"}, Bottleneck: "deployments.create", SmoothSeconds: 5},
		Results: []result{
			{Strategy: "shared", Description: "shared <budget>", Submitted: 3, Succeeded: 3,
				Bottleneck: bottleneck{Limit: 20, WindowSeconds: 10, UtilizationActive: 0.97},
				Series:     series{Succeeded: []int{2, 2, 1, 2}, RateLimited: []int{0, 0, 0, 0}}},
			{Strategy: "guide", Description: "429 → sleep & give up", Submitted: 3, Succeeded: 1,
				Bottleneck: bottleneck{Limit: 20, WindowSeconds: 10},
				Series:     series{Succeeded: []int{20, 0, 0}, RateLimited: []int{0, 90, 40}}},
			{Strategy: "empty", Series: series{}},
		},
	}
	svg := plot(rep, 5)
	dec := xml.NewDecoder(bytes.NewReader(svg))
	var root string
	var texts []string
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("plot is not well-formed XML: %v\n%s", err, svg)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = el.Name.Local
			}
		case xml.CharData:
			texts = append(texts, string(el))
		}
	}
	if root != "svg" {
		t.Errorf("root element %q, want svg", root)
	}
	all := strings.Join(texts, "\n")
	for _, want := range []string{`Vendor "X" <fast> & cheap`, "shared — shared <budget>", "clipped: 429s/s peak"} {
		if !strings.Contains(all, want) {
			t.Errorf("plot text lacks %q", want)
		}
	}
}
