package config

import (
	"strings"
	"testing"
	"time"
)

func TestLoadDefaults(t *testing.T) {
	var c Writer
	if err := Load(&c); err != nil {
		t.Fatal(err)
	}
	if c.Port != 8080 || c.Addr != "127.0.0.1:6379" || c.LeaseTTL != 15*time.Second || c.BatchSize != 1000 {
		t.Errorf("defaults not applied: %+v", c)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, key, value, want string
	}{
		{"not a number", "PORT", "http", "PORT"},
		{"out of range", "PORT", "70000", "PORT=70000"},
		{"bad duration", "SEEN_TTL", "soon", "SEEN_TTL"},
		{"too short", "SEEN_TTL", "1s", "SEEN_TTL=1s"},
		{"half TLS", "TLS_CERT_FILE", "/c.pem", "TLS_KEY_FILE"},
		{"log level", "LOG_LEVEL", "loud", "LOG_LEVEL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(tt.key, tt.value)
			var c Ingest
			err := Load(&c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load() error = %v, want it to name %s", err, tt.want)
			}
		})
	}
}

func TestLoadSweep(t *testing.T) {
	t.Setenv("K_SINK", "http://writer")
	var c Sweep
	if err := Load(&c); err != nil {
		t.Fatal(err)
	}
	if c.MaxRedrives != 3 || c.Backoff != time.Minute || c.Deadline != 30*time.Minute || c.PartitionMaxLen != 100000 || c.KeyPrefix != "gr" {
		t.Errorf("defaults not applied: %+v", c)
	}
	tests := []struct {
		name, key, value, want string
	}{
		{"no sink", "K_SINK", "", "K_SINK"},
		{"negative limit", "SWEEP_MAX_REDRIVES", "-1", "SWEEP_MAX_REDRIVES"},
		{"bad backoff", "SWEEP_BACKOFF", "0s", "SWEEP_BACKOFF"},
		{"unparsable backoff", "SWEEP_BACKOFF", "soon", "SWEEP_BACKOFF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(tt.key, tt.value)
			var c Sweep
			err := Load(&c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load() error = %v, want it to name %s", err, tt.want)
			}
		})
	}
}
