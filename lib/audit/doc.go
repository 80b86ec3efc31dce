// Package audit decodes the audit.k8s.io/v1 EventList batches that a kube-apiserver's audit
// webhook sends, and turns each event into the object changes it proves happened.
//
// Only events that describe a completed, successful, persisted write count: stage
// ResponseComplete, a 2xx response, not a dry run, a mutating verb on an object. Of the
// subresources only scale counts: its response, an autoscaling/v1 Scale, proves the parent's
// new spec.replicas (OpScale). Everything else is skipped with a Reason, which callers count. Decoding uses
// our own small structs rather than k8s.io/apiserver, which keeps the ingest binary lean and
// reads only the fields we use.
//
// The package knows nothing of rules, targets or Git.
package audit
