// Package consolepage is `bench console`: the operations console's cost
// with a full queue. A stack (embedded NATS, the simulator) first keeps a
// month of earlier jobs (-month checkpoints, written as workers leave
// them, ended over the 30 days before), then runs ten thousand deploys of
// five tenants to their end (some failing, some versions of apps), then
// queues ten thousand more requests with no worker to take them. A
// headless Chromium opens the console again and again and reports what
// its first render weighs (the page and the API answers it reads) and how
// long it takes, beside the server's time for each API read; and the
// jobs view's read (the newest jobs) is timed against a read of every
// checkpoint kept, side by side. With -screenshots DIR it also writes a
// picture of each view (docs/console/, `make screenshots`), taken while a
// worker runs part of the queue.
package consolepage
