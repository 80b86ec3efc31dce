package harness

import (
	"fmt"
	"net"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
//
// The port is found by listening on port 0 and closing the listener, so another process
// could take it before the caller binds it. That race is acceptable for loopback tests,
// where the only other listeners are the harness's own servers.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port on 127.0.0.1: %w (is the loopback interface up?)", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
