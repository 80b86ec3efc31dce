package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// auditID numbers every event the suite sends, so no two are ever the same event to ingest.
var auditID atomic.Int64

// configMap is a ConfigMap as the apiserver returns it: metadata with uid, labels,
// annotations and managedFields, and about 1 KiB of data. The event carries it twice (the
// request and the response), as a RequestResponse audit policy logs it: ~2.5 KiB per event.
func configMap(namespace, name string, rv int64, value string) json.RawMessage {
	obj := map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{
			"name": name, "namespace": namespace, "uid": fmt.Sprintf("6f1c1d2e-0000-4000-8000-%012d", rv%1e12),
			"resourceVersion": fmt.Sprint(rv), "creationTimestamp": "2026-11-30T08:00:00Z",
			"labels":      map[string]string{"app.kubernetes.io/name": "shop", "app.kubernetes.io/part-of": "bench", "tier": "backend"},
			"annotations": map[string]string{"owner": "team-" + namespace, "description": "settings of the shop backend, edited by hand"},
			"managedFields": []map[string]any{{
				"manager": "kubectl-edit", "operation": "Update", "apiVersion": "v1", "time": "2026-11-30T08:00:00Z",
				"fieldsType": "FieldsV1", "fieldsV1": map[string]any{"f:data": map[string]any{"f:value": map[string]any{}, "f:settings.yaml": map[string]any{}}},
			}},
		},
		"data": map[string]string{"value": value, "settings.yaml": settings},
	}
	b, _ := json.Marshal(obj)
	return b
}

var settings = strings.Repeat("feature.flag: enabled # with a comment\n", 24) // ~1 KiB

// auditEvent is one successful update of a ConfigMap, by alice.
func auditEvent(namespace, name string, rv int64, value string, at time.Time) map[string]any {
	obj := configMap(namespace, name, rv, value)
	ts := at.UTC().Format(time.RFC3339Nano)
	return map[string]any{
		"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
		"auditID": fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), auditID.Add(1)), "stage": "ResponseComplete",
		"requestURI": "/api/v1/namespaces/" + namespace + "/configmaps/" + name, "verb": "update",
		"user":           map[string]any{"username": "alice", "groups": []string{"system:authenticated"}},
		"sourceIPs":      []string{"10.0.0.7"},
		"userAgent":      "kubectl/v1.37.2 (linux/amd64) kubernetes/bench",
		"objectRef":      map[string]any{"resource": "configmaps", "namespace": namespace, "name": name, "apiVersion": "v1"},
		"responseStatus": map[string]any{"metadata": map[string]any{}, "code": 200},
		"requestObject":  obj, "responseObject": obj,
		"requestReceivedTimestamp": ts, "stageTimestamp": ts,
	}
}

// eventList is an audit webhook body.
func eventList(events []map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": map[string]any{}, "items": events})
	return b
}

// batch is n events on the objects cm-<first> to cm-<first+n-1> of namespace, each at
// version rv with data value.
func batch(namespace string, first, n int, rv int64, value string) []byte {
	events := make([]map[string]any, n)
	now := time.Now()
	for i := range events {
		events[i] = auditEvent(namespace, fmt.Sprintf("cm-%05d", first+i), rv, value, now)
	}
	return eventList(events)
}

// poster sends audit batches to ingest as the apiserver does.
type poster struct {
	client *http.Client
	url    string // .../audit-webhook/<cluster>
	token  string
}

func newPoster(ingestURL, token string, conns int) *poster {
	return &poster{
		client: &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}},
		url:    ingestURL + "/audit-webhook/" + clusterID, token: token,
	}
}

// post sends one batch and returns the status code; an answer other than 200 is an error.
func (p *poster) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+p.token)
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ingest answered %d: %s", resp.StatusCode, msg)
	}
	return nil
}
