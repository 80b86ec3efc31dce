// Package serve runs a function's HTTP server the way Knative expects: on $PORT, plain HTTP
// behind the platform (or HTTPS with a given certificate for local runs), draining in-flight
// requests on SIGTERM. It also holds the small response helpers every handler shares, so all
// errors leave as one line of JSON.
package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"knative.dev/pkg/logging"

	"github.com/gitops-reverser/gitops-reverser/lib/config"
)

// ShutdownTimeout bounds how long in-flight requests may finish after SIGTERM.
const ShutdownTimeout = 30 * time.Second

// Run serves h until ctx is done, then shuts down gracefully.
func Run(ctx context.Context, c config.Common, h http.Handler) error {
	log := logging.FromContext(ctx)
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(c.Port))
	if err != nil {
		return fmt.Errorf("listen on PORT %d: %w", c.Port, err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          zap.NewStdLog(log.Desugar()),
	}
	if c.ProfilingPort != 0 {
		go profile(ctx, c.ProfilingPort)
	}
	errc := make(chan error, 1)
	go func() {
		if c.TLSCertFile != "" {
			errc <- srv.ServeTLS(ln, c.TLSCertFile, c.TLSKeyFile)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	log.Infow("Serving", "port", c.Port, "tls", c.TLSCertFile != "")
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("Shutting down: draining in-flight requests")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// profile serves net/http/pprof's handlers on their own port until ctx is done. A failure
// only loses the profiles, so it is logged, not fatal.
func profile(ctx context.Context, port int) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Addr: ":" + strconv.Itoa(port), Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	context.AfterFunc(ctx, func() { _ = srv.Close() })
	logging.FromContext(ctx).Infow("Serving profiles", "port", port)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		logging.FromContext(ctx).Errorw("Profiling server stopped", "port", port, "error", err)
	}
}

// Logger builds the production JSON logger at a level (debug, info, warn, error).
func Logger(level string) (*zap.SugaredLogger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, err
	}
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	l, err := cfg.Build()
	if err != nil {
		return nil, err
	}
	return l.Sugar(), nil
}

// Error is the body of every error response.
type Error struct {
	Code  int    `json:"code"`
	Error string `json:"error"`
}

// WriteError answers with a one-line JSON error body.
func WriteError(w http.ResponseWriter, code int, format string, args ...any) {
	WriteJSON(w, code, Error{Code: code, Error: fmt.Sprintf(format, args...)})
}

// WriteJSON answers with v as one line of JSON.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // Encode ends the line with '\n'
}

// Probe is a health check: nil means healthy.
type Probe func(ctx context.Context) error

// Health registers GET /healthz (the process serves) and GET /readyz (ready runs its check).
func Health(mux *http.ServeMux, ready Probe) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			WriteError(w, http.StatusServiceUnavailable, "not ready: %v", err)
			return
		}
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}
