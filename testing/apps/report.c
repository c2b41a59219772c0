/*
 * A tiny app for the launcher's root tests (scripts/launcher_tree_test.ts), built with musl-gcc
 * and with gcc: prints its PID, whether any of piggy-env's files (/piggy/) is mapped into it, and
 * its initial environment, one "env NAME=value" line each.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

int main(void) {
  char line[4096];
  int piggy = 0;
  FILE *maps = fopen("/proc/self/maps", "r");
  if (maps) {
    while (fgets(line, sizeof line, maps)) {
      if (strstr(line, "/piggy/")) piggy = 1;
    }
    fclose(maps);
  }
  printf("ready\npid %d\nmaps_piggy %d\n", (int)getpid(), maps ? piggy : -1);
  for (char **entry = environ; *entry; entry++) printf("env %s\n", *entry);
  return 0;
}
