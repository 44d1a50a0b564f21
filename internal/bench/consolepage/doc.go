// Package consolepage is `bench console`: the operations console's cost
// with a full queue. A stack (embedded NATS, the simulator) runs ten
// thousand deploys of five tenants to their end (some failing, some
// versions of apps), then ten thousand more requests are queued with no
// worker to take them; a headless Chromium then opens the console again
// and again and reports what its first render weighs (the page and the
// API answers it reads) and how long it takes, beside the server's time
// for each API read. With -screenshots DIR it also writes a picture of
// each view (docs/console/, `make screenshots`), taken while a worker
// runs part of the queue.
package consolepage
