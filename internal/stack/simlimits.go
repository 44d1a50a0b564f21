package stack

import (
	"github.com/deployq/deployq/pkg/budget"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

// SimLimits turns budget limits into the simulator's, window for window:
// the worker's --sim-limits and the budget benchmark give the simulator
// the limits they also give the budget.
func SimLimits(limits map[vercel.Endpoint]budget.Limit) map[vercel.Endpoint]vercelsim.Limit {
	out := make(map[vercel.Endpoint]vercelsim.Limit, len(limits))
	for ep, l := range limits {
		sl := vercelsim.Limit{Requests: l.Requests, Window: l.Window}
		for _, c := range l.Caps {
			sl.Caps = append(sl.Caps, vercelsim.Limit{Requests: c.Requests, Window: c.Window})
		}
		out[ep] = sl
	}
	return out
}
