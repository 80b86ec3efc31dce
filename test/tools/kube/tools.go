//go:build tools

// Package kube exists only to pin the kube-apiserver build for tests.
package kube

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
