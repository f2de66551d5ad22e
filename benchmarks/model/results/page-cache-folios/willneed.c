#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>
int main(int c, char** v) {
  int fd = open(v[1], O_RDONLY); struct stat st; fstat(fd, &st);
  char* p = mmap(0, st.st_size, PROT_READ, MAP_SHARED, fd, 0);
  if (c > 2) madvise(p, st.st_size, MADV_HUGEPAGE);
  madvise(p, st.st_size, MADV_WILLNEED);
  sleep(4);
  if (mlock(p, st.st_size)) perror("mlock");
  char cmd[128]; snprintf(cmd, sizeof cmd, "grep -E 'Rss|FilePmdMapped' /proc/%d/smaps_rollup", getpid()); system(cmd);
  return 0;
}
