// Command readyserver stands in for a product binary in the harness's own tests: it serves
// /readyz on $ADDR and shuts down cleanly on SIGTERM, saying so in its output.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	addr := os.Getenv("ADDR")
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	srv := &http.Server{Addr: addr, Handler: mux}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		fmt.Println("readyserver: SIGTERM, shutting down")
		_ = srv.Shutdown(context.Background())
	}()

	fmt.Println("readyserver: listening on", addr)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
	fmt.Println("readyserver: stopped")
}
