// Package catalog holds what the functions know about the user's configuration: the
// GitProviders, GitTargets, (Cluster)WatchRules and SourceClusters, with the Secrets they
// reference resolved. It is read from one YAML file in local mode (the same documents a user
// would kubectl apply) or watched on the API server in a cluster; both build the same
// immutable Snapshot, swapped atomically when something changes.
//
// A Snapshot answers the questions of the hot paths without I/O: which cluster owns a token,
// which targets want an object (a compiled rules.Plan), and how to reach a partition's
// repository. Secret values live only in memory here.
package catalog
