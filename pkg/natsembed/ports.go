package natsembed

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// freePorts returns n distinct ports on host that are free now and lie
// outside the kernel's ephemeral range. A cluster node keeps its ports across
// a restart; a port inside the ephemeral range can meanwhile be taken as the
// local end of some outgoing connection, and the restart would fail.
func freePorts(host string, n int) ([]int, error) {
	lo, hi := portPool()
	ports := make([]int, 0, n)
	// Hold every listener until all ports are chosen, so the same port is
	// not handed out twice.
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for tries := 0; len(ports) < n; tries++ {
		if tries > 50*n {
			return nil, fmt.Errorf("natsembed: no free ports on %s in %d-%d", host, lo, hi)
		}
		port := 0 // the OS picks, when no pool outside its range exists
		if hi > lo {
			port = lo + rand.IntN(hi-lo)
		}
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			continue
		}
		held = append(held, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// portPool is the range [lo, hi) to pick ports from: below the ephemeral
// range when there is room, else above it, else empty.
func portPool() (lo, hi int) {
	const floor, ceiling, minSize = 10000, 65536, 1000
	elo, ehi := ephemeralRange()
	switch {
	case elo-floor >= minSize:
		return floor, elo
	case ceiling-(ehi+1) >= minSize:
		return ehi + 1, ceiling
	}
	return 0, 0
}

// ephemeralRange reads Linux's local port range, falling back to its default
// (other systems use 49152-65535, which the default also stays clear of
// when picking from below).
func ephemeralRange() (lo, hi int) {
	lo, hi = 32768, 60999
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lo, hi
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return lo, hi
	}
	l, err1 := strconv.Atoi(f[0])
	h, err2 := strconv.Atoi(f[1])
	if errors.Join(err1, err2) != nil || l > h {
		return lo, hi
	}
	return l, h
}
