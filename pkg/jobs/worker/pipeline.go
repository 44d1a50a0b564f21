package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync/atomic"
	"time"

	"github.com/deployq/deployq/internal/buildtime"
	"github.com/deployq/deployq/pkg/jobs"
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
	// Defaults to none.
	ExpectedBuild time.Duration
	// PollMin and PollMax bound the interval between status polls: every
	// poll spends API budget. Default to 1 s and 15 s.
	PollMin, PollMax time.Duration
	// StreamPoll is when a job following its deployment's event stream
	// polls the deployment's status, counted from the stream's opening;
	// later polls come at doubling intervals. The stream is not promised
	// to carry the final state (Vercel's CLI polls every 5 s while it
	// streams): a stream gone silent is cut by the client's idle timeout
	// (2 min) and polled at once, and these polls end the wait of one
	// that keeps talking without the final state. They are sparse
	// because streams are followed to spare calls: with 4 min, a build
	// shorter than that costs none. Defaults to 4 min.
	StreamPoll time.Duration
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
	// Sequential makes every call at its own step: no call goes out ahead
	// (early.go). For comparisons; defaults to false.
	Sequential bool
	// KeepFailedResources keeps a failed job's project and database for
	// inspection instead of deleting them. Defaults to false.
	KeepFailedResources bool
	// Metrics records how jobs wait for their builds and the expected
	// build time. Defaults to none.
	Metrics *metrics.Metrics
	// Limits bound the source tarballs the pipeline reads (size, files,
	// unpacked bytes). Give it the workers' Config.Limits.
	// Defaults to DefaultLimits().
	Limits jobs.Limits
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
	if c.StreamPoll <= 0 {
		c.StreamPoll = 4 * time.Minute
	}
	if c.PollMax < c.PollMin {
		c.PollMax = c.PollMin
	}
	c.Limits = c.Limits.WithDefaults()
	return c
}

// defaultExpectedBuild is the mean a cold estimate starts from (no build
// seen, PipelineConfig.ExpectedBuild not set): Vercel builds take tens of
// seconds. No poll is scheduled from a cold estimate: its jobs wait in
// waitCold until a scout has taught it (waitready.go).
const defaultExpectedBuild = 30 * time.Second

// Pipeline runs the Vercel + Prisma Postgres steps of a deploy. It is
// shared by all jobs of a worker and safe for concurrent use.
type Pipeline struct {
	api     *vercel.Client
	cfg     PipelineConfig
	sources *jobs.SourceStore
	uploads jetstream.KeyValue
	// builds estimates build times, from which status polls are
	// scheduled (waitready.go).
	builds *buildtime.Learner
	// streams holds a token per open deployment event stream
	// (MaxStreams), scouts one per job streaming while the estimate is
	// cold (ColdStreams).
	streams chan struct{}
	scouts  chan struct{}
	// streamsOff holds, in Unix nanoseconds, until when no event stream
	// is opened: the API refused to serve one (followStream).
	streamsOff atomic.Int64
	// vetted remembers the source objects checkSource passed.
	vetted vettedSet
	// steps is the pipeline, in order (steps.go).
	steps []step
}

// NewPipeline returns a pipeline calling api, reading tarballs from
// sources and remembering uploads in uploads (which may be nil).
func NewPipeline(api *vercel.Client, sources *jobs.SourceStore, uploads jetstream.KeyValue, cfg PipelineConfig) (*Pipeline, error) {
	if api == nil {
		return nil, errors.New("worker: NewPipeline needs a Vercel client")
	}
	if sources == nil {
		return nil, errors.New("worker: NewPipeline needs the sources store")
	}
	configured := cfg.ExpectedBuild > 0
	cfg = cfg.withDefaults()
	if cfg.IntegrationConfigID == "" {
		return nil, errors.New("worker: PipelineConfig.IntegrationConfigID is required")
	}
	p := &Pipeline{api: api, cfg: cfg, sources: sources, uploads: uploads,
		builds:  buildtime.New(cfg.BuildTimes, api.TeamID(), cfg.ExpectedBuild, configured, time.Now),
		streams: make(chan struct{}, cfg.MaxStreams),
		scouts:  make(chan struct{}, cfg.ColdStreams),
		steps:   pipelineSteps(),
	}
	return p, nil
}

// next is the index of the first step after last ("": none done yet).
// index is the position of step in the pipeline.
func (p *Pipeline) index(step jobs.Step) int {
	for i, s := range p.steps {
		if s.name == step {
			return i
		}
	}
	return len(p.steps)
}

func (p *Pipeline) next(last jobs.Step) int {
	for i, s := range p.steps {
		if s.name == last {
			return i + 1
		}
	}
	return 0
}

// stepAfter is the step a job whose last completed step is last would
// run next (the last step when all are done).
func (p *Pipeline) stepAfter(last jobs.Step) jobs.Step {
	return p.steps[min(p.next(last), len(p.steps)-1)].name
}

// StepError is a step's failure as the pipeline saw it.
type StepError struct {
	Step jobs.Step
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
	// Logs are the build's last log lines, for the failed event.
	Logs []string
}

func (e *BuildError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = "no message"
	}
	return fmt.Sprintf("deployment %s ended %s (%s): %s", e.DeploymentID, e.State, e.Code, msg)
}

// readSource reads a tenant's tarball for upload. checkSource vetted it
// before the first step, but it may have been written again since: the
// read is bounded by the declared size (the cap when ref.Size is 0,
// unknown) and the content checked again.
func (p *Pipeline) readSource(ctx context.Context, tenant string, ref jobs.SourceRef) ([]byte, error) {
	bound := ref.Size
	if bound <= 0 || bound > p.cfg.Limits.MaxSourceBytes {
		bound = p.cfg.Limits.MaxSourceBytes
	}
	info, err := p.sources.Stat(ctx, tenant, ref.SHA1)
	if errors.Is(err, jobs.ErrSourceNotFound) {
		return nil, jobs.SourceErrorf(ref.SHA1, "source_missing", "not in the %s store", jobs.BucketSources)
	}
	if err != nil {
		return nil, fmt.Errorf("read source tarball: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(p.sources.Open(ctx, info), bound+1))
	if err != nil {
		return nil, fmt.Errorf("read source tarball: %w", err)
	}
	if int64(len(data)) > bound || (ref.Size > 0 && int64(len(data)) != ref.Size) || vercel.SHA1Hex(data) != ref.SHA1 {
		return nil, jobs.SourceErrorf(ref.SHA1, "source_sha1_mismatch", "stored content no longer matches its SHA-1 and size")
	}
	return data, nil
}

// compensate deletes what a failed job created and returns what it
// deleted. The project goes first: deleting it removes its connection to
// the database, and a database still connected to a project may not be
// deleted (Vercel's CLI refuses to; the API may too). Should the project
// stay (its deletion failed), the database is disconnected from every
// project before it is deleted.
func (p *Pipeline) compensate(ctx context.Context, st *jobs.JobState) (cleaned []string, errs []error) {
	if p.cfg.KeepFailedResources || st.AppVersion > 1 {
		// A later version's project and database are its app's, which
		// lives on with the versions that worked.
		return nil, nil
	}
	projectGone := st.ProjectID == ""
	if st.ProjectID != "" {
		if _, err := p.api.DeleteProject(ctx, st.ProjectID); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("delete project %s: %w", st.ProjectID, err))
		} else {
			projectGone = true
			cleaned = append(cleaned, "project")
		}
	}
	if st.StoreID != "" {
		if !projectGone {
			if _, err := p.api.DisconnectStore(ctx, st.StoreID); err != nil && !isNotFound(err) {
				errs = append(errs, fmt.Errorf("disconnect database %s: %w", st.StoreID, err))
			}
		}
		if _, err := p.api.DeleteStore(ctx, st.StoreID); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("delete database %s: %w", st.StoreID, err))
		} else {
			cleaned = append(cleaned, "database")
		}
	}
	slices.Sort(cleaned) // the events' order, whatever the deletions' was
	return cleaned, errs
}

func isNotFound(err error) bool {
	var apiErr *vercel.APIError
	return errors.As(err, &apiErr) && apiErr.StatusCode == 404
}

// streamsServed reports whether event streams may be tried at now.
func (p *Pipeline) streamsServed(now time.Time) bool { return now.UnixNano() >= p.streamsOff.Load() }

// noStreamsUntil stops event streams from now until until; it reports
// whether they were served until now (so the first refusal is the one
// logged).
func (p *Pipeline) noStreamsUntil(now, until time.Time) bool {
	return p.streamsOff.Swap(until.UnixNano()) <= now.UnixNano()
}
