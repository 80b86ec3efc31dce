// Package status turns what the pipeline did into the status of the user's objects: the
// conditions (Ready, with a reason a user can act on) and printer columns of GitTargets,
// GitProviders and SourceClusters.
//
// It owns three things:
//   - A record of results in Valkey (Recorder), one hash per partition beside the partition's
//     stream (bus.Keys.Status, same hash tag): the branch's last commit and push time, the last
//     error since then with a reason classified from it (Classify), and the last reconcile of
//     each of the partition's targets. The writer records after every drain; the reconcile job
//     records after every target it compares.
//   - Pure functions from results to status (GitProviderStatus, GitTargetStatus,
//     SourceClusterStatus), built only through the Mark* methods of lib/apis/v1alpha1.
//   - A Projector that reads the objects from the API server, the results and queue sizes
//     (bus.Stats) from Valkey and the referenced Secrets, and writes each status through the
//     status subresource only when it changed. Observer hooks it into the writer.
//
// Statuses are derived data: any replica may project any object at any time, and projecting
// twice from the same facts writes nothing the second time.
package status
