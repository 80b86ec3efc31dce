package writer

import (
	"errors"
	"net/http"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"knative.dev/pkg/logging"

	"github.com/gitops-reverser/gitops-reverser/lib/bus"
	"github.com/gitops-reverser/gitops-reverser/lib/change"
	"github.com/gitops-reverser/gitops-reverser/lib/serve"
)

// Handler returns the writer's HTTP routes: POST / takes a partition.ready CloudEvent (binary
// or structured mode) and drains that partition; GET /healthz and /readyz.
//
// Answers: 200 with a Result when drained (or handed on), 202 when another writer holds the
// partition, 400 for a bad event, 404 for an unknown partition, 503 when Valkey is down and
// 500 when Git failed; a non-2xx answer asks the sender to retry later.
func (w *Writer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /", w.serveReady)
	serve.Health(mux, w.o.Bus.Ping)
	return mux
}

func (w *Writer) serveReady(rw http.ResponseWriter, r *http.Request) {
	e, err := cloudevents.NewEventFromHTTPRequest(r)
	if err != nil {
		serve.WriteError(rw, http.StatusBadRequest, "not a CloudEvent: %v", err)
		return
	}
	p, err := change.ReadyFromEvent(*e)
	if err != nil {
		serve.WriteError(rw, http.StatusBadRequest, "%v", err)
		return
	}
	ctx := logging.WithLogger(r.Context(), logging.FromContext(r.Context()).With("partition", p.ID))
	res, err := w.Drain(ctx, p)
	switch {
	case err == nil && res.Busy:
		serve.WriteJSON(rw, http.StatusAccepted, res)
	case err == nil:
		serve.WriteJSON(rw, http.StatusOK, res)
	case errors.Is(err, ErrUnknownPartition):
		serve.WriteError(rw, http.StatusNotFound, "%v", err)
	case errors.Is(err, bus.ErrUnavailable):
		serve.WriteError(rw, http.StatusServiceUnavailable, "event store unavailable: %v", err)
	default:
		logging.FromContext(ctx).Errorw("Drain failed; events stay queued", "error", err, "events", res.Events)
		serve.WriteError(rw, http.StatusInternalServerError, "drain failed: %v", err)
	}
}
