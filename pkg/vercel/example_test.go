package vercel_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/deployq/deployq/pkg/vercel"
)

// A caller acts on the Decision rather than on status codes.
func ExampleClassify() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "30")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprint(w, `{"error":{"code":"rate_limited","message":"Too many requests"}}`)
	}))
	defer srv.Close()

	c, err := vercel.New(vercel.WithBaseURL(srv.URL), vercel.WithToken("example-token"), vercel.WithTeamID("team_1"))
	if err != nil {
		panic(err)
	}
	_, _, err = c.GetDeployment(context.Background(), "dpl_1")

	d := vercel.Classify(err)
	fmt.Println(d.Class, d.Reason, d.RetryAfter, d.RateLimited)

	var rl *vercel.RateLimitError
	if errors.As(err, &rl) {
		fmt.Println("retry after", rl.RetryAfter)
	}
	// Output:
	// transient rate_limited 30s true
	// retry after 30s
}

func ExampleClient_String() {
	c, err := vercel.New(vercel.WithToken("secret-token"), vercel.WithTeamID("team_1"))
	if err != nil {
		panic(err)
	}
	fmt.Printf("%v\n", c)
	// Output:
	// vercel.Client{baseURL: https://api.vercel.com, teamID: "team_1", token: [REDACTED]}
}

func ExampleClaimURL() {
	fmt.Println(vercel.ClaimURL("f99cc49a", "https://app.example.com/projects/42"))
	// Output:
	// https://vercel.com/claim-deployment?code=f99cc49a&returnUrl=https%3A%2F%2Fapp.example.com%2Fprojects%2F42
}

func ExampleSHA1Hex() {
	fmt.Println(vercel.SHA1Hex([]byte("abc")))
	// Output:
	// a9993e364706816aba3e25717850c26c9cd0d89d
}

func ExampleNew() {
	_, err := vercel.New(vercel.WithProjectsAPIVersion(12))
	fmt.Println(err)

	_, err = vercel.New(
		vercel.WithToken("example-token"),
		vercel.WithTeamID("team_1"),
		vercel.WithRequestTimeout(20*time.Second),
		vercel.WithConnectPath(vercel.ConnectPathWithProduct),
	)
	fmt.Println(err)
	// Output:
	// vercel: invalid option: projects API version 12: want 10 or 11
	// <nil>
}
