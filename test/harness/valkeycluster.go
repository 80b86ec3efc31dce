package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ValkeyClusterOptions configures StartValkeyCluster.
type ValkeyClusterOptions struct {
	// Dir holds one folder per node (node-0, node-1, ...) with its nodes.conf, data (with
	// AppendOnly) and valkey.log, plus cluster-create.log from valkey-cli; default: a
	// temporary directory that Close removes. Give a fresh directory: a node that finds
	// the nodes.conf of an earlier cluster refuses to join a new one.
	Dir string
	// Nodes is the number of primaries, without replicas; default 3, the minimum that
	// valkey-cli --cluster create accepts.
	Nodes int
	// AppendOnly makes every write durable before it is acknowledged (appendfsync
	// always), as in ValkeyOptions.
	AppendOnly bool
}

// ValkeyCluster is a Valkey Cluster of primaries on 127.0.0.1, the 16384 hash slots spread
// evenly over them.
type ValkeyCluster struct {
	Addrs []string // host:port of every node, in node order; any of them seeds a client
	Dir   string

	removeDir bool
	mu        sync.Mutex
	nodes     []*clusterNode
}

// clusterNode is one valkey-server of the cluster.
type clusterNode struct {
	addr string
	dir  string
	c    *child
}

// StartValkeyCluster starts opts.Nodes valkey-servers in cluster mode on free loopback
// ports, joins them with valkey-cli --cluster create and waits until every node reports
// cluster_state:ok with all 16384 slots assigned. ctx bounds only the start.
func StartValkeyCluster(ctx context.Context, opts ValkeyClusterOptions) (*ValkeyCluster, error) {
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	if opts.Nodes < 3 {
		return nil, fmt.Errorf("a Valkey Cluster needs at least 3 primary nodes, got Nodes: %d (valkey-cli --cluster create refuses fewer); use StartValkey for a single server", opts.Nodes)
	}
	server, err := exec.LookPath("valkey-server")
	if err != nil {
		return nil, errors.New("valkey-server not found: run test/tools/install-valkey.sh (installs valkey-server 8 from Debian bookworm-backports)")
	}
	cli, err := exec.LookPath("valkey-cli")
	if err != nil {
		return nil, errors.New("valkey-cli not found: it comes with the valkey-server Debian package (through valkey-tools): run test/tools/install-valkey.sh, or apt-get install -t bookworm-backports valkey-tools if valkey-server is already there")
	}

	vc := &ValkeyCluster{Dir: opts.Dir}
	if vc.Dir == "" {
		dir, err := os.MkdirTemp("", "harness-valkey-cluster-*")
		if err != nil {
			return nil, err
		}
		vc.Dir, vc.removeDir = dir, true
	}
	if err := vc.start(ctx, opts, server, cli); err != nil {
		vc.Close()
		return nil, err
	}
	return vc, nil
}

func (vc *ValkeyCluster) start(ctx context.Context, opts ValkeyClusterOptions, server, cli string) error {
	for i := range opts.Nodes {
		n, err := startClusterNode(server, filepath.Join(vc.Dir, "node-"+strconv.Itoa(i)), opts.AppendOnly)
		if n != nil {
			vc.nodes = append(vc.nodes, n)
			vc.Addrs = append(vc.Addrs, n.addr)
		}
		if err != nil {
			return err
		}
	}
	for _, n := range vc.nodes {
		if err := n.c.waitReady(ctx, 30*time.Second, func(ctx context.Context) error {
			_, err := valkeyCommand(ctx, n.addr, "PING")
			return err
		}); err != nil {
			return err
		}
	}
	if err := vc.create(ctx, cli); err != nil {
		return err
	}
	// valkey-cli returns once the nodes have met, but each node turns cluster_state:ok on
	// its own when it has learned every slot's owner through gossip.
	for _, n := range vc.nodes {
		if err := n.c.waitReady(ctx, 30*time.Second, func(ctx context.Context) error {
			return clusterReady(ctx, n.addr, len(vc.nodes))
		}); err != nil {
			return fmt.Errorf("valkey cluster did not become ready: %w", err)
		}
	}
	return nil
}

// startClusterNode starts one valkey-server in cluster mode in dir, on a free port for
// clients and another for the cluster bus (by default the bus takes port+10000, which
// may be taken or beyond 65535).
func startClusterNode(server, dir string, appendOnly bool) (*clusterNode, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	busPort, err := FreePort()
	for err == nil && busPort == port {
		busPort, err = FreePort()
	}
	if err != nil {
		return nil, err
	}
	args := []string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--dir", dir,
		"--cluster-enabled", "yes",
		"--cluster-config-file", "nodes.conf", // in --dir
		"--cluster-port", strconv.Itoa(busPort),
		"--save", "", // no RDB snapshots: durability, when wanted, comes from the AOF
	}
	if appendOnly {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	n := &clusterNode{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: dir}
	name := "valkey-server (cluster node " + n.addr + ")"
	c, err := startChild(name, server, args, nil, dir, filepath.Join(dir, "valkey.log"))
	if err != nil {
		return nil, err
	}
	n.c = c
	return n, nil
}

// create runs valkey-cli --cluster create over all nodes. --cluster-yes answers its
// confirmation prompt; "yes" on stdin covers a valkey-cli that would ask anyway.
func (vc *ValkeyCluster) create(ctx context.Context, cli string) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	args := append([]string{"--cluster", "create"}, vc.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	cmd := exec.CommandContext(ctx, cli, args...)
	cmd.Dir = vc.Dir
	cmd.Stdin = strings.NewReader("yes\n")
	raw, err := cmd.CombinedOutput()
	// valkey-cli colours its messages even when they do not go to a terminal.
	output := ansiColour.ReplaceAllString(string(raw), "")
	logPath := filepath.Join(vc.Dir, "cluster-create.log")
	_ = os.WriteFile(logPath, []byte(output), 0o644)
	if err != nil {
		hint := ""
		if strings.Contains(output, "is not empty") {
			hint = "\n(a node kept the nodes.conf or data of an earlier cluster: give StartValkeyCluster a fresh Dir)"
		}
		return fmt.Errorf("valkey-cli %s: %w (output also in %s):\n%s%s", strings.Join(args, " "), err, logPath, lastLines(output, 30), hint)
	}
	return nil
}

var ansiColour = regexp.MustCompile("\x1b\\[[0-9;]*m")

// clusterReady checks CLUSTER INFO on addr: state ok, every slot assigned and every node
// known.
func clusterReady(ctx context.Context, addr string, nodes int) error {
	info, err := valkeyCommand(ctx, addr, "CLUSTER INFO")
	if err != nil {
		return err
	}
	fields := map[string]string{}
	for line := range strings.Lines(info) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			fields[k] = v
		}
	}
	want := map[string]string{
		"cluster_state":          "ok",
		"cluster_slots_assigned": "16384",
		"cluster_slots_ok":       "16384",
		"cluster_known_nodes":    strconv.Itoa(nodes),
	}
	for k, v := range want {
		if fields[k] != v {
			return fmt.Errorf("CLUSTER INFO on %s: %s is %q, want %q", addr, k, fields[k], v)
		}
	}
	return nil
}

// valkeyCommand sends one inline command and returns the reply of a simple string, an
// integer or a bulk string, without needing a client library. An error reply is an error.
func valkeyCommand(ctx context.Context, addr, command string) (string, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte(command + "\r\n")); err != nil {
		return "", err
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("%s: empty reply", command)
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", fmt.Errorf("%s: %s", command, line[1:])
	case '$':
		size, err := strconv.Atoi(line[1:])
		if err != nil || size < 0 {
			return "", fmt.Errorf("%s: unexpected reply %q", command, line)
		}
		body := make([]byte, size+2) // with the closing \r\n
		if _, err := io.ReadFull(r, body); err != nil {
			return "", err
		}
		return string(body[:size]), nil
	default:
		return "", fmt.Errorf("%s: unexpected reply %q", command, line)
	}
}

// Close stops every node and removes the directory the harness created for the cluster.
// It may be called more than once.
func (vc *ValkeyCluster) Close() error {
	vc.mu.Lock()
	defer vc.mu.Unlock()
	errs := make([]error, len(vc.nodes))
	var wg sync.WaitGroup
	for i, n := range vc.nodes {
		wg.Go(func() { errs[i] = n.c.stop(10 * time.Second) })
	}
	wg.Wait()
	err := errors.Join(errs...)
	if vc.removeDir {
		vc.removeDir = false
		err = errors.Join(err, os.RemoveAll(vc.Dir))
	}
	return err
}
