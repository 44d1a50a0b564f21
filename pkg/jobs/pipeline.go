package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/deployq/deployq/pkg/metrics"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/nats-io/nats.go/jetstream"
)

// PipelineConfig holds what every job of one worker shares: the Prisma
// integration settings and the polling schedule.
type PipelineConfig struct {
	// IntegrationConfigID is the Prisma integration's configuration id
	// (icfg_…). Required.
	IntegrationConfigID string
	// ProductID is the Prisma Postgres product. Defaults to iap_yVdbiKqs5fLkYDAB.
	ProductID string
	// BillingPlan is the Prisma billing plan. Defaults to partnerEntry.
	BillingPlan string
	// Region is the database region when the request names none.
	// Defaults to iad1.
	Region string
	// Target is the deployment target. Defaults to production.
	Target string
	// ExpectedBuild seeds the build-time estimate that schedules the first
	// status poll; the estimate then follows observed builds. Unset, the
	// estimate is cold until a build is observed (here or, with
	// BuildTimes, by another worker of the team), and waiting jobs learn
	// it from event streams instead of polling on a guess (ColdStreams).
	// Defaults to none (BuildEstimate reports 30 s until a build is seen).
	ExpectedBuild time.Duration
	// PollMin and PollMax bound the interval between status polls: every
	// poll spends API budget. Default to 1 s and 15 s.
	PollMin, PollMax time.Duration
	// MaxStreams bounds the deployment event streams this pipeline keeps
	// open at once; jobs beyond it poll. Each open stream holds an HTTP
	// connection with its buffers (tens of kilobytes), and one worker
	// process may wait on ten thousand builds at once, so the bound keeps
	// streaming's memory small and fixed. It must stay below the
	// connections the Vercel client may open (512 by default), or open
	// streams would hold every one of them. Defaults to 256.
	MaxStreams int
	// ColdStreams is how many jobs follow their deployment's event stream
	// while the estimate is cold; the other waiting jobs wait until one of
	// them has learned the build time, then poll once at their own
	// expected end. More of them cost a call each and shorten the wait of
	// the rest (the first of them to end teaches the others). Defaults
	// to 4.
	ColdStreams int
	// BuildTimes is the DEPLOY_BUILDTIMES bucket (Assets.BuildTimes): the
	// build-time estimate is shared through it by every worker of the
	// Vercel team, so a fresh worker starts from what the fleet learned.
	// Defaults to nil: the estimate lives in this pipeline only.
	BuildTimes jetstream.KeyValue
	// KeepFailedResources keeps a failed job's project and database for
	// inspection instead of deleting them. Defaults to false.
	KeepFailedResources bool
	// Metrics records how jobs wait for their builds and the expected
	// build time. Defaults to none.
	Metrics *metrics.Metrics
	// Limits bound the source tarballs the pipeline reads (size, files,
	// unpacked bytes). Give it the workers' WorkerConfig.Limits.
	// Defaults to DefaultLimits().
	Limits Limits
}

func (c PipelineConfig) withDefaults() PipelineConfig {
	if c.ProductID == "" {
		c.ProductID = "iap_yVdbiKqs5fLkYDAB"
	}
	if c.BillingPlan == "" {
		c.BillingPlan = "partnerEntry"
	}
	if c.Region == "" {
		c.Region = "iad1"
	}
	if c.Target == "" {
		c.Target = "production"
	}
	if c.ExpectedBuild <= 0 {
		c.ExpectedBuild = defaultExpectedBuild
	}
	if c.MaxStreams <= 0 {
		c.MaxStreams = 256
	}
	if c.ColdStreams <= 0 {
		c.ColdStreams = 4
	}
	c.ColdStreams = min(c.ColdStreams, c.MaxStreams)
	if c.PollMin <= 0 {
		c.PollMin = time.Second
	}
	if c.PollMax <= 0 {
		c.PollMax = 15 * time.Second
	}
	if c.PollMax < c.PollMin {
		c.PollMax = c.PollMin
	}
	c.Limits = c.Limits.withDefaults()
	return c
}

// defaultExpectedBuild is what BuildEstimate reports before any build was
// seen when PipelineConfig.ExpectedBuild is not set: Vercel builds take
// tens of seconds.
const defaultExpectedBuild = 30 * time.Second

// Pipeline runs the Vercel + Prisma Postgres steps of a deploy. It is
// shared by all jobs of a worker and safe for concurrent use.
type Pipeline struct {
	api     *vercel.Client
	cfg     PipelineConfig
	sources *SourceStore
	uploads jetstream.KeyValue
	// builds estimates build times, from which status polls are
	// scheduled (waitready.go).
	builds *buildTimes
	// streams holds a token per open deployment event stream
	// (MaxStreams), scouts one per job streaming while the estimate is
	// cold (ColdStreams).
	streams chan struct{}
	scouts  chan struct{}
	// vetted remembers the source objects checkSource passed.
	vetted vettedSet
}

// NewPipeline returns a pipeline calling api, reading tarballs from
// sources and remembering uploads in uploads (which may be nil).
func NewPipeline(api *vercel.Client, sources *SourceStore, uploads jetstream.KeyValue, cfg PipelineConfig) (*Pipeline, error) {
	if api == nil {
		return nil, errors.New("jobs: NewPipeline needs a Vercel client")
	}
	if sources == nil {
		return nil, errors.New("jobs: NewPipeline needs the sources store")
	}
	configured := cfg.ExpectedBuild > 0
	cfg = cfg.withDefaults()
	if cfg.IntegrationConfigID == "" {
		return nil, errors.New("jobs: PipelineConfig.IntegrationConfigID is required")
	}
	p := &Pipeline{api: api, cfg: cfg, sources: sources, uploads: uploads,
		builds:  newBuildTimes(cfg.BuildTimes, api.TeamID(), cfg.ExpectedBuild, configured, time.Now),
		streams: make(chan struct{}, cfg.MaxStreams),
		scouts:  make(chan struct{}, cfg.ColdStreams),
	}
	return p, nil
}

// StepError is a step's failure as the pipeline saw it.
type StepError struct {
	Step Step
	// Code is machine-readable: the API's error code, "BUILD_FAILED", …
	Code string
	Err  error
}

func (e *StepError) Error() string { return string(e.Step) + ": " + e.Err.Error() }
func (e *StepError) Unwrap() error { return e.Err }

// BuildError is a deployment that ended in ERROR or CANCELED: permanent.
type BuildError struct {
	DeploymentID string
	State        string
	Code         string
	Message      string
}

func (e *BuildError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = "no message"
	}
	return fmt.Sprintf("deployment %s ended %s (%s): %s", e.DeploymentID, e.State, e.Code, msg)
}

// jobRun is one attempt at running a job through the pipeline.
type jobRun struct {
	p   *Pipeline
	req *Request
	st  *JobState
	// uncertain marks that an earlier attempt of the current step may have
	// had its effect without us seeing the answer (lost response, crash,
	// takeover), so the step looks its resource up before creating it.
	uncertain bool
	sleep     func(ctx context.Context, d time.Duration) error
	now       func() time.Time
	// fence, when set, runs right before each creating call is sent
	// (after its budget wait): a worker that lost the job meanwhile
	// creates nothing. Nil for Pipeline.Deploy, which has no lease.
	fence func(context.Context) error
}

// fenced is ctx for a creating call: see jobRun.fence.
func (r *jobRun) fenced(ctx context.Context) context.Context {
	if r.fence == nil {
		return ctx
	}
	return vercel.WithBeforeSend(ctx, r.fence)
}

func (r *jobRun) runStep(ctx context.Context, step Step) error {
	switch step {
	case StepCreateProject:
		return r.createProject(ctx)
	case StepAuthorize:
		return r.authorize(ctx)
	case StepCreateDatabase:
		return r.createDatabase(ctx)
	case StepConnectDatabase:
		return r.connectDatabase(ctx)
	case StepUploadSource:
		return r.uploadSource(ctx)
	case StepCreateDeployment:
		return r.createDeployment(ctx)
	case StepWaitReady:
		return r.waitReady(ctx)
	case StepCreateClaim:
		return r.createClaim(ctx)
	}
	return fmt.Errorf("unknown step %q", step)
}

func (r *jobRun) createProject(ctx context.Context) error {
	ctx = r.fenced(ctx)
	if r.st.ProjectID != "" {
		return nil
	}
	name := ProjectName(r.req)
	env := make([]vercel.EnvVar, 0, len(r.req.Env))
	for _, k := range sortedKeys(r.req.Env) {
		env = append(env, vercel.EnvVar{Key: k, Value: r.req.Env[k], Type: "encrypted",
			Target: []string{"production", "preview", "development"}})
	}
	proj, _, err := r.p.api.CreateProject(ctx, vercel.CreateProjectRequest{
		Name: name, Framework: r.req.Framework, EnvironmentVariables: env,
	})
	var apiErr *vercel.APIError
	if errors.As(err, &apiErr) && apiErr.StatusCode == 409 {
		// The name is derived from this request's id: a project holding it
		// was created by an earlier attempt whose answer was lost.
		proj, _, err = r.p.api.GetProject(ctx, name)
	}
	if err != nil {
		return err
	}
	r.st.ProjectID, r.st.ProjectName = proj.ID, proj.Name
	return nil
}

func (r *jobRun) region() string {
	if r.req.Region != "" {
		return r.req.Region
	}
	return r.p.cfg.Region
}

func (r *jobRun) authorize(ctx context.Context) error {
	ctx = r.fenced(ctx)
	if r.st.AuthorizationID != "" {
		return nil
	}
	meta, _ := json.Marshal(map[string]string{"region": r.region()})
	auth, _, err := r.p.api.AuthorizeIntegration(ctx, vercel.AuthorizeRequest{
		IntegrationIDOrSlug:        "prisma",
		ProductID:                  r.p.cfg.ProductID,
		BillingPlanID:              r.p.cfg.BillingPlan,
		Metadata:                   string(meta),
		IntegrationConfigurationID: r.p.cfg.IntegrationConfigID,
	})
	if err != nil {
		return err
	}
	if auth.Status == "failed" {
		return &StepError{Step: StepAuthorize, Code: "authorization_failed",
			Err: fmt.Errorf("integration authorization %s failed", auth.ID)}
	}
	r.st.AuthorizationID = auth.ID
	return nil
}

func (r *jobRun) createDatabase(ctx context.Context) error {
	ctx = r.fenced(ctx)
	if r.st.StoreID != "" {
		return nil
	}
	name := StoreName(r.req)
	if r.uncertain {
		// A store may exist from an attempt whose answer was lost; its
		// name is derived from the request id, so it is ours.
		res, _, err := r.p.api.ListResources(ctx, r.p.cfg.IntegrationConfigID)
		if err != nil {
			return err
		}
		for _, x := range res {
			if x.Name == name {
				r.st.StoreID, r.st.StoreName = x.InternalID, name
				return nil
			}
		}
	}
	store, _, err := r.p.api.CreateStore(ctx, vercel.CreateStoreRequest{
		Name:                       name,
		IntegrationConfigurationID: r.p.cfg.IntegrationConfigID,
		IntegrationProductIDOrSlug: r.p.cfg.ProductID,
		BillingPlanID:              r.p.cfg.BillingPlan,
		Metadata:                   map[string]any{"region": r.region()},
		AuthorizationID:            r.st.AuthorizationID,
		Source:                     "marketplace",
	})
	if err != nil {
		return err
	}
	r.st.StoreID, r.st.StoreName = store.ID, name
	return nil
}

func (r *jobRun) connectDatabase(ctx context.Context) error {
	// The client treats "already connected" as success, so a retry after a
	// lost answer is harmless.
	_, err := r.p.api.ConnectStore(ctx, vercel.ConnectStoreRequest{
		IntegrationConfigurationID: r.p.cfg.IntegrationConfigID,
		ProductID:                  r.p.cfg.ProductID,
		StoreID:                    r.st.StoreID,
		ProjectID:                  r.st.ProjectID,
	})
	return err
}

func (r *jobRun) uploadKey() string {
	team := r.p.api.TeamID()
	if team == "" {
		team = "personal"
	}
	return team + "." + r.req.Source.SHA1
}

// Values of an upload key.
var (
	uploadInProgress = []byte("uploading")
	uploadDone       = []byte("done")
)

// uploadClaimTTL is how long an "uploading" claim holds others back; a
// claim older than that belongs to a worker that died mid-upload.
const uploadClaimTTL = 2 * time.Minute

// uploadSource sends the tarball to Vercel once per team, fleet-wide: the
// job that creates the team's upload key uploads while jobs needing the
// same tarball wait for it to say done. Should that upload fail or Vercel
// forget the file, create deployment's missing_files round trip uploads it.
func (r *jobRun) uploadSource(ctx context.Context) error {
	if r.p.uploads == nil {
		return r.upload(ctx)
	}
	key := r.uploadKey()
	for range 3 {
		rev, err := r.p.uploads.Create(ctx, key, uploadInProgress)
		if err == nil {
			return r.uploadClaimed(ctx, key, rev)
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("claim upload: %w", err)
		}
		e, err := r.p.uploads.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // released meanwhile: try to claim it
		}
		if err != nil {
			return fmt.Errorf("read upload claim: %w", err)
		}
		switch {
		case bytes.Equal(e.Value(), uploadDone):
			return nil
		case r.now().Sub(e.Created()) > uploadClaimTTL:
			rev, err := r.p.uploads.Update(ctx, key, uploadInProgress, e.Revision())
			if err == nil {
				return r.uploadClaimed(ctx, key, rev)
			}
			continue
		}
		if done, err := r.waitUpload(ctx, key); err != nil || done {
			return err
		}
	}
	return nil // the deployment's missing_files round trip covers the rest
}

func (r *jobRun) uploadClaimed(ctx context.Context, key string, rev uint64) error {
	if err := r.upload(ctx); err != nil {
		// Give the claim back so another job uploads instead of waiting.
		_ = r.p.uploads.Delete(context.WithoutCancel(ctx), key, jetstream.LastRevision(rev))
		return err
	}
	// Best effort: a lost "done" costs waiting jobs one claim TTL at most.
	_, _ = r.p.uploads.Update(ctx, key, uploadDone, rev)
	return nil
}

func (r *jobRun) upload(ctx context.Context) error {
	data, err := r.p.readSource(ctx, r.req.Tenant, r.req.Source)
	if err != nil {
		return err
	}
	_, err = r.p.api.UploadFile(ctx, r.req.Source.SHA1, data)
	return err
}

// waitUpload follows another job's upload of the same tarball. It reports
// done when it finished, false when it was given back (so this job may
// claim it) or the claim outlived its TTL.
func (r *jobRun) waitUpload(ctx context.Context, key string) (bool, error) {
	wctx, cancel := context.WithTimeout(ctx, uploadClaimTTL)
	defer cancel()
	w, err := r.p.uploads.Watch(wctx, key)
	if err != nil {
		return false, fmt.Errorf("watch upload claim: %w", err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case e := <-w.Updates():
			switch {
			case e == nil:
			case e.Operation() != jetstream.KeyValuePut:
				return false, nil
			case bytes.Equal(e.Value(), uploadDone):
				return true, nil
			}
		case <-wctx.Done():
			if ctx.Err() != nil {
				return false, context.Cause(ctx)
			}
			return false, nil
		}
	}
}

// readSource reads a tenant's tarball for upload. checkSource vetted it
// before the first step, but it may have been written again since: the
// read is bounded by the declared size (the cap when ref.Size is 0,
// unknown) and the content checked again.
func (p *Pipeline) readSource(ctx context.Context, tenant string, ref SourceRef) ([]byte, error) {
	bound := ref.Size
	if bound <= 0 || bound > p.cfg.Limits.MaxSourceBytes {
		bound = p.cfg.Limits.MaxSourceBytes
	}
	info, err := p.sources.Stat(ctx, tenant, ref.SHA1)
	if errors.Is(err, ErrSourceNotFound) {
		return nil, sourceErr(ref.SHA1, "source_missing", "not in the %s store", BucketSources)
	}
	if err != nil {
		return nil, fmt.Errorf("read source tarball: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(p.sources.Open(ctx, info), bound+1))
	if err != nil {
		return nil, fmt.Errorf("read source tarball: %w", err)
	}
	if int64(len(data)) > bound || (ref.Size > 0 && int64(len(data)) != ref.Size) || vercel.SHA1Hex(data) != ref.SHA1 {
		return nil, sourceErr(ref.SHA1, "source_sha1_mismatch", "stored content no longer matches its SHA-1 and size")
	}
	return data, nil
}

const metaRequestID = "deployqRequestId"

func (r *jobRun) createDeployment(ctx context.Context) error {
	ctx = r.fenced(ctx)
	if r.st.DeploymentID != "" {
		return nil
	}
	if r.uncertain {
		// A create whose answer was lost started a build; find it by the
		// request id it carries in meta rather than start a second one.
		list, _, err := r.p.api.ListDeployments(ctx, vercel.ListDeploymentsOptions{ProjectID: r.st.ProjectID, Limit: 20})
		if err != nil {
			return err
		}
		for _, d := range list {
			if d.Meta[metaRequestID] == r.req.ID {
				r.st.DeploymentID, r.st.DeployedAt = d.ID, r.now()
				return nil
			}
		}
	}
	req := vercel.CreateDeploymentRequest{
		Name:    r.st.ProjectName,
		Project: r.st.ProjectID,
		Files: []vercel.DeploymentFile{{
			File: ".vercel/source.tgz", SHA: r.req.Source.SHA1, Size: r.req.Source.Size,
		}},
		Target: r.p.cfg.Target,
		Meta:   map[string]string{metaRequestID: r.req.ID, "deployqTenant": r.req.Tenant},
	}
	// A project's first deployment must carry projectSettings; without a
	// framework preset they say "Other".
	req.ProjectSettings = &vercel.ProjectSettings{Framework: r.req.Framework}
	// The missing_files round trip asks for files by SHA-1: this
	// request's tenant's.
	files := vercel.FileSourceFunc(func(ctx context.Context, sha string) ([]byte, error) {
		return r.p.readSource(ctx, r.req.Tenant, SourceRef{SHA1: sha})
	})
	d, _, err := r.p.api.CreateDeploymentUploading(ctx, req, files)
	if err != nil {
		return err
	}
	r.st.DeploymentID, r.st.DeployedAt = d.ID, r.now()
	return nil
}

func liveURL(d *vercel.Deployment) string {
	host := d.URL
	if len(d.Alias) > 0 {
		host = d.Alias[0]
	}
	if host == "" || strings.HasPrefix(host, "https://") {
		return host
	}
	return "https://" + host
}

func (r *jobRun) createClaim(ctx context.Context) error {
	if r.st.ClaimCode != "" {
		return nil
	}
	tc, _, err := r.p.api.CreateTransferRequest(ctx, r.st.ProjectID, vercel.TransferRequest{})
	if err != nil {
		return err
	}
	r.st.ClaimCode = tc.Code
	return nil
}

// compensate deletes what a failed job created, database first since it
// is connected to the project. It returns what it deleted.
func (p *Pipeline) compensate(ctx context.Context, st *JobState) (cleaned []string, errs []error) {
	if p.cfg.KeepFailedResources {
		return nil, nil
	}
	if st.StoreID != "" {
		if _, err := p.api.DeleteStore(ctx, st.StoreID); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("delete database %s: %w", st.StoreID, err))
		} else {
			cleaned = append(cleaned, "database")
		}
	}
	if st.ProjectID != "" {
		if _, err := p.api.DeleteProject(ctx, st.ProjectID); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("delete project %s: %w", st.ProjectID, err))
		} else {
			cleaned = append(cleaned, "project")
		}
	}
	return cleaned, errs
}

func isNotFound(err error) bool {
	var apiErr *vercel.APIError
	return errors.As(err, &apiErr) && apiErr.StatusCode == 404
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
