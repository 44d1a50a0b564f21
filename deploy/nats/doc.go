// Package nats holds no code: the directory carries the NATS cluster's
// server configurations (nats-0.conf … nats-2.conf) and their accounts and
// per-tenant permissions (accounts.conf). Its test boots an embedded
// nats-server from those very files and proves that a tenant's
// credentials reach that tenant's requests, tarballs, checkpoints and
// events through a tenant's jobs.Client, and that every other way in
// (stream listings, consumers, push consumers, another tenant's subjects,
// purges) is refused.
// deploy/lint.sh checks the same files on a real three-node cluster.
package nats
