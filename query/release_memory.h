// query/release_memory.h
//
// Giving freed heap memory back to the operating system after big queries.
// A query's temporaries, once freed, stay resident in the malloc arena of the
// thread that ran it (glibc keeps one arena per thread and trims them only at
// their top), so without this a server's resident memory grows to about its
// biggest query times its number of query threads, and stays there.
// Thread-safe.
#ifndef VIGIL_QUERY_RELEASE_MEMORY_H_
#define VIGIL_QUERY_RELEASE_MEMORY_H_

#include <cstdint>

namespace vigil::query {

// Resident memory of this process in bytes (/proc/self/statm); 0 if unknown.
int64_t ResidentBytes();

// If resident memory grew by more than `slack_bytes` since the last release (or
// since the first call), returns the free pages of every malloc arena to the
// OS (glibc malloc_trim) and returns true. Costs one read of /proc otherwise.
// Does nothing and returns false where that is not supported.
bool ReleaseFreedMemory(int64_t slack_bytes);

}  // namespace vigil::query

#endif  // VIGIL_QUERY_RELEASE_MEMORY_H_
