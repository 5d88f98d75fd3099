// go_echo: the Go baseline of the echo comparison (issue 5) — the idiomatic
// Go echo server, a goroutine per connection, the standard library only.
// bench/echo_compare runs it beside echo_bench's servers, pinned to CPU 0,
// and drives it with the same load generator (echo_bench load).
//
//	go_echo [--port P]
//
// Like `echo_bench server ...` it listens on 127.0.0.1:P (0: any free port),
// prints "port P" once listening and serves until killed; each connection
// reads what is there (up to 4096 bytes) and writes it straight back.
//
// GOMAXPROCS is set to 1 here, in the program, not by echo_compare's
// environment, so the binary means the same thing however it is started:
// the issue compares servers on one core (greenfiber runs 1 worker). Under
// taskset -c 0 Go would pick 1 anyway (it counts the CPUs in its affinity
// mask); setting it says so. It bounds the Ps that run Go code, not the OS
// threads: the sysmon thread still runs, as in every Go program.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
)

func main() {
	port := flag.Int("port", 0, "TCP port on 127.0.0.1 (0: any free port)")
	flag.Parse()
	runtime.GOMAXPROCS(1)

	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "go_echo:", err)
		os.Exit(1)
	}
	fmt.Printf("port %d\n", l.Addr().(*net.TCPAddr).Port) // os.Stdout is unbuffered
	for {
		c, err := l.Accept()
		if err != nil {
			continue // as echo_bench's servers do: a failed accept drops that one client
		}
		go serve(c.(*net.TCPConn))
	}
}

// serve echoes c until the peer closes it or an error.
//
// A plain read/write loop, not io.Copy(c, c): on Linux io.Copy between two
// TCP conns splices through a pipe (two splice calls per message instead of
// one read and one write), which is not what the C++ servers do.
func serve(c *net.TCPConn) {
	defer c.Close()
	c.SetNoDelay(true) // Go's default for every TCP conn; said here as the C++ servers say it
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
