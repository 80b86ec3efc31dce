// Package rules compiles WatchRules and ClusterWatchRules, with the GitTargets and
// GitProviders they point at, into a Plan: an immutable, deterministic answer to "which targets
// want this change of this object in this cluster?".
//
// Compiling never fails as a whole: a rule whose target or provider is missing is left out and
// reported as a Problem, so one broken object cannot stop the others from flowing.
package rules
