package vercel

import (
	"math"
	"net/http"
	"testing"
	"time"
)

func TestResetTime(t *testing.T) {
	t.Parallel()
	ref := testNow
	tests := []struct {
		name string
		v    float64
		want time.Time
	}{
		{"epoch seconds", float64(ref.Add(time.Minute).Unix()), ref.Add(time.Minute)},
		{"epoch seconds with a fraction", float64(ref.Unix()) + 0.5, ref.Add(500 * time.Millisecond)},
		{"epoch milliseconds", float64(ref.Add(90 * time.Second).UnixMilli()), ref.Add(90 * time.Second)},
		{"seconds from now", 30, ref.Add(30 * time.Second)},
		{"zero", 0, time.Time{}},
		{"negative", -5, time.Time{}},
		{"NaN", math.NaN(), time.Time{}},
	}
	for _, tt := range tests {
		if got := resetTime(tt.v, ref); !got.Equal(tt.want) {
			t.Errorf("%s: resetTime(%v) = %s, want %s", tt.name, tt.v, got, tt.want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	ref := testNow
	tests := []struct {
		value string
		want  time.Duration
		ok    bool
	}{
		{"", 0, false},
		{"30", 30 * time.Second, true},
		{" 0 ", 0, true},
		{"1.5", 1500 * time.Millisecond, true},
		{"-3", 0, true},
		{ref.Add(2 * time.Minute).Format(http.TimeFormat), 2 * time.Minute, true},
		{ref.Add(2 * time.Minute).Format(time.RFC850), 2 * time.Minute, true},
		{ref.Add(-time.Minute).Format(http.TimeFormat), 0, true},
		{"soon", 0, false},
		{"NaN", 0, false},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.value != "" {
			h.Set("Retry-After", tt.value)
		}
		got, ok := parseRetryAfter(h, ref)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseRetryAfter(%q) = %s, %t; want %s, %t", tt.value, got, ok, tt.want, tt.ok)
		}
	}
}

func TestReferenceTime(t *testing.T) {
	t.Parallel()
	server := testNow.Add(-time.Hour)
	h := http.Header{"Date": {server.Format(http.TimeFormat)}}
	if got := referenceTime(h, testNow); !got.Equal(server) {
		t.Errorf("with Date: %s, want the server's %s", got, server)
	}
	if got := referenceTime(http.Header{"Date": {"garbage"}}, testNow); !got.Equal(testNow) {
		t.Errorf("with a bad Date: %s, want now", got)
	}
	if got := referenceTime(http.Header{}, testNow); !got.Equal(testNow) {
		t.Errorf("without Date: %s, want now", got)
	}
}

func TestParseRateLimitHeaders(t *testing.T) {
	t.Parallel()
	reset := testNow.Add(time.Minute)
	tests := []struct {
		name   string
		header map[string]string
		want   RateLimit
	}{
		{"none", nil, RateLimit{}},
		{"all", map[string]string{"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1761739260"},
			RateLimit{Limit: 100, Remaining: 0, Known: true, Reset: reset}},
		{"reset in ms", map[string]string{"X-RateLimit-Reset": "1761739260000"}, RateLimit{Reset: reset}},
		{"reset as seconds from now", map[string]string{"X-RateLimit-Reset": "60"}, RateLimit{Reset: reset}},
		{"garbage ignored", map[string]string{"X-RateLimit-Limit": "lots", "X-RateLimit-Remaining": "-1", "X-RateLimit-Reset": "later"}, RateLimit{}},
	}
	if reset.Unix() != 1761739260 {
		t.Fatalf("fixture out of date: %d", reset.Unix())
	}
	for _, tt := range tests {
		h := http.Header{}
		for k, v := range tt.header {
			h.Set(k, v)
		}
		if got := parseRateLimitHeaders(h, testNow); !sameRateLimit(got, tt.want) {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestMergeRateLimit(t *testing.T) {
	t.Parallel()
	r1, r2 := testNow.Add(time.Second), testNow.Add(time.Minute)
	headers := RateLimit{Limit: 100, Remaining: 5, Known: true, Reset: r1}
	tests := []struct {
		name string
		body RateLimit
		want RateLimit
	}{
		{"empty body keeps headers", RateLimit{}, headers},
		{"body overrides", RateLimit{Limit: 20, Remaining: 0, Known: true, Reset: r2}, RateLimit{Limit: 20, Remaining: 0, Known: true, Reset: r2}},
		{"partial body", RateLimit{Reset: r2}, RateLimit{Limit: 100, Remaining: 5, Known: true, Reset: r2}},
	}
	for _, tt := range tests {
		if got := mergeRateLimit(headers, tt.body); !sameRateLimit(got, tt.want) {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}
