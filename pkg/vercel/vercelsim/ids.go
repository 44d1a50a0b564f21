package vercelsim

import (
	"fmt"
	"strings"
	"time"
)

const (
	alphaNum      = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	lowerAlphaNum = "abcdefghijklmnopqrstuvwxyz0123456789"
)

// The ids look like Vercel's (prefix and length), so code that logs,
// validates or stores them meets realistic values.
func (s *Server) randLocked(alphabet string, n int) string {
	var b strings.Builder
	b.Grow(n)
	for range n {
		b.WriteByte(alphabet[s.rng.IntN(len(alphabet))])
	}
	return b.String()
}

func (s *Server) newIDLocked(prefix string, n int) string {
	return prefix + s.randLocked(alphaNum, n)
}

// requestIDLocked makes an x-vercel-id: edge and origin regions, a short
// tag, the time in ms and a random suffix.
func (s *Server) requestIDLocked(now time.Time) string {
	return fmt.Sprintf("iad1::iad1::%s-%d-%s", s.randLocked(lowerAlphaNum, 5), now.UnixMilli(),
		s.randLocked("0123456789abcdef", 12))
}

// uuidLocked makes a random (version 4) UUID, the shape of a transfer code.
func (s *Server) uuidLocked() string {
	hi, lo := s.rng.Uint64(), s.rng.Uint64()
	hi = hi&^0xf000 | 0x4000
	lo = lo&^(0xc<<60) | 0x8<<60
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", hi>>32, (hi>>16)&0xffff, hi&0xffff, lo>>48, lo&0xffffffffffff)
}
