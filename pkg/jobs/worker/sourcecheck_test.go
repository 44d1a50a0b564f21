package worker_test

import (
	"archive/tar"
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"fmt"
	"testing"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/jobstest"
	"github.com/deployq/deployq/pkg/jobs/worker"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/nats-io/nats.go/jetstream"
)

// entry is one member of a hand-made tarball.
type entry struct {
	name, link string
	typ        byte
	body       []byte
}

func tgz(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: typ, Mode: 0o644, Size: int64(len(e.body))}
		if typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write(e.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// A tarball is vetted before anything is created: each hostile or
// mislabelled source is rejected with its reason, and no project is
// ever made for it.
func TestSourceCheckedBeforeAnyResource(t *testing.T) {
	t.Parallel()
	limits := jobs.Limits{MaxSourceBytes: 1 << 20, MaxSourceFiles: 50, MaxUnpackedBytes: 1 << 20}
	h := jobstest.Start(t, jobstest.Config{Worker: worker.Config{Limits: limits}})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	good := tgz(t, entry{name: "package.json", body: []byte(`{}`)})
	manyFiles := make([]entry, 60)
	for i := range manyFiles {
		manyFiles[i] = entry{name: fmt.Sprintf("f%d.txt", i), body: []byte("x")}
	}
	big := bytes.Repeat([]byte("z"), 2<<20) // compresses to a few KB: a small bomb
	unique := func(tag string) []byte { return tgz(t, entry{name: tag + ".txt", body: []byte(tag)}) }
	two := unique("two")
	swapped := unique("swapped")
	huge := bytes.Repeat([]byte("x"), 2<<20)
	cases := []struct {
		id, code string
		stored   []byte // stored under its SHA-1 unless name is set
		name     string // the object's name
		sha      string // declared; defaults to the object's name
		size     int    // declared; defaults to len(stored)
		// dropChunk deletes the tarball's first chunk after storing it.
		dropChunk bool
		// tenant stores the tarball in another tenant's tree.
		tenant string
	}{
		{id: "missing", code: "source_missing", sha: vercel.SHA1Hex(unique("missing")), size: 100},
		{id: "size-lie", code: "source_size_mismatch", stored: two, size: len(two) + 1},
		{id: "too-large", code: "source_too_large", stored: huge, size: 4},
		{id: "swapped", code: "source_sha1_mismatch", stored: unique("someone else"), name: vercel.SHA1Hex(swapped)},
		{id: "not-gzip", code: "source_not_tgz", stored: []byte("just some text, not a tarball")},
		{id: "traversal", code: "source_unsafe_path", stored: tgz(t, entry{name: "../../etc/cron.d/x", body: []byte("x")})},
		{id: "absolute", code: "source_unsafe_path", stored: tgz(t, entry{name: "/etc/passwd", body: []byte("x")})},
		{id: "symlink", code: "source_link", stored: tgz(t, entry{name: "secrets", link: "/etc/shadow", typ: tar.TypeSymlink})},
		{id: "hardlink", code: "source_link", stored: tgz(t, entry{name: "a", body: []byte("x")}, entry{name: "b", link: "a", typ: tar.TypeLink})},
		{id: "device", code: "source_unsafe_path", stored: tgz(t, entry{name: "dev", typ: tar.TypeChar})},
		{id: "many-files", code: "source_too_many_files", stored: tgz(t, manyFiles...)},
		{id: "bomb", code: "source_unpacked_too_large", stored: tgz(t, entry{name: "zeros", body: big})},
		{id: "incomplete", code: "source_incomplete", stored: unique("incomplete"), dropChunk: true},
		{id: "other-tenant", code: "source_missing", stored: unique("globex's"), tenant: "globex"},
	}
	for _, c := range cases {
		name := c.name
		if name == "" && c.stored != nil {
			name = vercel.SHA1Hex(c.stored)
		}
		if c.stored != nil {
			owner := cmp.Or(c.tenant, "acme")
			if err := h.Assets.Sources.Put(ctx, owner, name, c.stored); err != nil {
				t.Fatal(err)
			}
			if c.dropChunk {
				stream, err := h.JS.Stream(ctx, jobs.StreamSources)
				if err != nil {
					t.Fatal(err)
				}
				if err := stream.Purge(ctx, jetstream.WithPurgeSubject("deploy.sources.acme."+name+".0")); err != nil {
					t.Fatal(err)
				}
			}
		}
		sha, size := c.sha, c.size
		if sha == "" {
			sha = name
		}
		if size == 0 {
			size = len(c.stored)
		}
		body := rawBody("acme", c.id, sha, size)
		if _, err := h.JS.Publish(ctx, jobs.RequestSubject("acme", c.id), []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	ids := make([]string, len(cases))
	for i, c := range cases {
		ids[i] = c.id
	}
	got := h.WaitTerminal(t, "acme", waitLong, ids...)
	for _, c := range cases {
		ev := got[c.id]
		if ev.Type != jobs.TypeRejected || ev.Data.Error == nil || ev.Data.Error.Code != c.code || ev.Data.Error.Field != "source" {
			t.Errorf("%s: %s %+v; want rejected with %s", c.id, ev.Type, ev.Data.Error, c.code)
		}
		if n := len(terminalEvents(t, h, "acme", c.id)); n != 1 {
			t.Errorf("%s: %d terminal events", c.id, n)
		}
		dl, err := h.Client.DeadLetter(ctx, "acme", c.id)
		if err != nil || dl.Reason != jobs.DLQReasonRejected || dl.Error.Code != c.code {
			t.Errorf("%s: dead letter %+v, %v", c.id, dl, err)
		}
	}
	if created := h.Sim.Stats().ProjectsCreated; len(created) != 0 {
		t.Errorf("projects created for rejected sources: %v", created)
	}
	info, err := h.Assets.Requests.Info(ctx)
	if err != nil || info.State.Msgs != 0 {
		t.Errorf("requests left in the queue: %+v, %v", info.State, err)
	}
	// A good source in a directory tree still deploys.
	req := jobstest.Request("acme", "fine")
	sub := h.Submit(t, req, tgz(t, entry{name: "app/", typ: tar.TypeDir}, entry{name: "app/./page.tsx", body: []byte("x")}, entry{name: "package.json", body: []byte(`{}`)}))
	if ev := h.WaitTerminal(t, "acme", waitLong, sub.ID)[sub.ID]; ev.Type != jobs.TypeSucceeded {
		t.Fatalf("a good tarball ended %s: %+v", ev.Type, ev.Data.Error)
	}
	// The worker remembers the tarball it vetted, not its name: the same
	// name written again with other bytes is read and refused.
	first := h.Submit(t, jobstest.Request("acme", "good"), good)
	if ev := h.WaitTerminal(t, "acme", waitLong, first.ID)[first.ID]; ev.Type != jobs.TypeSucceeded {
		t.Fatalf("the good tarball ended %s: %+v", ev.Type, ev.Data.Error)
	}
	tampered := tgz(t, entry{name: "package.json", body: []byte(`{{`)})
	if len(tampered) != len(good) {
		t.Fatalf("tampered tarball is %d bytes, want %d", len(tampered), len(good))
	}
	if err := h.Assets.Sources.Put(ctx, "acme", vercel.SHA1Hex(good), tampered); err != nil {
		t.Fatal(err)
	}
	body := rawBody("acme", "tampered", vercel.SHA1Hex(good), len(good))
	if _, err := h.JS.Publish(ctx, jobs.RequestSubject("acme", "tampered"), []byte(body)); err != nil {
		t.Fatal(err)
	}
	if ev := h.WaitTerminal(t, "acme", waitLong, "tampered")["tampered"]; ev.Type != jobs.TypeRejected || ev.Data.Error.Code != "source_sha1_mismatch" {
		t.Fatalf("a tarball rewritten under its name after a deploy: %s %+v", ev.Type, ev.Data.Error)
	}
}
