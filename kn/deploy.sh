#!/usr/bin/env bash
# Deploys the two Knative Services of gitops-reverser (kn/writer.yaml, kn/ingest.yaml) with
# the kn CLI, or writes them to a folder without touching a cluster, and prints the audit
# webhook route of every SourceCluster.
#
#   kn/deploy.sh                      deploy to the current kubeconfig context
#   kn/deploy.sh --target out/kn      write out/kn/... offline (kn service create --target)
#
# Options:
#   -n, --namespace NS   namespace of the Services (default gitops-reverser; the YAML's own
#                        namespace is overridden by kn)
#   --target DIR         offline: write the Services' YAML under DIR instead of deploying
#   -h, --help           this text
#
# Images: the YAML names them as ko:// references. Either set INGEST_IMAGE and WRITER_IMAGE
# to published image references (digests preferred), or set KO_DOCKER_REPO and have `ko`
# on PATH: the script then builds, pushes and resolves them with `ko resolve`.
#
# Why create/--force rather than `kn service update`: kn/<name>.yaml is the one definition
# of each Service (kubectl, GitOps tools and this script all use it), and `kn service
# update` takes flags only, no file. So a missing Service is created with
# `kn service create --filename`, and an existing one is updated with
# `kn service create --filename --force`, kn's "create or replace": it updates the existing
# Service in place (a new Revision, the same URL), so running this script again is safe.
#
# Requires: kn (and kubectl for the routes; ko unless images are given).
set -euo pipefail

readonly INGEST_KO="ko://github.com/gitops-reverser/gitops-reverser/functions/ingest"
readonly WRITER_KO="ko://github.com/gitops-reverser/gitops-reverser/functions/writer"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
namespace="gitops-reverser"
target=""

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

die() {
  echo "deploy.sh: $*" >&2
  exit 1
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    -n | --namespace)
      [[ $# -ge 2 ]] || die "$1 needs a value"
      namespace="$2"
      shift 2
      ;;
    --namespace=*)
      namespace="${1#*=}"
      shift
      ;;
    --target)
      [[ $# -ge 2 ]] || die "$1 needs a value"
      target="$2"
      shift 2
      ;;
    --target=*)
      target="${1#*=}"
      shift
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      die "unknown argument $1 (see --help)"
      ;;
  esac
done

command -v kn >/dev/null || die "kn is not on PATH: install the Knative CLI (https://knative.dev/docs/client/)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# resolve NAME KO_REF IMAGE: writes $work/NAME.yaml, kn/NAME.yaml with its image resolved.
resolve() {
  local name="$1" ko_ref="$2" image="$3"
  local src="$here/$name.yaml" out="$work/$name.yaml"
  if [[ -n "$image" ]]; then
    # '|' as the sed delimiter: image references contain '/' but never '|'.
    sed "s|$ko_ref|$image|" "$src" >"$out"
  elif [[ -n "${KO_DOCKER_REPO:-}" ]] && command -v ko >/dev/null; then
    (cd "$here/.." && ko resolve -f "$src") >"$out"
  else
    die "no image for $name: set ${name^^}_IMAGE, or KO_DOCKER_REPO with ko on PATH"
  fi
  if grep -q 'ko://' "$out"; then
    die "$name: $out still names a ko:// image"
  fi
}

# deploy NAME: creates or updates the Service from $work/NAME.yaml, or writes it offline.
deploy() {
  local name="$1" file="$work/$1.yaml"
  if [[ -n "$target" ]]; then
    # Offline: kn writes the Service under $target (namespace folder, then the name).
    kn service create "$name" --namespace "$namespace" --filename "$file" --target "$target" --force
    return
  fi
  if kn service describe "$name" --namespace "$namespace" >/dev/null 2>&1; then
    echo "Updating Service $namespace/$name"
    kn service create "$name" --namespace "$namespace" --filename "$file" --force
  else
    echo "Creating Service $namespace/$name"
    kn service create "$name" --namespace "$namespace" --filename "$file"
  fi
}

resolve writer "$WRITER_KO" "${WRITER_IMAGE:-}"
resolve ingest "$INGEST_KO" "${INGEST_IMAGE:-}"

# The writer first: the ingest's K_SINK points at it.
deploy writer
deploy ingest

# The audit webhook route of every SourceCluster: the URL for AUDIT_WEBHOOK_URL in the
# source cluster's manifests/audit/webhook-kubeconfig.yaml.
if [[ -n "$target" ]]; then
  echo "Wrote the Services under $target."
  echo "Audit webhook route per SourceCluster: https://<ingest-url>/audit-webhook/<spec.clusterID>"
  exit 0
fi

url="$(kn service describe ingest --namespace "$namespace" --output url)"
[[ -n "$url" ]] || die "the ingest Service has no URL yet: kn service describe ingest -n $namespace"
host="${url#*://}"
if [[ "$url" != https://* ]]; then
  echo "warning: the ingest is served at $url, without TLS. kube-apiserver sends its bearer" >&2
  echo "warning: token only over https: enable TLS for Knative's external domain first." >&2
fi

command -v kubectl >/dev/null || die "kubectl is not on PATH: cannot list SourceClusters"
cluster_ids="$(kubectl get sourceclusters.reverser.gitops.dev --output 'jsonpath={range .items[*]}{.spec.clusterID}{"\n"}{end}')"
if [[ -z "$cluster_ids" ]]; then
  echo "No SourceCluster yet. Each one's route will be https://$host/audit-webhook/<spec.clusterID>"
  exit 0
fi
echo "Audit webhook routes (AUDIT_WEBHOOK_URL of each source cluster):"
while IFS= read -r id; do
  if [[ -n "$id" ]]; then
    printf '  %-30s https://%s/audit-webhook/%s\n' "$id" "$host" "$id"
  fi
done <<<"$cluster_ids"
