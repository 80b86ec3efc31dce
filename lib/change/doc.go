// Package change defines the event that carries one object's change to one GitTarget, and its
// CloudEvents form. It is the contract between ingest (and the jobs), which produce changes,
// and the writer, which turns them into commits.
//
// A Change is a CloudEvent with:
//
//	id            identity.EventID(origin, key, target): deterministic, so retries dedupe
//	source        /clusters/<clusterID>
//	type          dev.gitops.reverser.object.upsert, .delete, or .scale (a write to the
//	              scale subresource: only spec.replicas of the file changes)
//	subject       the object key, cluster/group/resource/namespace/name
//	time          when the apiserver finished the request
//	partitionkey  the partition (repository branch) it is queued in
//	actor         the Kubernetes user the commit is authored by
//	auditid       the audit id of the request, or the reconcile run id
//	data          JSON: the target, the file path, resourceVersion and uid for ordering, and the
//	              sanitized object (none for deletes and scales), or a scale's replicas
package change
