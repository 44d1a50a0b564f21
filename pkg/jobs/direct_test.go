package jobs_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/jobstest"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

// directRequest stores tgz in the harness's sources bucket, as Submit
// would, and returns a request for it.
func directRequest(t *testing.T, h *jobstest.Harness, id string, tgz []byte) *jobs.Request {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sha := vercel.SHA1Hex(tgz)
	if err := h.Assets.Sources.Put(ctx, "acme", sha, tgz); err != nil {
		t.Fatalf("store tarball: %v", err)
	}
	return &jobs.Request{
		ID: id, Tenant: "acme", Name: "direct", Framework: "nextjs",
		Source: jobs.SourceRef{Bucket: jobs.BucketSources, SHA1: sha, Size: int64(len(tgz))},
	}
}

func deployDirect(t *testing.T, p *jobs.Pipeline, req *jobs.Request) (*jobs.JobState, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return p.Deploy(ctx, req, jobs.DeployConfig{NewBackOff: jobstest.FastBackOff})
}

func TestDeployRunsEveryStepWithoutTheQueue(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{NoWorkers: true})
	req := directRequest(t, h, "direct-1", h.Tarball(t, nil))
	st, err := deployDirect(t, h.NewPipeline(t), req)
	if err != nil {
		t.Fatalf("Deploy: %v", err)
	}
	if st.Status != jobs.StatusSucceeded || st.Step != jobs.StepCreateClaim {
		t.Fatalf("state %s after step %q, want succeeded after %s", st.Status, st.Step, jobs.StepCreateClaim)
	}
	if st.ProjectID == "" || st.StoreID == "" || st.DeploymentID == "" || st.ClaimCode == "" ||
		!strings.HasPrefix(st.DeploymentURL, "https://") || st.ProjectName != jobs.ProjectName(req) {
		t.Fatalf("state lacks results: %+v", st)
	}
	if req.Version != 0 {
		t.Errorf("Deploy changed the caller's request: version %d", req.Version)
	}
	d, ok := h.Sim.Deployment(st.DeploymentID)
	if !ok || d.ReadyState != "READY" || d.Meta["deployqRequestId"] != req.ID {
		t.Fatalf("simulator's deployment: %+v (found %v)", d, ok)
	}
	// Nothing of the queue's: no checkpoint, no event.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if cp, err := jobs.ReadState(ctx, h.Assets.Jobs, req.Tenant, req.ID); err != nil || cp != nil {
		t.Errorf("checkpoint after a direct run: %+v, %v", cp, err)
	}
	if evs := h.Events(t, req.Tenant, req.ID); len(evs) != 0 {
		t.Errorf("%d events after a direct run, want none", len(evs))
	}
}

func TestDeployFailureCleansUp(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{NoWorkers: true})
	req := directRequest(t, h, "direct-broken", jobstest.FailingTarball(t, "boom"))
	st, err := deployDirect(t, h.NewPipeline(t), req)
	var se *jobs.StepError
	if !errors.As(err, &se) || se.Step != jobs.StepWaitReady || se.Code != vercelsim.BuildFailedCode {
		t.Fatalf("Deploy error %v, want a StepError at %s with code %s", err, jobs.StepWaitReady, vercelsim.BuildFailedCode)
	}
	if st.Status != jobs.StatusFailed || st.Step != jobs.StepCreateDeployment {
		t.Fatalf("state %s after step %q", st.Status, st.Step)
	}
	if ps, ss := h.Sim.Projects(), h.Sim.Stores(); len(ps) != 0 || len(ss) != 0 {
		t.Fatalf("left %d projects and %d stores after a failure", len(ps), len(ss))
	}
}

// loseOneAnswer forwards every request, but answers the first one to path
// with a 502 after the simulator handled it: the effect happened and the
// caller does not know.
type loseOneAnswer struct {
	path string
	base http.RoundTripper
	once sync.Once
}

func (l *loseOneAnswer) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.base.RoundTrip(r)
	if err != nil || r.URL.Path != l.path {
		return resp, err
	}
	lost := false
	l.once.Do(func() { lost = true })
	if !lost {
		return resp, nil
	}
	resp.Body.Close()
	return &http.Response{StatusCode: http.StatusBadGateway, Header: http.Header{"Content-Type": {"application/json"}},
		Body: http.NoBody, Request: r}, nil
}

func TestDeployRetriesALostAnswerWithoutDuplicates(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{NoWorkers: true})
	rt := &loseOneAnswer{path: "/v1/storage/stores/integration", base: http.DefaultTransport.(*http.Transport).Clone()}
	api := jobstest.NewAPI(t, h.SimURL, vercel.WithHTTPClient(&http.Client{Transport: rt}))
	p, err := jobs.NewPipeline(api, h.Assets.Sources, h.Assets.Uploads, jobs.PipelineConfig{
		IntegrationConfigID: "icfg_test", ExpectedBuild: 50 * time.Millisecond, PollMin: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	req := directRequest(t, h, "direct-retry", h.Tarball(t, nil))
	st, err := deployDirect(t, p, req)
	if err != nil {
		t.Fatalf("Deploy: %v", err)
	}
	if len(st.Errors) != 1 || st.Errors[0].Step != jobs.StepCreateDatabase {
		t.Errorf("recorded errors %+v, want one at %s", st.Errors, jobs.StepCreateDatabase)
	}
	if n := h.Sim.Stats().StoresCreated[jobs.StoreName(req)]; n != 1 {
		t.Fatalf("%d stores created for one request, want 1 (the lost answer's store adopted)", n)
	}
}

func TestDeployRefusesAnInvalidRequest(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{NoWorkers: true})
	req := directRequest(t, h, "direct-invalid", h.Tarball(t, nil))
	req.Tenant = "Not A Tenant"
	_, err := deployDirect(t, h.NewPipeline(t), req)
	var verr *jobs.ValidationError
	if !errors.As(err, &verr) || verr.Field != "tenant" {
		t.Fatalf("Deploy error %v, want a validation error on tenant", err)
	}
	if n := h.Sim.Stats().Requests[vercel.EndpointCreateProject]; n != 0 {
		t.Fatalf("%d API calls for an invalid request", n)
	}
}

// The poll schedule learns the build time from the API's own timestamps
// (createdAt and ready of the READY deployment): after one 300 ms build,
// an expectation of 2 s moves a quarter of the way, to 1.575 s.
func TestBuildEstimateLearnsFromTheAPI(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{
		NoWorkers: true,
		Sim:       vercelsim.Config{BuildTime: 300 * time.Millisecond},
		Pipeline:  jobs.PipelineConfig{ExpectedBuild: 2 * time.Second},
	})
	p := h.NewPipeline(t)
	if mean, _ := p.BuildEstimate(); mean != 2*time.Second {
		t.Fatalf("initial estimate %s, want the configured 2s", mean)
	}
	if _, err := deployDirect(t, p, directRequest(t, h, "learn-1", h.Tarball(t, nil))); err != nil {
		t.Fatal(err)
	}
	// The simulator's timestamps are whole milliseconds.
	if mean, _ := p.BuildEstimate(); mean < 1574*time.Millisecond || mean > 1576*time.Millisecond {
		t.Fatalf("estimate after a 300ms build: %s, want 1.575s", mean)
	}
}
