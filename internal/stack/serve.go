package stack

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"
)

// ServeLoopback serves h on a free port of 127.0.0.1 and returns its base
// URL and how to stop it. connState, when not nil, sees every connection's
// state changes (a benchmark counting the API connections a worker opens).
func ServeLoopback(h http.Handler, connState func(net.Conn, http.ConnState)) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("loopback listener: %w", err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ConnState: connState}
	go func() { _ = hs.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if hs.Shutdown(ctx) != nil {
			_ = hs.Close()
		}
	}, nil
}
