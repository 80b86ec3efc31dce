package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ValkeyOptions configures StartValkey.
type ValkeyOptions struct {
	// Dir holds the data (with AppendOnly) and valkey.log; default: a temporary directory
	// that Close removes.
	Dir string
	// AppendOnly makes every write durable before it is acknowledged (appendfsync
	// always), so data survives Kill and Restart. Without it nothing is ever written to
	// disk and a restart starts empty.
	AppendOnly bool
}

// Valkey is a valkey-server listening on 127.0.0.1.
type Valkey struct {
	Addr string // host:port for clients
	Dir  string

	opts      ValkeyOptions
	path      string
	port      int
	removeDir bool
	mu        sync.Mutex
	c         *child
}

// StartValkey starts valkey-server on a free loopback port and waits until it answers
// PING. ctx bounds only the wait.
func StartValkey(ctx context.Context, opts ValkeyOptions) (*Valkey, error) {
	path, err := exec.LookPath("valkey-server")
	if err != nil {
		return nil, errors.New("valkey-server not found: run test/tools/install-valkey.sh (installs valkey-server 8 from Debian bookworm-backports)")
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	v := &Valkey{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Dir: opts.Dir, opts: opts, path: path, port: port}
	if v.Dir == "" {
		dir, err := os.MkdirTemp("", "harness-valkey-*")
		if err != nil {
			return nil, err
		}
		v.Dir, v.removeDir = dir, true
	}
	if err := v.start(ctx); err != nil {
		v.Close()
		return nil, err
	}
	return v, nil
}

func (v *Valkey) start(ctx context.Context) error {
	args := []string{
		"--port", strconv.Itoa(v.port),
		"--bind", "127.0.0.1",
		"--dir", v.Dir,
		"--save", "", // no RDB snapshots: durability, when wanted, comes from the AOF
	}
	if v.opts.AppendOnly {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	c, err := startChild("valkey-server", v.path, args, nil, v.Dir, filepath.Join(v.Dir, "valkey.log"))
	if err != nil {
		return err
	}
	v.c = c
	// Loading a large AOF can take a while; PING answers -LOADING until it is done.
	return c.waitReady(ctx, 30*time.Second, v.ping)
}

// ping sends an inline PING and wants +PONG, without needing a client library.
func (v *Valkey) ping(ctx context.Context) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", v.Addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if line = strings.TrimSpace(line); line != "+PONG" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// Pid returns the server's process id.
func (v *Valkey) Pid() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.c.pid()
}

// Stop shuts the server down with SIGTERM (killing it after 10s).
func (v *Valkey) Stop() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.c.stop(10 * time.Second)
}

// Kill ends the server with SIGKILL, as a crash would. With AppendOnly, every
// acknowledged write is still on disk.
func (v *Valkey) Kill() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.c.kill()
}

// Restart starts the server again on the same port with the same directory, stopping it
// first if it is still running, and waits until it answers PING.
func (v *Valkey) Restart(ctx context.Context) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.c.stop(10 * time.Second); err != nil {
		return err
	}
	return v.start(ctx)
}

// Close stops the server and removes the directory the harness created for it. It may
// be called more than once.
func (v *Valkey) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	var err error
	if v.c != nil {
		err = v.c.stop(10 * time.Second)
	}
	if v.removeDir {
		v.removeDir = false
		err = errors.Join(err, os.RemoveAll(v.Dir))
	}
	return err
}
