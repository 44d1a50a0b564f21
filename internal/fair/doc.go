// Package fair decides whose work goes next when many tenants wait for
// one resource: the fleet's job slots, or an API budget's next call.
//
// # Shares
//
// Flows orders tenants by start-time fair queuing. Each tenant that has
// work waiting (a backlogged flow) carries a virtual time tag; Next names
// the backlogged tenant with the smallest tag, and Charge moves that
// tenant's tag on by cost/weight. A tenant that was idle starts at the
// current virtual time, not where it left off: idle time earns no credit
// to burst with later, and a newcomer is served at once. So, while
// several tenants wait, each gets a share of what is served in
// proportion to its weight (equal by default), whatever it submitted;
// and a lone tenant gets everything (the order is work-conserving:
// nothing waits while anything could go). A decision costs O(log n) in
// the number of waiting tenants, and an idle tenant's state is dropped
// once its tag is no longer ahead of the virtual time, so thousands of
// tenants cost memory only while they wait.
//
// # Priorities
//
// Queue holds items per tenant in two classes. Within a tenant's share
// Interactive items go first, but while both classes wait one item in
// every BatchEvery is Batch, so batch work is slowed, never starved.
package fair
