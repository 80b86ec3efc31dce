package rules

import (
	"fmt"
	"slices"
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/gitops-reverser/gitops-reverser/lib/apis/v1alpha1"
	"github.com/gitops-reverser/gitops-reverser/lib/identity"
)

// Input is everything a Plan is compiled from.
type Input struct {
	Providers         []v1alpha1.GitProvider
	Targets           []v1alpha1.GitTarget
	WatchRules        []v1alpha1.WatchRule
	ClusterWatchRules []v1alpha1.ClusterWatchRule
}

// Target is a resolved GitTarget: where its objects go and under which policy.
type Target struct {
	Ref          identity.TargetRef
	Provider     identity.TargetRef // namespace/name of the GitProvider
	Partition    identity.Partition
	Path         string
	SecretPolicy v1alpha1.SecretPolicy
	clusters     map[string]bool
}

// AcceptsCluster reports whether the target takes objects from the cluster.
func (t *Target) AcceptsCluster(cluster string) bool { return t.clusters[cluster] }

// Object describes a change to match.
type Object struct {
	Cluster   string
	Group     string
	Resource  string
	Namespace string
	// Labels are the object's labels; nil when unknown, as for some deletes. A selector then
	// matches: deleting a file that was never written is harmless, missing a delete is not.
	Labels    map[string]string
	Operation v1alpha1.Operation
}

// Problem is a rule or target that could not be compiled, and why.
type Problem struct {
	Kind, Namespace, Name string
	Message               string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s %s/%s: %s", p.Kind, p.Namespace, p.Name, p.Message)
}

// Plan is a compiled rule set. It is immutable and safe for concurrent use.
type Plan struct {
	targets []*Target // sorted by Ref
	rules   []rule
}

// rule is one compiled ResourceRule.
type rule struct {
	target     *Target
	groups     set
	resources  set
	operations set
	selector   labels.Selector // nil selects everything
	// namespace scoping: cluster-scoped objects allowed? namespaced objects allowed, and in
	// which namespaces (nil = all)?
	clusterScoped bool
	namespaced    bool
	namespaces    set
}

// set is a string set where "*" matches everything; a nil set matches everything too.
type set map[string]bool

func newSet(values []string) set {
	if len(values) == 0 {
		return nil
	}
	s := make(set, len(values))
	for _, v := range values {
		s[v] = true
	}
	return s
}

func (s set) has(v string) bool { return s == nil || s["*"] || s[v] }

// Compile builds a Plan. Its result depends only on the input's content, not its order.
func Compile(in Input) (*Plan, []Problem) {
	var problems []Problem
	providers := map[identity.TargetRef]*v1alpha1.GitProvider{}
	for i := range in.Providers {
		p := &in.Providers[i]
		providers[identity.TargetRef{Namespace: p.Namespace, Name: p.Name}] = p
	}

	plan := &Plan{}
	targets := map[identity.TargetRef]*Target{}
	for i := range in.Targets {
		gt := &in.Targets[i]
		ref := identity.TargetRef{Namespace: gt.Namespace, Name: gt.Name}
		provRef := identity.TargetRef{Namespace: gt.Namespace, Name: gt.Spec.ProviderRef.Name}
		prov, ok := providers[provRef]
		if !ok {
			problems = append(problems, Problem{"GitTarget", ref.Namespace, ref.Name, fmt.Sprintf("GitProvider %q not found in namespace %q", provRef.Name, provRef.Namespace)})
			continue
		}
		t := &Target{
			Ref:          ref,
			Provider:     provRef,
			Partition:    identity.PartitionOf(prov.Spec.URL, gt.Spec.Branch),
			Path:         gt.Spec.Path,
			SecretPolicy: gt.Spec.SecretPolicy,
			clusters:     map[string]bool{},
		}
		if t.SecretPolicy == "" {
			t.SecretPolicy = v1alpha1.SecretPolicyRedact
		}
		for _, c := range gt.Spec.SourceClusters {
			t.clusters[c] = true
		}
		targets[ref] = t
		plan.targets = append(plan.targets, t)
	}
	sort.Slice(plan.targets, func(i, j int) bool { return less(plan.targets[i].Ref, plan.targets[j].Ref) })

	for i := range in.WatchRules {
		wr := &in.WatchRules[i]
		ref := identity.TargetRef{Namespace: wr.Namespace, Name: wr.Spec.TargetRef.Name}
		scope := rule{namespaced: true, namespaces: newSet([]string{wr.Namespace})}
		problems = plan.add("WatchRule", wr.Namespace, wr.Name, targets[ref], ref, wr.Spec.ObjectSelector, problems, func(add func(v1alpha1.ResourceRule, rule)) {
			for _, r := range wr.Spec.Rules {
				add(r, scope)
			}
		})
	}
	for i := range in.ClusterWatchRules {
		cwr := &in.ClusterWatchRules[i]
		ref := identity.TargetRef{Namespace: cwr.Spec.TargetRef.Namespace, Name: cwr.Spec.TargetRef.Name}
		problems = plan.add("ClusterWatchRule", "", cwr.Name, targets[ref], ref, cwr.Spec.ObjectSelector, problems, func(add func(v1alpha1.ResourceRule, rule)) {
			for _, r := range cwr.Spec.Rules {
				add(r.ResourceRule, rule{
					// Naming namespaces says the rule is about namespaced objects.
					clusterScoped: r.Scope != v1alpha1.ScopeNamespaced && len(r.Namespaces) == 0,
					namespaced:    r.Scope != v1alpha1.ScopeCluster,
					namespaces:    newSet(r.Namespaces),
				})
			}
		})
	}
	return plan, problems
}

// add compiles the resource rules of one (Cluster)WatchRule.
func (p *Plan) add(kind, namespace, name string, t *Target, ref identity.TargetRef, sel *metav1.LabelSelector, problems []Problem, each func(func(v1alpha1.ResourceRule, rule))) []Problem {
	if t == nil {
		return append(problems, Problem{kind, namespace, name, fmt.Sprintf("GitTarget %s not found or not usable", ref)})
	}
	var selector labels.Selector
	if sel != nil {
		s, err := labelSelector(sel)
		if err != nil {
			return append(problems, Problem{kind, namespace, name, fmt.Sprintf("invalid objectSelector: %v", err)})
		}
		selector = s
	}
	each(func(r v1alpha1.ResourceRule, scope rule) {
		ops := make([]string, len(r.Operations))
		for i, o := range r.Operations {
			ops[i] = string(o)
		}
		scope.target = t
		scope.groups = newSet(r.APIGroups)
		scope.resources = newSet(r.Resources)
		scope.operations = newSet(ops)
		scope.selector = selector
		// An empty list is "match nothing" in the API (MinItems=1); keep that meaning here.
		if len(r.APIGroups) == 0 || len(r.Resources) == 0 {
			return
		}
		p.rules = append(p.rules, scope)
	})
	return problems
}

// Match returns the targets that want the change, sorted by namespace/name, each once.
func (p *Plan) Match(o Object) []*Target {
	var out []*Target
	for i := range p.rules {
		r := &p.rules[i]
		if !r.matches(o) || slices.Contains(out, r.target) {
			continue
		}
		out = append(out, r.target)
	}
	sort.Slice(out, func(i, j int) bool { return less(out[i].Ref, out[j].Ref) })
	return out
}

// Targets returns every compiled target, sorted by namespace/name.
func (p *Plan) Targets() []*Target { return p.targets }

func (r *rule) matches(o Object) bool {
	if !r.target.clusters[o.Cluster] || !r.groups.has(o.Group) || !r.resources.has(o.Resource) || !r.operations.has(string(o.Operation)) {
		return false
	}
	if o.Namespace == "" {
		if !r.clusterScoped {
			return false
		}
	} else if !r.namespaced || !r.namespaces.has(o.Namespace) {
		return false
	}
	if r.selector != nil && o.Labels != nil && !r.selector.Matches(labels.Set(o.Labels)) {
		return false
	}
	return true
}

func less(a, b identity.TargetRef) bool {
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	return a.Name < b.Name
}

// Scope says where objects of one resource can match a cluster's rules: what a reconcile has
// to list to see every object the rules want.
type Scope struct {
	// Wanted is false when no rule can match the resource.
	Wanted bool
	// Namespaces bounds the listing of a namespaced resource; nil means every namespace.
	Namespaces []string
}

// ScopeOf returns where rules of targets accepting the cluster can match objects of the
// resource, whatever their labels and operation. namespaced is the resource's scope as
// discovery reports it.
func (p *Plan) ScopeOf(cluster, group, resource string, namespaced bool) Scope {
	var sc Scope
	names := set{}
	for i := range p.rules {
		r := &p.rules[i]
		if !r.target.clusters[cluster] || !r.groups.has(group) || !r.resources.has(resource) {
			continue
		}
		switch {
		case !namespaced && r.clusterScoped:
			sc.Wanted = true
		case namespaced && r.namespaced:
			sc.Wanted = true
			switch {
			case names == nil: // already every namespace
			case r.namespaces == nil || r.namespaces["*"]:
				names = nil
			default:
				for ns := range r.namespaces {
					names[ns] = true
				}
			}
		}
	}
	if sc.Wanted && namespaced && names != nil {
		for ns := range names {
			sc.Namespaces = append(sc.Namespaces, ns)
		}
		sort.Strings(sc.Namespaces)
	}
	return sc
}

// Clusters returns the cluster ids the target accepts, sorted.
func (t *Target) Clusters() []string {
	out := make([]string, 0, len(t.clusters))
	for c := range t.clusters {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}
