package gitwrite

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
)

// Defaults applied by Options.Validate to zero-valued fields.
const (
	// DefaultTimeout bounds each network operation (one Fetch, one Push).
	DefaultTimeout = 60 * time.Second
	// DefaultUsername is the HTTP user sent with a password or token when
	// Auth.Username is empty, and the SSH user when neither the URL nor
	// Auth.Username names one.
	DefaultUsername = "git"
)

// Auth holds push credentials as read from a GitProvider's Secret. Which
// fields are used depends on the URL: http(s) URLs use Username/Password;
// ssh:// and scp-like (user@host:path) URLs use SSHPrivateKey, SSHPassphrase
// and KnownHosts; file:// URLs and local paths use none.
type Auth struct {
	// Username for HTTP basic auth. Default DefaultUsername ("git") when
	// Password is set. For SSH, the user when the URL names none (default
	// "git").
	Username string
	// Password or token for HTTP basic auth; a token alone goes here.
	// Default: none (anonymous HTTP).
	Password string
	// SSHPrivateKey is a PEM (or OpenSSH) private key. Required for SSH URLs.
	SSHPrivateKey []byte
	// SSHPassphrase decrypts SSHPrivateKey if it is encrypted. Default: none.
	SSHPassphrase string
	// KnownHosts holds known_hosts lines for the SSH server. Required for SSH
	// URLs: there is no fallback that trusts any host key.
	KnownHosts []byte
}

// Options configure Open.
type Options struct {
	// URL of the remote: https://, http://, ssh://, scp-like user@host:path,
	// file:// or a local path. Required. Credentials in an http(s) URL's
	// userinfo are moved to Auth (unless Auth.Password is set) and never
	// written to disk.
	URL string
	// Branch is the short branch name ("main"), without "refs/heads/".
	// Required.
	Branch string
	// Auth holds credentials. Default: none.
	Auth Auth
	// Dir is where the bare mirror lives. It is created if missing and reused
	// across calls (and processes) so only new objects are fetched. Required.
	Dir string
	// Timeout bounds each network operation. Zero means DefaultTimeout (60s);
	// negative is invalid.
	Timeout time.Duration
}

// Validate checks o and fills defaults. Failures wrap ErrInvalidOptions and
// never quote credentials.
func (o *Options) Validate() error {
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	var errs []error
	if o.URL == "" {
		errs = append(errs, errors.New("URL is required"))
	}
	if o.Branch == "" {
		errs = append(errs, errors.New("Branch is required"))
	} else if strings.HasPrefix(o.Branch, "refs/") {
		errs = append(errs, fmt.Errorf("Branch %q must be a short name, without refs/", o.Branch))
	} else if err := plumbing.NewBranchReferenceName(o.Branch).Validate(); err != nil {
		errs = append(errs, fmt.Errorf("Branch %q: %v", o.Branch, err))
	}
	if o.Dir == "" {
		errs = append(errs, errors.New("Dir is required"))
	}
	if o.Timeout < 0 {
		errs = append(errs, fmt.Errorf("Timeout %v is negative", o.Timeout))
	}
	if o.URL != "" {
		if err := o.normalizeURL(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		red := newRedactor(o.Auth)
		msg := errors.Join(errs...).Error()
		return fmt.Errorf("gitwrite: %w: %s", ErrInvalidOptions, red.clean(strings.ReplaceAll(msg, "\n", "; ")))
	}
	return nil
}

// urlKind is the transport family of a remote URL.
type urlKind int

const (
	kindLocal urlKind = iota
	kindHTTP
	kindSSH
)

// normalizeURL moves http(s) userinfo into Auth, strips it from the URL and
// checks the credentials needed by the URL's transport.
func (o *Options) normalizeURL() error {
	ep, err := transport.NewEndpoint(o.URL)
	if err != nil {
		return fmt.Errorf("URL: cannot parse %s", redactURL(o.URL))
	}
	switch ep.Protocol {
	case "http", "https":
		u, err := url.Parse(o.URL)
		if err != nil {
			return fmt.Errorf("URL: cannot parse %s", redactURL(o.URL))
		}
		if u.User != nil {
			if o.Auth.Password == "" {
				if p, ok := u.User.Password(); ok {
					o.Auth.Username, o.Auth.Password = u.User.Username(), p
				} else {
					// A bare token as userinfo: treat it as the password.
					o.Auth.Password = u.User.Username()
				}
			}
			u.User = nil
			o.URL = u.String()
		}
		if o.Auth.Password != "" && o.Auth.Username == "" {
			o.Auth.Username = DefaultUsername
		}
	case "ssh":
		if ep.Password != "" {
			return errors.New("URL: ssh URLs must not carry a password; use Auth.SSHPrivateKey")
		}
		if len(o.Auth.SSHPrivateKey) == 0 {
			return errors.New("Auth.SSHPrivateKey is required for SSH URLs")
		}
		if len(o.Auth.KnownHosts) == 0 {
			return errors.New("Auth.KnownHosts is required for SSH URLs")
		}
	case "file":
	default:
		return fmt.Errorf("URL: unsupported scheme %q", ep.Protocol)
	}
	return nil
}

func (o *Options) kind() urlKind {
	ep, err := transport.NewEndpoint(o.URL)
	if err != nil {
		return kindLocal
	}
	switch ep.Protocol {
	case "http", "https":
		return kindHTTP
	case "ssh":
		return kindSSH
	}
	return kindLocal
}

// redactURL returns u with any userinfo and query removed, for messages.
func redactURL(u string) string {
	return newRedactor(Auth{}).clean(u)
}

// authMethod builds the go-git auth for o (already validated). Invalid keys
// or known_hosts data give ErrInvalidOptions.
func (o *Options) authMethod() (transport.AuthMethod, error) {
	switch o.kind() {
	case kindHTTP:
		if o.Auth.Password == "" {
			return nil, nil
		}
		return &githttp.BasicAuth{Username: o.Auth.Username, Password: o.Auth.Password}, nil
	case kindSSH:
		ep, err := transport.NewEndpoint(o.URL)
		if err != nil {
			return nil, err
		}
		user := ep.User
		if user == "" {
			user = o.Auth.Username
		}
		if user == "" {
			user = DefaultUsername
		}
		keys, err := gitssh.NewPublicKeys(user, o.Auth.SSHPrivateKey, o.Auth.SSHPassphrase)
		if err != nil {
			return nil, fmt.Errorf("gitwrite: %w: Auth.SSHPrivateKey: %s", ErrInvalidOptions,
				newRedactor(o.Auth).clean(err.Error()))
		}
		db, err := knownHostsDB(o.Auth.KnownHosts)
		if err != nil {
			return nil, fmt.Errorf("gitwrite: %w: Auth.KnownHosts: %v", ErrInvalidOptions, err)
		}
		port := ep.Port
		if port <= 0 {
			port = gitssh.DefaultPort
		}
		hostWithPort := net.JoinHostPort(ep.Host, strconv.Itoa(port))
		keys.HostKeyCallback = db.HostKeyCallback()
		keys.HostKeyAlgorithms = db.HostKeyAlgorithms(hostWithPort)
		return &sshAuth{PublicKeys: keys, timeout: o.Timeout}, nil
	}
	return nil, nil
}

// knownHostsDB parses known_hosts bytes. go-git and x/crypto only read
// known_hosts from files, so the bytes go through a temporary file that is
// removed before returning (the database is read into memory).
func knownHostsDB(data []byte) (interface {
	HostKeyCallback() ssh.HostKeyCallback
	HostKeyAlgorithms(hostWithPort string) []string
}, error) {
	f, err := os.CreateTemp("", "gitwrite-known-hosts-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	db, err := gitssh.NewKnownHostsDb(f.Name())
	if err != nil {
		return nil, err
	}
	return db, nil
}

// sshAuth adds a dial timeout to go-git's public key auth: go-git's SSH dial
// ignores the context and uses only ssh.ClientConfig.Timeout.
type sshAuth struct {
	*gitssh.PublicKeys
	timeout time.Duration
}

func (a *sshAuth) ClientConfig() (*ssh.ClientConfig, error) {
	c, err := a.PublicKeys.ClientConfig()
	if err != nil {
		return nil, err
	}
	c.Timeout = a.timeout
	return c, nil
}
