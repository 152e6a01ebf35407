package archive

import (
	"sort"

	"github.com/cairn-archive/cairn/archive/ledger"
)

func sortProblems(ps []ledger.Problem) {
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Seq != ps[j].Seq {
			return ps[i].Seq < ps[j].Seq
		}
		return ps[i].Kind < ps[j].Kind
	})
}
