//go:build tools

// Package knative exists only to pin Knative Serving: test/deploy installs the CRDs shipped
// in this module's config/core/300-resources (found with `go mod download -json
// knative.dev/serving` run here), so Knative Service manifests are validated against the
// schema of the release they target.
package knative

import _ "knative.dev/serving/pkg/apis/serving/v1"
