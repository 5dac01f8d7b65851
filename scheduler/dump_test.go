package scheduler

import "fmt"

func (s *Scheduler) dump() string {
	out := fmt.Sprintf("avail=%d free=%d cached=%d pending=%d\n", s.pool.NumAvailable(), s.pool.NumFree(), s.pool.NumCached(), s.pool.NumPending())
	for _, r := range s.running {
		out += fmt.Sprintf(" run %s st=%d len=%d comp=%d blocks=%v\n", r.id, r.state, len(r.tokens), r.numComputed, r.blocks)
	}
	for _, r := range s.waiting {
		h, e := s.prefixHits(r)
		out += fmt.Sprintf(" wait %s len=%d hits=%v evict=%d\n", r.id, len(r.tokens), h, e)
	}
	return out
}
