#!/usr/bin/env bash
# codegen.sh regenerates what is derived from the API types in lib/apis, with a pinned
# controller-gen (fetched through the Go module proxy, never installed globally):
#
#   - lib/apis/<version>/zz_generated.deepcopy.go   (DeepCopy* and runtime.Object methods)
#   - manifests/crds/<group>_<plural>.yaml          (CustomResourceDefinitions, with CEL rules)
#
# Usage, from anywhere in the repository:
#
#   bash test/tools/codegen.sh           regenerate in place (idempotent; stale CRDs are removed)
#   bash test/tools/codegen.sh --verify  regenerate into a temporary directory and fail if the
#                                        checked-in files differ from it (for CI)
#
# Everything is first generated into a temporary directory and then copied, so an interrupted run
# never leaves half-written files behind and --verify never touches the working tree.
set -euo pipefail

readonly CONTROLLER_GEN="sigs.k8s.io/controller-tools/cmd/controller-gen@v0.23.0"
readonly APIS_DIR="lib/apis"
readonly CRD_DIR="manifests/crds"
# Every CRD controller-gen writes carries this annotation; it is how files we own are told apart
# from anything else someone keeps in manifests/crds (a kustomization.yaml, say).
readonly GENERATED_MARK="controller-gen.kubebuilder.io/version"

usage() {
	echo "usage: $0 [--verify]" >&2
	exit 2
}

verify=false
case "${1:-}" in
"") ;;
--verify) verify=true ;;
*) usage ;;
esac
[[ $# -le 1 ]] || usage

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

controller_gen() {
	go run "$CONTROLLER_GEN" "$@"
}

# API packages: every directory under lib/apis with a doc.go (the package markers live there).
mapfile -t api_pkgs < <(find "$APIS_DIR" -name doc.go -exec dirname {} \; | LC_ALL=C sort)
if [[ ${#api_pkgs[@]} -eq 0 ]]; then
	echo "codegen: no API packages (doc.go) found under $APIS_DIR" >&2
	exit 1
fi

# Deepcopy is generated one package at a time: output:object:dir puts every package's file in the
# one directory given, so a shared directory would let two versions overwrite each other.
for pkg in "${api_pkgs[@]}"; do
	mkdir -p "$tmp/$pkg"
	controller_gen object paths="./$pkg" output:object:dir="$tmp/$pkg"
done

# CRDs are generated for all packages at once so that every version of a group lands in one file.
mkdir -p "$tmp/$CRD_DIR"
controller_gen crd paths="./$APIS_DIR/..." output:crd:artifacts:config="$tmp/$CRD_DIR"

# generated_crds DIR lists the controller-gen CRD files in DIR, one base name a line.
generated_crds() {
	[[ -d "$1" ]] || return 0
	grep -l --include='*.yaml' -r -F "$GENERATED_MARK" "$1" 2>/dev/null | xargs -r -n1 basename | LC_ALL=C sort
}

if $verify; then
	stale=false
	for pkg in "${api_pkgs[@]}"; do
		want="$tmp/$pkg/zz_generated.deepcopy.go"
		have="$pkg/zz_generated.deepcopy.go"
		if [[ -f "$want" || -f "$have" ]]; then
			diff -u "$have" "$want" || stale=true
		fi
	done
	if ! diff -u --label "$CRD_DIR (checked in)" --label "$CRD_DIR (generated)" \
		<(generated_crds "$CRD_DIR") <(generated_crds "$tmp/$CRD_DIR"); then
		stale=true
	fi
	for f in $(generated_crds "$tmp/$CRD_DIR"); do
		if [[ -f "$CRD_DIR/$f" ]]; then
			diff -u "$CRD_DIR/$f" "$tmp/$CRD_DIR/$f" || stale=true
		fi
	done
	if $stale; then
		echo "codegen: generated files are stale: run make generate (or bash test/tools/codegen.sh)" >&2
		exit 1
	fi
	echo "codegen: generated files are up to date"
	exit 0
fi

for pkg in "${api_pkgs[@]}"; do
	if [[ -f "$tmp/$pkg/zz_generated.deepcopy.go" ]]; then
		cp "$tmp/$pkg/zz_generated.deepcopy.go" "$pkg/zz_generated.deepcopy.go"
	else
		rm -f "$pkg/zz_generated.deepcopy.go"
	fi
done

mkdir -p "$CRD_DIR"
for f in $(generated_crds "$CRD_DIR"); do
	rm -f "$CRD_DIR/$f"
done
cp "$tmp/$CRD_DIR"/*.yaml "$CRD_DIR/"
echo "codegen: wrote deepcopy for ${api_pkgs[*]} and $(generated_crds "$CRD_DIR" | wc -l) CRDs to $CRD_DIR"
