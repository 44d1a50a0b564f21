package chaos

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/vercel"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

// The simulator's token and the Prisma integration the workers use.
const (
	simToken      = "chaos-token"
	integrationID = "icfg_chaos"
)

// simConfig is the API the fleet runs against: every call that creates
// something fails now and then before or after its effect (a lost answer
// looks the same to the caller), reads fail now and then too, answers are
// slow, builds take 1–2 s, and three endpoints are rate limited.
func simConfig() vercelsim.Config {
	create := vercelsim.Fault{ErrorBefore: 0.03, ErrorAfter: 0.03, Latency: 20 * time.Millisecond}
	read := vercelsim.Fault{ErrorBefore: 0.02}
	authorize := create
	// Slower than the budget's spacing of authorize calls, so a few calls
	// are under way when the limit runs out (see budgetLimits).
	authorize.Latency = 400 * time.Millisecond
	return vercelsim.Config{
		BuildTime:     time.Second,
		BuildJitter:   time.Second,
		Latency:       2 * time.Millisecond,
		LatencyJitter: 10 * time.Millisecond,
		Token:         simToken,
		RateLimits: map[vercel.Endpoint]vercelsim.Limit{
			vercel.EndpointCreateProject:    {Requests: 40, Window: 5 * time.Second},
			vercel.EndpointCreateDeployment: {Requests: 20, Window: 5 * time.Second},
			vercel.EndpointAuthorize:        {Requests: 10, Window: 4 * time.Second},
		},
		Faults: map[vercel.Endpoint]vercelsim.Fault{
			vercel.EndpointCreateProject:    create,
			vercel.EndpointAuthorize:        authorize,
			vercel.EndpointCreateStore:      create,
			vercel.EndpointConnectStore:     create,
			vercel.EndpointCreateDeployment: create,
			vercel.EndpointTransferRequest:  create,
			vercel.EndpointUploadFile:       {ErrorBefore: 0.02, ErrorAfter: 0.02},
			vercel.EndpointGetProject:       read,
			vercel.EndpointGetDeployment:    read,
			vercel.EndpointListDeployments:  read,
			vercel.EndpointListResources:    read,
			vercel.EndpointListStores:       read,
		},
		// Domains assigned a moment after READY, as Vercel does: the wait
		// for aliasAssigned runs across the kills too.
		Quirks: vercelsim.Quirks{AliasDelay: 300 * time.Millisecond},
	}
}

// budgetLimits is the workers' BUDGET_LIMITS. Every endpoint gets room
// enough not to slow the run; projects.create and deployments.create get
// the simulator's limits exactly, so the budget spends them without a 429.
// integrations.authorize gets the simulator's count over the wrong window
// (1 s instead of 4 s): the budget does not know that limit, calls run into
// it, and the 429 path, the pause shared through NATS and the retry that
// costs no attempt all run.
func budgetLimits() string {
	return strings.Join([]string{
		"all=1000/10s",
		"projects.create=40/5s",
		"deployments.create=20/5s",
		"integrations.authorize=10/1s",
	}, ",")
}

// startSim serves a simulator on a loopback port until the test ends.
func startSim(t *testing.T, cfg vercelsim.Config) (*vercelsim.Server, string) {
	t.Helper()
	sim := vercelsim.New(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() {
		sim.Close() // releases hanging requests first, as Close needs
		_ = hs.Close()
	})
	return sim, "http://" + ln.Addr().String()
}
