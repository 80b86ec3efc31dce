package harness

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"
)

func TestValkeyClusterHashTagsCrossSlotSpreadAndClose(t *testing.T) {
	ctx := t.Context()
	begin := time.Now()
	c, err := StartValkeyCluster(ctx, ValkeyClusterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Logf("3-node cluster ready in %v: %v", time.Since(begin).Round(time.Millisecond), c.Addrs)
	if len(c.Addrs) != 3 {
		t.Fatalf("Addrs = %v, want 3 nodes", c.Addrs)
	}

	client, err := valkey.NewClient(valkey.ClientOption{InitAddress: c.Addrs, DisableCache: true})
	if err != nil {
		t.Fatalf("connect to valkey cluster at %v: %v", c.Addrs, err)
	}
	defer client.Close()
	if nodes := client.Nodes(); len(nodes) != 3 {
		t.Fatalf("cluster client knows %d nodes, want 3 (cluster mode not detected?)", len(nodes))
	}

	// Keys with the same hash tag share a slot, so one script may touch both.
	const script = `redis.call('RPUSH', KEYS[1], ARGV[1]); redis.call('RPUSH', KEYS[2], ARGV[1]); return redis.call('LLEN', KEYS[1]) + redis.call('LLEN', KEYS[2])`
	n, err := client.Do(ctx, client.B().Eval().Script(script).Numkeys(2).Key("{p1}:events", "{p1}:dlq").Arg("x").Build()).AsInt64()
	if err != nil || n != 2 {
		t.Fatalf("EVAL on {p1}:events and {p1}:dlq = %d, %v; want 2", n, err)
	}

	// Different hash tags: the server refuses. The cluster client would already refuse
	// to build the command, so send it over a plain connection to one node.
	plain := make([]valkey.Client, len(c.Addrs))
	for i, addr := range c.Addrs {
		plain[i], err = valkey.NewClient(valkey.ClientOption{InitAddress: []string{addr}, DisableCache: true, ForceSingleClient: true})
		if err != nil {
			t.Fatalf("connect to node %s: %v", addr, err)
		}
		defer plain[i].Close()
	}
	err = plain[0].Do(ctx, plain[0].B().Eval().Script(script).Numkeys(2).Key("{p1}:a", "{p2}:a").Arg("x").Build()).Error()
	if err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Fatalf("EVAL on {p1}:a and {p2}:a: err = %v, want a CROSSSLOT error", err)
	}

	for i := range 100 {
		key := fmt.Sprintf("{k%d}", i)
		if err := client.Do(ctx, client.B().Set().Key(key).Value("v").Build()).Error(); err != nil {
			t.Fatalf("SET %s: %v", key, err)
		}
	}
	var sizes []int64
	used, total := 0, int64(0)
	for i, p := range plain {
		size, err := p.Do(ctx, p.B().Dbsize().Build()).AsInt64()
		if err != nil {
			t.Fatalf("DBSIZE on %s: %v", c.Addrs[i], err)
		}
		sizes = append(sizes, size)
		total += size
		if size > 0 {
			used++
		}
	}
	if used < 2 || total < 100 {
		t.Fatalf("DBSIZE per node = %v; want keys on at least 2 nodes and at least 100 in all", sizes)
	}
	t.Logf("DBSIZE per node: %v", sizes)

	pids := make([]int, len(c.nodes))
	for i, n := range c.nodes {
		pids[i] = n.c.pid()
	}
	dir := c.Dir
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for i, addr := range c.Addrs {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			t.Errorf("node %s still accepts connections after Close", addr)
		}
		if !processGone(pids[i]) {
			t.Errorf("valkey-server pid %d (%s) still exists after Close", pids[i], addr)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("cluster directory %s still there after Close (stat: %v)", dir, err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
