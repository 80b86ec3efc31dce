// Package rbac generates the part of GitOps Reverser's RBAC that depends on the user's
// configuration, so every service account can read exactly what it needs and nothing more.
//
// The static manifests in manifests/rbac cover what never changes: one ServiceAccount per
// component in the product's namespace, read access to the reverser.gitops.dev kinds and write
// access to the /status subresources that components project. Two kinds of access cannot be
// static, because only the configuration knows the names involved:
//
//   - Secrets. A component may get only the Secrets the configuration references: the
//     credentials of GitProviders, and the token and kubeconfig Secrets of SourceClusters.
//     Generate emits, per namespace holding such Secrets, Roles whose rules list them by
//     resourceNames, one Role per use (credentials, tokens, kubeconfigs), each bound to the
//     components that read that use. No component can list, watch or get any other Secret.
//   - Source objects. The reconcile job (and resnapshot, which runs as the same service
//     account) lists what the (Cluster)WatchRules name in every SourceCluster it reads with
//     its own identity (those without a kubeconfigSecretRef). Generate emits get/list on
//     exactly those groups and resources: in Roles of the namespaces rules are bound to, and
//     in a ClusterRole for rules that span the cluster. A "*" in a rule's apiGroups or
//     resources can only be granted by expanding it through discovery; without a discovery
//     client Generate refuses it rather than grant "*", which would include every Secret.
//
// The functions (ingest, writer) and the dlq-sweep job never read source objects.
//
// The reconcile binary runs Generate for the current configuration when PRINT_RBAC=true; see
// Print.
package rbac
