package console

import (
	"errors"
	"net/http"

	"github.com/deployq/deployq/pkg/jobs"
)

// The actions; Handler wraps each in the token check (server.action).

func (s *server) cancel(w http.ResponseWriter, r *http.Request) {
	tenant, id, ok := requestKey(w, r)
	if !ok {
		return
	}
	st, err := s.cfg.Client.Cancel(r.Context(), tenant, id)
	if errors.Is(err, jobs.ErrFinished) {
		fail(w, http.StatusConflict, "already finished")
		return
	}
	status := ""
	if st != nil {
		status = string(st.Status)
	}
	s.cfg.Logger.Info("console: cancel", "tenant", tenant, "id", id, "err", err)
	s.reply(w, map[string]string{"status": status}, err)
}

func (s *server) replay(w http.ResponseWriter, r *http.Request) {
	tenant, id, ok := requestKey(w, r)
	if !ok {
		return
	}
	sub, err := s.cfg.Client.Replay(r.Context(), tenant, id)
	s.cfg.Logger.Info("console: replay", "tenant", tenant, "id", id, "err", err)
	var inv *jobs.ValidationError
	switch {
	case errors.Is(err, jobs.ErrNoDeadLetter):
		fail(w, http.StatusNotFound, "no dead letter for "+tenant+"/"+id)
	case errors.Is(err, jobs.ErrSourceExpired), errors.As(err, &inv), errors.Is(err, jobs.ErrRunning), errors.Is(err, jobs.ErrFinished):
		fail(w, http.StatusConflict, err.Error())
	default:
		s.reply(w, sub, err)
	}
}

func (s *server) purge(w http.ResponseWriter, r *http.Request) {
	tenant, ok := tenantParam(w, r)
	if !ok {
		return
	}
	n, err := s.cfg.Client.PurgeDeadLetters(r.Context(), tenant)
	s.cfg.Logger.Info("console: purge dead letters", "tenant", tenant, "deleted", n, "err", err)
	s.reply(w, map[string]int{"deleted": n}, err)
}
