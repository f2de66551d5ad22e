// glibc malloc statistics of a running process, for the soak (benchmarks/soak/RESULTS.md). Loaded with
// LD_PRELOAD; when $INFERD_MALLOC_STATS names a file, a detached thread appends one JSON object a line every
// $INFERD_MALLOC_STATS_MS milliseconds (default 5000):
//   mono         CLOCK_MONOTONIC seconds (the clock of Python's time.monotonic)
//   main_system  bytes the main arena (brk heap) holds from the kernel   (malloc_info heap 0, system current)
//   main_free    bytes free inside it: bins, fastbins and the top chunk (heap 0, total fast + rest)
//   arenas_system, arenas_free   the same summed over the non-main arenas
//   mmapped      bytes in chunks served by mmap (mallinfo2 hblkhd); in_use = all allocated bytes (uordblks + hblkhd)
// main_system - main_free is what is allocated in the main heap: if it stays flat while main_system grows, the
// growth is memory malloc keeps, not live objects.
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char* g_path;
static long g_period_ms = 5000;

// Sums `attr="N"` of the element starting with `tag` inside [begin, end).
static size_t Attr(const char* begin, const char* end, const char* tag, const char* attr) {
  size_t sum = 0;
  for (const char* p = strstr(begin, tag); p != NULL && p < end; p = strstr(p + 1, tag)) {
    const char* a = strstr(p, attr);
    if (a != NULL && a < end) sum += strtoull(a + strlen(attr), NULL, 10);
  }
  return sum;
}

static void Sample(FILE* out) {
  char* xml = NULL;
  size_t len = 0;
  FILE* mem = open_memstream(&xml, &len);
  if (mem == NULL) return;
  malloc_info(0, mem);
  fclose(mem);
  size_t main_system = 0, main_free = 0, all_system = 0, all_free = 0;
  // Per-arena sections are <heap nr="i"> ... </heap>; the totals after them are not inside any.
  for (const char* h = strstr(xml, "<heap nr=\""); h != NULL; h = strstr(h + 1, "<heap nr=\"")) {
    const char* end = strstr(h, "</heap>");
    if (end == NULL) break;
    size_t system = Attr(h, end, "<system type=\"current\"", "size=\"");
    size_t free_bytes =
        Attr(h, end, "<total type=\"fast\"", "size=\"") + Attr(h, end, "<total type=\"rest\"", "size=\"");
    if (strncmp(h, "<heap nr=\"0\"", 12) == 0) {
      main_system = system;
      main_free = free_bytes;
    }
    all_system += system;
    all_free += free_bytes;
  }
  free(xml);
  struct mallinfo2 mi = mallinfo2();
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  double t = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
  fprintf(out,
          "{\"mono\": %.3f, \"main_system\": %zu, \"main_free\": %zu, \"arenas_system\": %zu, \"arenas_free\": %zu, "
          "\"mmapped\": %zu, \"in_use\": %zu}\n",
          t, main_system, main_free, all_system - main_system, all_free - main_free, mi.hblkhd,
          mi.uordblks + mi.hblkhd);
  fflush(out);
}

static void* Loop(void* arg) {
  (void)arg;
  FILE* out = fopen(g_path, "a");
  if (out == NULL) return NULL;
  struct timespec period = {g_period_ms / 1000, (g_period_ms % 1000) * 1000000L};
  for (;;) {
    Sample(out);
    nanosleep(&period, NULL);
  }
  return NULL;
}

__attribute__((constructor)) static void Start(void) {
  g_path = getenv("INFERD_MALLOC_STATS");
  if (g_path == NULL || *g_path == '\0') return;
  const char* ms = getenv("INFERD_MALLOC_STATS_MS");
  if (ms != NULL && atol(ms) > 0) g_period_ms = atol(ms);
  pthread_t thread;
  if (pthread_create(&thread, NULL, Loop, NULL) == 0) pthread_detach(thread);
}
