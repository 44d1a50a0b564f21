package jobs

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// BenchmarkDecodeCheckpoint decodes a checkpoint as Client.Jobs reads
// every one it counts (only the facts it filters and counts on) against
// decoding it whole, side by side: a succeeded job, and a failed build
// whose terminal event carries its last log lines and three attempts.
//
//	go test -run '^$' -bench DecodeCheckpoint ./pkg/jobs/
func BenchmarkDecodeCheckpoint(b *testing.B) {
	at := time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC)
	ok := JobState{
		Version: 1, ID: "7f3c2a9e-1b4d-4c8e-9a2f-3d5e6f7a8b9c", Tenant: "acme", Status: StatusSucceeded, Step: StepCreateClaim,
		ProjectID: "prj_Rc5evVJAhZeF1llbajLriOL1vZ3c", ProjectName: "site-5d24829040f3", AuthorizationID: "authz_j2MR8TptlE1dtiAiyiM9OfCzc",
		StoreID: "store_iNGcde7xI7pFNSmC", StoreName: "deployq-db-5d24829040f3", DeploymentID: "dpl_EgXWKZ4J2hxQps37FGy1GvwROpOQ",
		DeploymentURL: "site-5d24829040f3-k2j3h4g5f.vercel.app", URL: "site-5d24829040f3.vercel.app", DeployedAt: at,
		ClaimCode: "f12f1c19-62fd-4995-82b4-c67ab992ec30", ClaimIssuedAt: at, App: "chat-42", AppVersion: 3, Owner: "worker-7f3c2a9e",
		Lease: 2, Attempts: 1, Seq: 1234, SubmittedAt: at.Add(-40 * time.Second), StartedAt: at.Add(-39 * time.Second), UpdatedAt: at,
		Terminal: &Event{Type: TypeSucceeded, Time: at, Data: EventData{RequestID: "7f3c2a9e-1b4d-4c8e-9a2f-3d5e6f7a8b9c", Tenant: "acme",
			URL: "https://site-5d24829040f3.vercel.app"}},
		Published: true,
	}
	failed := ok
	failed.Status, failed.Step, failed.Attempts = StatusFailed, StepCreateDeployment, 3
	var logs []string
	for i := range FailedLogLines {
		logs = append(logs, fmt.Sprintf("%s [build] line %d of the build: compiling app/page.tsx, 214 modules, warnings about unused imports", at.Format(time.RFC3339), i))
	}
	for i := range 3 {
		failed.Errors = append(failed.Errors, AttemptError{At: at.Add(time.Duration(i) * time.Second), Step: StepCreateDeployment,
			Class: "transient", Reason: "http_502", Message: "POST /v13/deployments: 502 Bad Gateway: upstream connect error or disconnect/reset before headers"})
	}
	failed.Terminal = &Event{Type: TypeFailed, Time: at, Data: EventData{RequestID: failed.ID, Tenant: "acme",
		Error: &EventError{Step: StepWaitReady, Code: "BUILD_FAILED", Message: "deployment dpl_EgXWKZ4J2hxQps37FGy1GvwROpOQ ended ERROR (BUILD_FAILED)", Logs: logs}}}
	for _, c := range []struct {
		name string
		st   JobState
	}{{"succeeded", ok}, {"failed", failed}} {
		data, err := json.Marshal(c.st)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name+"/facts", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				var f jobFacts
				if err := jsonUnmarshal(data, &f); err != nil || f.Status != c.st.Status {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/whole", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				var st JobState
				if err := jsonUnmarshal(data, &st); err != nil || st.Status != c.st.Status {
					b.Fatal(err)
				}
			}
		})
	}
}
