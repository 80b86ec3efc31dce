// Package identity defines the canonical names that every other package agrees on: the key of
// a Kubernetes object in a source cluster, the reference to a GitTarget, the partition a change
// is queued in, and the deterministic id of an event.
//
// Every key carries the cluster id, so objects of the same name in two clusters never collide,
// and a retried audit batch yields the same event ids (which is what makes dedupe possible).
package identity
