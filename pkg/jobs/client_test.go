package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/jobstest"
)

// A producer submitting the same tarball again within SourceGrace/2
// neither uploads it again nor looks it up: it remembers when the store
// got it. Another client, which does not know, looks it up once and does
// not upload it either.
// waitLong bounds a wait for an outcome that comes in well under a
// second when all is well.
const waitLong = 60 * time.Second

func TestSubmitRemembersStoredTarballs(t *testing.T) {
	t.Parallel()
	h := jobstest.Start(t, jobstest.Config{NoWorkers: true})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	spy, err := h.NATS.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer spy.Close()
	// Tarball metadata reads (direct gets) and chunk writes.
	lookups, err := spy.SubscribeSync("$JS.API.DIRECT.GET." + jobs.StreamSources + ".>")
	if err != nil {
		t.Fatal(err)
	}
	uploads, err := spy.SubscribeSync("deploy.sources.acme.*.0")
	if err != nil {
		t.Fatal(err)
	}
	if err := spy.Flush(); err != nil {
		t.Fatal(err)
	}
	count := func() (int, int) {
		t.Helper()
		if err := spy.Flush(); err != nil {
			t.Fatal(err)
		}
		// The spy's connection sees each message once it has flushed the
		// publisher's: a round trip on the publisher's connection first.
		if err := h.NC.Flush(); err != nil {
			t.Fatal(err)
		}
		l, _, _ := lookups.Pending()
		u, _, _ := uploads.Pending()
		return l, u
	}

	tgz := h.Tarball(t, map[string]string{"index.js": "remembered"})
	h.Submit(t, jobstest.Request("acme", "first"), tgz)
	l1, u1 := count()
	if u1 == 0 || l1 == 0 {
		t.Fatalf("first submit: %d lookups, %d chunk writes; want the tarball looked up and stored", l1, u1)
	}
	for i := range 3 {
		h.Submit(t, jobstest.Request("acme", "again-"+string(rune('a'+i))), tgz)
	}
	if l, u := count(); l != l1 || u != u1 {
		t.Fatalf("resubmits looked the tarball up %d times and wrote %d chunks more", l-l1, u-u1)
	}

	other, err := jobs.NewClient(ctx, h.JS, jobs.ClientConfig{SourceGrace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Submit(ctx, jobstest.Request("acme", "other-client"), tgz); err != nil {
		t.Fatal(err)
	}
	if l, u := count(); l != l1+1 || u != u1 {
		t.Fatalf("another client: %d lookups and %d chunk writes, want 1 lookup and none", l-l1, u-u1)
	}
}
