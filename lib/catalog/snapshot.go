package catalog

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"

	"github.com/gitops-reverser/gitops-reverser/lib/apis/v1alpha1"
	"github.com/gitops-reverser/gitops-reverser/lib/gitwrite"
	"github.com/gitops-reverser/gitops-reverser/lib/identity"
	"github.com/gitops-reverser/gitops-reverser/lib/rules"
)

// Objects is the configuration a Snapshot is built from.
type Objects struct {
	rules.Input
	SourceClusters []v1alpha1.SourceCluster
}

// Uses says which of the Secrets the configuration references a component reads, so it is
// granted, and asks for, no others: ingest has no business with Git credentials.
type Uses uint8

const (
	// UsesNone reads no Secret.
	UsesNone Uses = 0
	// UsesTokens: the SourceClusters' bearer tokens (ingest).
	UsesTokens Uses = 1 << (iota - 1)
	// UsesCredentials: the GitProviders' push credentials (writer, reconcile, resnapshot).
	UsesCredentials
	// UsesKubeconfigs: the SourceClusters' kubeconfigs (reconcile, resnapshot).
	UsesKubeconfigs

	// UsesAll reads every referenced Secret (local mode, where they are in the file).
	UsesAll = UsesTokens | UsesCredentials | UsesKubeconfigs
)

// SecretGetter returns a Secret by namespace and name.
type SecretGetter func(namespace, name string) (*corev1.Secret, error)

// Snapshot is an immutable view of the configuration, safe for concurrent use.
type Snapshot struct {
	// Plan routes objects to targets.
	Plan *rules.Plan
	// Problems lists what could not be used, for logs and status.
	Problems []string

	clusters   map[string]*Cluster
	partitions map[string]*Partition
}

// Cluster is a SourceCluster with its tokens resolved.
type Cluster struct {
	ID string
	// Kubeconfig is how the jobs read the cluster; nil means the cluster they run in.
	Kubeconfig []byte
	// RateLimit is the cluster's share of ingest; nil means none.
	RateLimit *v1alpha1.RateLimit
	// namespaces and resources bound what the cluster may send (nil: everything).
	namespaces map[string]bool
	resources  []v1alpha1.GroupResources
	// tokens are SHA-256 digests, so comparisons take the same time whatever the length.
	tokens [][sha256.Size]byte
}

// Authenticate reports, in constant time, whether token is one of the cluster's tokens.
func (c *Cluster) Authenticate(token string) bool {
	sum := sha256.Sum256([]byte(token))
	ok := 0
	for i := range c.tokens {
		ok |= subtle.ConstantTimeCompare(sum[:], c.tokens[i][:])
	}
	return ok == 1 && token != ""
}

// Admits reports whether the cluster may send objects of the resource in the namespace (""
// for cluster-scoped objects), under its SourceCluster's namespaces and resources.
func (c *Cluster) Admits(group, resource, namespace string) bool {
	if c.namespaces != nil && !c.namespaces[namespace] {
		return false
	}
	if len(c.resources) == 0 {
		return true
	}
	for _, gr := range c.resources {
		if matchesAny(gr.APIGroups, group) && matchesAny(gr.Resources, resource) {
			return true
		}
	}
	return false
}

func matchesAny(values []string, v string) bool {
	for _, x := range values {
		if x == v || x == "*" {
			return true
		}
	}
	return false
}

// Partition is what a writer needs to write one repository branch.
type Partition struct {
	identity.Partition
	// Provider is the GitProvider whose credentials and committer are used.
	Provider  identity.TargetRef
	Auth      gitwrite.Auth
	Committer v1alpha1.Identity
	// Roots are the folders the partition's targets own.
	Roots []string
}

// Cluster returns the SourceCluster with the given id.
func (s *Snapshot) Cluster(id string) (*Cluster, bool) {
	c, ok := s.clusters[id]
	return c, ok
}

// Partition returns the partition with the given id.
func (s *Snapshot) Partition(id string) (*Partition, bool) {
	p, ok := s.partitions[id]
	return p, ok
}

// PartitionIDs returns the ids of every configured partition, sorted.
func (s *Snapshot) PartitionIDs() []string {
	ids := make([]string, 0, len(s.partitions))
	for id := range s.partitions {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Build compiles objects into a Snapshot, reading referenced Secrets through get. What cannot
// be resolved is left out and listed in Problems.
// Build compiles the configuration, resolving the referenced Secrets that uses names; the
// others are left unread (no tokens, anonymous Git, ambient cluster access).
func Build(objs Objects, get SecretGetter, uses Uses) *Snapshot {
	plan, ruleProblems := rules.Compile(objs.Input)
	s := &Snapshot{Plan: plan, clusters: map[string]*Cluster{}, partitions: map[string]*Partition{}}
	for _, p := range ruleProblems {
		s.Problems = append(s.Problems, p.String())
	}

	for i := range objs.SourceClusters {
		sc := &objs.SourceClusters[i]
		c := &Cluster{ID: sc.Spec.ClusterID, RateLimit: sc.Spec.RateLimit, resources: sc.Spec.Resources}
		if len(sc.Spec.Namespaces) > 0 {
			c.namespaces = map[string]bool{}
			for _, ns := range sc.Spec.Namespaces {
				c.namespaces[ns] = true
			}
		}
		for _, ref := range sc.Spec.TokenSecretRefs {
			if uses&UsesTokens == 0 {
				break
			}
			v, err := secretValue(get, ref.Namespace, ref.Name, ref.EffectiveKey())
			if err != nil {
				s.problem("SourceCluster", "", sc.Name, err)
				continue
			}
			c.tokens = append(c.tokens, sha256.Sum256(v))
		}
		if ref := sc.Spec.KubeconfigSecretRef; ref != nil && uses&UsesKubeconfigs != 0 {
			v, err := secretKey(get, "kubeconfig", ref.Namespace, ref.Name, ref.EffectiveKubeconfigKey())
			if err != nil {
				s.problem("SourceCluster", "", sc.Name, err)
			}
			c.Kubeconfig = v
		}
		if _, dup := s.clusters[c.ID]; dup {
			s.problem("SourceCluster", "", sc.Name, fmt.Errorf("clusterID %q is used by another SourceCluster; both are ignored", c.ID))
			c.tokens = nil
		}
		s.clusters[c.ID] = c
	}

	providers := map[identity.TargetRef]*v1alpha1.GitProvider{}
	for i := range objs.Providers {
		p := &objs.Providers[i]
		providers[identity.TargetRef{Namespace: p.Namespace, Name: p.Name}] = p
	}
	// Targets come sorted, so when two providers serve one repository the choice is stable.
	for _, t := range plan.Targets() {
		if p, ok := s.partitions[t.Partition.ID]; ok {
			p.Roots = append(p.Roots, t.Path)
			continue
		}
		prov := providers[t.Provider]
		var auth gitwrite.Auth
		if uses&UsesCredentials != 0 {
			var err error
			if auth, err = credentials(get, prov); err != nil {
				s.problem("GitProvider", prov.Namespace, prov.Name, err)
			}
		}
		s.partitions[t.Partition.ID] = &Partition{
			Partition: t.Partition,
			Provider:  t.Provider,
			Auth:      auth,
			Committer: prov.Spec.EffectiveCommitter(),
			Roots:     []string{t.Path},
		}
	}
	sort.Strings(s.Problems)
	return s
}

func (s *Snapshot) problem(kind, namespace, name string, err error) {
	s.Problems = append(s.Problems, fmt.Sprintf("%s %s/%s: %v", kind, namespace, name, err))
}

// Secret keys read from a GitProvider's Secret.
const (
	KeyUsername      = "username"
	KeyPassword      = "password"
	KeyToken         = "token"
	KeySSHPrivateKey = "ssh-privatekey"
	KeySSHPassphrase = "ssh-passphrase"
	KeyKnownHosts    = "known_hosts"
)

// credentials reads a GitProvider's push credentials; no Secret means anonymous.
func credentials(get SecretGetter, p *v1alpha1.GitProvider) (gitwrite.Auth, error) {
	if p.Spec.SecretRef == nil {
		return gitwrite.Auth{}, nil
	}
	sec, err := get(p.Namespace, p.Spec.SecretRef.Name)
	if err != nil {
		return gitwrite.Auth{}, fmt.Errorf("credentials Secret %s/%s: %w", p.Namespace, p.Spec.SecretRef.Name, err)
	}
	d := sec.Data
	auth := gitwrite.Auth{
		Username:      string(d[KeyUsername]),
		Password:      string(d[KeyPassword]),
		SSHPrivateKey: d[KeySSHPrivateKey],
		SSHPassphrase: string(d[KeySSHPassphrase]),
		KnownHosts:    d[KeyKnownHosts],
	}
	if auth.Password == "" {
		auth.Password = string(d[KeyToken])
	}
	if auth.Password == "" && len(auth.SSHPrivateKey) == 0 {
		return auth, fmt.Errorf("credentials Secret %s/%s has none of %q, %q or %q", p.Namespace, sec.Name, KeyPassword, KeyToken, KeySSHPrivateKey)
	}
	return auth, nil
}

func secretValue(get SecretGetter, namespace, name, key string) ([]byte, error) {
	return secretKey(get, "token", namespace, name, key)
}

// secretKey reads one non-empty key of a Secret; what names the Secret's use in errors.
func secretKey(get SecretGetter, what, namespace, name, key string) ([]byte, error) {
	sec, err := get(namespace, name)
	if err != nil {
		return nil, fmt.Errorf("%s Secret %s/%s: %w", what, namespace, name, err)
	}
	v, ok := sec.Data[key]
	if !ok || len(v) == 0 {
		return nil, fmt.Errorf("%s Secret %s/%s has no key %q", what, namespace, name, key)
	}
	return v, nil
}
