// Package clock waits without outliving its context: the one
// context-aware sleep that the worker, the budget, the simulator and the
// benchmarks share, so that every wait cut short reports the same error
// (the context's cause).
package clock
