#include "raft/sim/invariants.h"

#include "absl/strings/str_cat.h"
#include "raft/sim/kv_machine.h"

namespace vigil::raft::sim {

std::string Invariants::CheckLeader(const Raft& r) {
  auto [it, inserted] = leaders_.emplace(r.term(), r.id());
  if (!inserted && it->second != r.id()) {
    return absl::StrCat("two leaders in term ", r.term(), ": ", it->second, " and ", r.id());
  }
  if (!leader_checked_.emplace(std::make_pair(r.id(), r.term()), true).second) return "";
  const RaftLog& log = r.log();
  for (uint64_t i = log.first_index(); i <= committed_.size(); ++i) {
    const Committed& c = committed_[i - 1];
    if (c.commit_term >= r.term()) continue;
    absl::StatusOr<uint64_t> t = log.Term(i);
    if (!t.ok() || *t != c.term) {
      return absl::StrCat("leader completeness: new leader ", r.id(), " of term ", r.term(),
                          " lacks entry ", i, " (term ", c.term, ", committed in term ",
                          c.commit_term, "); has term ", t.ok() ? *t : 0);
    }
  }
  return "";
}

std::string Invariants::CheckCommit(const Raft& r, uint64_t* last_commit) {
  uint64_t commit = r.log().committed();
  if (commit < *last_commit) {
    return absl::StrCat("node ", r.id(), " commit index went back from ", *last_commit, " to ",
                        commit);
  }
  for (uint64_t i = *last_commit + 1; i <= commit; ++i) {
    absl::StatusOr<uint64_t> t = r.log().Term(i);
    if (!t.ok() || i < r.log().first_index()) continue;  // covered by an installed snapshot
    if (i <= committed_.size()) {
      if (committed_[i - 1].term != *t) {
        return absl::StrCat("node ", r.id(), " committed index ", i, " with term ", *t,
                            " but it was committed with term ", committed_[i - 1].term);
      }
    } else if (i == committed_.size() + 1) {
      committed_.push_back(Committed{*t, r.term()});
    }
  }
  *last_commit = commit;
  return "";
}

std::string Invariants::CheckPersistedCommit(uint64_t node, uint64_t old_commit,
                                             uint64_t new_commit) {
  if (new_commit < old_commit) {
    return absl::StrCat("node ", node, " persisted commit went back from ", old_commit, " to ",
                        new_commit);
  }
  return "";
}

std::string Invariants::CheckPersist(uint64_t node, const std::vector<Entry>& ents,
                                     uint64_t prev_term) {
  for (const Entry& e : ents) {
    uint64_t h = Fnv1a(0, absl::StrCat(static_cast<int>(e.type), "/", e.data));
    auto [it, inserted] = entries_.emplace(std::make_pair(e.index, e.term),
                                           std::make_pair(h, prev_term));
    if (!inserted) {
      if (it->second.first != h) {
        return absl::StrCat("log matching: node ", node, " entry ", e.index, "/", e.term,
                            " differs in content from another node's");
      }
      if (prev_term != kUnknownTerm && it->second.second != kUnknownTerm &&
          it->second.second != prev_term) {
        return absl::StrCat("log matching: node ", node, " entry ", e.index, "/", e.term,
                            " follows term ", prev_term, " but elsewhere term ",
                            it->second.second);
      }
      if (it->second.second == kUnknownTerm) it->second.second = prev_term;
    }
    prev_term = e.term;
  }
  return "";
}

std::string Invariants::CheckApplied(uint64_t node, uint64_t index, uint64_t chain) {
  if (index == 0) return "";
  if (index <= applied_.size()) {
    if (applied_[index - 1] != chain) {
      return absl::StrCat("state machine safety: node ", node, " state after index ", index,
                          " differs from another node's");
    }
  } else if (index == applied_.size() + 1) {
    applied_.push_back(chain);
  } else {
    return absl::StrCat("node ", node, " applied index ", index, " before anyone applied ",
                        applied_.size() + 1);
  }
  return "";
}

std::string Invariants::CheckRead(uint64_t node, uint64_t read_index, uint64_t min_index) const {
  if (read_index < min_index) {
    return absl::StrCat("stale read on node ", node, ": read index ", read_index,
                        " but index ", min_index, " was committed before the read began");
  }
  return "";
}

}  // namespace vigil::raft::sim
