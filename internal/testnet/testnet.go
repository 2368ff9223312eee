// Package testnet builds small networks for tests out of Linux network namespaces, veth pairs
// and nftables, all on this machine: a caller behind a NAT router, as a softphone behind a
// home router is. Everything it makes is removed by Close. It needs root, ip (iproute2) and
// nft (nftables); without them New returns ErrUnavailable and tests skip.
package testnet

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
)

// ErrUnavailable: network namespaces cannot be made here.
var ErrUnavailable = errors.New("testnet: needs root, ip (iproute2) and nft (nftables)")

// NAT is a caller's network namespace behind a router namespace that masquerades (source NAT)
// its traffic towards this host:
//
//	caller ns (PrivateIP) ── router ns (masquerade, PublicIP) ── this host (HostIP)
//
// The caller reaches HostIP; what it sends arrives from PublicIP (with the ports the router
// picks); HostIP cannot reach PrivateIP except through the router's NAT mappings, i.e. as
// answers to what the caller sent.
type NAT struct {
	Caller    string     // the caller's namespace: run programs in it with Command
	HostIP    netip.Addr // this host's end of the link to the router: listen here
	PublicIP  netip.Addr // the router's address on that link: the caller's traffic comes from here
	PrivateIP netip.Addr // the caller's own address, unreachable from this host

	router, hostIf string
}

// New makes the namespaces, links and NAT rules. Close removes them, also after a failure.
func New() (*NAT, error) {
	if os.Geteuid() != 0 {
		return nil, ErrUnavailable
	}
	for _, p := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(p); err != nil {
			return nil, ErrUnavailable
		}
	}
	var r [6]byte
	if _, err := rand.Read(r[:]); err != nil {
		return nil, err
	}
	id := hex.EncodeToString(r[:3])
	// This host's link: a /30 somewhere in 10.128.0.0/10, so that parallel tests (and
	// processes) rarely pick the same; a clash fails at "ip addr add" and is retried by the
	// caller of New if it likes.
	n16 := binary.BigEndian.Uint16(r[3:5]) & 0x3fff
	base := netip.AddrFrom4([4]byte{10, 128 | byte(n16>>8), byte(n16), (r[5] & 0x3f) << 2})
	n := &NAT{
		Caller: "ivrd-call-" + id, router: "ivrd-rtr-" + id, hostIf: "ivh" + id,
		HostIP: base.Next(), PublicIP: base.Next().Next(),
		PrivateIP: netip.MustParseAddr("192.168.77.2"),
	}
	rtrUp, rtrDown := "ivu"+id, "ivd"+id
	callerIf := "ivc" + id
	ruleset := fmt.Sprintf("table ip nat {\n chain post {\n  type nat hook postrouting priority 100;\n  oifname %q masquerade\n }\n}\n", rtrUp)
	steps := [][]string{
		{"netns", "add", n.router},
		{"netns", "add", n.Caller},
		{"link", "add", n.hostIf, "type", "veth", "peer", "name", rtrUp},
		{"link", "set", rtrUp, "netns", n.router},
		{"addr", "add", n.HostIP.String() + "/30", "dev", n.hostIf},
		{"link", "set", n.hostIf, "up"},
		{"-n", n.router, "addr", "add", n.PublicIP.String() + "/30", "dev", rtrUp},
		{"-n", n.router, "link", "set", rtrUp, "up"},
		{"-n", n.router, "link", "set", "lo", "up"},
		{"-n", n.router, "link", "add", rtrDown, "type", "veth", "peer", "name", callerIf},
		{"-n", n.router, "link", "set", callerIf, "netns", n.Caller},
		{"-n", n.router, "addr", "add", "192.168.77.1/24", "dev", rtrDown},
		{"-n", n.router, "link", "set", rtrDown, "up"},
		{"-n", n.Caller, "addr", "add", n.PrivateIP.String() + "/24", "dev", callerIf},
		{"-n", n.Caller, "link", "set", callerIf, "up"},
		{"-n", n.Caller, "link", "set", "lo", "up"},
		{"-n", n.Caller, "route", "add", "default", "via", "192.168.77.1"},
		{"netns", "exec", n.router, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
	}
	for _, s := range steps {
		if err := run(nil, "ip", s...); err != nil {
			n.Close()
			return nil, err
		}
	}
	if err := run([]byte(ruleset), "ip", "netns", "exec", n.router, "nft", "-f", "-"); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// Command runs name with args in the caller's namespace.
func (n *NAT) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Caller, name}, args...)...)
}

// Close removes the namespaces (their interfaces and rules go with them) and this host's end
// of the link. It kills nothing: stop what runs in the caller's namespace first.
func (n *NAT) Close() error {
	var errs []error
	for _, ns := range []string{n.Caller, n.router} {
		if err := run(nil, "ip", "netns", "del", ns); err != nil && !strings.Contains(err.Error(), "No such file") {
			errs = append(errs, err)
		}
	}
	if err := run(nil, "ip", "link", "del", n.hostIf); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func run(stdin []byte, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("testnet: %s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}
