package rbac

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"

	"github.com/gitops-reverser/gitops-reverser/lib/apis/v1alpha1"
	"github.com/gitops-reverser/gitops-reverser/lib/catalog"
	"github.com/gitops-reverser/gitops-reverser/lib/identity"
	"github.com/gitops-reverser/gitops-reverser/lib/rules"
)

// DefaultNamespace is where the product's own objects, and so its ServiceAccounts, live.
const DefaultNamespace = "gitops-reverser"

// The ServiceAccounts of the components, as manifests/rbac names them. Resnapshot runs as
// Reconcile.
const (
	Ingest    = "ingest"
	Writer    = "writer"
	Reconcile = "reconcile"
	DLQSweep  = "dlq-sweep"
)

// Label marks every object Generate emits, with the value LabelValue, so the generated RBAC
// can be found, and stale objects removed, with a label selector.
const (
	Label      = "reverser.gitops.dev/rbac"
	LabelValue = "generated"
)

// Names of the generated Roles, ClusterRole and their bindings (a binding has its role's name).
const (
	CredentialsRole = "gitops-reverser-credentials"
	TokensRole      = "gitops-reverser-tokens"
	KubeconfigsRole = "gitops-reverser-kubeconfigs"
	ReaderRole      = "gitops-reverser-reconcile-reader"
)

// Discovery is what Generate needs of a discovery client to expand "*" in rules;
// discovery.DiscoveryInterface has it.
type Discovery interface {
	ServerPreferredResources() ([]*metav1.APIResourceList, error)
}

// Options tunes Generate.
type Options struct {
	// Namespace holds the ServiceAccounts the bindings name; default DefaultNamespace.
	Namespace string
	// Discovery, when set, expands "*" in rules into the resources the cluster serves.
	// Without it a rule with "*" is an error.
	Discovery Discovery
}

// Output is the generated RBAC.
type Output struct {
	// Objects are *rbacv1.Role, RoleBinding, ClusterRole and ClusterRoleBinding, in a stable
	// order: Secret Roles by namespace, then the reconcile job's reader Roles, then its
	// ClusterRole. Each binding follows its role.
	Objects []runtime.Object
	// Notes are what a reader of the RBAC should know but that is not an error, for example
	// that a rule makes the reconcile job list Secrets.
	Notes []string
}

// secretUse is one reason to read Secrets, and the components that have it.
type secretUse struct {
	role     string
	subjects []string
}

var (
	// Credentials push and clone (writer, reconcile) and are checked by status projection
	// (writer, reconcile, dlq-sweep).
	credentialsUse = secretUse{CredentialsRole, []string{Writer, Reconcile, DLQSweep}}
	// Tokens authenticate audit webhooks (ingest) and are checked by the jobs' projection of
	// SourceCluster status (reconcile, dlq-sweep).
	tokensUse = secretUse{TokensRole, []string{Ingest, Reconcile, DLQSweep}}
	// Kubeconfigs are how the reconcile job reads remote clusters.
	kubeconfigsUse = secretUse{KubeconfigsRole, []string{Reconcile}}
	secretUses     = []secretUse{credentialsUse, tokensUse, kubeconfigsUse}
)

// Generate returns the Roles, ClusterRole and bindings that the configuration objs needs
// beyond the static manifests/rbac. It fails, naming each offending rule, when a rule uses
// "*" and opts.Discovery is nil or does not know the group; the rest is still returned.
func Generate(objs catalog.Objects, opts Options) (*Output, error) {
	if opts.Namespace == "" {
		opts.Namespace = DefaultNamespace
	}
	g := &generator{opts: opts, out: &Output{}}
	g.secrets(objs)
	err := g.reader(objs)
	sort.Strings(g.out.Notes)
	return g.out, err
}

type generator struct {
	opts Options
	out  *Output
	// discovered caches opts.Discovery's answer.
	discovered []*metav1.APIResourceList
	discErr    error
	discDone   bool
}

// secrets emits, per use and namespace, a Role that may get exactly the referenced Secrets.
func (g *generator) secrets(objs catalog.Objects) {
	names := map[string]map[string]map[string]bool{} // role -> namespace -> Secret names
	add := func(use secretUse, namespace, name string) {
		if namespace == "" || name == "" {
			return // the API rejects such a reference; never emit an empty resourceName
		}
		if names[use.role] == nil {
			names[use.role] = map[string]map[string]bool{}
		}
		if names[use.role][namespace] == nil {
			names[use.role][namespace] = map[string]bool{}
		}
		names[use.role][namespace][name] = true
	}
	for _, p := range objs.Providers {
		if p.Spec.SecretRef != nil {
			add(credentialsUse, p.Namespace, p.Spec.SecretRef.Name)
		}
	}
	for _, sc := range objs.SourceClusters {
		for _, ref := range sc.Spec.TokenSecretRefs {
			add(tokensUse, ref.Namespace, ref.Name)
		}
		if ref := sc.Spec.KubeconfigSecretRef; ref != nil {
			add(kubeconfigsUse, ref.Namespace, ref.Name)
		}
	}
	var namespaces []string
	seen := map[string]bool{}
	for _, byNS := range names {
		for ns := range byNS {
			if !seen[ns] {
				seen[ns] = true
				namespaces = append(namespaces, ns)
			}
		}
	}
	sort.Strings(namespaces)
	for _, ns := range namespaces {
		for _, use := range secretUses {
			set := names[use.role][ns]
			if len(set) == 0 {
				continue
			}
			rule := rbacv1.PolicyRule{
				APIGroups:     []string{""},
				Resources:     []string{"secrets"},
				Verbs:         []string{"get"},
				ResourceNames: sortedKeys(set),
			}
			g.role(ns, use.role, []rbacv1.PolicyRule{rule}, use.subjects)
		}
	}
}

// grant is a (group, resource) the reconcile job may get and list.
type grant = schema.GroupResource

// scope says which objects of a rule's resources it can match.
type scope struct {
	namespaced, clusterScoped bool
}

// reader emits what the reconcile job lists in the clusters it reads with its own identity.
func (g *generator) reader(objs catalog.Objects) error {
	local := map[string]bool{}
	for _, sc := range objs.SourceClusters {
		if ref := sc.Spec.KubeconfigSecretRef; ref != nil {
			g.note("SourceCluster %s (cluster %q) is read through its kubeconfig Secret %s/%s: grant that kubeconfig's identity, in that cluster, get and list on what the rules of its GitTargets name; nothing is generated for it here",
				sc.Name, sc.Spec.ClusterID, ref.Namespace, ref.Name)
			continue
		}
		local[sc.Spec.ClusterID] = true
	}
	plan, _ := rules.Compile(objs.Input) // what does not compile matches nothing: no grant
	readLocally := map[identity.TargetRef]bool{}
	for _, t := range plan.Targets() {
		if slices.ContainsFunc(t.Clusters(), func(c string) bool { return local[c] }) {
			readLocally[t.Ref] = true
		}
	}

	cluster := map[grant]bool{}
	byNS := map[string]map[grant]bool{}
	var errs []error
	addAll := func(kind, name string, r v1alpha1.ResourceRule, sc scope, namespaces []string) {
		grants, err := g.expand(r, sc)
		if err != nil {
			errs = append(errs, fmt.Errorf("rbac: %s %s: %w", kind, name, err))
			return
		}
		for _, gr := range grants {
			if gr == (grant{Resource: "secrets"}) {
				where := "every namespace"
				if namespaces != nil {
					where = "namespace " + strings.Join(namespaces, ", ")
				}
				g.note("%s %s names Secrets: the reconcile job may list every Secret of %s (their values reach Git only as the GitTarget's secretPolicy allows)", kind, name, where)
			}
			if namespaces == nil {
				cluster[gr] = true
				continue
			}
			for _, ns := range namespaces {
				if byNS[ns] == nil {
					byNS[ns] = map[grant]bool{}
				}
				byNS[ns][gr] = true
			}
		}
	}

	for _, wr := range objs.WatchRules {
		if !readLocally[identity.TargetRef{Namespace: wr.Namespace, Name: wr.Spec.TargetRef.Name}] {
			continue
		}
		for _, r := range wr.Spec.Rules {
			addAll("WatchRule", wr.Namespace+"/"+wr.Name, r, scope{namespaced: true}, []string{wr.Namespace})
		}
	}
	for _, cwr := range objs.ClusterWatchRules {
		if !readLocally[identity.TargetRef{Namespace: cwr.Spec.TargetRef.Namespace, Name: cwr.Spec.TargetRef.Name}] {
			continue
		}
		for _, r := range cwr.Spec.Rules {
			// The same reading of scope and namespaces as rules.Compile.
			sc := scope{
				clusterScoped: r.Scope != v1alpha1.ScopeNamespaced && len(r.Namespaces) == 0,
				namespaced:    r.Scope != v1alpha1.ScopeCluster,
			}
			namespaces := r.Namespaces
			if len(namespaces) == 0 || slices.Contains(namespaces, "*") {
				namespaces = nil // every namespace: only a ClusterRole grants that
			}
			if namespaces != nil && !sc.namespaced {
				continue // scope Cluster with namespaces matches nothing
			}
			addAll("ClusterWatchRule", cwr.Name, r.ResourceRule, sc, namespaces)
		}
	}

	nsNames := sortedKeys(byNS)
	for _, ns := range nsNames {
		for gr := range byNS[ns] {
			if cluster[gr] {
				delete(byNS[ns], gr) // the ClusterRole already grants it everywhere
			}
		}
		if len(byNS[ns]) > 0 {
			g.role(ns, ReaderRole, readRules(byNS[ns]), []string{Reconcile})
		}
	}
	if len(cluster) > 0 {
		g.clusterRole(ReaderRole, readRules(cluster), []string{Reconcile})
	}
	return errors.Join(errs...)
}

// expand returns the (group, resource) pairs a rule names, through discovery for "*".
func (g *generator) expand(r v1alpha1.ResourceRule, sc scope) ([]grant, error) {
	// An empty list matches nothing (see rules.Compile).
	if len(r.APIGroups) == 0 || len(r.Resources) == 0 || !(sc.namespaced || sc.clusterScoped) {
		return nil, nil
	}
	wild := slices.Contains(r.APIGroups, "*") || slices.Contains(r.Resources, "*")
	if !wild {
		var out []grant
		for _, grp := range r.APIGroups {
			for _, res := range r.Resources {
				out = append(out, grant{Group: grp, Resource: res})
			}
		}
		return out, nil
	}
	lists, err := g.discover()
	if err != nil {
		return nil, fmt.Errorf("apiGroups %q, resources %q: %w", r.APIGroups, r.Resources, err)
	}
	groups, resources := setOf(r.APIGroups), setOf(r.Resources)
	var out []grant
	for _, list := range lists {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil || !(groups["*"] || groups[gv.Group]) {
			continue
		}
		for _, res := range list.APIResources {
			// The reconcile job lists top-level resources only, of the scope the rule matches.
			if strings.Contains(res.Name, "/") || !slices.Contains(res.Verbs, "list") ||
				!(resources["*"] || resources[res.Name]) ||
				(res.Namespaced && !sc.namespaced) || (!res.Namespaced && !sc.clusterScoped) {
				continue
			}
			out = append(out, grant{Group: gv.Group, Resource: res.Name})
		}
	}
	return out, nil
}

// discover asks opts.Discovery once. Groups that fail discovery are left out with a note,
// as the reconcile job leaves them out of its listing.
func (g *generator) discover() ([]*metav1.APIResourceList, error) {
	if g.discDone {
		return g.discovered, g.discErr
	}
	g.discDone = true
	if g.opts.Discovery == nil {
		g.discErr = errors.New(`"*" stands for resources only discovery knows, and granting "*" itself would let the reconcile job read every Secret: run PRINT_RBAC against the cluster (no CATALOG_FILE) so "*" is expanded to the resources it serves, or name the resources in the rule`)
		return nil, g.discErr
	}
	lists, err := g.opts.Discovery.ServerPreferredResources()
	if err != nil {
		var failed *discovery.ErrGroupDiscoveryFailed
		if !errors.As(err, &failed) || len(lists) == 0 {
			g.discErr = fmt.Errorf("discovery: %w", err)
			return nil, g.discErr
		}
		for gv := range failed.Groups {
			g.note("API group %s failed discovery: rules matching it through \"*\" get no grant for it; run again when it serves", gv)
		}
	}
	g.discovered = lists
	return lists, nil
}

// readRules turns grants into one get/list rule per API group.
func readRules(grants map[grant]bool) []rbacv1.PolicyRule {
	byGroup := map[string]map[string]bool{}
	for gr := range grants {
		if byGroup[gr.Group] == nil {
			byGroup[gr.Group] = map[string]bool{}
		}
		byGroup[gr.Group][gr.Resource] = true
	}
	var out []rbacv1.PolicyRule
	for _, grp := range sortedKeys(byGroup) {
		out = append(out, rbacv1.PolicyRule{
			APIGroups: []string{grp},
			Resources: sortedKeys(byGroup[grp]),
			Verbs:     []string{"get", "list"},
		})
	}
	return out
}

func (g *generator) role(namespace, name string, rules []rbacv1.PolicyRule, subjects []string) {
	meta := g.meta(namespace, name)
	g.out.Objects = append(g.out.Objects,
		&rbacv1.Role{TypeMeta: typeMeta("Role"), ObjectMeta: meta, Rules: rules},
		&rbacv1.RoleBinding{
			TypeMeta: typeMeta("RoleBinding"), ObjectMeta: meta,
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
			Subjects: g.subjects(subjects),
		})
}

func (g *generator) clusterRole(name string, rules []rbacv1.PolicyRule, subjects []string) {
	meta := g.meta("", name)
	g.out.Objects = append(g.out.Objects,
		&rbacv1.ClusterRole{TypeMeta: typeMeta("ClusterRole"), ObjectMeta: meta, Rules: rules},
		&rbacv1.ClusterRoleBinding{
			TypeMeta: typeMeta("ClusterRoleBinding"), ObjectMeta: meta,
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
			Subjects: g.subjects(subjects),
		})
}

func (g *generator) meta(namespace, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:      name,
		Namespace: namespace,
		Labels:    map[string]string{"app.kubernetes.io/part-of": "gitops-reverser", Label: LabelValue},
	}
}

func (g *generator) subjects(names []string) []rbacv1.Subject {
	out := make([]rbacv1.Subject, len(names))
	for i, n := range names {
		out[i] = rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: n, Namespace: g.opts.Namespace}
	}
	return out
}

func (g *generator) note(format string, args ...any) {
	n := fmt.Sprintf(format, args...)
	if !slices.Contains(g.out.Notes, n) {
		g.out.Notes = append(g.out.Notes, n)
	}
}

func typeMeta(kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: kind}
}

func setOf(values []string) map[string]bool {
	s := make(map[string]bool, len(values))
	for _, v := range values {
		s[v] = true
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
