package gitwrite

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// sshGitServer is a real SSH server on loopback that runs git-upload-pack and
// git-receive-pack for one client key, like a Git host does.
type sshGitServer struct {
	addr    string
	hostKey ssh.PublicKey
}

func newSSHGitServer(t *testing.T, clientKey ssh.PublicKey) *sshGitServer {
	t.Helper()
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hostSigner, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if bytes.Equal(k.Marshal(), clientKey.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unknown key")
		},
	}
	cfg.AddHostKey(hostSigner)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveSSH(c, cfg)
		}
	}()
	return &sshGitServer{addr: ln.Addr().String(), hostKey: hostSigner.PublicKey()}
}

func serveSSH(c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	_, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "session only")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			return
		}
		go serveSession(ch, creqs)
	}
}

func serveSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		if req.Type != "exec" {
			_ = req.Reply(req.Type == "env", nil)
			continue
		}
		var payload struct{ Command string }
		if err := ssh.Unmarshal(req.Payload, &payload); err != nil {
			_ = req.Reply(false, nil)
			return
		}
		// "git-upload-pack '/abs/repo.git'"
		name, arg, _ := strings.Cut(payload.Command, " ")
		if name != "git-upload-pack" && name != "git-receive-pack" {
			_ = req.Reply(false, nil)
			return
		}
		_ = req.Reply(true, nil)
		cmd := exec.Command("git", strings.TrimPrefix(name, "git-"), strings.Trim(arg, "'"))
		cmd.Env = gitEnv()
		cmd.Stdout, cmd.Stderr = ch, ch.Stderr()
		stdin, _ := cmd.StdinPipe()
		go func() { _, _ = io.Copy(stdin, ch); stdin.Close() }()
		status := uint32(0)
		if err := cmd.Run(); err != nil {
			status = 1
		}
		_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
		return
	}
}

func newClientKey(t *testing.T, passphrase string) (pemBytes []byte, pub ssh.PublicKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var block *pem.Block
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, "test")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "test", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block), signer.PublicKey()
}

func TestSSH(t *testing.T) {
	const passphrase = "key-passphrase-42"
	key, pub := newClientKey(t, passphrase)
	srv := newSSHGitServer(t, pub)
	bare := newBare(t)
	seed(t, bare)
	url := fmt.Sprintf("ssh://git@%s%s", srv.addr, bare)
	knownHosts := []byte(knownhosts.Line([]string{knownhosts.Normalize(srv.addr)}, srv.hostKey) + "\n")

	r, err := Open(ctx(t), Options{URL: url, Branch: "main", Dir: filepath.Join(t.TempDir(), "m"),
		Auth: Auth{SSHPrivateKey: key, SSHPassphrase: passphrase, KnownHosts: knownHosts}})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	commit(t, r, "over ssh", put("clusters/c1/a.yaml", "a\n"))
	if err := r.Push(ctx(t)); err != nil {
		t.Fatalf("Push: %v", err)
	}
	if got := gitCLI(t, bare, "cat-file", "-p", "main:clusters/c1/a.yaml"); got != "a" {
		t.Fatalf("pushed content %q", got)
	}
	fsck(t, bare)

	_, otherHost := newClientKey(t, "")
	otherKey, _ := newClientKey(t, "")
	for name, auth := range map[string]Auth{
		"unknown host key": {SSHPrivateKey: key, SSHPassphrase: passphrase,
			KnownHosts: []byte(knownhosts.Line([]string{knownhosts.Normalize(srv.addr)}, otherHost) + "\n")},
		"host not listed": {SSHPrivateKey: key, SSHPassphrase: passphrase,
			KnownHosts: []byte(knownhosts.Line([]string{"example.com"}, srv.hostKey) + "\n")},
		"client key refused": {SSHPrivateKey: otherKey, KnownHosts: knownHosts},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Open(ctx(t), Options{URL: url, Branch: "main", Dir: filepath.Join(t.TempDir(), "m"), Auth: auth})
			if !errors.Is(err, ErrAuthentication) {
				t.Fatalf("Open: %v, want ErrAuthentication", err)
			}
			if strings.Contains(err.Error(), passphrase) {
				t.Fatalf("passphrase in error: %v", err)
			}
			t.Logf("error text: %v", err)
		})
	}

	t.Run("wrong passphrase", func(t *testing.T) {
		_, err := Open(ctx(t), Options{URL: url, Branch: "main", Dir: t.TempDir(),
			Auth: Auth{SSHPrivateKey: key, SSHPassphrase: "not-the-passphrase", KnownHosts: knownHosts}})
		if !errors.Is(err, ErrInvalidOptions) || strings.Contains(err.Error(), "not-the-passphrase") {
			t.Fatalf("Open: %v, want ErrInvalidOptions without the passphrase", err)
		}
	})
}
