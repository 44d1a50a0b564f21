package jobs_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"time"

	"github.com/deployq/deployq/internal/stack"
	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/worker"
	"github.com/deployq/deployq/pkg/tarball"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

// A producer submits a deploy request with its source and follows it to
// its terminal event. Here the NATS server, a worker and the Vercel
// simulator run in this process (internal/stack); a platform connects
// its Client to its own NATS.
func ExampleClient_Submit() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir, _ := os.MkdirTemp("", "deployq-example")
	defer os.RemoveAll(dir)
	s, err := stack.Start(ctx, stack.Config{Dir: dir, Sim: &vercelsim.Config{BuildTime: 10 * time.Millisecond}})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	api, _ := s.API("")
	p, _ := s.Pipeline(api, worker.PipelineConfig{ExpectedBuild: 10 * time.Millisecond})
	_, stop, _ := s.RunWorker(ctx, nil, p, worker.Config{ShutdownGrace: time.Second, Logger: slog.New(slog.DiscardHandler)})
	defer stop()

	client, err := jobs.NewClient(ctx, s.JS, jobs.ClientConfig{})
	if err != nil {
		log.Fatal(err)
	}
	app, _ := os.MkdirTemp("", "deployq-app")
	defer os.RemoveAll(app)
	src, _ := tarball.Pack(app, tarball.WithFile("index.html", []byte("<h1>hello</h1>")))
	sub, err := client.Submit(ctx, jobs.Request{ID: "hello-1", Tenant: "acme", Name: "hello", Framework: "nextjs"}, src.Data)
	if err != nil {
		log.Fatal(err)
	}
	w, err := client.Watch(ctx, jobs.WatchFilter{Tenant: sub.Tenant, ID: sub.ID, FromStart: true, TerminalOnly: true})
	if err != nil {
		log.Fatal(err)
	}
	defer w.Stop()
	for ev, err := range w.Events() {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ev.Data.RequestID, ev.Short(), ev.Data.ClaimURL != "")
		break
	}
	// Output: hello-1 succeeded true
}

// Events are built from a job's checkpoint; the terminal event carries
// the ids of what the job created.
func ExampleJobState_Event() {
	st := &jobs.JobState{ID: "hello-1", Tenant: "acme", Run: 1, ProjectID: "prj_1", DeploymentURL: "https://hello.vercel.app",
		SubmittedAt: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)}
	ev := st.Event(jobs.TypeStepCompleted, jobs.StepCreateProject, 1, st.SubmittedAt.Add(time.Second))
	fmt.Println(ev.ID, ev.Short(), ev.Data.Step, ev.Data.ProjectID)
	// Output: acme.hello-1.step.create_project step_completed create_project prj_1
}

// An app's versions: the first makes the app, a second waits while it is
// in flight, and once settled the app takes the next version into the
// same project.
func ExampleBindVersion() {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	first := &jobs.Request{ID: "req-1", Tenant: "acme", App: "chat-7"}
	app, b, _ := jobs.BindVersion(nil, first, "team_abc", now)
	fmt.Println("version", b.Version, "makes the app:", b.First, app.State)

	second := &jobs.Request{ID: "req-2", Tenant: "acme", App: "chat-7"}
	_, _, err := jobs.BindVersion(app, second, "team_abc", now)
	fmt.Println(err)

	jobs.SettleVersion(app, &jobs.JobState{ID: "req-1", Tenant: "acme", Status: jobs.StatusSucceeded, AppVersion: 1, ProjectID: "prj_1"}, now)
	_, b, _ = jobs.BindVersion(app, second, "team_abc", now)
	fmt.Println("version", b.Version, "makes the app:", b.First, "project", app.ProjectID)
	// Output:
	// version 1 makes the app: true creating
	// version req-1 of the app is in flight
	// version 2 makes the app: false project prj_1
}
