package vercelsim_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/vercel"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

func TestStats(t *testing.T) {
	t.Parallel()
	b := setup(t, vercelsim.Config{BuildTime: 10 * time.Second})
	b.deploy(t, "counted", source("x")) // create project, upload, deploy
	want(t, b.do(t, "POST", "/v11/projects", map[string]any{"name": "counted"}), 409)
	b.clock.Advance(1500 * time.Millisecond)
	want(t, b.do(t, "GET", "/v9/projects/counted", nil), 200)
	want(t, b.do(t, "GET", "/v9/projects/counted", nil), 200)

	st := b.sim.Stats()
	if st.Requests[vercel.EndpointCreateProject] != 2 || st.Succeeded[vercel.EndpointCreateProject] != 1 ||
		st.Responses[vercel.EndpointCreateProject][409] != 1 || st.Responses[vercel.EndpointCreateProject][200] != 1 {
		t.Errorf("create project: requests %d succeeded %d responses %v", st.Requests[vercel.EndpointCreateProject],
			st.Succeeded[vercel.EndpointCreateProject], st.Responses[vercel.EndpointCreateProject])
	}
	if st.Succeeded[vercel.EndpointUploadFile] != 1 || st.Succeeded[vercel.EndpointCreateDeployment] != 1 {
		t.Errorf("Succeeded = %v", st.Succeeded)
	}
	if st.ProjectsCreated["counted"] != 1 || st.DeploymentsCreated["counted"] != 1 || st.DeploymentsReady["counted"] != 0 {
		t.Errorf("ProjectsCreated %v DeploymentsCreated %v DeploymentsReady %v", st.ProjectsCreated, st.DeploymentsCreated, st.DeploymentsReady)
	}
	series := st.PerSecond[vercel.EndpointGetProject]
	if len(series) != 1 || series[0].Count != 2 || !series[0].Second.Equal(epoch.Add(time.Second)) {
		t.Errorf("PerSecond[get project] = %+v", series)
	}
	if s := st.PerSecond[vercel.EndpointCreateProject]; len(s) != 1 || !s[0].Second.Equal(epoch) {
		t.Errorf("PerSecond[create project] = %+v", s)
	}

	b.clock.Advance(10 * time.Second)
	if got := b.sim.Stats().DeploymentsReady["counted"]; got != 1 {
		t.Errorf("DeploymentsReady after the build = %d", got)
	}

	// The snapshot is a copy.
	st.Requests[vercel.EndpointCreateProject] = 100
	if b.sim.Stats().Requests[vercel.EndpointCreateProject] != 2 {
		t.Error("Stats shares its maps with the Server")
	}
}

// TestConcurrentClients races many clients creating the same resources;
// run with -race. Each name must end up with exactly one project, every
// other attempt a 409.
func TestConcurrentClients(t *testing.T) {
	t.Parallel()
	b := setup(t, vercelsim.Config{BuildTime: 5 * time.Second, RateLimits: map[vercel.Endpoint]vercelsim.Limit{
		vercel.EndpointGetDeployment: {Requests: 50, Window: time.Minute},
	}})
	const names, racers = 20, 8
	src := source("shared")
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := map[string]int{}
	for i := range names * racers {
		wg.Go(func() {
			name := fmt.Sprint("race-", i%names)
			r := b.do(t, "POST", "/v11/projects", map[string]any{"name": name, "framework": "nextjs"})
			if r.status != 200 && r.status != 409 {
				t.Errorf("create %s: %d", name, r.status)
				return
			}
			if r.status == 200 {
				mu.Lock()
				created[name]++
				mu.Unlock()
			}
			sha := b.upload(t, src)
			d := b.do(t, "POST", "/v13/deployments", deploymentBody(name, sha, len(src)))
			want(t, d, 200)
			b.clock.Advance(10 * time.Millisecond)
			g := b.do(t, "GET", "/v13/deployments/"+d.json(t)["id"].(string), nil)
			if g.status != 200 && g.status != 429 {
				t.Errorf("get deployment: %d", g.status)
			}
			_ = b.sim.Stats()
		})
	}
	wg.Wait()
	st := b.sim.Stats()
	for i := range names {
		name := fmt.Sprint("race-", i)
		if created[name] != 1 || st.ProjectsCreated[name] != 1 || st.DeploymentsCreated[name] != racers {
			t.Errorf("%s: created %d, ProjectsCreated %d, DeploymentsCreated %d", name, created[name], st.ProjectsCreated[name], st.DeploymentsCreated[name])
		}
	}
	if st.Responses[vercel.EndpointCreateProject][409] != names*(racers-1) {
		t.Errorf("409s = %d", st.Responses[vercel.EndpointCreateProject][409])
	}
	if st.Succeeded[vercel.EndpointGetDeployment] != 50 || st.RateLimited[vercel.EndpointGetDeployment] != names*racers-50 {
		t.Errorf("get deployment: %d ok, %d limited", st.Succeeded[vercel.EndpointGetDeployment], st.RateLimited[vercel.EndpointGetDeployment])
	}
	if st.UniqueFiles != 1 || st.Uploads != names*racers {
		t.Errorf("UniqueFiles %d Uploads %d", st.UniqueFiles, st.Uploads)
	}
}

// TestManyBuildsInFlight checks that builds cost no goroutine: ten thousand
// deployments in flight, then all READY by moving the clock.
func TestManyBuildsInFlight(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("creates 10 000 deployments")
	}
	b := setup(t, vercelsim.Config{BuildTime: time.Minute})
	b.createProject(t, "many")
	src := source("many")
	sha := b.upload(t, src)
	const n, workers = 10_000, 16
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range jobs {
				r := b.do(t, "POST", "/v13/deployments", deploymentBody("many", sha, len(src)))
				if r.status != 200 {
					t.Errorf("status %d", r.status)
				}
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()

	st := b.sim.Stats()
	if st.DeploymentsCreated["many"] != n || st.DeploymentsReady["many"] != 0 {
		t.Fatalf("created %d, ready %d", st.DeploymentsCreated["many"], st.DeploymentsReady["many"])
	}
	b.clock.Advance(time.Minute)
	if got := b.sim.Stats().DeploymentsReady["many"]; got != n {
		t.Errorf("ready %d, want %d", got, n)
	}
}
