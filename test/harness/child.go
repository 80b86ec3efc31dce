package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// child is one process that the harness started. It runs in its own process group, its
// stdout and stderr are appended to a log file, and the kernel kills it if the harness
// process dies first.
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed once the process has exited and been reaped
	waitErr error         // the result of cmd.Wait; read it only after done is closed
}

// startChild starts path with args. env is added to the harness's own environment (later
// entries win). The process lives until it is stopped, independent of any context.
func startChild(name, path string, args, env []string, dir, logPath string) (*child, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log file for %s: %w", name, err)
	}
	// The child gets its own copy of the descriptor, so ours can go once it has started.
	defer logFile.Close()

	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// A group of its own: a Ctrl-C meant for the harness does not hit the servers
		// before the harness can stop them in order, and signals reach all of the
		// child's own children.
		Setpgid: true,
		// If the harness dies without calling Close, the kernel kills the child.
		// Linux ties this to the OS thread that forked, which the Go runtime ends only
		// when a goroutine exits while locked to it; the harness never does that.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (%s): %w", name, path, err)
	}
	c := &child{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the child's whole process group.
func (c *child) signal(sig syscall.Signal) error {
	if c.exited() {
		return fmt.Errorf("%s is not running (%v)", c.name, c.waitErr)
	}
	// The group id is the child's pid because of Setpgid; a negative pid names the group.
	if err := syscall.Kill(-c.pid(), sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("send %v to %s: %w", sig, c.name, err)
	}
	return nil
}

// stop asks the child to exit with SIGTERM and kills it after grace. A child that has
// already exited is not an error: stop is also the cleanup path after a crash.
func (c *child) stop(grace time.Duration) error {
	if c.exited() {
		return nil
	}
	if err := c.signal(syscall.SIGTERM); err != nil {
		return err
	}
	// A paused (SIGSTOP) process would hold the SIGTERM until it is continued.
	_ = c.signal(syscall.SIGCONT)
	select {
	case <-c.done:
		return nil
	case <-time.After(grace):
		return c.kill()
	}
}

// kill ends the child with SIGKILL and waits until it has been reaped.
func (c *child) kill() error {
	if c.exited() {
		return nil
	}
	if err := c.signal(syscall.SIGKILL); err != nil {
		return err
	}
	select {
	case <-c.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s (pid %d) did not exit 10s after SIGKILL", c.name, c.pid())
	}
}

// pause stops the child's process group with SIGSTOP and returns once every thread of
// the child is stopped. The signal alone is asynchronous: a thread busy on another CPU
// could still answer a request sent right after kill(2) returned.
func (c *child) pause() error {
	if err := c.signal(syscall.SIGSTOP); err != nil {
		return err
	}
	deadline := time.Now().Add(5 * time.Second)
	for !allThreadsStopped(c.pid()) {
		if c.exited() {
			return fmt.Errorf("%s exited instead of pausing (%v)", c.name, c.waitErr)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s (pid %d) did not stop within 5s of SIGSTOP", c.name, c.pid())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// allThreadsStopped reports whether every thread of pid is in state T (stopped), read
// from /proc/<pid>/task/<tid>/stat.
func allThreadsStopped(pid int) bool {
	stats, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(stats) == 0 {
		return false
	}
	for _, path := range stats {
		data, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		// "tid (comm) S ...": comm may hold spaces and parentheses, the state follows
		// the last ')'.
		i := bytes.LastIndexByte(data, ')')
		if i < 0 || i+2 >= len(data) || data[i+2] != 'T' {
			return false
		}
	}
	return true
}

// waitReady polls check until it succeeds. It fails early, with the end of the child's
// log, when the child exits, ctx ends or timeout passes.
func (c *child) waitReady(ctx context.Context, timeout time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		// Every 2 ms for the first second, so a fast start is timed to the millisecond
		// (Process.ReadyAfter); then every 100 ms.
		wait := 100 * time.Millisecond
		if time.Since(start) < time.Second {
			wait = 2 * time.Millisecond
		}
		select {
		case <-c.done:
			return fmt.Errorf("%s exited during start (%v); end of %s:\n%s", c.name, c.waitErr, c.logPath, tailFile(c.logPath, 30))
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %v (last check: %v); end of %s:\n%s", c.name, timeout, err, c.logPath, tailFile(c.logPath, 30))
		case <-time.After(wait):
		}
	}
}

// tailFile returns the last n lines of a log file, reading at most its last 256 KiB so a
// chatty server's log never costs much. Errors are returned as text: this feeds messages.
func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	defer f.Close()
	const window = 256 << 10
	if info, err := f.Stat(); err == nil && info.Size() > window {
		if _, err := f.Seek(-window, io.SeekEnd); err != nil {
			return fmt.Sprintf("(cannot read log: %v)", err)
		}
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	return lastLines(string(data), n)
}
