package main

import (
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRender(t *testing.T) {
	out := filepath.Join(t.TempDir(), "chart.png")
	if err := run("testdata/results.json", out); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("chart is not a PNG: %v", err)
	}
	b := img.Bounds()
	if b.Dx() != 1600 || b.Dy() != 700 {
		t.Errorf("chart is %dx%d, want 1600x700", b.Dx(), b.Dy())
	}
	first := img.At(b.Min.X, b.Min.Y)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if img.At(x, y) != first {
				return
			}
		}
	}
	t.Error("chart is all one colour")
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct{ name, json, want string }{
		{"malformed", `{"latency": [`, "is not a results.json"},
		{"wrong type", `{"latency": "fast"}`, "is not a results.json"},
		{"empty", `{"latency": [{"name": "none", "ms": []}], "repoSize": [{"files": [0], "value": [1]}]}`, "run `make bench` first"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "results.json")
			if err := os.WriteFile(p, []byte(tc.json), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := load(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("load(%s) = %v, want an error containing %q", tc.json, err, tc.want)
			}
		})
	}
}
