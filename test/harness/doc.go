// Package harness starts real servers on 127.0.0.1 for tests and demos: Valkey, a Git
// remote served over smart HTTP, a Kubernetes API server backed by etcd, and the product's
// own binaries as child processes.
//
// Nothing is faked. Each server is the real program, listening on a free loopback port,
// keeping its files in its own directory, and writing its output to a log file there so a
// failing test can show what the server said.
//
// The constructors take a context that bounds only the start (waiting for readiness), not
// the life of the server, and they never take a testing.TB, so a main program can use them
// too. Every type has a Close method that stops everything it started; tests should
// register it with t.Cleanup right after a successful start. Child processes run in their
// own process group and are killed by the kernel if the harness process dies without
// calling Close (go test -timeout, SIGKILL), so no server outlives the program that
// started it.
//
// Errors say how to fix the problem, for example which script installs a missing server.
package harness
