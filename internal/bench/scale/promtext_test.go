package scale

import "testing"

func TestMetricValues(t *testing.T) {
	text := []byte(`# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 20021
# HELP go_memstats_heap_inuse_bytes Number of heap bytes that are in use.
# TYPE go_memstats_heap_inuse_bytes gauge
go_memstats_heap_inuse_bytes 1.18e+08
go_memstats_heap_inuse_bytes_total_not_this 7
deployq_jobs_in_flight 10000 1700000000000
deployq_jobs_processed_total{outcome="success"} 3
deployq_jobs_processed_total{outcome="failure"} 2
deployq_jobs_processed_total{outcome="odd } value"} 1
deployq_job_redeliveries_total NaN
broken_line
`)
	got := metricValues(text, "go_goroutines", "go_memstats_heap_inuse_bytes", "deployq_jobs_in_flight",
		"deployq_jobs_processed_total", "absent", "broken_line")
	want := map[string]float64{
		"go_goroutines":                20021,
		"go_memstats_heap_inuse_bytes": 1.18e8,
		"deployq_jobs_in_flight":       10000, // the timestamp is not the value
		"deployq_jobs_processed_total": 6,     // summed over label sets
	}
	if len(got) != len(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}
