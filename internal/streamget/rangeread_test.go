package streamget_test

import (
	"context"
	"slices"
	"testing"

	"github.com/deployq/deployq/internal/streamget"
	"github.com/deployq/deployq/pkg/natsembed"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestRangeAndCount(t *testing.T) {
	t.Parallel()
	srv, err := natsembed.Start(natsembed.Options{Dir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}})
	if err != nil {
		t.Fatal(err)
	}
	// Sequences 1…3000: odd ones on t.odd, even ones on t.even.
	for i := 1; i <= 3000; i++ {
		subject := "t.even"
		if i%2 == 1 {
			subject = "t.odd"
		}
		if _, err := js.Publish(ctx, subject, nil); err != nil {
			t.Fatal(err)
		}
	}
	seqs := func(from, to uint64, subject string) []uint64 {
		t.Helper()
		msgs, err := streamget.Range(ctx, s, subject, from, to)
		if err != nil {
			t.Fatal(err)
		}
		var out []uint64
		for _, m := range msgs {
			out = append(out, m.Seq)
		}
		return out
	}
	if got := seqs(10, 20, "t.odd"); !slices.Equal(got, []uint64{11, 13, 15, 17, 19}) {
		t.Errorf("odd in [10, 20): %v", got)
	}
	// Past the stream's end, and more than one pull's worth.
	if got := seqs(1, 5000, "t.>"); len(got) != 3000 || got[0] != 1 || got[2999] != 3000 {
		t.Errorf("everything: %d messages", len(got))
	}
	if got := seqs(2990, 3001, "t.even"); !slices.Equal(got, []uint64{2990, 2992, 2994, 2996, 2998, 3000}) {
		t.Errorf("even at the end: %v", got)
	}
	if got := seqs(20, 20, "t.>"); len(got) != 0 {
		t.Errorf("an empty range: %v", got)
	}
	if all, err := streamget.All(ctx, s, "t.odd"); err != nil || len(all) != 1500 || all[0].Seq != 1 || all[1499].Seq != 2999 {
		t.Errorf("all of t.odd: %d messages, %v", len(all), err)
	}
	for subject, want := range map[string]uint64{"t.even": 1500, "t.>": 3000, "t.none": 0} {
		if n, err := streamget.Count(ctx, s, subject); err != nil || n != want {
			t.Errorf("count of %s: %d, %v; want %d", subject, n, err, want)
		}
	}
}
