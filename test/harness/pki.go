package harness

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// CA is a throwaway certificate authority for loopback TLS: servers present certificates
// it issued, and clients trust CertPEM.
type CA struct {
	CertPEM []byte

	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// defaultHosts are the names a loopback client may dial.
var defaultHosts = []string{"127.0.0.1", "::1", "localhost"}

// NewCA creates a self-signed ECDSA P-256 CA.
func NewCA() (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl, err := certTemplate("gitops-reverser harness CA")
	if err != nil {
		return nil, err
	}
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("self-sign CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{CertPEM: pemBlock("CERTIFICATE", der), cert: cert, key: key}, nil
}

// Issue returns a PEM certificate and PEM (PKCS#8) key for hosts, which may be IP
// addresses or DNS names; default: 127.0.0.1, ::1 and localhost. The certificate is valid
// for both server and client authentication.
func (ca *CA) Issue(hosts ...string) (certPEM, keyPEM []byte, err error) {
	if len(hosts) == 0 {
		hosts = defaultHosts
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl, err := certTemplate(hosts[0])
	if err != nil {
		return nil, nil, err
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	for _, h := range hosts {
		// Clients check an IP address they dialled against the IP SANs only, never
		// against DNS names, so each kind goes in its own list.
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("issue certificate for %v: %w", hosts, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pemBlock("CERTIFICATE", der), pemBlock("PRIVATE KEY", keyDER), nil
}

// TLSCertificate issues a certificate for hosts (see Issue) ready for a tls.Config, e.g.
// an httptest.Server's TLS.Certificates.
func (ca *CA) TLSCertificate(hosts ...string) (tls.Certificate, error) {
	certPEM, keyPEM, err := ca.Issue(hosts...)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

// Pool returns a certificate pool that trusts this CA.
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	return pool
}

// WriteFiles issues a certificate for hosts (see Issue) and writes it to dir/name.crt and
// its key to dir/name.key (mode 0600).
func (ca *CA) WriteFiles(dir, name string, hosts ...string) (certFile, keyFile string, err error) {
	certPEM, keyPEM, err := ca.Issue(hosts...)
	if err != nil {
		return "", "", err
	}
	certFile = filepath.Join(dir, name+".crt")
	keyFile = filepath.Join(dir, name+".key")
	if err := errors.Join(
		os.WriteFile(certFile, certPEM, 0o644),
		os.WriteFile(keyFile, keyPEM, 0o600),
	); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// certTemplate is what CA and leaf certificates share. NotBefore lies an hour back so a
// slightly slow clock in another process still accepts a certificate issued just now.
func certTemplate(commonName string) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: commonName, Organization: []string{"gitops-reverser harness"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(365 * 24 * time.Hour),
	}, nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
