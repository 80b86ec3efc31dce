//go:build tools

// Package etcd exists only to pin the etcd build for tests.
package etcd

import _ "go.etcd.io/etcd/server/v3"
