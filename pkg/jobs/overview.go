package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Overview is the whole queue at a glance: what waits and runs per
// tenant, the oldest waiting request, the dead letters and the apps. It
// is an admin's read (Client.Overview); `enqueue stats` prints it.
type Overview struct {
	At time.Time `json:"at"`
	// Queued is every request in the requests stream (waiting or held by
	// a worker); Oldest the time of the oldest, zero when none.
	Queued int       `json:"queued"`
	Oldest time.Time `json:"oldest,omitzero"`
	// Tenants are the tenants with a lane (a consumer) on the requests
	// stream: those with work, and those with work in the last
	// TENANT_CONSUMER_IDLE.
	Tenants []TenantQueue `json:"tenants"`
	// DeadLetters counts the DLQ's entries.
	DeadLetters int `json:"deadLetters"`
	// Apps counts the apps by state.
	Apps map[AppState]int `json:"apps"`
}

// TenantQueue is one tenant's share of the queue.
type TenantQueue struct {
	Tenant string `json:"tenant"`
	// Waiting are requests no worker holds; Running those a worker holds
	// (running, or held for the tenant's quota). Batch counts the
	// tenant's batch requests among both.
	Waiting int `json:"waiting"`
	Running int `json:"running"`
	Batch   int `json:"batch"`
	// Oldest is when the oldest of the tenant's queued requests was
	// submitted; zero when it has none.
	Oldest time.Time `json:"oldest,omitzero"`
}

// Overview reads the queue's state: the requests stream and its
// consumers, the DLQ, and the apps.
func (c *Client) Overview(ctx context.Context) (*Overview, error) {
	if err := c.adminOnly("read the queue's overview"); err != nil {
		return nil, err
	}
	ctx, cancel := c.apiCtx(ctx)
	defer cancel()
	o := &Overview{At: c.now(), Apps: map[AppState]int{}}
	info, err := c.requests.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("overview: %w", err)
	}
	o.Queued = int(info.State.Msgs)
	if o.Queued > 0 {
		o.Oldest = info.State.FirstTime
	}
	byTenant := map[string]*TenantQueue{}
	lister := c.requests.ListConsumers(ctx)
	for ci := range lister.Info() {
		tenant, batch, ok := laneTenant(ci.Config)
		if !ok {
			continue
		}
		t := byTenant[tenant]
		if t == nil {
			t = &TenantQueue{Tenant: tenant}
			byTenant[tenant] = t
		}
		t.Waiting += int(ci.NumPending)
		t.Running += ci.NumAckPending
		if batch {
			t.Batch += int(ci.NumPending) + ci.NumAckPending
		}
	}
	if err := lister.Err(); err != nil {
		return nil, fmt.Errorf("overview: list the lanes: %w", err)
	}
	for _, t := range byTenant {
		if t.Waiting+t.Running == 0 {
			continue
		}
		// The first message of the tenant's subjects is its oldest.
		m, err := c.requests.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(requestsPrefix+t.Tenant+".>"))
		switch {
		case err == nil:
			t.Oldest = m.Time
		case !errors.Is(err, jetstream.ErrMsgNotFound):
			return nil, fmt.Errorf("overview: oldest request of %s: %w", t.Tenant, err)
		}
	}
	for _, t := range byTenant {
		o.Tenants = append(o.Tenants, *t)
	}
	slices.SortFunc(o.Tenants, func(a, b TenantQueue) int {
		if a.Waiting+a.Running != b.Waiting+b.Running {
			return (b.Waiting + b.Running) - (a.Waiting + a.Running)
		}
		return strings.Compare(a.Tenant, b.Tenant)
	})
	dinfo, err := c.dlq.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("overview: %w", err)
	}
	o.DeadLetters = int(dinfo.State.Msgs)
	if kv, err := c.js.KeyValue(ctx, BucketApps); err == nil {
		apps, err := ListApps(ctx, kv, "")
		if err != nil {
			return nil, fmt.Errorf("overview: %w", err)
		}
		for _, a := range apps {
			o.Apps[a.State]++
		}
	}
	return o, nil
}

// laneTenant reads the tenant a lane serves from its filter subject.
func laneTenant(cfg jetstream.ConsumerConfig) (tenant string, batch, ok bool) {
	if !IsTenantConsumer(cfg.Name) {
		return "", false, false
	}
	rest, found := strings.CutPrefix(cfg.FilterSubject, requestsPrefix)
	if !found {
		return "", false, false
	}
	tenant, tail, _ := strings.Cut(rest, ".")
	return tenant, strings.HasPrefix(tail, "batch."), tenant != ""
}
