// Package multicluster proves "many source clusters" end to end with two real
// kube-apiservers, east and west, each with its own etcd, sending their audit events to one
// ingest over HTTPS on their own routes with their own tokens. Both write to one repository
// and branch through one writer, under their own GitTarget folders (clusters/east,
// clusters/west). The functions read their configuration from an API server, as they do in a
// cluster: east doubles as the home cluster that holds the CRDs from manifests/crds and the
// catalog objects, and CATALOG_RESYNC is one second, so the tests can change SourceClusters
// while everything runs.
//
// The tests cover isolation and attribution between clusters, tokens used on the wrong
// route, removing a cluster, rotating a cluster's token without a refused batch, and the
// per-cluster rate limit keeping a quiet cluster's latency bounded while a noisy one floods.
// MULTICLUSTER_FLOOD_SECONDS lengthens the flood (default 20).
package multicluster
