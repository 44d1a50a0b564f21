package budget

import (
	"context"
	"reflect"
	"sync"
	"testing"
	"time"
)

func TestQuotaAdmitsUpToEveryWindow(t *testing.T) {
	clock := newFakeClock()
	q, err := NewQuotas(NewMemoryStore(), map[string][]Cap{"acme": {{3, time.Hour}, {5, 24 * time.Hour}}}, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	take := func() Admission {
		t.Helper()
		a, err := q.Take(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	for i := range 3 {
		if a := take(); !a.OK || a.Use[0] != i+1 {
			t.Fatalf("deploy %d: %+v, want admitted with %d in the hour", i, a, i+1)
		}
	}
	a := take()
	if a.OK {
		t.Fatalf("fourth deploy in an hour admitted: %+v", a)
	}
	// The hour's three leave its span one to two slots (of 30 s) after
	// the hour: then the quota has room.
	if wait := a.Until.Sub(clock.Now()); wait < time.Hour || wait > time.Hour+time.Minute {
		t.Fatalf("quota free again in %s, want an hour and one to two slots", wait)
	}
	if used, free := q.Use("acme"); !reflect.DeepEqual(used, []int{3, 3}) || !free.Equal(a.Until) {
		t.Fatalf("Use = %v, %s; want [3 3], %s", used, free, a.Until)
	}
	clock.Advance(a.Until.Sub(clock.Now()))
	if a := take(); !a.OK {
		t.Fatalf("not admitted once the hour had room: %+v", a)
	}
	if a := take(); !a.OK {
		t.Fatalf("fifth deploy of the day refused: %+v", a)
	}
	// The day's five are spent although the hour has room.
	a = take()
	if a.OK || a.Until.Sub(clock.Now()) < 22*time.Hour {
		t.Fatalf("sixth deploy of the day: %+v, want refused for most of a day", a)
	}
	// Other tenants have no quota and are not stored.
	if a, _ := q.Take(ctx, "beta"); !a.OK || q.Limited("beta") {
		t.Fatalf("tenant without a quota: %+v", a)
	}
}

func TestQuotaReturnGivesTheDeployBack(t *testing.T) {
	clock := newFakeClock()
	q, err := NewQuotas(NewMemoryStore(), map[string][]Cap{"acme": {{1, 24 * time.Hour}}}, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, _ := q.Take(ctx, "acme")
	clock.Advance(time.Minute)
	if b, _ := q.Take(ctx, "acme"); b.OK {
		t.Fatal("second deploy admitted by a quota of one")
	}
	if err := q.Return(ctx, "acme", a.At); err != nil {
		t.Fatal(err)
	}
	if b, _ := q.Take(ctx, "acme"); !b.OK {
		t.Fatalf("deploy refused after the first was given back: %+v", b)
	}
}

// Processes sharing a KV bucket admit a quota's deploys exactly once
// between them.
func TestQuotaIsSharedAcrossProcesses(t *testing.T) {
	t.Parallel()
	stores := kvStores(t, 3)
	const quota = 25
	var mu sync.Mutex
	admitted := 0
	var wg sync.WaitGroup
	for _, s := range stores {
		q, err := NewQuotas(s, map[string][]Cap{"acme": {{quota, 24 * time.Hour}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for range 20 {
				a, err := q.Take(context.Background(), "acme")
				if err != nil {
					t.Error(err)
					return
				}
				if a.OK {
					mu.Lock()
					admitted++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if admitted != quota {
		t.Fatalf("three processes admitted %d deploys under a quota of %d", admitted, quota)
	}
}

func TestParseQuota(t *testing.T) {
	got, err := ParseQuota("100/24h+20/1h")
	if err != nil || FormatQuota(got) != "20/1h+100/24h" {
		t.Fatalf("ParseQuota = %v, %v", got, err)
	}
	for _, bad := range []string{"", "0/24h", "10/1h+5/1h", "10", "ten/24h", "5/-1h"} {
		if _, err := ParseQuota(bad); err == nil {
			t.Errorf("ParseQuota(%q) accepted", bad)
		}
	}
}
