package harness

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// ProcessOptions describes a program to run as a child process, typically one of the
// product's binaries built with BuildGo.
type ProcessOptions struct {
	// Name labels errors and the log file (<Name>.log); default: the base name of Path.
	Name string
	// Path is the executable.
	Path string
	Args []string
	// Env is added to the harness's own environment; later entries win.
	Env []string
	// Dir is the working directory and holds the log file; default: a temporary
	// directory that Close removes.
	Dir string
	// ReadyURL, if set, is polled until it answers 200 OK; until then StartProcess waits.
	ReadyURL string
	// ReadyTimeout bounds that wait; default 30s.
	ReadyTimeout time.Duration
	// TLSCA is the PEM CA that signed an https ReadyURL's certificate.
	TLSCA []byte
}

// Process is a running child process.
type Process struct {
	Name    string
	Dir     string
	LogPath string // stdout and stderr of the process
	// ReadyAfter is how long the process took from its start to the first 200 from
	// ReadyURL (to within 2 ms when it is under a second).
	ReadyAfter time.Duration

	opts      ProcessOptions
	removeDir bool
	mu        sync.Mutex
	c         *child
}

// StartProcess starts the program and waits until it is ready. ctx bounds only the wait.
func StartProcess(ctx context.Context, opts ProcessOptions) (*Process, error) {
	if opts.Path == "" {
		return nil, errors.New("ProcessOptions.Path is empty: build the program first, e.g. with harness.BuildGo")
	}
	if opts.Name == "" {
		opts.Name = filepath.Base(opts.Path)
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 30 * time.Second
	}
	p := &Process{Name: opts.Name, Dir: opts.Dir, opts: opts}
	if p.Dir == "" {
		dir, err := os.MkdirTemp("", "harness-"+opts.Name+"-*")
		if err != nil {
			return nil, err
		}
		p.Dir, p.removeDir = dir, true
	}
	p.LogPath = filepath.Join(p.Dir, opts.Name+".log")

	started := time.Now()
	c, err := startChild(opts.Name, opts.Path, opts.Args, opts.Env, p.Dir, p.LogPath)
	if err != nil {
		p.Close()
		return nil, err
	}
	p.c = c
	if opts.ReadyURL != "" {
		check, err := httpOKCheck(opts.ReadyURL, opts.TLSCA, "")
		if err != nil {
			p.Close()
			return nil, err
		}
		if err := c.waitReady(ctx, opts.ReadyTimeout, check); err != nil {
			p.Close()
			return nil, err
		}
		p.ReadyAfter = time.Since(started)
	}
	return p, nil
}

// Pid returns the process id, which is also its process group id.
func (p *Process) Pid() int { return p.c.pid() }

// Exited is closed when the process has exited, for whatever reason.
func (p *Process) Exited() <-chan struct{} { return p.c.done }

// Stop sends SIGTERM and waits up to 10s for the process to exit, then kills it.
func (p *Process) Stop() error { return p.c.stop(10 * time.Second) }

// Kill ends the process with SIGKILL, as a crash would.
func (p *Process) Kill() error { return p.c.kill() }

// Pause freezes the process with SIGSTOP: it keeps its sockets but answers nothing, like
// a process stuck in a long GC pause or on a dead disk. It returns once the process is
// stopped.
func (p *Process) Pause() error { return p.c.pause() }

// Resume continues a paused process with SIGCONT.
func (p *Process) Resume() error { return p.c.signal(syscall.SIGCONT) }

// LogTail returns the last n lines of the process's output.
func (p *Process) LogTail(n int) string { return tailFile(p.LogPath, n) }

// Close stops the process (see Stop) and removes the directory the harness created for
// it. It may be called more than once.
func (p *Process) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var err error
	if p.c != nil {
		err = p.c.stop(10 * time.Second)
	}
	if p.removeDir {
		p.removeDir = false
		err = errors.Join(err, os.RemoveAll(p.Dir))
	}
	return err
}

// httpOKCheck returns a readiness check that GETs url and wants 200 OK. caPEM, if set,
// is trusted for https; bearer, if set, is sent as the Authorization token.
func httpOKCheck(url string, caPEM []byte, bearer string) (func(context.Context) error, error) {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if len(caPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, errors.New("the TLS CA for the readiness check holds no PEM certificate")
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	client := &http.Client{Transport: transport, Timeout: 2 * time.Second}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}, nil
}
