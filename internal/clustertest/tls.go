package clustertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// CA is a certificate authority made on the spot, for tests: its
// certificate is written as PEM to CertFile, its key stays in memory.
type CA struct {
	CertFile string
	Cert     *x509.Certificate
	// Pool holds Cert alone: what a peer trusting this CA verifies with.
	Pool *x509.CertPool

	key *ecdsa.PrivateKey
	dir string
}

// KeyPair is a certificate and its private key, both written as PEM.
type KeyPair struct {
	CertFile, KeyFile string
	Cert              *x509.Certificate
}

// NewCA makes a CA named name and writes its certificate to dir/name.crt.
// The certificates it issues are valid from an hour ago for a day.
func NewCA(dir, name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("clustertest: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          newSerial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("clustertest: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("clustertest: %w", err)
	}
	ca := &CA{CertFile: filepath.Join(dir, name+".crt"), Cert: cert, Pool: x509.NewCertPool(), key: key, dir: dir}
	ca.Pool.AddCert(cert)
	if err := writePEM(ca.CertFile, "CERTIFICATE", der); err != nil {
		return nil, err
	}
	return ca, nil
}

// Issue makes a certificate signed by ca for 127.0.0.1, ::1 and localhost,
// good for a server and for a client alike, and writes it with its key to
// name.crt and name.key next to the CA's certificate. Each has a serial
// number of its own.
func (ca *CA) Issue(name string) (*KeyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("clustertest: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: newSerial(),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    ca.Cert.NotBefore,
		NotAfter:     ca.Cert.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("clustertest: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("clustertest: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("clustertest: %w", err)
	}
	kp := &KeyPair{CertFile: filepath.Join(ca.dir, name+".crt"), KeyFile: filepath.Join(ca.dir, name+".key"), Cert: cert}
	if err := writePEM(kp.CertFile, "CERTIFICATE", der); err != nil {
		return nil, err
	}
	if err := writePEM(kp.KeyFile, "PRIVATE KEY", pkcs8); err != nil {
		return nil, err
	}
	return kp, nil
}

// newSerial is a random 128-bit serial number, as RFC 5280 recommends:
// two certificates of one test never share one.
func newSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

func writePEM(path, typ string, der []byte) error {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		return fmt.Errorf("clustertest: %w", err)
	}
	return nil
}

// TLS makes the nodes of a cluster speak TLS only: no plaintext port
// (port 0), TLS on the client port, on the cluster bus (tls-cluster) and
// between master and replica (tls-replication). The nodes ask their
// clients for a certificate signed by CA (redis-server's default
// tls-auth-clients yes); Client, redis-cli and the nodes themselves
// present Cert.
type TLS struct {
	CA   *CA
	Cert *KeyPair // every node's certificate, and the one its clients show
}

// NewTLS makes a CA and one certificate it signs, in dir.
func NewTLS(dir string) (*TLS, error) {
	ca, err := NewCA(dir, "ca")
	if err != nil {
		return nil, err
	}
	cert, err := ca.Issue("node")
	if err != nil {
		return nil, err
	}
	return &TLS{CA: ca, Cert: cert}, nil
}

// ClientConfig is what a client of the nodes connects with: it trusts CA,
// expects a certificate for 127.0.0.1 and shows Cert. nil for a nil t, so
// that callers need not ask whether the cluster speaks TLS.
func (t *TLS) ClientConfig() *tls.Config {
	if t == nil {
		return nil
	}
	pair, err := tls.LoadX509KeyPair(t.Cert.CertFile, t.Cert.KeyFile)
	if err != nil {
		panic(fmt.Sprintf("clustertest: the key pair written by Issue does not load: %v", err))
	}
	return &tls.Config{RootCAs: t.CA.Pool, Certificates: []tls.Certificate{pair}, ServerName: "127.0.0.1"}
}

// CLIArgs are redis-cli's options for the same; none for a nil t.
func (t *TLS) CLIArgs() []string {
	if t == nil {
		return nil
	}
	return []string{"--tls", "--cacert", t.CA.CertFile, "--cert", t.Cert.CertFile, "--key", t.Cert.KeyFile}
}

// render writes the redis.conf lines of a node listening with TLS on port.
func (t *TLS) render(line func(format string, args ...any), port int) {
	line("port 0")
	line("tls-port %d", port)
	line("tls-cert-file %s", confQuote(t.Cert.CertFile))
	line("tls-key-file %s", confQuote(t.Cert.KeyFile))
	line("tls-ca-cert-file %s", confQuote(t.CA.CertFile))
	line("tls-cluster yes")
	line("tls-replication yes")
}
