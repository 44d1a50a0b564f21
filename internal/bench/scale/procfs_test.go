package scale

import (
	"testing"
	"time"

	"github.com/deployq/deployq/internal/bench"
)

func TestParseStatusMemory(t *testing.T) {
	status := []byte("Name:\tscalebench\nUmask:\t0022\nState:\tS (sleeping)\n" +
		"VmPeak:\t 2318584 kB\nVmSize:\t 2318584 kB\nVmHWM:\t  529408 kB\nVmRSS:\t  432456 kB\nRssAnon:\t  420000 kB\nThreads:\t10\n")
	got, err := parseStatusMemory(status)
	if err != nil {
		t.Fatal(err)
	}
	if want := (procMemory{RSS: 432456 * 1024, HWM: 529408 * 1024}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}

	// A kernel thread has no Vm lines.
	if _, err := parseStatusMemory([]byte("Name:\tkthreadd\nState:\tS (sleeping)\n")); err == nil {
		t.Error("no error without VmRSS")
	}
	// A value in another unit is refused rather than misread.
	if _, err := parseStatusMemory([]byte("VmHWM:\t1 MB\nVmRSS:\t1 MB\n")); err == nil {
		t.Error("no error for a unit other than kB")
	}
}

func TestStatusKB(t *testing.T) {
	meminfo := []byte("MemTotal:       24683520 kB\nMemFree:        20504184 kB\n")
	if n, ok := bench.StatusKB(meminfo, "MemTotal"); !ok || n != 24683520 {
		t.Errorf("MemTotal = %d, %v", n, ok)
	}
	if _, ok := bench.StatusKB(meminfo, "MemAvailable"); ok {
		t.Error("found a key that is not there")
	}
	// A key is matched whole, not as a prefix.
	if _, ok := bench.StatusKB([]byte("MemTotalX:  5 kB\n"), "MemTotal"); ok {
		t.Error("matched a longer key")
	}
}

func TestParseStatCPU(t *testing.T) {
	// Fields 14 and 15 (utime, stime) are 1234 and 766: 2000 ticks, 20 s.
	stat := "4242 (scalebench) S 1 4242 4242 0 -1 4194560 5000 0 0 0 1234 766 0 0 20 0 10 0 12345 2318584 108114 18446744073709551615"
	got, err := parseStatCPU([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	if got != 20*time.Second {
		t.Errorf("got %s, want 20s", got)
	}

	// A command name with spaces and parentheses does not shift the fields.
	odd := "77 (a) b (c)) R 1 77 77 0 -1 0 0 0 0 0 50 25 0 0 20 0 1 0 1 1 1"
	if got, err := parseStatCPU([]byte(odd)); err != nil || got != 750*time.Millisecond {
		t.Errorf("odd name: got %s, %v; want 750ms", got, err)
	}

	for _, bad := range []string{"", "12 (x) S 1 2 3", "12 (x) S 1 2 3 4 5 6 7 8 9 10 x 1 2"} {
		if _, err := parseStatCPU([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestLogLevels(t *testing.T) {
	log := `time=2026-01-01T00:00:00Z level=INFO msg="worker started" note="level=ERROR is not a level here"
time=2026-01-01T00:00:01Z level=WARN msg="shutdown grace period over"
time=2026-01-01T00:00:01Z level=INFO msg="handing the job back at shutdown"
not a log line
`
	got := logLevels([]byte(log))
	if got["INFO"] != 2 || got["WARN"] != 1 || got["ERROR"] != 0 || len(got) != 2 {
		t.Errorf("got %v", got)
	}
}

func TestLogWarnings(t *testing.T) {
	log := `time=2026-01-01T00:00:00Z level=INFO msg="worker started"
time=2026-01-01T00:00:01Z level=WARN msg="progress event not published" request_id=a err="nats: stalled"
time=2026-01-01T00:00:01Z level=WARN msg="progress event not published" request_id=b err="x"
time=2026-01-01T00:00:02Z level=ERROR msg=bare_word err=y
time=2026-01-01T00:00:03Z level=WARN msg="a \"quoted\" word" n=1
`
	got := logWarnings([]byte(log))
	want := map[string]int{"progress event not published": 2, "bare_word": 1, `a "quoted" word`: 1}
	if len(got) != len(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%q: %d, want %d", k, got[k], v)
		}
	}
}
