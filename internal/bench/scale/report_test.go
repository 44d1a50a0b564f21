package scale

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

func TestSummarizeCase(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d := &caseData{
		c:      buildCase{build: 60 * time.Second},
		jitter: 12 * time.Second,
		submitted: map[string]time.Time{
			"a": t0, "b": t0.Add(time.Second), "c": t0.Add(2 * time.Second),
		},
		terminal: map[string]jobs.Event{
			"a": {Type: jobs.TypeSucceeded, Time: t0.Add(70 * time.Second)},
			"b": {Type: jobs.TypeSucceeded, Time: t0.Add(81 * time.Second)},
			"c": {Type: jobs.TypeFailed, Time: t0.Add(90 * time.Second),
				Data: jobs.EventData{Error: &jobs.EventError{Step: "wait_ready", Code: "BUILD_FAILED"}}},
		},
		stats: vercelsim.Stats{
			Requests: map[vercel.Endpoint]int{
				vercel.EndpointCreateProject: 3, vercel.EndpointGetProject: 1, vercel.EndpointUploadFile: 2,
				vercel.EndpointGetDeployment: 10,
			},
			Succeeded: map[vercel.Endpoint]int{
				vercel.EndpointCreateProject: 3, vercel.EndpointUploadFile: 2, vercel.EndpointGetDeployment: 10,
			},
			Uploads: 2,
		},
		rec: recorded{
			Uploads: map[string]int{benchTeam + "/aaa": 1, benchTeam + "/bbb": 1},
			Polls:   map[string]int{"dpl_1": 2, "dpl_2": 3, "dpl_3": 5},
			Streams: map[string]int{"dpl_2": 1},
		},
		sources:   []string{"aaa", "bbb"},
		perSource: []int{2, 1},
	}
	r := summarizeCase(d, 8)

	if r.Name != "1m0s/default" || r.ExpectedBuild != "none" || r.FirstPollAfter != "cold" || r.Told {
		t.Errorf("labels: %+v", r)
	}
	if told := summarizeCase(&caseData{c: buildCase{build: time.Minute, told: true}}, 8); told.ExpectedBuild != "1m0s" || told.FirstPollAfter != "1m6s" {
		t.Errorf("told labels: %+v", told)
	}
	if r.Streams.Deployments != 1 || r.Streams.Max != 1 {
		t.Errorf("streams: %+v, want one deployment with one stream", r.Streams)
	}
	if r.Deploys != 3 || r.Succeeded != 2 || r.Failed != 1 || r.Failures["BUILD_FAILED at wait_ready"] != 1 {
		t.Errorf("outcomes: %+v", r)
	}
	if r.APIRequests != 16 || r.RequestsPerDeploy != 8 {
		t.Errorf("requests %d, per deploy %v; want 16, 8", r.APIRequests, r.RequestsPerDeploy)
	}
	// One deploy failed, so the target cannot hold whatever the ratio.
	if r.RequestsTargetHolds {
		t.Error("target holds with a failed deploy")
	}
	if len(r.Endpoints) != 4 || r.Endpoints[0].Endpoint != string(vercel.EndpointCreateProject) {
		t.Errorf("endpoints: %+v", r.Endpoints)
	}
	if r.Polls != (pollStats{Deployments: 3, Mean: 10.0 / 3, Min: 2, Median: 3, Max: 5}) {
		t.Errorf("polls: %+v", r.Polls)
	}
	if !r.UploadsTargetHolds || r.UploadRequests != 2 || r.Sources[0] != (sourceUploads{SHA1: "aaa", Deploys: 2, Uploads: 1}) {
		t.Errorf("uploads: %+v", r)
	}
	if r.WallSeconds != 90 || r.SubmitToEnd.Count != 2 || r.SubmitToEnd.P50 != 70 || r.SubmitToEnd.Max != 80 {
		t.Errorf("times: wall %v, %+v", r.WallSeconds, r.SubmitToEnd)
	}

	// Everything succeeded at 8 requests per deploy: the target holds.
	d.terminal["c"] = jobs.Event{Type: jobs.TypeSucceeded, Time: t0.Add(90 * time.Second)}
	d.stats.Requests[vercel.EndpointCreateDeployment] = 8
	if r := summarizeCase(d, 8); !r.RequestsTargetHolds || r.RequestsPerDeploy != 8 {
		t.Errorf("target: %v at %v", r.RequestsTargetHolds, r.RequestsPerDeploy)
	}
}

func TestUploadsPerSource(t *testing.T) {
	uploads := map[string]int{"team/aaa": 2, "team/ccc": 1, "other/aaa": 1}
	total, per := uploadsPerSource(uploads, "team", []string{"aaa", "bbb"}, []int{5, 5})
	if total != 4 {
		t.Errorf("total %d, want 4 (every team counts)", total)
	}
	want := []sourceUploads{{SHA1: "aaa", Deploys: 5, Uploads: 2}, {SHA1: "bbb", Deploys: 5, Uploads: 0}}
	for i := range want {
		if per[i] != want[i] {
			t.Errorf("source %d: %+v, want %+v", i, per[i], want[i])
		}
	}
}

func TestPercentilesOf(t *testing.T) {
	if p := percentilesOf(nil); p != (percentiles{}) {
		t.Errorf("empty: %+v", p)
	}
	ds := []time.Duration{4 * time.Second, time.Second, 3 * time.Second, 2 * time.Second}
	// Nearest rank: the 2nd of 4.
	if p := percentilesOf(ds); p.P50 != 2 || p.Max != 4 || p.Count != 4 {
		t.Errorf("got %+v", p)
	}
	if ds[0] != 4*time.Second {
		t.Error("the input was sorted in place")
	}
}

func TestSummarizeWindow(t *testing.T) {
	samples := []sample{
		{AtSeconds: 0, RSS: 400e6, HWM: 500e6, CPUSeconds: 12, Goroutines: 20000, HeapInuse: 100e6, StackInuse: 200e6, NATSInMsgs: 1000, NATSOutMsgs: 10},
		{AtSeconds: 30, RSS: 420e6, HWM: 500e6, CPUSeconds: 12.3, Goroutines: 20010, HeapInuse: 110e6, StackInuse: 200e6, NATSInMsgs: 16000, NATSOutMsgs: 13},
		{AtSeconds: 60, RSS: 410e6, HWM: 520e6, CPUSeconds: 12.6, Goroutines: 20005, HeapInuse: 120e6, StackInuse: 201e6, NATSInMsgs: 31000, NATSOutMsgs: 16},
	}
	w := summarizeWindow(samples)
	if w.Samples != 3 || w.Seconds != 60 {
		t.Errorf("span: %+v", w)
	}
	if w.RSSMinMB != 400 || w.RSSMaxMB != 420 || w.RSSMeanMB != 410 || w.RSSLastMB != 410 || w.HWMMB != 520 {
		t.Errorf("rss: %+v", w)
	}
	if w.GoroutinesMax != 20010 || w.HeapInuseMeanMB != 110 || w.HeapInuseMaxMB != 120 || w.StackInuseMaxMB != 201 {
		t.Errorf("runtime: %+v", w)
	}
	if math.Abs(w.CPUCores-0.01) > 1e-9 || w.NATSMsgsFromWorkerPerSec != 500 || w.NATSMsgsToWorkerPerSec != 0.1 {
		t.Errorf("rates: cores %v, from %v, to %v", w.CPUCores, w.NATSMsgsFromWorkerPerSec, w.NATSMsgsToWorkerPerSec)
	}
	if w := summarizeWindow(nil); w != (windowSummary{}) {
		t.Errorf("empty: %+v", w)
	}
	// One sample spans no time: no rates, no division by zero.
	if w := summarizeWindow(samples[:1]); w.CPUCores != 0 || w.Seconds != 0 || w.RSSMaxMB != 400 {
		t.Errorf("one sample: %+v", w)
	}
}

func TestPerJobOf(t *testing.T) {
	idle := sample{RSS: 20e6, HeapInuse: 3e6, StackInuse: 1e6, HeapObjects: 10000, Goroutines: 15}
	window := []sample{
		{RSS: 420e6, HeapInuse: 103e6, StackInuse: 201e6, HeapObjects: 810000, Goroutines: 20015},
		{RSS: 440e6, HeapInuse: 123e6, StackInuse: 201e6, HeapObjects: 800000, Goroutines: 20015},
	}
	got := perJobOf(idle, window, 10000)
	want := perJob{RSSBytes: 41000, HeapInuseBytes: 11000, StackInuseBytes: 20000, HeapObjects: 80, Goroutines: 2}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if perJobOf(idle, nil, 10) != (perJob{}) || perJobOf(idle, window, 0) != (perJob{}) {
		t.Error("no samples or no jobs must give zeros")
	}
}

func TestWriteReportKeepsTheOtherPart(t *testing.T) {
	dir := t.TempDir()
	first := report{Requests: &requestsReport{Command: "first"}, Scale: &scaleReport{Command: "first"}}
	if _, err := writeReport(dir, first); err != nil {
		t.Fatal(err)
	}
	path, err := writeReport(dir, report{Scale: &scaleReport{Command: "second"}})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got report
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if got.Requests == nil || got.Requests.Command != "first" || got.Scale == nil || got.Scale.Command != "second" {
		t.Errorf("got requests %+v, scale %+v", got.Requests, got.Scale)
	}

	// An unreadable earlier file is replaced, not merged.
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, resultsFile), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := writeReport(bad, report{Scale: &scaleReport{Command: "x"}}); err != nil {
		t.Fatal(err)
	}
}

func TestParseDurations(t *testing.T) {
	got, err := parseDurations(" 20s, 1m,,3m ")
	if err != nil || len(got) != 3 || got[0] != 20*time.Second || got[2] != 3*time.Minute {
		t.Errorf("got %v, %v", got, err)
	}
	for _, bad := range []string{"", ",", "20", "-5s", "0s"} {
		if _, err := parseDurations(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestCommandLine(t *testing.T) {
	if got := scaleCommand(modeBoth, nil); got != "go run ./cmd/bench scale" {
		t.Errorf("got %q", got)
	}
	got := scaleCommand(modeScale, []string{"-jobs", "2000", "-out", "", "-child-memprofile", "/tmp/my heap"})
	if !strings.HasPrefix(got, "go run ./cmd/bench scale scale -jobs 2000 -out \"\" ") || !strings.HasSuffix(got, `"/tmp/my heap"`) {
		t.Errorf("got %q", got)
	}
}

func TestParseOptionsDefaults(t *testing.T) {
	o, err := parseOptions(modeBoth, nil, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	if o.concurrency != o.deploys {
		t.Errorf("concurrency %d, want every deploy (%d)", o.concurrency, o.deploys)
	}
	if o.scaleExpected != o.scaleBuild {
		t.Errorf("expected build %s, want the build time %s", o.scaleExpected, o.scaleBuild)
	}
	// The consumer must allow more deliveries in flight than the worker runs.
	if o.maxAckPending <= o.jobs {
		t.Errorf("MaxAckPending %d for %d jobs", o.maxAckPending, o.jobs)
	}
	if _, err := parseOptions(modeBoth, []string{"-sample", "10s", "-sample-every", "20s"}, os.Stderr); err == nil {
		t.Error("a sample period longer than the window was accepted")
	}
}
