package metrics

import (
	"strconv"
	"time"

	"github.com/deployq/deployq/pkg/vercel"
)

// ObserveRequest records one HTTP attempt against the Vercel API. status is
// 0 when no answer arrived (a network error or timeout). It makes *Metrics a
// vercel.RequestObserver.
func (m *Metrics) ObserveRequest(ep vercel.Endpoint, status int, d time.Duration) {
	if m == nil {
		return
	}
	e := other
	if m.endpoints[ep] {
		e = string(ep)
	}
	m.vercelRequests.WithLabelValues(e, statusCode(status)).Inc()
	m.vercelRequestDuration.WithLabelValues(e).Observe(seconds(d))
}

func statusCode(status int) string {
	switch {
	case status == 0:
		return "network"
	case status >= 100 && status <= 599:
		return strconv.Itoa(status)
	}
	return other
}
