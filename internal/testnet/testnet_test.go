package testnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestMain doubles as the program run inside the caller's namespace: with TESTNET_SEND set it
// sends one UDP datagram to that address and prints what comes back.
func TestMain(m *testing.M) {
	if dst := os.Getenv("TESTNET_SEND"); dst != "" {
		os.Exit(sendAndWait(dst))
	}
	os.Exit(m.Run())
}

func sendAndWait(dst string) int {
	c, err := net.ListenPacket("udp", ":0")
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer c.Close()
	to, _ := net.ResolveUDPAddr("udp", dst)
	if _, err := c.WriteTo([]byte("ping"), to); err != nil {
		fmt.Println(err)
		return 1
	}
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	b := make([]byte, 100)
	n, _, err := c.ReadFrom(b)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Printf("got %s\n", b[:n])
	return 0
}

// A datagram from the caller reaches this host from the router's public address, and the
// answer goes back through the NAT mapping.
func TestNAT(t *testing.T) {
	n, err := New()
	if errors.Is(err, ErrUnavailable) {
		t.Skip("network namespaces need root, ip and nft: ", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Error(err)
		}
		if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), n.Caller) {
			t.Errorf("namespace %s left behind", n.Caller)
		}
	})
	srv, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(n.HostIP, 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	got := make(chan netip.AddrPort, 1)
	go func() {
		b := make([]byte, 100)
		_, from, err := srv.ReadFromUDPAddrPort(b)
		if err != nil {
			return
		}
		got <- from
		_, _ = srv.WriteToUDPAddrPort([]byte("pong"), from)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := n.Command(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "TESTNET_SEND="+srv.LocalAddr().String())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "got pong") {
		t.Fatalf("caller: %v: %s", err, out)
	}
	if from := <-got; from.Addr() != n.PublicIP {
		t.Errorf("datagram came from %v, want the router's %v", from, n.PublicIP)
	}
}
