//go:build tools

// Package crane exists only to pin crane, which inspects, copies and pushes the image
// tarballs that `make images` writes. The Makefile builds it into
// .cache/bin/crane-<version>.
package crane

import _ "github.com/google/go-containerregistry/cmd/crane"
