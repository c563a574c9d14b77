// The guard's state file, shared by the daemon (guard.cpp) and `subproxy -b/-u` without a
// daemon (guard_control.cpp): its mode, its reader, and the ban list as the operator reads it.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <ctime>
#include <string>

#include "defence/ban_list.h"
#include "defence/shared_state_keys.h"

namespace subproxy {

constexpr mode_t kGuardStateFileMode = 0600;  // bans and the user names that failed: private

inline std::int64_t wallNow() { return static_cast<std::int64_t>(std::time(nullptr)); }

// Reads the state file into `bans` a chunk at a time: memory stays at one chunk however big
// the file, and no line is copied.  A missing file is an empty list.
bool loadGuardStateFile(const std::string& path, BanList& bans, std::int64_t now, BanList::LoadResult& result,
                   std::string& error);

// "ADDRESS until=... left=...s failures=N" per ban in force at `now`.
std::string listBans(const BanList& bans, std::int64_t now);
// The same lines for the fleet's bans as Redis lists them (state.backend "redis").
std::string listSharedBans(const std::vector<SharedBan>& bans, std::int64_t now);

}  // namespace subproxy
