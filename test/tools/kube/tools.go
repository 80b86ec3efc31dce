//go:build tools

// Package kube exists only to pin the kube-apiserver, kube-controller-manager and kubectl
// builds for tests.
package kube

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
