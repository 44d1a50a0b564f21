package buildtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// How often a pipeline talks to DEPLOY_BUILDTIMES. Never per poll: ten
// thousand jobs may be waiting in one process, and the estimate moves
// slowly. A read every 30 s lets a worker adopt what the fleet learned
// within one build; a write every 10 s at most keeps a busy fleet to a
// few writes a second per team.
const (
	Refresh  = 30 * time.Second
	writeGap = 10 * time.Second
	opTime   = 2 * time.Second
)

// Estimate is what a pipeline knows of build times when it schedules the
// polls of one deployment.
type Estimate struct {
	Mean, Dev time.Duration
	// Samples counts the builds observed, here or (through the bucket)
	// by other workers of the team.
	Samples int64
	// Configured marks a mean given by the operator
	// (PipelineConfig.ExpectedBuild) rather than the built-in guess.
	Configured bool
}

// Cold reports that the estimate rests on nothing: no build observed and
// no expectation configured. Polls scheduled from it would be guesses.
func (e Estimate) Cold() bool { return e.Samples == 0 && !e.Configured }

// Learner is a pipeline's estimate of build time: the moving mean and
// mean deviation of the builds it saw end (exponentially weighted, a
// quarter per observation), starting from PipelineConfig.ExpectedBuild.
//
// With a DEPLOY_BUILDTIMES bucket it is shared by every worker of a Vercel
// team: it is read at first use and then at most every Refresh,
// and written after observations at most every writeGap. Writes
// are plain puts, and the last writer wins: every writer's value is an
// average over the same team's recent builds, so a lost update costs a
// few seconds of one worker's observations, which its next write carries
// again; a compare-and-set loop would cost a read per write and could not
// make an average more right. A worker folds what it reads into its own
// estimate rather than replacing it, so the workers converge.
type Learner struct {
	kv         jetstream.KeyValue // nil: this pipeline only
	key        string
	configured bool
	now        func() time.Time

	mu  sync.Mutex
	est Estimate
	// changed is closed, and replaced, when the estimate stops being
	// cold or a scout leaves: what jobs waiting for one wait on.
	changed chan struct{}
	// loaded is closed once the first read of the bucket has ended.
	loaded    chan struct{}
	lastRead  time.Time // zero until the first read started
	writing   bool
	lastWrite time.Time
	observed  int64  // observations so far, to tell a write that is due
	written   int64  // observations covered by the last write
	rev       uint64 // revision of the entry last read or written
}

// New returns a Learner for team's builds, sharing its estimate through
// kv (nil: this process only), starting from expected; configured says
// that expected was given by the operator (else the estimate is cold
// until a build is seen).
func New(kv jetstream.KeyValue, team string, expected time.Duration, configured bool, now func() time.Time) *Learner {
	return &Learner{
		kv: kv, key: Key(team), configured: configured, now: now,
		est:     Estimate{Mean: expected, Dev: expected / 10, Configured: configured},
		changed: make(chan struct{}),
		loaded:  make(chan struct{}),
	}
}

// Key is the key of a team's entry in DEPLOY_BUILDTIMES. Team ids (team_…) are valid
// keys as they are; anything else is hashed, so no id can address
// another key or break the key syntax.
func Key(team string) string {
	if team == "" {
		return "personal"
	}
	ok := len(team) <= 128
	for _, r := range team {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			ok = false
			break
		}
	}
	if ok {
		return team
	}
	sum := sha256.Sum256([]byte(team))
	return "h-" + hex.EncodeToString(sum[:16])
}

// sharedBuildTime is the value of a team's entry.
type sharedBuildTime struct {
	MeanMs  int64     `json:"meanMs"`
	DevMs   int64     `json:"devMs"`
	Samples int64     `json:"samples"`
	Updated time.Time `json:"updated"`
}

// Current returns the estimate, after reading the bucket if a read is
// due (the first call waits for the first read).
func (b *Learner) Current(ctx context.Context) Estimate {
	b.sync(ctx)
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.est
}

// Snapshot returns the estimate without touching the bucket.
func (b *Learner) Snapshot() Estimate {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.est
}

// Changes returns a channel closed at the next change waiters care about.
// Take it before looking at the estimate, so no change falls in between.
func (b *Learner) Changes() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.changed
}

// Notify wakes the jobs waiting on changes.
func (b *Learner) Notify() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.notifyLocked()
}

func (b *Learner) notifyLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// Observe folds one build time into the estimate. The first build seen by
// a pipeline with no configured expectation replaces the built-in guess
// rather than moving it a quarter of the way, with a wide deviation,
// since one build says little about the spread.
func (b *Learner) Observe(ctx context.Context, d time.Duration) {
	b.mu.Lock()
	e := &b.est
	if e.Samples == 0 && !e.Configured {
		e.Mean, e.Dev = d, d/4
		b.notifyLocked()
	} else {
		diff := d - e.Mean
		e.Mean += diff / 4
		e.Dev += (diff.Abs() - e.Dev) / 4
	}
	e.Samples++
	b.observed++
	b.mu.Unlock()
	b.sync(ctx)
}

// sync reads the bucket when a read is due and writes this pipeline's
// estimate when a write is. Failures are ignored: the estimate only saves
// API calls, and the next due time tries again.
func (b *Learner) sync(ctx context.Context) {
	if b.kv == nil {
		return
	}
	b.mu.Lock()
	now := b.now()
	first := b.lastRead.IsZero()
	read := first || now.Sub(b.lastRead) >= Refresh
	if read {
		b.lastRead = now
	}
	loaded := b.loaded
	write := !read && !b.writing && b.observed > b.written && now.Sub(b.lastWrite) >= writeGap
	var v sharedBuildTime
	if write {
		b.writing = true
		v = sharedBuildTime{MeanMs: b.est.Mean.Milliseconds(), DevMs: b.est.Dev.Milliseconds(), Samples: b.est.Samples, Updated: now}
	}
	observed := b.observed
	b.mu.Unlock()

	switch {
	case read:
		b.read(ctx, first)
	case write:
		b.write(ctx, v, observed, now)
	default:
		select { // the first read may still be under way
		case <-loaded:
		case <-ctx.Done():
		}
	}
}

func (b *Learner) read(ctx context.Context, first bool) {
	if first {
		defer close(b.loaded)
	}
	ctx, cancel := context.WithTimeout(ctx, opTime)
	defer cancel()
	e, err := b.kv.Get(ctx, b.key)
	if err != nil {
		return // none yet, or unreachable: keep what this pipeline knows
	}
	var v sharedBuildTime
	if json.Unmarshal(e.Value(), &v) != nil || v.Samples <= 0 || v.MeanMs <= 0 || v.DevMs < 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if e.Revision() == b.rev {
		return // this pipeline's own write, or folded already
	}
	b.rev = e.Revision()
	mean, dev := time.Duration(v.MeanMs)*time.Millisecond, time.Duration(v.DevMs)*time.Millisecond
	est := &b.est
	if est.Samples == 0 {
		est.Mean, est.Dev, est.Samples = mean, dev, v.Samples
		b.notifyLocked()
		return
	}
	est.Mean, est.Dev = (est.Mean+mean)/2, (est.Dev+dev)/2
	est.Samples = max(est.Samples, v.Samples)
}

func (b *Learner) write(ctx context.Context, v sharedBuildTime, observed int64, now time.Time) {
	data, _ := json.Marshal(v) // plain fields: cannot fail
	ctx, cancel := context.WithTimeout(ctx, opTime)
	defer cancel()
	rev, err := b.kv.Put(ctx, b.key, data)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.writing = false
	b.lastWrite = now // a failed write waits its turn too, rather than retry per poll
	if err == nil {
		b.written, b.rev = observed, rev
	}
}
