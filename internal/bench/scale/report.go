package scale

import (
	"cmp"
	"encoding/json"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/deployq/deployq/internal/bench"
	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/vercel"
)

// resultsFile is the name of the results in the -out directory.
const resultsFile = "scalebench.json"

// report is the whole results file. A part left nil by this run keeps
// what an earlier run wrote.
type report struct {
	Requests *requestsReport `json:"requests,omitempty"`
	Scale    *scaleReport    `json:"scale,omitempty"`
}

// requestsReport is the requests part.
type requestsReport struct {
	Machine  bench.Machine    `json:"machine"`
	Command  string           `json:"command"`
	Settings requestsSettings `json:"settings"`
	Results  []requestsResult `json:"results"`
}

type requestsSettings struct {
	Builds               []string `json:"buildTimes"`
	JitterRatio          float64  `json:"buildJitterRatio"`
	Deploys              int      `json:"deploysPerConfiguration"`
	Sources              int      `json:"sourcesPerConfiguration"`
	Concurrency          int      `json:"workerConcurrency"`
	Seed                 int64    `json:"simulatorSeed"`
	Timeout              string   `json:"timeout"`
	RequestsTarget       float64  `json:"requestsPerDeployTarget"`
	DefaultExpectedBuild string   `json:"pipelineDefaultExpectedBuild"`
}

// requestsResult is one configuration's outcome. Per-deploy figures are
// divided by succeeded deploys.
type requestsResult struct {
	Name          string `json:"name"`
	BuildTime     string `json:"buildTime"`
	BuildJitter   string `json:"buildJitter"`
	ExpectedBuild string `json:"expectedBuild"`
	// Told is true when PipelineConfig.ExpectedBuild was the build time;
	// false leaves the pipeline's default.
	Told bool `json:"expectedBuildIsBuildTime"`
	// FirstPollAfter is when a job first polls, counted from the
	// deployment's creation: the worker's expected build plus a tenth.
	// A worker with no expectation ("cold") has none: a few jobs follow
	// their event streams, the others poll once the first has learned the
	// build time.
	FirstPollAfter string `json:"firstPollAfterCreation"`
	// LearnedBuild is the worker's build-time estimate once every deploy
	// ended (PipelineConfig.ExpectedBuild moved a quarter of the way to
	// each observed build): what a later deploy's first poll would use.
	LearnedBuild string `json:"learnedBuildEstimate"`

	Deploys   int            `json:"deploys"`
	Succeeded int            `json:"succeeded"`
	Failed    int            `json:"failed"`
	Missing   int            `json:"missing"`
	Failures  map[string]int `json:"failures,omitempty"`

	APIRequests       int             `json:"apiRequests"`
	RequestsPerDeploy float64         `json:"requestsPerSucceededDeploy"`
	Endpoints         []endpointCount `json:"endpoints"`
	Polls             pollStats       `json:"statusPolls"`
	// Streams counts the event streams (GET /v3/deployments/{id}/events)
	// per deployment that opened any; Streams.Deployments is how many did.
	Streams pollStats `json:"eventStreams"`

	// UploadRequests counts POST /v2/files; UploadsAccepted is the
	// simulator's Stats.Uploads. Sources breaks them down.
	UploadRequests  int             `json:"uploadRequests"`
	UploadsAccepted int             `json:"uploadsAccepted"`
	Sources         []sourceUploads `json:"sources"`

	RequestsTargetHolds bool `json:"requestsTargetHolds"`
	UploadsTargetHolds  bool `json:"oneUploadPerSourceHolds"`

	WallSeconds float64     `json:"wallSeconds"`
	SubmitToEnd percentiles `json:"submitToEndSucceeded"`
	Problems    []string    `json:"problems,omitempty"`
}

type endpointCount struct {
	Endpoint  string  `json:"endpoint"`
	Requests  int     `json:"requests"`
	Succeeded int     `json:"succeeded"`
	PerDeploy float64 `json:"perSucceededDeploy"`
}

// pollStats are the status polls (GET /v13/deployments/{id}), or the event
// streams, per deployment that had any.
type pollStats struct {
	Deployments int     `json:"deployments"`
	Mean        float64 `json:"mean"`
	Min         int     `json:"min"`
	Median      int     `json:"median"`
	Max         int     `json:"max"`
}

type sourceUploads struct {
	SHA1    string `json:"sha1"`
	Deploys int    `json:"deploys"`
	Uploads int    `json:"uploads"`
}

type percentiles struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50Seconds"`
	Max   float64 `json:"maxSeconds"`
}

// summarizeCase turns one configuration's raw data into its result.
func summarizeCase(d *caseData, target float64) requestsResult {
	r := requestsResult{
		Name:           d.c.name(),
		BuildTime:      d.c.build.String(),
		BuildJitter:    d.jitter.String(),
		ExpectedBuild:  d.c.expected(),
		Told:           d.c.told,
		FirstPollAfter: d.c.firstPoll(),
		LearnedBuild:   d.learned.Round(100 * time.Millisecond).String(),
		Deploys:        len(d.submitted),
		Missing:        len(d.missing),
		Failures:       map[string]int{},
		Problems:       d.problems,
	}
	start := earliest(d.submitted)
	var end time.Time
	var lat []time.Duration
	for id, ev := range d.terminal {
		if ev.Time.After(end) {
			end = ev.Time
		}
		if ev.Type == jobs.TypeSucceeded {
			r.Succeeded++
			lat = append(lat, ev.Time.Sub(d.submitted[id]))
			continue
		}
		r.Failed++
		code, step := "unknown", cmp.Or(ev.Data.Step, "?")
		if e := ev.Data.Error; e != nil {
			code, step = e.Code, cmp.Or(e.Step, step)
		}
		r.Failures[code+" at "+string(step)]++
	}
	if !end.IsZero() {
		r.WallSeconds = end.Sub(start).Seconds()
	}
	r.SubmitToEnd = percentilesOf(lat)

	r.APIRequests = totalRequests(d.stats)
	r.RequestsPerDeploy = ratio(r.APIRequests, r.Succeeded)
	for _, ep := range vercel.Endpoints() {
		if n := d.stats.Requests[ep]; n > 0 {
			r.Endpoints = append(r.Endpoints, endpointCount{
				Endpoint: string(ep), Requests: n, Succeeded: d.stats.Succeeded[ep], PerDeploy: ratio(n, r.Succeeded),
			})
		}
	}
	r.Polls = pollStatsOf(d.rec.Polls)
	r.Streams = pollStatsOf(d.rec.Streams)

	r.UploadsAccepted = d.stats.Uploads
	r.UploadRequests, r.Sources = uploadsPerSource(d.rec.Uploads, benchTeam, d.sources, d.perSource)
	r.UploadsTargetHolds = len(r.Sources) > 0
	for _, s := range r.Sources {
		if s.Uploads != 1 {
			r.UploadsTargetHolds = false
		}
	}
	r.RequestsTargetHolds = r.Succeeded == r.Deploys && r.Succeeded > 0 && r.RequestsPerDeploy <= target
	return r
}

// uploadsPerSource counts the upload requests of each source for one team,
// in the order of shas, and all upload requests whatever their team.
func uploadsPerSource(uploads map[string]int, team string, shas []string, deploys []int) (int, []sourceUploads) {
	total := 0
	for _, n := range uploads {
		total += n
	}
	out := make([]sourceUploads, len(shas))
	for i, sha := range shas {
		out[i] = sourceUploads{SHA1: sha, Uploads: uploads[team+"/"+sha]}
		if i < len(deploys) {
			out[i].Deploys = deploys[i]
		}
	}
	return total, out
}

// pollStatsOf summarizes polls per deployment.
func pollStatsOf(polls map[string]int) pollStats {
	if len(polls) == 0 {
		return pollStats{}
	}
	counts := make([]int, 0, len(polls))
	sum := 0
	for _, n := range polls {
		counts = append(counts, n)
		sum += n
	}
	slices.Sort(counts)
	return pollStats{
		Deployments: len(counts),
		Mean:        float64(sum) / float64(len(counts)),
		Min:         counts[0],
		Median:      counts[(len(counts)-1)/2],
		Max:         counts[len(counts)-1],
	}
}

// percentilesOf returns the median (nearest rank) and maximum.
func percentilesOf(ds []time.Duration) percentiles {
	if len(ds) == 0 {
		return percentiles{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(math.Ceil(0.5*float64(len(s)))) - 1
	return percentiles{Count: len(s), P50: s[max(rank, 0)].Seconds(), Max: s[len(s)-1].Seconds()}
}

func earliest(ts map[string]time.Time) time.Time {
	var first time.Time
	for _, t := range ts {
		if first.IsZero() || t.Before(first) {
			first = t
		}
	}
	return first
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// writeReport writes rep into dir's results file, keeping the part of an
// earlier run that this run did not measure.
func writeReport(dir string, rep report) (string, error) {
	path := filepath.Join(dir, resultsFile)
	old, err := os.ReadFile(path)
	switch {
	case err == nil:
		var prev report
		if json.Unmarshal(old, &prev) == nil {
			rep.Requests = cmp.Or(rep.Requests, prev.Requests)
			rep.Scale = cmp.Or(rep.Scale, prev.Scale)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return path, err
	}
	return path, bench.WriteJSON(path, rep)
}
