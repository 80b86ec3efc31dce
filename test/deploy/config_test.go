package deploy

import (
	"fmt"
	"os"
	"path"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gitops-reverser/gitops-reverser/lib/config"
)

const koPrefix = "ko://github.com/gitops-reverser/gitops-reverser/"

// specs maps each binary, by its ko:// import path, to a new value of its configuration.
var specs = map[string]func() interface{ Validate() error }{
	"functions/ingest": func() interface{ Validate() error } { return &config.Ingest{} },
	"functions/writer": func() interface{ Validate() error } { return &config.Writer{} },
	"jobs/reconcile":   func() interface{ Validate() error } { return &config.Reconcile{} },
	"jobs/resnapshot":  func() interface{ Validate() error } { return &config.Reconcile{} },
	"jobs/dlq-sweep":   func() interface{ Validate() error } { return &config.Sweep{} },
}

// knativeReserved are set by Knative itself; a Service that sets them is refused.
var knativeReserved = []string{"PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"}

// container is a container of a workload document, with where it was found.
type container struct {
	doc  document
	spec map[string]any // the pod spec
	c    map[string]any
}

// podSpec returns the pod spec of a workload document, or nil.
func podSpec(d document) map[string]any {
	var p []string
	switch d.kind() {
	case "Service":
		if !strings.HasPrefix(d.apiVersion(), "serving.knative.dev/") {
			return nil
		}
		p = []string{"spec", "template", "spec"}
	case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job":
		p = []string{"spec", "template", "spec"}
	case "CronJob":
		p = []string{"spec", "jobTemplate", "spec", "template", "spec"}
	default:
		return nil
	}
	m, _ := dig(d.Obj, p...).(map[string]any)
	return m
}

func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return v
}

func ourContainers(t *testing.T) []container {
	var out []container
	for _, d := range documents(t) {
		spec := podSpec(d)
		cs, _ := spec["containers"].([]any)
		for _, c := range cs {
			cm, _ := c.(map[string]any)
			if image, _ := cm["image"].(string); strings.HasPrefix(image, koPrefix) {
				out = append(out, container{doc: d, spec: spec, c: cm})
			}
		}
	}
	return out
}

// envVars lists the variables of a configuration struct, following embedded structs, as
// envconfig does.
func envVars(v any) []string {
	var names []string
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			if name := f.Tag.Get("envconfig"); name != "" {
				names = append(names, name)
			} else if f.Anonymous && f.Type.Kind() == reflect.Struct {
				walk(f.Type)
			}
		}
	}
	walk(reflect.TypeOf(v).Elem())
	return names
}

// TestEnvironmentMatchesLibConfig checks every container that runs one of this project's
// binaries: each variable it sets is one that binary reads (no typos, no variables of
// another binary), and the whole environment passes the binary's own config.Load, so
// the manifests cannot ship a value the binary refuses at start.
func TestEnvironmentMatchesLibConfig(t *testing.T) {
	containers := ourContainers(t)
	seen := map[string]bool{}
	for _, c := range containers {
		image := c.c["image"].(string)
		pkg := strings.TrimPrefix(image, koPrefix)
		seen[pkg] = true
		t.Run(c.doc.File+"/"+pkg, func(t *testing.T) {
			newSpec, ok := specs[pkg]
			if !ok {
				t.Fatalf("%s: image %s is not one of the binaries this test knows; add it to specs", c.doc, image)
			}
			if _, err := os.Stat(path.Join(root, pkg)); err != nil {
				t.Fatalf("%s: image %s names a package that does not exist: %v", c.doc, image, err)
			}
			spec := newSpec()
			known := envVars(spec)
			// Start from an environment without any of the binary's variables.
			for _, name := range known {
				t.Setenv(name, "")
				os.Unsetenv(name)
			}
			env, _ := c.c["env"].([]any)
			for _, e := range env {
				em, _ := e.(map[string]any)
				name, _ := em["name"].(string)
				if !slices.Contains(known, name) {
					t.Errorf("%s: sets %s, which %s does not read (lib/config)", c.doc, name, pkg)
					continue
				}
				if c.doc.kind() == "Service" && slices.Contains(knativeReserved, name) {
					t.Errorf("%s: sets %s, which Knative reserves and sets itself", c.doc, name)
				}
				value, _ := em["value"].(string)
				if em["valueFrom"] != nil {
					value = "from-a-secret"
				}
				t.Setenv(name, value)
			}
			if err := config.Load(spec); err != nil {
				t.Errorf("%s: %s would refuse this environment at start: %v", c.doc, pkg, err)
			}
		})
	}
	for pkg := range specs {
		if !seen[pkg] {
			t.Errorf("no manifest runs %s", pkg)
		}
	}
}

// TestChoicesHold checks the settings whose reasons the YAML comments give, so that a later
// edit cannot silently break the reasoning.
func TestChoicesHold(t *testing.T) {
	byName := map[string]document{}
	for _, d := range documents(t) {
		byName[d.kind()+"/"+d.name()] = d
	}
	annotation := func(d document, key string) string {
		s, _ := dig(d.Obj, "spec", "template", "metadata", "annotations", key).(string)
		return s
	}
	env := func(spec map[string]any, name string) string {
		cs, _ := spec["containers"].([]any)
		c, _ := cs[0].(map[string]any)
		es, _ := c["env"].([]any)
		for _, e := range es {
			em, _ := e.(map[string]any)
			if em["name"] == name {
				s, _ := em["value"].(string)
				return s
			}
		}
		return ""
	}
	duration := func(s, def string) time.Duration {
		if s == "" {
			s = def
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("duration %q: %v", s, err)
		}
		return d
	}
	number := func(v any) int64 {
		switch n := v.(type) {
		case int64:
			return n
		case float64:
			return int64(n)
		}
		i, _ := strconv.ParseInt(fmt.Sprint(v), 10, 64)
		return i
	}

	ingest, writer := byName["Service/ingest"], byName["Service/writer"]
	if ingest.Obj == nil || writer.Obj == nil {
		t.Fatal("kn/ingest.yaml or kn/writer.yaml has no Service named ingest or writer")
	}
	if got := annotation(ingest, "autoscaling.knative.dev/min-scale"); got != "1" {
		t.Errorf("ingest min-scale is %q: the apiservers need an endpoint at all times, keep 1", got)
	}
	if got := annotation(writer, "autoscaling.knative.dev/min-scale"); got != "0" {
		t.Errorf("writer min-scale is %q: it is meant to scale to zero", got)
	}
	// The writer's request must outlive one drain: the slice plus the fetch and push of the
	// round in flight when it ends.
	wspec := podSpec(writer)
	slice := duration(env(wspec, "DRAIN_SLICE"), "60s")
	git := duration(env(wspec, "GIT_TIMEOUT"), "60s")
	timeout := time.Duration(number(wspec["timeoutSeconds"])) * time.Second
	if timeout < slice+2*git {
		t.Errorf("writer timeoutSeconds %s < DRAIN_SLICE %s + 2 x GIT_TIMEOUT %s: a drain would be cut off", timeout, slice, git)
	}
	if timeout > 600*time.Second {
		t.Errorf("writer timeoutSeconds %s exceeds Knative's default max-revision-timeout-seconds (600)", timeout)
	}
	for name, sa := range map[string]string{"Service/ingest": "ingest", "Service/writer": "writer", "CronJob/reconcile": "reconcile", "CronJob/dlq-sweep": "dlq-sweep"} {
		d, ok := byName[name]
		if !ok {
			t.Errorf("no %s", name)
			continue
		}
		if got := podSpec(d)["serviceAccountName"]; got != sa {
			t.Errorf("%s: serviceAccountName %v, want %s (manifests/rbac)", d, got, sa)
		}
	}
	// Each job's Kubernetes deadline leaves it time to stop at its own DEADLINE and report.
	for _, d := range []document{byName["CronJob/reconcile"], byName["CronJob/dlq-sweep"], byName["Job/resnapshot-*"]} {
		if d.Obj == nil {
			t.Error("a job manifest is missing")
			continue
		}
		jobSpec := dig(d.Obj, "spec")
		if d.kind() == "CronJob" {
			jobSpec = dig(d.Obj, "spec", "jobTemplate", "spec")
			if p := dig(d.Obj, "spec", "concurrencyPolicy"); p != "Forbid" {
				t.Errorf("%s: concurrencyPolicy %v, want Forbid", d, p)
			}
		}
		deadline := duration(env(podSpec(d), "DEADLINE"), "30m")
		active := time.Duration(number(dig(jobSpec, "activeDeadlineSeconds"))) * time.Second
		if active < deadline || active > deadline+5*time.Minute {
			t.Errorf("%s: activeDeadlineSeconds %s should be DEADLINE %s plus a few minutes", d, active, deadline)
		}
	}
}
