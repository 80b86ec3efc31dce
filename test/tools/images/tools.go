//go:build tools

// Package images exists only to pin ko, which builds the product's container images. The
// Makefile builds it from here into .cache/bin/ko-<version>; crane is pinned next door in
// ./crane. The program in ./build (go-containerregistry as a library, at the version ko
// requires) makes the local base image and drives ko.
package images

import _ "github.com/google/ko"
