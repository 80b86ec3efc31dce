package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"os/exec"
	"strings"
	"testing"

	"github.com/valkey-io/valkey-go"
)

// assertNowhere fails if the value, plain or base64-encoded, is in any Git object of the
// remote or any key of Valkey.
func assertNowhere(t *testing.T, plaintext string) {
	t.Helper()
	needles := []string{plaintext, base64.StdEncoding.EncodeToString([]byte(plaintext))}

	// Every object in the bare repository, loose or packed, decompressed by git itself.
	cmd := exec.Command("git", "-C", env.Git.BareDir, "cat-file", "--batch-all-objects", "--batch")
	cmd.Env = append(cmd.Environ(), "GIT_CONFIG_GLOBAL=/dev/null")
	objects, err := cmd.Output()
	if err != nil {
		t.Fatalf("read Git objects: %v", err)
	}
	for _, n := range needles {
		if bytes.Contains(objects, []byte(n)) {
			t.Errorf("Git objects contain the secret value %q", n)
		}
	}

	c, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{env.Valkey.Addr}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	keys, err := c.Do(ctx, c.B().Keys().Pattern("*").Build()).AsStrSlice()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		dump, err := c.Do(ctx, c.B().Dump().Key(k).Build()).ToString()
		if err != nil {
			continue // expired meanwhile
		}
		for _, n := range needles {
			if strings.Contains(dump, n) {
				t.Errorf("Valkey key %s contains the secret value %q", k, n)
			}
		}
	}
	// The append-only file holds every write ever made, including trimmed stream entries.
	aof, err := exec.Command("sh", "-c", "cat "+env.Valkey.Dir+"/appendonlydir/*").Output()
	if err != nil || len(aof) == 0 {
		t.Fatalf("read Valkey AOF: %v", err)
	}
	for _, n := range needles {
		if bytes.Contains(aof, []byte(n)) {
			t.Errorf("Valkey's append-only file contains the secret value %q", n)
		}
	}
}
