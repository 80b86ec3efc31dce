package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ControllerManagerOptions configures StartControllerManager.
type ControllerManagerOptions struct {
	// Controllers are the kube-controller-manager controllers to run, by name
	// ("garbagecollector", "namespace", ...). Required: a test names what it relies on, so
	// no other controller changes objects under it.
	Controllers []string
	// ExtraArgs are appended to the command line.
	ExtraArgs []string
}

// ControllerManager is a kube-controller-manager running against a Kube.
type ControllerManager struct {
	Dir string

	child *child
}

// StartControllerManager builds kube-controller-manager if needed (see
// BuildControllerManager) and runs the given controllers against the apiserver, as the admin
// user (system:masters) rather than per-controller service accounts, which would need the
// token controller. It waits until the process serves /healthz. Close stops it; the Kube's
// Close does not.
func (k *Kube) StartControllerManager(ctx context.Context, o ControllerManagerOptions) (*ControllerManager, error) {
	if len(o.Controllers) == 0 {
		return nil, errors.New("ControllerManagerOptions.Controllers is empty: name the controllers the test needs, e.g. garbagecollector")
	}
	path, err := BuildControllerManager(ctx)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(k.Dir, "controller-manager-*")
	if err != nil {
		return nil, err
	}
	// Its own serving certificate, from a CA of its own, so readiness is checked over
	// verified TLS like every other server of the harness.
	ca, err := NewCA()
	if err != nil {
		return nil, err
	}
	cert, key, err := ca.WriteFiles(dir, "controller-manager", "127.0.0.1", "localhost")
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	args := []string{
		"--kubeconfig=" + k.Kubeconfig(AdminUser),
		"--controllers=" + strings.Join(o.Controllers, ","),
		"--use-service-account-credentials=false",
		"--leader-elect=false",
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--tls-cert-file=" + cert,
		"--tls-private-key-file=" + key,
		// /healthz is served without authentication (--authorization-always-allow-paths);
		// nothing else of its API is used, so it need not look up delegated authn/authz.
		"--authentication-skip-lookup",
	}
	args = append(args, o.ExtraArgs...)
	c, err := startChild("kube-controller-manager", path, args, nil, dir, filepath.Join(dir, "kube-controller-manager.log"))
	if err != nil {
		return nil, err
	}
	cm := &ControllerManager{Dir: dir, child: c}
	check, err := httpOKCheck("https://127.0.0.1:"+strconv.Itoa(port)+"/healthz", ca.CertPEM, "")
	if err != nil {
		return nil, errors.Join(err, cm.Close())
	}
	if err := c.waitReady(ctx, 60*time.Second, check); err != nil {
		return nil, errors.Join(err, cm.Close())
	}
	return cm, nil
}

// LogTail returns the last n lines of the controller manager's log.
func (cm *ControllerManager) LogTail(n int) string {
	return tailFile(filepath.Join(cm.Dir, "kube-controller-manager.log"), n)
}

// Close stops the controller manager. It may be called more than once.
func (cm *ControllerManager) Close() error {
	if cm.child == nil {
		return nil
	}
	err := cm.child.stop(10 * time.Second)
	cm.child = nil
	if err != nil {
		return fmt.Errorf("stop kube-controller-manager: %w", err)
	}
	return nil
}
